package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

func TestMaintenanceWithKubectl(t *testing.T) {
	ns := env.Namespace(t, "gate")
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: get-payments}
spec: {route: "GET:/payments/{id}", service: payments, state: maintenance, reason: Database migration}
`, "apply", "-n", ns, "-f", "-")
	a := waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return check(t, gw, ns, "payments", "GET", "/payments/42?expand=1") })
	want := `{"error":{"code":"MAINTENANCE_MODE","message":"This endpoint is temporarily unavailable for maintenance","path":"/payments/42","reason":"Database migration","retry_after":null}}`
	if a.Body != want || a.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("body %s (%s), want %s", a.Body, a.Header.Get("Content-Type"), want)
	}
	// Other methods, paths and services are not gated.
	for _, c := range [][3]string{{"payments", "POST", "/payments/42"}, {"payments", "GET", "/payments"}, {"orders", "GET", "/payments/42"}} {
		if a := check(t, gw, ns, c[0], c[1], c[2]); a.Status != http.StatusOK {
			t.Errorf("%v: %s, want 200", c, a)
		}
	}
	// A check URL naming a namespace or service with no Waygate objects (a
	// typo?) is allowed, but counted (and logged).
	unknownNS, unknownSvc := metric(t, gw, `waygate_gate_unknown_scope_total{scope="namespace"}`), metric(t, gw, `waygate_gate_unknown_scope_total{scope="service"}`)
	check(t, gw, ns+"-typo", "payments", "GET", "/payments/42")
	check(t, gw, ns, "paymnets", "GET", "/payments/42")
	if a, b := metric(t, gw, `waygate_gate_unknown_scope_total{scope="namespace"}`)-unknownNS, metric(t, gw, `waygate_gate_unknown_scope_total{scope="service"}`)-unknownSvc; a < 1 || b < 1 {
		t.Errorf("unknown scopes counted: namespace +%v, service +%v; want at least 1 each", a, b)
	}

	kubectl(t, "", "patch", "rg", "get-payments", "-n", ns, "--type", "merge", "-p", `{"spec":{"state":"active","reason":"Migration done"}}`)
	waitFor(t, http.StatusOK, "", func() answer { return check(t, gw, ns, "payments", "GET", "/payments/42") })

	kubectl(t, "", "patch", "rg", "get-payments", "-n", ns, "--type", "merge", "-p", `{"spec":{"state":"disabled","reason":"Moved to v2"}}`)
	waitFor(t, http.StatusServiceUnavailable, "ROUTE_DISABLED", func() answer { return check(t, gw, ns, "payments", "GET", "/payments/42") })
	kubectl(t, "", "delete", "rg", "get-payments", "-n", ns)
	waitFor(t, http.StatusOK, "", func() answer { return check(t, gw, ns, "payments", "GET", "/payments/42") })
}

func TestWindowsSwitchOnTheGateClock(t *testing.T) {
	ns := env.Namespace(t, "gate")
	// Whole seconds: the API stores times to the second.
	start := time.Now().Add(5 * time.Second).Truncate(time.Second)
	end := start.Add(2 * time.Second)
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reports"}, Spec: waygatev1.RouteGateSpec{
		Route: "GET:/reports", Service: "payments", State: waygatev1.RouteActive, Reason: "Re-index",
		Window: &waygatev1.MaintenanceWindow{Start: metav1.NewTime(start), End: metav1.NewTime(end)},
	}}
	// A gate in maintenance created after the window's: once the gate
	// refuses its route, it has the window too (one informer delivers a
	// kind's events in order).
	marker := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marker"}, Spec: waygatev1.RouteGateSpec{
		Route: "GET:/marker", Service: "payments", State: waygatev1.RouteMaintenance,
	}}
	for _, o := range []*waygatev1.RouteGate{rg, marker} {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	ask := func() answer { return check(t, gw, ns, "payments", "GET", "/reports") }
	waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return check(t, gw, ns, "payments", "GET", "/marker") })
	if time.Now().After(start) {
		t.Fatal("the window opened before the gate saw it (more than 4 s after the create)")
	}
	if a := ask(); a.Status != http.StatusOK {
		t.Fatalf("before the window: %s", a)
	}
	// Within 100 ms of each boundary, without any write to the API.
	time.Sleep(time.Until(start.Add(100 * time.Millisecond)))
	a := ask()
	if a.code() != "MAINTENANCE_MODE" {
		t.Fatalf("100 ms into the window: %s", a)
	}
	if ra, _ := strconv.Atoi(a.Header.Get("Retry-After")); ra < 1 || ra > 2 {
		t.Errorf("Retry-After %q, want the 2 s to the window's end", a.Header.Get("Retry-After"))
	}
	time.Sleep(time.Until(end.Add(100 * time.Millisecond)))
	if a := ask(); a.Status != http.StatusOK {
		t.Fatalf("100 ms after the window: %s", a)
	}
}

// A disable with an until ends on the gate at the until, on the gate's own
// clock: no write to the API tells it (the operator writes its status a
// second later, and the spec never changes). Until then its refusals say
// when to retry.
func TestDisableUntilEndsOnTheGateClock(t *testing.T) {
	ns := env.Namespace(t, "gate")
	// Whole seconds: the API stores times to the second.
	until := time.Now().Add(4 * time.Second).Truncate(time.Second)
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exports"}, Spec: waygatev1.RouteGateSpec{
		Route: "GET:/exports", Service: "payments", State: waygatev1.RouteDisabled, Reason: "Bad deploy",
		Until: &metav1.Time{Time: until},
	}}
	if err := k8s.Create(context.Background(), rg); err != nil {
		t.Fatal(err)
	}
	var asked time.Time
	ask := func() answer {
		asked = time.Now()
		return check(t, gw, ns, "payments", "GET", "/exports")
	}
	a := waitFor(t, http.StatusServiceUnavailable, "ROUTE_DISABLED", ask)
	if asked.After(until) {
		t.Fatal("the until passed before the gate saw the disable (more than 3 s after the create)")
	}
	want := `{"error":{"code":"ROUTE_DISABLED","message":"This endpoint has been disabled","path":"/exports","reason":"Bad deploy"}}`
	if a.Body != want {
		t.Errorf("body %s, want %s", a.Body, want)
	}
	if ra, _ := strconv.Atoi(a.Header.Get("Retry-After")); ra < 1 || ra > 4 {
		t.Errorf("Retry-After %q, want the seconds to the until", a.Header.Get("Retry-After"))
	}
	waitFor(t, http.StatusOK, "", ask)
	switch {
	case asked.Before(until):
		t.Fatalf("allowed at %s, before the until %s", asked.Format(time.StampMilli), until.Format(time.StampMilli))
	case asked.After(until.Add(time.Second)):
		t.Errorf("allowed only at %s, more than a second after the until %s", asked.Format(time.StampMilli), until.Format(time.StampMilli))
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil || rg.Generation != 1 {
		t.Errorf("after the until: %v, generation %d; want the spec as created", err, rg.Generation)
	}
}

func TestServiceWideGateWithExemptTemplate(t *testing.T) {
	ns := env.Namespace(t, "gate")
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: orders-all}
spec:
  route: "*"
  service: orders
  state: maintenance
  reason: Orders platform upgrade
  exempt: ["GET:/health", "/assets/{path...}"]
---
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: status}
spec: {route: "GET:/status", service: orders, state: active, forceActive: true}
`, "apply", "-n", ns, "-f", "-")
	waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return check(t, gw, ns, "orders", "POST", "/orders") })
	for _, c := range []struct {
		method, uri string
		status      int
	}{
		{"GET", "/orders/7", 503},
		{"GET", "/health", 200},
		{"POST", "/health", 503},
		{"GET", "/assets/css/site.css", 200},
		{"GET", "/status", 200},
	} {
		if a := check(t, gw, ns, "orders", c.method, c.uri); a.Status != c.status {
			t.Errorf("%s %s: %s, want %d", c.method, c.uri, a, c.status)
		}
	}
	if a := check(t, gw, ns, "payments", "GET", "/orders/7"); a.Status != http.StatusOK {
		t.Errorf("another service: %s", a)
	}
}

