// Package memlimit gives the Go runtime a soft memory limit below the
// container's, so that the garbage collector works harder as memory nears
// the limit instead of the kernel killing the process: with many routes in
// a cluster, a pod that would be killed at its limit keeps running, slower.
package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// share is the part of the container's limit the Go runtime keeps to: the
// rest is for what it does not count (the binary's pages, the kernel's
// buffers for its connections).
const share = 0.9

// cgroupFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Set sets the soft limit to 90% of the container's memory limit, unless
// GOMEMLIMIT sets one or the container has none, and says so in log.
func Set(log logr.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := containerLimit(cgroupFiles)
	if limit <= 0 {
		return
	}
	soft := int64(float64(limit) * share)
	debug.SetMemoryLimit(soft)
	log.Info("the Go runtime keeps its memory to 90% of the container's limit (set GOMEMLIMIT to choose another)", "limit", limit, "GOMEMLIMIT", soft)
}

// containerLimit is the limit in the first of files that holds one, in
// bytes (0: none; v1 writes a huge number for none).
func containerLimit(files []string) int64 {
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(raw))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0
		}
		return n
	}
	return 0
}
