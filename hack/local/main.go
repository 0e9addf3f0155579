// Command local runs Waygate on this machine with no cluster: it starts an
// embedded control plane (etcd and kube-apiserver), installs CRDs, webhooks,
// RBAC and policies, runs the operator as its own service account, applies
// config/samples and writes an admin kubeconfig. `make run` starts it; Ctrl-C
// or SIGTERM stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/waygate-dev/waygate/internal/controlplane"
)

func main() {
	manager := flag.String("manager", "bin/manager", "Path of the operator binary.")
	samples := flag.Bool("samples", true, "Apply config/samples once the operator is ready.")
	flag.Parse()
	if err := run(*manager, *samples); err != nil {
		fmt.Fprintln(os.Stderr, "waygate:", err)
		os.Exit(1)
	}
}

func run(manager string, samples bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("waygate: starting the local control plane (etcd, kube-apiserver)")
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("waygate: stopping the control plane")
		_ = cp.Stop()
	}()

	dir := filepath.Join(cp.Root, "bin", "local")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	operatorKubeconfig := filepath.Join(dir, "operator.kubeconfig")
	if err := controlplane.WriteKubeconfig(cp.Admin, kubeconfig); err != nil {
		return err
	}
	if err := controlplane.WriteKubeconfig(cp.Operator, operatorKubeconfig); err != nil {
		return err
	}

	probePort, err := freePort()
	if err != nil {
		return err
	}
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, manager,
		"--kubeconfig", operatorKubeconfig,
		"--namespace", controlplane.OperatorNamespace,
		"--leader-elect",
		"--webhook-host", cp.Webhook.LocalServingHost,
		"--webhook-port", strconv.Itoa(cp.Webhook.LocalServingPort),
		"--webhook-cert-dir", cp.Webhook.LocalServingCertDir,
		"--health-probe-bind-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(probePort)),
		"--metrics-bind-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
	)
	logPath := filepath.Join(dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the operator %s (run `make build`): %w", manager, err)
	}
	// exited is closed when the operator has exited, with waitErr set.
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		stop()
		<-exited
		fmt.Println("waygate: operator stopped")
	}()

	fmt.Printf("waygate: operator starting as %s (log: %s)\n", controlplane.OperatorUser, logPath)
	if err := waitReady(ctx, probePort, exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w: %w", err, waitErr)
		}
		return fmt.Errorf("%w (see %s)", err, logPath)
	}
	if samples {
		if err := cp.Apply(ctx, filepath.Join(cp.Root, "config", "samples")); err != nil {
			return err
		}
	}

	rel := func(p string) string {
		if r, err := filepath.Rel(cp.Root, p); err == nil {
			return r
		}
		return p
	}
	fmt.Printf(`waygate: ready
  export KUBECONFIG=%s
  kubectl get waygate                        # every Waygate resource
  kubectl get routegates -o wide             # routes and the state in effect
  kubectl explain routegate.spec             # field documentation
  kubectl --as=alice apply -f config/samples/   # act as another user
Ctrl-C stops the operator and the control plane.
`, rel(kubeconfig))

	select {
	case <-ctx.Done():
		return nil
	case <-exited:
		return fmt.Errorf("the operator exited: %w (see %s)", waitErr, logPath)
	}
}

var errExited = errors.New("the operator exited before it was ready")

// waitReady polls the operator's readiness probe.
func waitReady(ctx context.Context, port int, exited <-chan struct{}) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
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
		case <-exited:
			return errExited
		case <-deadline:
			return errors.New("the operator was not ready after 2 minutes")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
