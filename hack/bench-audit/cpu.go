package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuMeter reads the CPU time the processes of a run have used, so each
// phase can report what one operation costs each of them: on a machine this
// small they share its cores, and the costs explain the rates.
type cpuMeter struct {
	names []string
	pids  []int
}

// newCPUMeter meters the control plane's etcd and kube-apiserver (found by
// their binaries under assets), the operator and this process.
func newCPUMeter(assets string, operator int) (*cpuMeter, error) {
	m := &cpuMeter{}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		pid, err := pidOf(filepath.Join(assets, bin))
		if err != nil {
			return nil, err
		}
		m.names, m.pids = append(m.names, bin), append(m.pids, pid)
	}
	m.names, m.pids = append(m.names, "operator", "bench"), append(m.pids, operator, os.Getpid())
	return m, nil
}

// pidOf finds the process running the binary at path.
func pidOf(path string) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmd), path+"\x00") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process runs %s", path)
}

// sample is the CPU time each metered process has used so far.
func (m *cpuMeter) sample() []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(utime+stime) * clockTick
	}
	return out
}

// per formats the CPU used since before, per operation, and returns the
// total in milliseconds per operation.
func (m *cpuMeter) per(before []time.Duration, ops int64) (string, float64) {
	after := m.sample()
	var parts []string
	var total time.Duration
	for i, name := range m.names {
		d := after[i] - before[i]
		total += d
		parts = append(parts, fmt.Sprintf("%s %.2f", name, ms(d)/float64(ops)))
	}
	perOp := ms(total) / float64(ops)
	return fmt.Sprintf("CPU ms per op: %s, total %.2f", strings.Join(parts, ", "), perOp), perOp
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
