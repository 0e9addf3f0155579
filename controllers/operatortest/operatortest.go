// Package operatortest is the one envtest harness of Waygate's suites: a
// package's TestMain calls Run, which starts an embedded control plane and
// the operator (composed as cmd/manager composes it), lets the suite add
// its fixtures, runs the tests, and fails the run if a reconciler or an
// admission webhook panicked, even when every test passed. Tests work in
// namespaces of their own (Env.Namespace).
package operatortest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// RunInput is what a suite asks of the harness.
type RunInput struct {
	M *testing.M
	// Clock is the operator's time (nil: the wall clock).
	Clock clock.WithTicker
	// AuditSuppressors may suppress the audit of their changes.
	AuditSuppressors []string
	// Env, when set, is set to the suite's environment before Setup and
	// the tests run.
	Env **Env
	// Setup, when set, prepares the suite's fixtures once the control
	// plane and the operator run; its cleanup runs after the tests.
	Setup func(env *Env) (cleanup func(), err error)
	// OnFailure, when set, is called after tests that failed, before the
	// cleanup (to print the log of a server the suite started, say).
	OnFailure func()
}

// Env is a suite's control plane, with its operator running.
type Env struct {
	*controlplane.ControlPlane
	in   RunInput
	stop func()
}

// Run is a suite's TestMain: it returns the exit code, 1 when the set-up
// failed, a test failed, or a reconciler or webhook panicked.
func Run(in RunInput) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	env := &Env{ControlPlane: cp, in: in}
	if err := env.StartOperator(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { env.StopOperator() }()
	if in.Env != nil {
		*in.Env = env
	}
	if in.Setup != nil {
		cleanup, err := in.Setup(env)
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := in.M.Run()
	if code != 0 && in.OnFailure != nil {
		in.OnFailure()
	}
	if panics := panicked(); panics != "" {
		fmt.Fprintln(os.Stderr, "FAIL: the operator panicked during the tests (see the log above):", panics)
		return 1
	}
	return code
}

// panicMetrics are controller-runtime's counts of recovered panics.
var panicMetrics = map[string]string{
	"controller_runtime_reconcile_panics_total": "reconcile panics",
	"controller_runtime_webhook_panics_total":   "admission webhook panics",
}

// panicked says which reconcilers and webhooks of this process have
// panicked so far ("" when none has), from controller-runtime's metrics.
func panicked() string {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return "reading the panic metrics: " + err.Error()
	}
	var found []string
	for _, f := range families {
		what, ok := panicMetrics[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			if n := m.GetCounter().GetValue(); n > 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				found = append(found, fmt.Sprintf("%s %v (%s)", what, n, strings.Join(labels, ", ")))
			}
		}
	}
	return strings.Join(found, "; ")
}

// StartOperator runs the operator, composed as cmd/manager composes it
// (controllers.NewManager), as its service account with the RBAC of
// config/rbac, until StopOperator.
func (env *Env) StartOperator() error {
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, env.Operator, controllers.ManagerOptions{
		Metrics:   metricsserver.Options{BindAddress: "0"},
		ProbeAddr: "0",
		Webhook: webhook.Options{
			Host: env.Webhook.LocalServingHost, Port: env.Webhook.LocalServingPort, CertDir: env.Webhook.LocalServingCertDir,
		},
		Namespace:        controlplane.OperatorNamespace,
		Concurrency:      4,
		AuditSuppressors: env.in.AuditSuppressors,
		// Retention as shipped; the tests' entries are far from its limits.
		AuditMaxAge: 90 * 24 * time.Hour, AuditMaxEntries: 10000, AuditPruneInterval: 10 * time.Minute,
		// Tests may restart the operator in one process.
		SkipNameValidation: true,
		Clock:              env.in.Clock,
	})
	if err != nil {
		cancel()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	env.stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
	// Tests write through the webhooks at once: wait until they are served.
	addr := net.JoinHostPort(env.Webhook.LocalServingHost, strconv.Itoa(env.Webhook.LocalServingPort))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case err := <-done:
			cancel()
			env.stop = nil
			return fmt.Errorf("the operator stopped before it served its webhooks: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator does not serve its webhooks on %s after a minute: %w", addr, err)
		}
	}
}

// StopOperator stops the operator StartOperator started.
func (env *Env) StopOperator() {
	if env.stop != nil {
		env.stop()
		env.stop = nil
	}
}

// Namespace creates a namespace for one test, named after prefix with a
// suffix of the API server's choosing, and returns its name.
func (env *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace %s-...: %v", prefix, err)
	}
	return ns.Name
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
