// Package procmem reads how much memory a process holds, for the
// benchmarks (Linux: /proc/<pid>/status).
package procmem

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Read reads the resident memory (VmRSS) of process pid and its peak
// (VmHWM), in bytes.
func Read(pid int) (rss, peak int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak, nil
}
