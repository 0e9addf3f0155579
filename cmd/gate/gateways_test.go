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
	"sigs.k8s.io/yaml"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/dataplane"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// documented is the first code block of language lang in docs/gateways.md:
// the tests run the configuration users copy.
func documented(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(env.Root, "docs", "gateways.md"))
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
	// bare gateways pass a refusal on as a bare 403 (ingress-nginx without
	// the error_page hand-off).
	bare bool
}

var gateways = []gatewayCase{
	{"nginx", func(t *testing.T, ns, addr string, up *realservers.Upstream) {
		realservers.Nginx(t, addr, documentedFor(t, "nginx", ns, up, "/v1/nginx/", "listen 80;", "listen "+addr+";"))
	}, false},
	{"ingress-nginx", func(t *testing.T, ns, addr string, up *realservers.Upstream) {
		realservers.Nginx(t, addr, ingressNginx(t, ns, addr, up))
	}, true},
	{"caddy", func(t *testing.T, ns, addr string, up *realservers.Upstream) {
		realservers.Caddy(t, addr, documentedFor(t, "caddyfile", ns, up, "/v1/check/", ":80 {", "http://"+addr+" {"))
	}, false},
}

// documentedFor is the documented configuration with the addresses of this
// test's gate and upstream, its namespace, and the listener replaced.
func documentedFor(t *testing.T, lang, ns string, up *realservers.Upstream, endpoint, listen, here string) string {
	return realservers.Substitute(t, documented(t, lang),
		"waygate-gate.waygate-system.svc:8080", gw.HTTP,
		"payments.default.svc:8080", up.Addr,
		endpoint+"default/", endpoint+ns+"/",
		listen, here)
}

// ingressNginx is nginx configured as ingress-nginx's template
// (rootfs/etc/nginx/template/nginx.tmpl, controller v1.12) renders an
// Ingress with the documented auth-url and auth-response-headers
// annotations: the auth location's headers as the template sets them (the
// client's others passed on), auth_request_set and add_header for each
// response header, a refusal passed on as a bare 403.
func ingressNginx(t *testing.T, ns, addr string, up *realservers.Upstream) string {
	var ann struct {
		URL     string `json:"nginx.ingress.kubernetes.io/auth-url"`
		Headers string `json:"nginx.ingress.kubernetes.io/auth-response-headers"`
	}
	if err := yaml.Unmarshal([]byte(documented(t, "yaml")), &ann); err != nil || ann.URL == "" {
		t.Fatalf("docs/gateways.md: the first yaml block is not the ingress-nginx annotations (%v)", err)
	}
	authURL := realservers.Substitute(t, ann.URL, "http://waygate-gate.waygate-system.svc:8080", "http://"+gw.HTTP, "<namespace>/<service>", ns+"/payments")
	var set strings.Builder
	for i, h := range strings.Split(ann.Headers, ",") {
		fmt.Fprintf(&set, "    auth_request_set $authHeader%d $upstream_http_%s;\n    proxy_set_header '%s' $authHeader%d;\n",
			i, strings.ReplaceAll(strings.ToLower(h), "-", "_"), h, i)
	}
	return fmt.Sprintf(`server {
  listen %s;
  location = /_external-auth-Lw-Prefix {
    internal;
    proxy_intercept_errors      off;
    proxy_pass_request_body     off;
    proxy_set_header            Content-Length          "";
    proxy_set_header            X-Forwarded-Proto       "";
    proxy_set_header            X-Request-ID            $request_id;
    proxy_set_header            Host                    waygate-gate.waygate-system.svc;
    proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
    proxy_set_header            X-Original-Method       $request_method;
    proxy_set_header            X-Sent-From             "nginx-ingress-controller";
    proxy_set_header            X-Real-IP               $remote_addr;
    proxy_set_header            X-Forwarded-For         $remote_addr;
    proxy_set_header            X-Auth-Request-Redirect $request_uri;
    proxy_pass_request_headers  on;
    proxy_http_version 1.1;
    set $target %q;
    proxy_pass $target;
  }
  location / {
    auth_request /_external-auth-Lw-Prefix;
    auth_request_set $auth_cookie $upstream_http_set_cookie;
    add_header Set-Cookie $auth_cookie;
%s    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_pass http://%s;
  }
}
`, addr, authURL, set.String(), up.Addr)
}

func TestGateways(t *testing.T) {
	for _, g := range gateways {
		t.Run(g.name, func(t *testing.T) {
			ns := env.Namespace(t, "gate")
			up := realservers.NewUpstream(t)
			addr := realservers.FreeAddr(t)
			g.start(t, ns, addr, up)
			testGateway(t, ns, "http://"+addr, up, g.bare)
		})
	}
}

func testGateway(t *testing.T, ns, base string, up *realservers.Upstream, bare bool) {
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
	if bare {
		waitFor(t, http.StatusForbidden, "", func() answer { return get(t, "GET", base+"/payments/42") })
		testForgeries(t, ns, base, up, bare)
		return
	}
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
	testForgeries(t, ns, base, up, bare)
}

// forgeries are the headers a client adds to choose what the gate judges:
// every endpoint's forwarding headers, with a path and method that no gate
// refuses, and a method override naming GET.
var forgeries = []string{
	"X-Forwarded-Uri", "/open", "X-Forwarded-Method", "OPTIONS", "X-Forwarded-Host", "other.example", "X-Forwarded-Prefix", "/open",
	"X-Original-URI", "/open", "X-Original-Method", "OPTIONS", "X-Original-URL", "http://other.example/open",
	"X-Envoy-Original-Path", "/open", "X-HTTP-Method-Override", "GET",
}

