// Package operatortest runs the operator (controllers and admission webhooks)
// in the test process, against an embedded control plane, for the envtest
// suites of the packages that need it running, and has the helpers they share.
package operatortest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// Start runs the operator, composed as cmd/manager composes it
// (controllers.NewManager), as its service account with the RBAC of config/rbac,
// until stop is called. Its time is clk (nil: the wall clock);
// suppressors may suppress auditing of their changes.
func Start(cp *controlplane.ControlPlane, clk clock.WithTicker, suppressors ...string) (stop func(), err error) {
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
		Clock:              clk,
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

// Run is the TestMain of a package whose tests need the control plane and
// the operator (on the wall clock): it starts both, lets setup prepare
// the package's own fixtures (its cleanup runs after the tests), runs the
// tests and stops everything. It returns the exit code.
func Run(m *testing.M, setup func(cp *controlplane.ControlPlane) (cleanup func(), err error)) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	stop, err := Start(cp, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	cleanup, err := setup(cp)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Clock is the wall clock, moved forward by tests (Skip) so that they reach
// a time, such as a window's boundary, without waiting for it. Timers and
// delayed reconciles fire as it passes their time.
type Clock struct {
	clock.WithTicker
	fake *clocktesting.FakeClock

	mu     sync.Mutex
	offset time.Duration
}

// NewClock starts a Clock that follows the wall clock until ctx ends.
func NewClock(ctx context.Context) *Clock {
	fake := clocktesting.NewFakeClock(time.Now())
	c := &Clock{WithTicker: fake, fake: fake}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.follow()
			}
		}
	}()
	return c
}

// Skip moves the clock d ahead of the wall clock, firing what is due.
func (c *Clock) Skip(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
	c.follow()
}

// follow sets the clock to the wall clock plus the offset.
func (c *Clock) follow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := time.Now().Add(c.offset); t.After(c.fake.Now()) {
		c.fake.SetTime(t)
	}
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
