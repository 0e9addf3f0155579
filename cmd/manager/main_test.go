package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/collector"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// The operator binary's suite: it runs bin/manager (built here) against the
// control plane, in place of the harness's in-process operator, and a real
// OpenTelemetry Collector (hack/otelcol) for the audit export.

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
		otelcolBin, err = collector.Build(e.Root)
		return cleanup, err
	}}))
}

// startCollector starts a collector; the test's end stops it.
func startCollector(t *testing.T) *collector.Collector {
	t.Helper()
	c, err := collector.Start(otelcolBin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// received is every record c has written.
func received(t *testing.T, c *collector.Collector) []collector.Record {
	t.Helper()
	recs, err := c.Received()
	if err != nil {
		t.Fatal(err)
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
