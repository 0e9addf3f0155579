package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Operator is the operator binary running against the control plane as its
// service account.
type Operator struct {
	// Pid is the operator's process id.
	Pid int
	// Log is the file the operator logs to.
	Log string
	// Metrics is the address of its metrics endpoint.
	Metrics string

	exited  chan struct{}
	waitErr error
	cancel  context.CancelFunc
}

// StartOperator runs the manager binary at path with args added to those
// that connect it to the control plane, logging to dir/manager.log, and
// waits until it is ready.
func (cp *ControlPlane) StartOperator(ctx context.Context, path, dir string, args ...string) (*Operator, error) {
	kubeconfig := filepath.Join(dir, "operator.kubeconfig")
	if err := WriteKubeconfig(cp.Operator, kubeconfig); err != nil {
		return nil, err
	}
	probes, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, path, append([]string{
		"--kubeconfig", kubeconfig,
		"--namespace", OperatorNamespace,
		"--leader-elect",
		"--webhook-host", cp.Webhook.LocalServingHost,
		"--webhook-port", strconv.Itoa(cp.Webhook.LocalServingPort),
		"--webhook-cert-dir", cp.Webhook.LocalServingCertDir,
		"--health-probe-bind-address", probes,
		"--metrics-bind-address", metrics,
	}, args...)...)
	logPath := filepath.Join(dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// The operator goes when whoever started it goes, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		cancel()
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the operator %s (run `make build`): %w", path, err)
	}
	op := &Operator{Pid: cmd.Process.Pid, Log: logPath, Metrics: metrics, exited: make(chan struct{}), cancel: cancel}
	go func() {
		op.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(op.exited)
	}()
	if err := op.waitReady(ctx, probes); err != nil {
		op.Stop()
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	return op, nil
}

// Exited is closed when the operator has exited.
func (op *Operator) Exited() <-chan struct{} { return op.exited }

// Err is why the operator exited, once Exited is closed.
func (op *Operator) Err() error { return op.waitErr }

// Stop stops the operator and waits until it has exited.
func (op *Operator) Stop() {
	op.cancel()
	<-op.exited
}

// waitReady polls the operator's readiness probe.
func (op *Operator) waitReady(ctx context.Context, addr string) error {
	url := "http://" + addr + "/readyz"
	deadline := time.After(2 * time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-op.exited:
			return fmt.Errorf("the operator exited before it was ready: %w", op.waitErr)
		case <-deadline:
			return errors.New("the operator was not ready after 2 minutes")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
