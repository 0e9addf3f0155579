package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/dataplane"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// documented is the first code block of language lang in docs/gateways.md:
// the tests run the configuration users copy.
func documented(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(cp.Root, "docs", "gateways.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/gateways.md has no %s block", lang)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// gatewayCase puts a gateway configured as documented in front of an
// upstream and the shared gate, for namespace ns.
type gatewayCase struct {
	name  string
	start func(t *testing.T, ns, addr string, up *realservers.Upstream)
}

var gateways = []gatewayCase{
	{"nginx", func(t *testing.T, ns, addr string, up *realservers.Upstream) {
		realservers.Nginx(t, addr, documentedFor(t, "nginx", ns, up, "listen 80;", "listen "+addr+";"))
	}},
	{"caddy", func(t *testing.T, ns, addr string, up *realservers.Upstream) {
		realservers.Caddy(t, addr, documentedFor(t, "caddyfile", ns, up, ":80 {", "http://"+addr+" {"))
	}},
}

// documentedFor is the documented configuration with the addresses of this
// test's gate and upstream, its namespace, and the listener replaced.
func documentedFor(t *testing.T, lang, ns string, up *realservers.Upstream, listen, here string) string {
	return realservers.Substitute(t, documented(t, lang),
		"waygate-gate.waygate-system.svc:8080", gw.HTTP,
		"payments.default.svc:8080", up.Addr,
		"/v1/check/default/", "/v1/check/"+ns+"/",
		listen, here)
}

func TestGateways(t *testing.T) {
	for _, g := range gateways {
		t.Run(g.name, func(t *testing.T) {
			ns := namespace(t)
			up := realservers.NewUpstream(t)
			addr := realservers.FreeAddr(t)
			g.start(t, ns, addr, up)
			testGateway(t, ns, "http://"+addr, up)
		})
	}
}

func testGateway(t *testing.T, ns, base string, up *realservers.Upstream) {
	ctx := context.Background()
	now := time.Now()
	for _, o := range []struct {
		name string
		spec waygatev1.RouteGateSpec
	}{
		{"payments-window", waygatev1.RouteGateSpec{Route: "GET:/payments/{id}", Service: "payments", State: waygatev1.RouteActive, Reason: "Ledger migration",
			Window: &waygatev1.MaintenanceWindow{Start: metav1.NewTime(now.Add(-time.Minute)), End: metav1.NewTime(now.Add(time.Hour))}}},
		{"refunds", waygatev1.RouteGateSpec{Route: "POST:/refunds", Service: "payments", State: waygatev1.RouteDisabled, Reason: "Refunds moved"}},
		{"debug", waygatev1.RouteGateSpec{Route: "/debug", Service: "payments", State: waygatev1.RouteEnvGated, AllowedEnvs: []string{"staging"}}},
	} {
		rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: o.name}, Spec: o.spec}
		if err := k8s.Create(ctx, rg); err != nil {
			t.Fatal(err)
		}
	}
	p := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "search"}, Spec: waygatev1.RateLimitPolicySpec{
		Route: "GET:/search", Service: "payments", Limit: "2/hour", Algorithm: waygatev1.FixedWindow, KeyStrategy: waygatev1.KeyByIP, Enabled: true,
	}}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}

	// Maintenance with a known end: 503, the body, Retry-After.
	before := up.Hits()
	a := waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return get(t, "GET", base+"/payments/42") })
	if !strings.Contains(a.Body, `"reason":"Ledger migration"`) || !strings.Contains(a.Body, `"path":"/payments/42"`) || a.Header.Get("Content-Type") != "application/json" {
		t.Errorf("maintenance body %s", a)
	}
	if ra, _ := strconv.Atoi(a.Header.Get("Retry-After")); ra < 3500 || ra > 3600 {
		t.Errorf("Retry-After %q, want about an hour", a.Header.Get("Retry-After"))
	}
	if a.Header.Get(dataplane.RefusalHeader) != "" {
		t.Errorf("the client sees the gate's hand-off header: %s", a)
	}
	if a := get(t, "POST", base+"/refunds"); a.Status != http.StatusServiceUnavailable || a.code() != "ROUTE_DISABLED" {
		t.Errorf("disabled: %s", a)
	}
	if a := get(t, "GET", base+"/debug"); a.Status != http.StatusForbidden || a.code() != "ENV_GATED" {
		t.Errorf("env gated: %s", a)
	}
	if got := up.Hits(); got != before {
		t.Fatalf("refused requests reached the upstream (%d hits)", got-before)
	}

	// Allowed: the upstream answers.
	if a := get(t, "GET", base+"/payments"); a.Status != http.StatusOK || a.Body != "upstream" {
		t.Errorf("allowed: %s", a)
	}

	// The rate limit: two allowed, then 429 with its headers, though the
	// client claims other addresses in X-Forwarded-For. The gate has the
	// policy once it limits another client (asked directly).
	eventually(t, 10*time.Second, func() error {
		if a := check(t, gw, ns, "payments", "GET", "/search", "X-Forwarded-For", "192.0.2.99"); a.Header.Get("X-RateLimit-Limit") != "2" {
			return fmt.Errorf("the gate does not limit /search yet: %s", a)
		}
		return nil
	})
	if a := get(t, "GET", base+"/search"); a.Status != http.StatusOK {
		t.Fatalf("first request: %s", a)
	}
	before = up.Hits()
	a = get(t, "GET", base+"/search", "X-Forwarded-For", "198.51.100.1")
	if a.Status != http.StatusOK {
		t.Fatalf("second request: %s", a)
	}
	for i, xff := range []string{"198.51.100.2", "198.51.100.3, 127.0.0.1", ""} {
		a = get(t, "GET", base+"/search", "X-Forwarded-For", xff)
		if a.Status != http.StatusTooManyRequests || a.code() != "RATE_LIMIT_EXCEEDED" {
			t.Fatalf("request %d with X-Forwarded-For %q: %s, want 429", i+3, xff, a)
		}
	}
	for _, h := range []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if a.Header.Get(h) == "" {
			t.Errorf("429 without %s: %s", h, a)
		}
	}
	if a.Header.Get("X-RateLimit-Limit") != "2" || !strings.Contains(a.Body, `"limit":"2/hour"`) {
		t.Errorf("429: %s", a)
	}
	if got := up.Hits() - before; got != 1 {
		t.Errorf("%d requests reached the upstream, want 1", got)
	}
}