func TestEnvironments(t *testing.T) {
	ns := env.Namespace(t, "gate")
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: debug}
spec: {route: /debug, service: payments, state: env_gated, allowedEnvs: [dev, staging]}
`, "apply", "-n", ns, "-f", "-")
	a := waitFor(t, http.StatusForbidden, "ENV_GATED", func() answer { return check(t, gw, ns, "payments", "GET", "/debug") })
	want := `{"error":{"code":"ENV_GATED","message":"This endpoint is not available in this environment","path":"/debug","current_env":"production","allowed_envs":["dev","staging"]}}`
	if a.Body != want {
		t.Fatalf("body %s, want %s", a.Body, want)
	}
	// The namespace's label overrides the gate's --environment.
	kubectl(t, "", "label", "namespace", ns, "waygate.dev/environment=staging")
	waitFor(t, http.StatusOK, "", func() answer { return check(t, gw, ns, "payments", "GET", "/debug") })
}

func TestDeprecationHeaders(t *testing.T) {
	ns := env.Namespace(t, "gate")
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: orders-v1}
spec:
  route: /v1/orders
  service: orders
  state: deprecated
  deprecation: {sunset: "2030-01-01T00:00:00Z", successor: /v2/orders}
`, "apply", "-n", ns, "-f", "-")
	eventually(t, 10*time.Second, func() error {
		a := check(t, gw, ns, "orders", "GET", "/v1/orders")
		if a.Status != http.StatusOK || a.Header.Get("Deprecation") != "true" || a.Header.Get("Sunset") != "Tue, 01 Jan 2030 00:00:00 GMT" ||
			a.Header.Get("Link") != `</v2/orders>; rel="successor-version"` {
			return fmt.Errorf("got %s", a)
		}
		return nil
	})
}