// testForgeries: no forged header, spelling of the path or method changes
// a verdict, through the gateway as configured; the upstream never sees a
// refused request.
func testForgeries(t *testing.T, ns, base string, up *realservers.Upstream, bare bool) {
	ctx := context.Background()
	for _, o := range []struct {
		name, route string
		sensitive   bool
	}{{"delete-refunds", "DELETE:/refunds/{id}", false}, {"get-admin", "GET:/admin/users", false}, {"reports", "/reports/{id}", true}} {
		if err := k8s.Create(ctx, &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: o.name},
			Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(o.route), Service: "payments", State: waygatev1.RouteDisabled, CaseSensitive: o.sensitive}}); err != nil {
			t.Fatal(err)
		}
	}
	p := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plans"}, Spec: waygatev1.RateLimitPolicySpec{
		Route: "GET:/plans", Service: "payments", Limit: "1/hour", KeyStrategy: waygatev1.KeyByIP, Enabled: true, TierHeader: "X-Plan",
		Tiers: []waygatev1.RateLimitTier{{Name: "internal", Limit: "unlimited"}}, ExemptRoles: []string{"ops"},
	}}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	refusedStatus := func(status int) int {
		if bare {
			return http.StatusForbidden
		}
		return status
	}
	waitFor(t, refusedStatus(http.StatusServiceUnavailable), map[bool]string{false: "ROUTE_DISABLED"}[bare], func() answer { return get(t, "GET", base+"/admin/users") })
	before := up.Hits()
	for _, tc := range []struct{ method, uri string }{
		{"GET", "/payments/42"},
		{"HEAD", "/payments/42"},
		{"GET", "/admin/users"},
		{"HEAD", "/admin/users"},
		{"DELETE", "/refunds/7"},
		{"POST", "/refunds/7?_method=DELETE"},
		{"GET", "/%61dmin/users"},
		{"GET", "/admin;jsessionid=x/users"},
		{"GET", "/admin//users/"},
		{"GET", "/public/../admin/users"},
		{"GET", "/public/%2e%2e/admin/users"},
		{"GET", "/admin/users?x=1"},
		{"GET", "/ADMIN/users"},
		{"HEAD", "/Admin/Users"},
		{"DELETE", "/Refunds/7"},
	} {
		for _, forged := range [][]string{nil, forgeries} {
			a := get(t, tc.method, base+tc.uri, forged...)
			if tc.method == "HEAD" {
				if a.Status != refusedStatus(http.StatusServiceUnavailable) {
					t.Errorf("%s %s (forged headers: %v): %d, want a refusal", tc.method, tc.uri, forged != nil, a.Status)
				}
				continue
			}
			if a.Status != refusedStatus(http.StatusServiceUnavailable) || (!bare && a.code() != "MAINTENANCE_MODE" && a.code() != "ROUTE_DISABLED") {
				t.Errorf("%s %s (forged headers: %v): %s, want a refusal", tc.method, tc.uri, forged != nil, a)
			}
		}
	}
	// A POST that asks its framework to run DELETE.
	for _, tc := range []struct{ uri, header string }{{"/refunds/7", "X-HTTP-Method-Override"}, {"/refunds/7?_%6Dethod=DELETE", ""}} {
		var h []string
		if tc.header != "" {
			h = []string{tc.header, "DELETE"}
		}
		if a := get(t, "POST", base+tc.uri, h...); a.Status != refusedStatus(http.StatusServiceUnavailable) {
			t.Errorf("POST %s %v: %s, want a refusal", tc.uri, h, a)
		}
	}
	// A path servers read in more ways than the gate judges: 400.
	if a := get(t, "GET", base+"/static/x%2Fy/../../admin/users"); a.Status != refusedStatus(http.StatusBadRequest) || (!bare && a.code() != "AMBIGUOUS_PATH") {
		t.Errorf("an ambiguous path: %s, want 400 AMBIGUOUS_PATH", a)
	}
	if got := up.Hits(); got != before {
		t.Errorf("%d refused requests reached the upstream", got-before)
	}
	// A caseSensitive gate tells paths that differ in case apart.
	if a := get(t, "GET", base+"/reports/7"); a.Status != refusedStatus(http.StatusServiceUnavailable) {
		t.Errorf("GET /reports/7 under a case-sensitive gate: %s, want a refusal", a)
	}
	if a := get(t, "GET", base+"/Reports/7"); a.Status != http.StatusOK {
		t.Errorf("GET /Reports/7 under a case-sensitive gate on /reports/{id}: %s, want it served", a)
	}
	// Identity headers the gateway does not set are no identity: X-Plan:
	// internal (an unlimited tier) and X-Forwarded-Groups: ops (exempt)
	// leave the caller at 1/hour.
	eventually(t, 10*time.Second, func() error {
		if a := check(t, gw, ns, "payments", "GET", "/plans", "X-Forwarded-For", "192.0.2.98"); a.Header.Get("X-RateLimit-Limit") != "1" {
			return fmt.Errorf("the gate does not limit /plans yet: %s", a)
		}
		return nil
	})
	claims := []string{"X-Plan", "internal", "X-Forwarded-Groups", "ops", "X-Forwarded-User", "admin"}
	if a := get(t, "GET", base+"/plans", claims...); a.Status != http.StatusOK {
		t.Fatalf("first /plans: %s", a)
	}
	if a := get(t, "GET", base+"/plans", claims...); a.Status != refusedStatus(http.StatusTooManyRequests) {
		t.Errorf("second /plans claiming an unlimited tier and an exempt role: %s, want it limited", a)
	}
}
