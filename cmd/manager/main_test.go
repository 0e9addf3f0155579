package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// The operator binary's suite: it runs bin/manager (built here) against the
// control plane, in place of the harness's in-process operator, and a real
// OpenTelemetry Collector (hack/otelcol) for the audit export.

// collectorVersion is the collector release hack/otelcol builds; the
// binary is cached as bin/otelcol-<version>.
const collectorVersion = "v0.161.0"

var (
	env        *operatortest.Env
	managerBin string
	otelcolBin string
)

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env, Setup: func(e *operatortest.Env) (func(), error) {
		// The binary serves the webhooks where the harness's operator did.
		e.StopOperator()
		dir, err := os.MkdirTemp("", "waygate-manager")
		if err != nil {
			return nil, err
		}
		cleanup := func() { _ = os.RemoveAll(dir) }
		managerBin = filepath.Join(dir, "manager")
		if out, err := exec.Command("go", "build", "-o", managerBin, ".").CombinedOutput(); err != nil {
			return cleanup, fmt.Errorf("go build ./cmd/manager: %w\n%s", err, out)
		}
		otelcolBin, err = buildCollector(e.Root)
		return cleanup, err
	}}))
}

// buildCollector builds hack/otelcol into bin/ once.
func buildCollector(root string) (string, error) {
	bin := filepath.Join(root, "bin", "otelcol-"+collectorVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintln(os.Stderr, "building the OpenTelemetry Collector", collectorVersion, "into", bin, "(once; a minute or two)")
	cmd := exec.Command("go", "build", "-o", bin+".tmp", ".")
	cmd.Dir = filepath.Join(root, "hack", "otelcol")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the collector (hack/otelcol): %w\n%s", err, out)
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// collector is an OpenTelemetry Collector on loopback that writes the logs
// it receives, one OTLP request a line, to a file.
type collector struct {
	// HTTP and GRPC are its OTLP endpoints (host:port).
	HTTP, GRPC string
	dir        string
	// starts counts the starts: each writes a file of its own.
	starts int
	cmd    *exec.Cmd
	exited chan struct{}
}

// startCollector starts a collector; the test's end stops it.
func startCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	addrs, err := controlplane.FreeAddrs(2)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{HTTP: addrs[0], GRPC: addrs[1], dir: dir}
	c.start(t)
	t.Cleanup(c.stop)
	return c
}

func (c *collector) start(t *testing.T) {
	t.Helper()
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
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(filepath.Join(c.dir, "collector.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(otelcolBin, "--config="+path)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.exited = make(chan struct{})
	go func() { _ = c.cmd.Wait(); _ = logFile.Close(); close(c.exited) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", c.HTTP); err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector does not listen on %s (see %s)", c.HTTP, filepath.Join(c.dir, "collector.log"))
		}
	}
}

func (c *collector) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
	c.cmd = nil
}

// record is one exported log record: its attributes and body.
type record struct {
	Attrs map[string]string
	Body  string
}

// received is every record the collector has written, in order.
func (c *collector) received(t *testing.T) []record {
	t.Helper()
	var recs []record
	for i := 1; i <= c.starts; i++ {
		recs = append(recs, readRecords(t, filepath.Join(c.dir, fmt.Sprintf("logs-%d.jsonl", i)))...)
	}
	return recs
}

// readRecords reads the records of a file the collector wrote.
func readRecords(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	type value struct {
		StringValue *string `json:"stringValue"`
		IntValue    *string `json:"intValue"`
	}
	var recs []record
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
					r := record{Attrs: map[string]string{}}
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
	return recs
}

// operator is the manager binary as the operator's service account.
type operator struct {
	*controlplane.Operator
}

// startOperator runs the manager with args and the environment env (added
// to the test's), and waits until it is ready.
func startOperator(t *testing.T, environ map[string]string, args ...string) *operator {
	t.Helper()
	for k, v := range environ {
		t.Setenv(k, v)
	}
	op, err := env.ControlPlane.StartOperator(context.Background(), managerBin, t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	o := &operator{Operator: op}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(o.Stop)
		if t.Failed() {
			b, _ := os.ReadFile(o.Log)
			t.Logf("the operator's log (%s), its end:\n%s", o.Log, b[max(0, len(b)-6000):])
		}
	})
	return o
}

// kill ends the operator at once, as a node failure would: it neither
// finishes what it is doing nor releases its lease.
func (o *operator) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(o.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-o.Exited()
}