func TestRateLimitHeaders(t *testing.T) {
	ns := env.Namespace(t, "gate")
	p := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "search"}, Spec: waygatev1.RateLimitPolicySpec{
		Route: "GET:/search", Service: "api", Limit: "3/hour", Algorithm: waygatev1.FixedWindow, KeyStrategy: waygatev1.KeyByIP, Enabled: true,
	}}
	if err := k8s.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	ask := func() answer { return check(t, gw, ns, "api", "GET", "/search", "X-Forwarded-For", "203.0.113.9") }
	eventually(t, 10*time.Second, func() error {
		if a := ask(); a.Header.Get("X-RateLimit-Limit") != "3" {
			return fmt.Errorf("no limit yet: %s", a)
		}
		return nil
	})
	for want := 1; want >= 0; want-- {
		if a := ask(); a.Status != http.StatusOK || a.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(want) {
			t.Fatalf("got %s, want 200 with %d remaining", a, want)
		}
	}
	a := ask()
	if a.Status != http.StatusTooManyRequests || a.code() != "RATE_LIMIT_EXCEEDED" || a.Header.Get("X-RateLimit-Remaining") != "0" || a.Header.Get("Retry-After") == "" {
		t.Fatalf("got %s, want 429 with headers", a)
	}
	// A reset (waygate rl reset) starts the counters afresh.
	update(t, p, func(p *waygatev1.RateLimitPolicy) {
		p.Annotations = map[string]string{waygatev1.ResetAnnotation: time.Now().UTC().Format(time.RFC3339)}
	})
	waitFor(t, http.StatusOK, "", ask)
}

// update changes obj as the admin.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return k8s.Update(context.Background(), obj)
	})
}

// A change compiles its namespace only, and the operator's status writes
// compile nothing: the gate's cost follows the change, not the cluster.
func TestSnapshotsCostTheChange(t *testing.T) {
	ctx := context.Background()
	one, two := env.Namespace(t, "gate"), env.Namespace(t, "gate")
	for _, ns := range []string{one, two} {
		kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: get-orders}
spec: {route: "GET:/orders", service: shop, state: maintenance}
`, "apply", "-n", ns, "-f", "-")
		waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return check(t, gw, ns, "shop", "GET", "/orders") })
	}
	// settled waits until no build has happened for a second (the
	// operator's writes of the objects above are done), and returns the
	// builds and the namespaces compiled so far.
	settled := func() (builds, compiled float64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			b, c := metric(t, gw, "waygate_gate_snapshot_builds_total"), metric(t, gw, "waygate_gate_snapshot_namespaces_compiled_total")
			time.Sleep(time.Second)
			if metric(t, gw, "waygate_gate_snapshot_builds_total") == b {
				return b, c
			}
			if time.Now().After(deadline) {
				t.Fatal("the gate kept building snapshots for 20 s with nothing changing")
			}
		}
	}
	builds, _ := settled()

	// A status write (the operator's: the policy lets nobody else) builds
	// nothing.
	opc, err := client.New(env.Operator, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rg := &waygatev1.RouteGate{}
	if err := opc.Get(ctx, client.ObjectKey{Namespace: one, Name: "get-orders"}, rg); err != nil {
		t.Fatal(err)
	}
	gen := rg.Generation
	patch := client.MergeFrom(rg.DeepCopy())
	rg.Status.Reason = "a status write"
	if err := opc.Status().Patch(ctx, rg, patch); err != nil {
		t.Fatal(err)
	}
	if b, _ := settled(); b != builds {
		t.Errorf("a status-only write (generation %d) built %v snapshots, want 0", gen, b-builds)
	}

	// A change of one namespace's gate compiles that namespace only.
	builds, compiled := settled()
	kubectl(t, "", "patch", "rg", "get-orders", "-n", one, "--type", "merge", "-p", `{"spec":{"state":"active"}}`)
	waitFor(t, http.StatusOK, "", func() answer { return check(t, gw, one, "shop", "GET", "/orders") })
	b, c := settled()
	if b-builds < 1 || c-compiled != b-builds {
		t.Errorf("a change in one namespace: %v builds compiled %v namespaces, want one each", b-builds, c-compiled)
	}
	if a := check(t, gw, two, "shop", "GET", "/orders"); a.Status != http.StatusServiceUnavailable {
		t.Errorf("the other namespace after the change: %s, still want 503", a)
	}
}
