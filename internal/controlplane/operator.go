package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Process is a Waygate binary running against the control plane.
type Process struct {
	// Pid is the process id.
	Pid int
	// Log is the file the process logs to.
	Log string

	name    string
	exited  chan struct{}
	waitErr error
	cancel  context.CancelFunc
}

// Operator is the operator binary running as its service account.
type Operator struct {
	*Process
	// Metrics is the address of its metrics endpoint.
	Metrics string
}

// Gate is the gate binary (the data plane) running as its service account.
type Gate struct {
	*Process
	// HTTP serves forward-auth, GRPC ext_authz, Metrics /metrics.
	HTTP, GRPC, Metrics string
}

// StartOperator runs the manager binary at path with args added to those
// that connect it to the control plane, logging to dir/manager.log, and
// waits until it is ready.
func (cp *ControlPlane) StartOperator(ctx context.Context, path, dir string, args ...string) (*Operator, error) {
	addrs, err := FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	probes, metrics := addrs[0], addrs[1]
	p, err := start(ctx, "operator", cp.Operator, path, filepath.Join(dir, "manager"), probes, append([]string{
		"--namespace", OperatorNamespace,
		"--leader-elect",
		"--webhook-host", cp.Webhook.LocalServingHost,
		"--webhook-port", strconv.Itoa(cp.Webhook.LocalServingPort),
		"--webhook-cert-dir", cp.Webhook.LocalServingCertDir,
		"--health-probe-bind-address", probes,
		"--metrics-bind-address", metrics,
	}, args...))
	if err != nil {
		return nil, err
	}
	return &Operator{Process: p, Metrics: metrics}, nil
}

// StartGate runs the gate binary at path as the gate's service account,
// serving forward-auth on httpAddr (a free loopback port when empty) and the
// rest on free loopback ports, with args added, logging to dir/<name>.log,
// and waits until it is ready (its first snapshot is in effect).
func (cp *ControlPlane) StartGate(ctx context.Context, path, dir, name, httpAddr string, args ...string) (*Gate, error) {
	addrs, err := FreeAddrs(4)
	if err != nil {
		return nil, err
	}
	g := &Gate{HTTP: cmp.Or(httpAddr, addrs[0]), GRPC: addrs[1], Metrics: addrs[2]}
	g.Process, err = start(ctx, "gate", cp.Gate, path, filepath.Join(dir, name), addrs[3], append([]string{
		"--http-bind-address", g.HTTP,
		"--grpc-bind-address", g.GRPC,
		"--metrics-bind-address", g.Metrics,
		"--health-probe-bind-address", addrs[3],
	}, args...))
	if err != nil {
		return nil, err
	}
	return g, nil
}

// start runs the binary at path as cfg's user, logging to base.log (its
// kubeconfig is base.kubeconfig), and waits until its probes at probes say
// it is ready.
func start(ctx context.Context, name string, cfg *rest.Config, path, base, probes string, args []string) (*Process, error) {
	kubeconfig := base + ".kubeconfig"
	if err := WriteKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	logPath := base + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// The process goes when whoever started it goes, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		cancel()
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the %s %s (run `make build`): %w", name, path, err)
	}
	p := &Process{Pid: cmd.Process.Pid, Log: logPath, name: name, exited: make(chan struct{}), cancel: cancel}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, probes); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is why the process exited, once Exited is closed.
func (p *Process) Err() error { return p.waitErr }

// Stop stops the process and waits until it has exited.
func (p *Process) Stop() {
	p.cancel()
	<-p.exited
}

// waitReady polls the readiness probe.
func (p *Process) waitReady(ctx context.Context, addr string) error {
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
		case <-p.exited:
			return fmt.Errorf("the %s exited before it was ready: %w", p.name, p.waitErr)
		case <-deadline:
			return fmt.Errorf("the %s was not ready after 2 minutes", p.name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddrs returns n free loopback addresses; they are held open together
// so that they differ.
func FreeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer func() { _ = l.Close() }()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
