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

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/controlplane"
	waygatewebhook "github.com/waygate-dev/waygate/internal/webhook"
)

// Start runs the operator as its service account, with the RBAC of
// config/rbac, until stop is called. suppressors may suppress auditing of
// their changes.
func Start(cp *controlplane.ControlPlane, suppressors ...string) (stop func(), err error) {
	mgr, err := ctrl.NewManager(cp.Operator, ctrl.Options{
		Scheme:                 controlplane.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: cp.Webhook.LocalServingHost, Port: cp.Webhook.LocalServingPort, CertDir: cp.Webhook.LocalServingCertDir,
		}),
		// Tests start the operator more than once in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err == nil {
		err = controllers.Setup(mgr, 4)
	}
	if err == nil {
		err = waygatewebhook.Setup(mgr, waygatewebhook.Options{Operator: controlplane.OperatorUser, AuditSuppressors: suppressors})
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
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
