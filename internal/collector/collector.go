// Package collector runs a real OpenTelemetry Collector (hack/otelcol: the
// collector's own modules, its OTLP receiver and contrib's file exporter)
// on loopback for the audit export's tests and benchmark, and reads back
// the log records it received.
package collector

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/waygate-dev/waygate/internal/controlplane"
)

// Version is the collector release hack/otelcol builds; the binary is
// cached as bin/otelcol-<Version>.
const Version = "v0.161.0"

// Build builds hack/otelcol into root's bin/ once and returns its path.
func Build(root string) (string, error) {
	bin := filepath.Join(root, "bin", "otelcol-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintln(os.Stderr, "building the OpenTelemetry Collector", Version, "into", bin, "(once; a minute or two)")
	cmd := exec.Command("go", "build", "-o", bin+".tmp", ".")
	cmd.Dir = filepath.Join(root, "hack", "otelcol")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the collector (hack/otelcol): %w\n%s", err, out)
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// Collector is an OpenTelemetry Collector on loopback that writes the logs
// it receives, one OTLP request a line, to files in its directory.
type Collector struct {
	// HTTP and GRPC are its OTLP endpoints (host:port).
	HTTP, GRPC string
	bin, dir   string
	// starts counts the starts: each writes a file of its own.
	starts int
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts the collector at bin on free loopback ports, keeping its
// configuration, log and output in dir.
func Start(bin, dir string) (*Collector, error) {
	addrs, err := controlplane.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	c := &Collector{HTTP: addrs[0], GRPC: addrs[1], bin: bin, dir: dir}
	return c, c.Restart()
}

// Restart starts a stopped collector again, on the same ports.
func (c *Collector) Restart() error {
	c.starts++
	out := filepath.Join(c.dir, fmt.Sprintf("logs-%d.jsonl", c.starts))
	config := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http: {endpoint: %q}
      grpc: {endpoint: %q}
exporters:
  file: {path: %q, flush_interval: 50ms}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    logs: {receivers: [otlp], exporters: [file]}
`, c.HTTP, c.GRPC, out)
	path := filepath.Join(c.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "collector.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	c.cmd = exec.Command(c.bin, "--config="+path)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	c.exited = make(chan struct{})
	go func() { _ = c.cmd.Wait(); _ = logFile.Close(); close(c.exited) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", c.HTTP); err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			c.Stop()
			return fmt.Errorf("the collector does not listen on %s (see %s)", c.HTTP, logPath)
		}
	}
}

// Stop stops the collector (it flushes what it received first).
func (c *Collector) Stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
	c.cmd = nil
}

// Record is one log record received: its attributes and body.
type Record struct {
	Attrs map[string]string
	Body  string
}

// Received is every record the collector has written, in order.
func (c *Collector) Received() ([]Record, error) {
	var recs []Record
	for i := 1; i <= c.starts; i++ {
		more, err := read(filepath.Join(c.dir, fmt.Sprintf("logs-%d.jsonl", i)))
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	return recs, nil
}

// read reads the records of a file the collector wrote.
func read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	type value struct {
		StringValue *string `json:"stringValue"`
		IntValue    *string `json:"intValue"`
	}
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []struct {
						Body       value `json:"body"`
						Attributes []struct {
							Key   string `json:"key"`
							Value value  `json:"value"`
						} `json:"attributes"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			continue // a line the collector is still writing
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					r := Record{Attrs: map[string]string{}}
					if lr.Body.StringValue != nil {
						r.Body = *lr.Body.StringValue
					}
					for _, a := range lr.Attributes {
						switch {
						case a.Value.StringValue != nil:
							r.Attrs[a.Key] = *a.Value.StringValue
						case a.Value.IntValue != nil:
							r.Attrs[a.Key] = *a.Value.IntValue
						}
					}
					recs = append(recs, r)
				}
			}
		}
	}
	return recs, sc.Err()
}
