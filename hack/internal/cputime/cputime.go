// Package cputime reads the CPU time processes have used, from /proc, so
// that a benchmark can say what one operation costs each process of a run:
// on a machine this small they share its cores, and the costs explain the
// rates.
package cputime

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

// Meter meters named processes.
type Meter struct {
	names []string
	pids  []int
}

// Add meters the process pid as name, and returns m.
func (m *Meter) Add(name string, pid int) *Meter {
	m.names, m.pids = append(m.names, name), append(m.pids, pid)
	return m
}

// AddBinary meters the process running the binary at path as name.
func (m *Meter) AddBinary(name, path string) error {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmd), path+"\x00") {
			m.Add(name, pid)
			return nil
		}
	}
	return fmt.Errorf("no process runs %s", path)
}

// Sample is the CPU time each metered process has used so far.
func (m *Meter) Sample() []time.Duration {
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

// Cost is the CPU one operation cost each process.
type Cost struct {
	names []string
	perOp []time.Duration
	ops   int64
}

// Since is the cost of ops operations since before.
func (m *Meter) Since(before []time.Duration, ops int64) *Cost {
	after := m.Sample()
	c := &Cost{ops: max(ops, 1)}
	for i, name := range m.names {
		c.Add(name, after[i]-before[i])
	}
	return c
}

// Add adds used, the CPU a process that ran only meanwhile used in all
// (a load generator, say).
func (c *Cost) Add(name string, used time.Duration) {
	c.names, c.perOp = append(c.names, name), append(c.perOp, used/time.Duration(c.ops))
}

// Total is the CPU one operation cost all processes.
func (c *Cost) Total() time.Duration {
	var t time.Duration
	for _, d := range c.perOp {
		t += d
	}
	return t
}

// Format says what one operation cost each process, in unit (written
// unitName).
func (c *Cost) Format(unit time.Duration, unitName string) string {
	parts := make([]string, len(c.names))
	for i, name := range c.names {
		parts[i] = fmt.Sprintf("%s %.2f", name, float64(c.perOp[i])/float64(unit))
	}
	return fmt.Sprintf("CPU %s per op: %s = %.2f", unitName, strings.Join(parts, " / "), float64(c.Total())/float64(unit))
}
