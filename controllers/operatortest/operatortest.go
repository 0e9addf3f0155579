// Package operatortest runs the operator (controllers and admission webhooks)
// in the test process, against an embedded control plane, for the envtest
// suites of the packages that need it running, and has the helpers they share.
package operatortest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// Start runs the operator, composed as cmd/manager composes it
// (controllers.NewManager), as its service account with the RBAC of config/rbac,
// until stop is called. suppressors may suppress auditing of their changes.
func Start(cp *controlplane.ControlPlane, suppressors ...string) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, cp.Operator, controllers.ManagerOptions{
		Metrics:   metricsserver.Options{BindAddress: "0"},
		ProbeAddr: "0",
		Webhook: webhook.Options{
			Host: cp.Webhook.LocalServingHost, Port: cp.Webhook.LocalServingPort, CertDir: cp.Webhook.LocalServingCertDir,
		},
		Namespace:        controlplane.OperatorNamespace,
		Concurrency:      4,
		AuditSuppressors: suppressors,
		// Retention as shipped; the tests' entries are far from its limits.
		AuditMaxAge: 90 * 24 * time.Hour, AuditMaxEntries: 10000, AuditPruneInterval: 10 * time.Minute,
		// Tests start the operator more than once in one process.
		SkipNameValidation: true,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}, nil
}

// Eventually polls cond until it returns nil, and fails the test with
// cond's last error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
