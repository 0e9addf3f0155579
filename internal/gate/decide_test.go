package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate/counters"
)

var t0 = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func window(from, to time.Duration) *waygatev1.MaintenanceWindow {
	return &waygatev1.MaintenanceWindow{Start: metav1.NewTime(t0.Add(from)), End: metav1.NewTime(t0.Add(to))}
}

// headers is a Header over a plain map.
type headers map[string]string

func (h headers) Get(name string) string { return h[http.CanonicalHeaderKey(name)] }

func rg(ns, name string, spec waygatev1.RouteGateSpec) *Route {
	return RouteOf(&waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})
}

func rlp(ns, name string, spec waygatev1.RateLimitPolicySpec) *Policy {
	spec.Enabled = true
	if spec.Algorithm == "" {
		spec.Algorithm = waygatev1.FixedWindow
	}
	if spec.KeyStrategy == "" {
		spec.KeyStrategy = waygatev1.KeyByIP
	}
	return PolicyOf(&waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name)}, Spec: spec})
}

func TestDecideRoutes(t *testing.T) {
	const (
		active      = waygatev1.RouteActive
		maintenance = waygatev1.RouteMaintenance
	)
	sunset := metav1.NewTime(t0.Add(24 * time.Hour))
	until := metav1.NewTime(t0.Add(30 * time.Minute))
	objs := Objects{
		Routes: []*Route{
			rg("shop", "get-payments", waygatev1.RouteGateSpec{Route: "GET:/payments", Service: "payments", State: maintenance, Reason: "migration"}),
			rg("shop", "payment", waygatev1.RouteGateSpec{Route: "GET:/payments/{id}", Service: "payments", State: waygatev1.RouteDisabled, Reason: "gone"}),
			rg("shop", "refunds-window", waygatev1.RouteGateSpec{Route: "POST:/refunds", Service: "payments", State: active, Reason: "ledger", Window: window(time.Hour, 2*time.Hour)}),
			rg("shop", "report-window", waygatev1.RouteGateSpec{Route: "/reports", Service: "payments", State: active, Reason: "reindex", Window: window(-time.Hour, time.Hour)}),
			rg("shop", "debug", waygatev1.RouteGateSpec{Route: "/debug", Service: "payments", State: waygatev1.RouteEnvGated, AllowedEnvs: []string{"staging"}}),
			rg("shop", "old", waygatev1.RouteGateSpec{Route: "/v1/orders", Service: "orders", State: waygatev1.RouteDeprecated,
				Deprecation: &waygatev1.Deprecation{Sunset: &sunset, Successor: "/v2/orders"}}),
			rg("shop", "orders-all", waygatev1.RouteGateSpec{Route: "*", Service: "orders", State: maintenance, Reason: "upgrade",
				Exempt: []waygatev1.RouteKey{"GET:/health", "/static/{path...}"}}),
			rg("shop", "orders-pinned", waygatev1.RouteGateSpec{Route: "GET:/orders/status", Service: "orders", State: active, ForceActive: true}),
			// A key of no service applies to every service, unless the
			// service gates the key itself.
			rg("shop", "metrics", waygatev1.RouteGateSpec{Route: "/metrics", State: waygatev1.RouteDisabled, Reason: "internal"}),
			rg("shop", "payments-metrics", waygatev1.RouteGateSpec{Route: "/metrics", Service: "payments", State: active}),
			rg("lab", "all", waygatev1.RouteGateSpec{Route: "*", State: maintenance, Reason: "lab closed", IncludeForceActive: true}),
			rg("lab", "pinned", waygatev1.RouteGateSpec{Route: "/ping", Service: "x", State: active, ForceActive: true}),
			rg("shop", "exports", waygatev1.RouteGateSpec{Route: "GET:/exports", Service: "payments", State: waygatev1.RouteDisabled, Reason: "bad deploy", Until: &until}),
		},
		Environments: map[string]string{"lab": "staging"},
	}
	e := &Engine{Environment: "production", Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(objs))

	cases := []struct {
		ns, service, method, path string
		want                      Verdict
		reason                    string
		retryAt                   time.Time
	}{
		{"shop", "payments", "GET", "/payments", Maintenance, "migration", time.Time{}},
		{"shop", "payments", "POST", "/payments", Allowed, "", time.Time{}},
		{"shop", "payments", "GET", "/payments/42", Disabled, "gone", time.Time{}},
		{"shop", "payments", "POST", "/refunds", Allowed, "", time.Time{}},
		{"shop", "payments", "GET", "/reports", Maintenance, "reindex", t0.Add(time.Hour)},
		{"shop", "payments", "GET", "/debug", EnvGated, "", time.Time{}},
		{"shop", "payments", "GET", "/exports", Disabled, "bad deploy", until.Time},
		{"shop", "payments", "GET", "/metrics", Allowed, "", time.Time{}},
		{"shop", "orders", "GET", "/metrics", Maintenance, "upgrade", time.Time{}},
		{"shop", "billing", "GET", "/metrics", Disabled, "internal", time.Time{}},
		{"shop", "orders", "GET", "/orders/1", Maintenance, "upgrade", time.Time{}},
		{"shop", "orders", "GET", "/health", Allowed, "", time.Time{}},
		{"shop", "orders", "POST", "/health", Maintenance, "upgrade", time.Time{}},
		{"shop", "orders", "GET", "/static/css/site.css", Allowed, "", time.Time{}},
		{"shop", "orders", "GET", "/orders/status", Allowed, "", time.Time{}},
		{"shop", "payments", "GET", "/orders/1", Allowed, "", time.Time{}}, // another service
		{"lab", "x", "GET", "/ping", Maintenance, "lab closed", time.Time{}},
		{"lab", "", "GET", "/anything", Maintenance, "lab closed", time.Time{}},
		{"elsewhere", "payments", "GET", "/payments", Allowed, "", time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.ns+"/"+tc.service+" "+tc.method+" "+tc.path, func(t *testing.T) {
			d := e.Decide(context.Background(), &Request{Namespace: tc.ns, Service: tc.service, Method: tc.method, Path: tc.path, Header: headers{}})
			if d.Verdict != tc.want || d.Reason != tc.reason || !d.RetryAt.Equal(tc.retryAt) {
				t.Errorf("got %s %q retry %v, want %s %q retry %v", d.Verdict, d.Reason, d.RetryAt, tc.want, tc.reason, tc.retryAt)
			}
		})
	}

	t.Run("env gated by the namespace label", func(t *testing.T) {
		objs := objs
		objs.Environments = map[string]string{"shop": "staging"}
		e := &Engine{Environment: "production", Now: e.Now}
		e.Swap(NewSnapshot(objs))
		if d := e.Decide(context.Background(), &Request{Namespace: "shop", Service: "payments", Method: "GET", Path: "/debug"}); d.Verdict != Allowed {
			t.Fatalf("got %s, want allowed in staging", d.Verdict)
		}
	})
	t.Run("the window opens and closes on the clock", func(t *testing.T) {
		for _, at := range []struct {
			d    time.Duration
			want Verdict
		}{{time.Hour - time.Nanosecond, Allowed}, {time.Hour, Maintenance}, {2*time.Hour - time.Nanosecond, Maintenance}, {2 * time.Hour, Allowed}} {
			e := &Engine{Now: func() time.Time { return t0.Add(at.d) }}
			e.Swap(NewSnapshot(objs))
			if d := e.Decide(context.Background(), &Request{Namespace: "shop", Service: "payments", Method: "POST", Path: "/refunds"}); d.Verdict != at.want {
				t.Errorf("at start%+v: %s, want %s", at.d-time.Hour, d.Verdict, at.want)
			}
		}
	})
	t.Run("a disable ends on the clock", func(t *testing.T) {
		for _, at := range []struct {
			d    time.Duration
			want Verdict
		}{{30*time.Minute - time.Nanosecond, Disabled}, {30 * time.Minute, Allowed}} {
			e := &Engine{Now: func() time.Time { return t0.Add(at.d) }}
			e.Swap(NewSnapshot(objs))
			if d := e.Decide(context.Background(), &Request{Namespace: "shop", Service: "payments", Method: "GET", Path: "/exports"}); d.Verdict != at.want {
				t.Errorf("at until%+v: %s, want %s", at.d-30*time.Minute, d.Verdict, at.want)
			}
		}
	})
	t.Run("deprecated routes pass with headers", func(t *testing.T) {
		d := e.Decide(context.Background(), &Request{Namespace: "shop", Service: "orders-v1", Method: "GET", Path: "/v1/orders"})
		if d.Verdict != Allowed || d.Deprecation != nil {
			t.Fatalf("another service: %s %v", d.Verdict, d.Deprecation)
		}
		objs := Objects{Routes: objs.Routes[5:6]}
		e := &Engine{Now: e.Now}
		e.Swap(NewSnapshot(objs))
		d = e.Decide(context.Background(), &Request{Namespace: "shop", Service: "orders", Method: "GET", Path: "/v1/orders"})
		got := map[string]string{}
		d.Headers(func(k, v string) { got[k] = v })
		want := map[string]string{"Deprecation": "true", "Sunset": "Tue, 02 Jun 2026 03:00:00 GMT", "Link": `</v2/orders>; rel="successor-version"`}
		if d.Verdict != Allowed || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %s %v, want allowed with %v", d.Verdict, got, want)
		}
	})
}

func TestHolderIsInEffect(t *testing.T) {
	older := rg("ns", "older", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteDisabled, Reason: "older"})
	older.Created = metav1.NewTime(t0)
	newer := rg("ns", "newer", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteMaintenance, Reason: "newer"})
	newer.Created = metav1.NewTime(t0.Add(time.Second))
	for _, order := range [][]*Route{{older, newer}, {newer, older}} {
		e := &Engine{}
		e.Swap(NewSnapshot(Objects{Routes: order}))
		if d := e.Decide(context.Background(), &Request{Namespace: "ns", Method: "GET", Path: "/x"}); d.Reason != "older" {
			t.Errorf("got %s %q, want the older gate's", d.Verdict, d.Reason)
		}
	}
}

func TestResponses(t *testing.T) {
	now := t0
	cases := []struct {
		name    string
		d       Decision
		status  int
		body    string
		headers map[string]string
	}{
		{"maintenance with a window", Decision{At: now, Verdict: Maintenance, Path: "/payments", Reason: "migration", RetryAt: now.Add(90 * time.Second)}, 503,
			`{"error":{"code":"MAINTENANCE_MODE","message":"This endpoint is temporarily unavailable for maintenance","path":"/payments","reason":"migration","retry_after":"2026-06-01T03:01:30Z"}}`,
			map[string]string{"Retry-After": "90"}},
		{"maintenance without", Decision{At: now, Verdict: Maintenance, Path: "/p", Reason: "r"}, 503,
			`{"error":{"code":"MAINTENANCE_MODE","message":"This endpoint is temporarily unavailable for maintenance","path":"/p","reason":"r","retry_after":null}}`, map[string]string{}},
		{"disabled", Decision{At: now, Verdict: Disabled, Path: "/refunds", Reason: "moved"}, 503,
			`{"error":{"code":"ROUTE_DISABLED","message":"This endpoint has been disabled","path":"/refunds","reason":"moved"}}`, map[string]string{}},
		{"disabled until later", Decision{At: now, Verdict: Disabled, Path: "/refunds", Reason: "moved", RetryAt: now.Add(time.Hour)}, 503,
			`{"error":{"code":"ROUTE_DISABLED","message":"This endpoint has been disabled","path":"/refunds","reason":"moved"}}`, map[string]string{"Retry-After": "3600"}},
		{"env gated", Decision{At: now, Verdict: EnvGated, Path: "/debug", Environment: "production", AllowedEnvs: []string{"dev", "staging"}}, 403,
			`{"error":{"code":"ENV_GATED","message":"This endpoint is not available in this environment","path":"/debug","current_env":"production","allowed_envs":["dev","staging"]}}`, map[string]string{}},
		{"rate limited", Decision{At: now, Verdict: RateLimited, Path: "/p", RetryAt: now.Add(1500 * time.Millisecond), Limit: LimitStatus{Text: "10/minute", Count: 10, Reset: now.Add(30 * time.Second)}}, 429,
			`{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"Rate limit exceeded: 10/minute","path":"/p","limit":"10/minute","retry_after_seconds":2,"reset_at":"2026-06-01T03:00:30Z"}}`,
			map[string]string{"Retry-After": "2", "X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1780282830"}},
		{"not ready", Decision{At: now, Verdict: NotReady, Path: "/p"}, 503,
			`{"error":{"code":"GATE_NOT_READY","message":"The gate has not yet read what is in effect from the API server; try again shortly","path":"/p"}}`, map[string]string{}},
		{"allowed with a limit", Decision{At: now, Limit: LimitStatus{Text: "10/minute", Count: 10, Remaining: 7, Reset: now.Add(30 * time.Second)}}, 200, "",
			map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1780282830"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Status(); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if got := string(tc.d.Body()); got != tc.body {
				t.Errorf("body\n%s\nwant\n%s", got, tc.body)
			}
			if tc.body != "" && !json.Valid([]byte(tc.body)) {
				t.Error("want body is not JSON")
			}
			got := map[string]string{}
			tc.d.Headers(func(k, v string) { got[k] = v })
			if !reflect.DeepEqual(got, tc.headers) {
				t.Errorf("headers %v, want %v", got, tc.headers)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	gateway := netip.MustParseAddr("10.0.0.5")
	lb := netip.MustParsePrefix("10.1.0.0/16")
	cases := []struct {
		name         string
		xff          string
		peer         netip.Addr
		peerIsClient bool
		trust        ProxyTrust
		want         string
	}{
		{"no header: the peer", "", gateway, false, ProxyTrust{}, "10.0.0.5"},
		{"the gateway's entry", "203.0.113.7", gateway, false, ProxyTrust{}, "203.0.113.7"},
		{"a spoofed entry is ignored", "6.6.6.6, 203.0.113.7", gateway, false, ProxyTrust{}, "203.0.113.7"},
		{"one trusted hop", "6.6.6.6, 198.51.100.1, 10.1.2.3", gateway, false, ProxyTrust{Hops: 1}, "198.51.100.1"},
		{"trusted by address", "6.6.6.6, 198.51.100.1, 10.1.2.3", gateway, false, ProxyTrust{CIDRs: []netip.Prefix{lb}}, "198.51.100.1"},
		{"hops beyond the header stop at its start", "10.1.2.3", gateway, false, ProxyTrust{Hops: 3}, "10.1.2.3"},
		{"garbage stops the walk", "bogus, 10.1.2.3", gateway, false, ProxyTrust{Hops: 1}, "10.1.2.3"},
		{"ports and IPv6", "[2001:db8::1]:4711", gateway, false, ProxyTrust{}, "2001:db8::1"},
		{"ext_authz: the source is the client", "6.6.6.6", netip.MustParseAddr("203.0.113.7"), true, ProxyTrust{}, "203.0.113.7"},
		{"ext_authz: envoy's own entry", "6.6.6.6, 203.0.113.7", netip.MustParseAddr("203.0.113.7"), true, ProxyTrust{}, "203.0.113.7"},
		{"ext_authz behind a balancer", "6.6.6.6, 198.51.100.1", netip.MustParseAddr("10.1.0.9"), true, ProxyTrust{Hops: 1}, "198.51.100.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.trust.ClientIP(&Request{Header: headers{"X-Forwarded-For": tc.xff}, Peer: tc.peer, PeerIsClient: tc.peerIsClient})
			if got.String() != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBodiesAreJSONEvenWithOddReasons(t *testing.T) {
	d := Decision{Verdict: Disabled, Path: "/x", Reason: "quote \" and\nnewline </script>"}
	var v map[string]map[string]string
	if err := json.Unmarshal(d.Body(), &v); err != nil || v["error"]["reason"] != d.Reason {
		t.Fatalf("body %s: %v", d.Body(), err)
	}
}

func TestDecideRateLimits(t *testing.T) {
	objs := Objects{Policies: []*Policy{
		rlp("shop", "ns-wide", waygatev1.RateLimitPolicySpec{Route: "*", Limit: "100/minute", KeyStrategy: waygatev1.KeyGlobal}),
		rlp("shop", "orders", waygatev1.RateLimitPolicySpec{Route: "*", Service: "orders", Limit: "2/minute", KeyStrategy: waygatev1.KeyByAPIKey,
			OnMissingKey: waygatev1.MissingKeyBlock, TierHeader: "X-Plan",
			Tiers: []waygatev1.RateLimitTier{{Name: "pro", Limit: "3/minute"}, {Name: "internal", Limit: Unlimited}}}),
		rlp("shop", "payments", waygatev1.RateLimitPolicySpec{Route: "GET:/payments/{id}", Service: "payments", Limit: "1/minute",
			ExemptCIDRs: []string{"10.0.0.0/8"}, ExemptRoles: []string{"ops"}}),
		rlp("shop", "by-tenant", waygatev1.RateLimitPolicySpec{Route: "/tenants", Service: "payments", Limit: "1/minute",
			KeyStrategy: waygatev1.KeyByHeader, KeyHeader: "X-Tenant", OnMissingKey: waygatev1.MissingKeyFallbackIP}),
		rlp("shop", "by-user", waygatev1.RateLimitPolicySpec{Route: "/me", Service: "payments", Limit: "1/minute", KeyStrategy: waygatev1.KeyByUser}),
	}}
	objs.Policies[3].Spec.Enabled = true
	disabled := rlp("shop", "off", waygatev1.RateLimitPolicySpec{Route: "/off", Service: "payments", Limit: "1/minute"})
	disabled.Spec.Enabled = false
	objs.Policies = append(objs.Policies, disabled)

	type req struct {
		service, path string
		h             headers
		want          Verdict
		limit         string // the limit in the decision
		remaining     int64
	}
	gw := netip.MustParseAddr("127.0.0.1")
	// The namespace's global 100/minute counts every request that reaches
	// the counters, across cases.
	cases := []struct {
		name string
		reqs []req
	}{
		{"the route's limit, by client address", []req{
			{"payments", "/payments/1", headers{"X-Forwarded-For": "203.0.113.1"}, Allowed, "1/minute", 0},
			{"payments", "/payments/2", headers{"X-Forwarded-For": "203.0.113.1"}, RateLimited, "1/minute", 0},
			{"payments", "/payments/1", headers{"X-Forwarded-For": "203.0.113.2"}, Allowed, "1/minute", 0},
			// A spoofed X-Forwarded-For is the same client.
			{"payments", "/payments/1", headers{"X-Forwarded-For": "1.2.3.4, 203.0.113.2"}, RateLimited, "1/minute", 0},
		}},
		{"exempt address and role", []req{
			{"payments", "/payments/1", headers{"X-Forwarded-For": "10.1.1.1"}, Allowed, "100/minute", 95},
			{"payments", "/payments/1", headers{"X-Forwarded-For": "10.1.1.1"}, Allowed, "100/minute", 94},
			{"payments", "/payments/1", headers{"X-Forwarded-For": "203.0.113.9", "X-Roles": "dev, ops"}, Allowed, "100/minute", 93},
			{"payments", "/payments/1", headers{"X-Forwarded-For": "203.0.113.9", "X-Roles": "dev, ops"}, Allowed, "100/minute", 92},
		}},
		{"tiers and a missing key", []req{
			{"orders", "/orders", headers{}, RateLimited, "2/minute", 0},
			{"orders", "/orders", headers{"X-Api-Key": "k1"}, Allowed, "2/minute", 1},
			{"orders", "/orders", headers{"X-Api-Key": "k1"}, Allowed, "2/minute", 0},
			{"orders", "/orders", headers{"X-Api-Key": "k1"}, RateLimited, "2/minute", 0},
			// The same caller on a bigger plan has one more.
			{"orders", "/orders", headers{"X-Api-Key": "k1", "X-Plan": "pro"}, Allowed, "3/minute", 0},
			{"orders", "/orders", headers{"X-Api-Key": "k1", "X-Plan": "internal"}, Allowed, "100/minute", 87},
		}},
		{"header key falls back to the address", []req{
			{"payments", "/tenants", headers{"X-Tenant": "acme"}, Allowed, "1/minute", 0},
			{"payments", "/tenants", headers{"X-Tenant": "acme"}, RateLimited, "1/minute", 0},
			{"payments", "/tenants", headers{}, Allowed, "1/minute", 0},
			{"payments", "/tenants", headers{}, RateLimited, "1/minute", 0},
		}},
		{"user key, missing user exempt", []req{
			{"payments", "/me", headers{}, Allowed, "100/minute", 82},
			{"payments", "/me", headers{}, Allowed, "100/minute", 81},
			{"payments", "/me", headers{"X-User": "alice"}, Allowed, "1/minute", 0},
			{"payments", "/me", headers{"X-User": "alice"}, RateLimited, "1/minute", 0},
		}},
		{"a disabled policy limits nothing", []req{
			{"payments", "/off", headers{}, Allowed, "100/minute", 78},
			{"payments", "/off", headers{}, Allowed, "100/minute", 77},
		}},
	}
	// The gateway sets the identity headers (an authenticating proxy).
	e := &Engine{Counters: counters.NewMemory(1000), Identity: Identity{Trusted: []string{"X-User", "X-Roles", "X-Api-Key", "X-Plan", "X-Tenant"}, User: "X-User", Roles: "X-Roles", APIKey: "X-Api-Key"},
		Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(objs))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, r := range tc.reqs {
				d := e.Decide(context.Background(), &Request{Namespace: "shop", Service: r.service, Method: "GET", Path: r.path, Header: r.h, Peer: gw})
				if d.Verdict != r.want || d.Limit.Text != r.limit || d.Limit.Remaining != r.remaining {
					t.Fatalf("request %d: %s limit %q remaining %d, want %s %q %d", i, d.Verdict, d.Limit.Text, d.Limit.Remaining, r.want, r.limit, r.remaining)
				}
			}
		})
	}
}

type failing struct{}

func (failing) Take(context.Context, time.Time, []counters.Check, []counters.Result) (int, error) {
	return 0, errStore
}

var errStore = fmt.Errorf("store down")

func TestCounterFailure(t *testing.T) {
	objs := Objects{Policies: []*Policy{rlp("ns", "p", waygatev1.RateLimitPolicySpec{Route: "*", Limit: "1/second"})}}
	for _, closed := range []bool{false, true} {
		e := &Engine{Counters: failing{}, FailClosed: closed}
		e.Swap(NewSnapshot(objs))
		d := e.Decide(context.Background(), &Request{Namespace: "ns", Method: "GET", Path: "/"})
		want := Allowed
		if closed {
			want = LimiterDown
		}
		if d.Verdict != want {
			t.Errorf("fail closed %v: %s, want %s", closed, d.Verdict, want)
		}
	}
}

// benchEngine is a namespace with 200 gated routes (a tenth of them
// templates) and rate limits, as a busy service might have.
func benchEngine() *Engine {
	var objs Objects
	for i := range 200 {
		path := fmt.Sprintf("/api/v1/resource%d", i)
		if i%10 == 0 {
			path += "/{id}"
		}
		objs.Routes = append(objs.Routes, rg("shop", fmt.Sprint("r", i), waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:" + path), Service: "api", State: waygatev1.RouteActive}))
	}
	objs.Routes = append(objs.Routes,
		rg("shop", "down", waygatev1.RouteGateSpec{Route: "GET:/api/v1/down", Service: "api", State: waygatev1.RouteMaintenance, Reason: "migration"}),
		rg("shop", "all", waygatev1.RouteGateSpec{Route: "*", Service: "api", State: waygatev1.RouteActive}))
	objs.Policies = append(objs.Policies, rlp("shop", "limited", waygatev1.RateLimitPolicySpec{Route: "GET:/api/v1/limited", Service: "api",
		Limit: "1000000000/second", Algorithm: waygatev1.TokenBucket}))
	e := &Engine{Counters: counters.NewMemory(100_000)}
	e.Swap(NewSnapshot(objs))
	return e
}

func benchDecide(b *testing.B, path string, want Verdict) {
	e := benchEngine()
	req := &Request{Namespace: "shop", Service: "api", Method: "GET", Path: path, Header: headers{"X-Forwarded-For": "203.0.113.7"}, Peer: netip.MustParseAddr("10.0.0.1")}
	ctx := context.Background()
	if d := e.Decide(ctx, req); d.Verdict != want {
		b.Fatalf("%s: %s, want %s", path, d.Verdict, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(ctx, req)
	}
}

func BenchmarkDecideAllowed(b *testing.B)      { benchDecide(b, "/api/v1/resource150/42", Allowed) }
func BenchmarkDecideUnknownRoute(b *testing.B) { benchDecide(b, "/api/v2/other", Allowed) }
func BenchmarkDecideRefused(b *testing.B)      { benchDecide(b, "/api/v1/down", Maintenance) }
func BenchmarkDecideTokenBucket(b *testing.B)  { benchDecide(b, "/api/v1/limited", Allowed) }

// tokens is a Tokens whose valid tokens are the keys of a map.
type tokens map[string]*Caller

func (t tokens) Verify(token string) *Caller { return t[token] }

// Who the caller is comes from a verified token, or from headers the gate
// is told the gateway sets; a client's own headers pick no identity, tier
// or exemption.
func TestIdentityCannotBeForged(t *testing.T) {
	objs := Objects{Policies: []*Policy{
		rlp("shop", "plans", waygatev1.RateLimitPolicySpec{Route: "/plans", Limit: "1/minute", TierHeader: "X-Plan", TierClaim: "plan",
			Tiers: []waygatev1.RateLimitTier{{Name: "internal", Limit: Unlimited}}}),
		rlp("shop", "roles", waygatev1.RateLimitPolicySpec{Route: "/roles", Limit: "1/minute", ExemptRoles: []string{"ops"}}),
		rlp("shop", "users", waygatev1.RateLimitPolicySpec{Route: "/users", Limit: "1/minute", KeyStrategy: waygatev1.KeyByUser,
			OnMissingKey: waygatev1.MissingKeyFallbackIP}),
		rlp("shop", "keys", waygatev1.RateLimitPolicySpec{Route: "/keys", Limit: "1/minute", KeyStrategy: waygatev1.KeyByAPIKey,
			OnMissingKey: waygatev1.MissingKeyFallbackIP}),
		rlp("shop", "tenants", waygatev1.RateLimitPolicySpec{Route: "/tenants", Limit: "1/minute", KeyStrategy: waygatev1.KeyByHeader,
			KeyHeader: "X-Tenant", OnMissingKey: waygatev1.MissingKeyFallbackIP}),
	}}
	alice := &Caller{User: "alice", APIKey: "app-1", Roles: []string{"dev"}, Claims: map[string]string{"plan": "free"}}
	ops := &Caller{User: "olga", APIKey: "app-2", Roles: []string{"ops"}, Claims: map[string]string{"plan": "internal"}}
	valid := tokens{"alice-token": alice, "ops-token": ops}
	forged := headers{"X-Plan": "internal", "X-Roles": "ops", "X-User": "u", "X-Api-Key": "k", "X-Tenant": "t"}
	cases := []struct {
		name     string
		identity Identity
		// second says, per path, whether a second request carrying h (a
		// new value each time for the keys) is allowed.
		h      func(i int) headers
		second map[string]bool
	}{
		{"forged headers, nothing trusted", Identity{User: "X-User", Roles: "X-Roles", APIKey: "X-Api-Key"},
			func(i int) headers {
				h := headers{"X-User": fmt.Sprint("u", i), "X-Api-Key": fmt.Sprint("k", i), "X-Tenant": fmt.Sprint("t", i)}
				for k, v := range forged {
					if h[k] == "" {
						h[k] = v
					}
				}
				return h
			},
			map[string]bool{"/plans": false, "/roles": false, "/users": false, "/keys": false, "/tenants": false}},
		{"forged headers and a bad token, tokens verified", Identity{Tokens: valid, User: "X-User", Roles: "X-Roles", APIKey: "X-Api-Key"},
			func(i int) headers {
				return headers{"Authorization": "Bearer forged", "X-User": fmt.Sprint("u", i), "X-Api-Key": fmt.Sprint("k", i), "X-Plan": "internal", "X-Roles": "ops"}
			},
			map[string]bool{"/plans": false, "/roles": false, "/users": false, "/keys": false}},
		{"an ops token", Identity{Tokens: valid}, func(int) headers { return headers{"Authorization": "Bearer ops-token"} },
			map[string]bool{"/plans": true, "/roles": true, "/users": false, "/keys": false}},
		{"alice's token, forged headers beside it", Identity{Tokens: valid, Trusted: []string{"x-user", "x-roles", "x-plan"}, User: "X-User", Roles: "X-Roles"},
			func(i int) headers {
				return headers{"Authorization": "bearer alice-token", "X-User": fmt.Sprint("u", i), "X-Plan": "internal", "X-Roles": "ops"}
			},
			map[string]bool{"/plans": false, "/roles": false, "/users": false}},
		{"trusted headers", Identity{Trusted: []string{"X-User", "X-Roles", "X-Api-Key", "X-Tenant", "X-Plan"}, User: "X-User", Roles: "X-Roles", APIKey: "X-Api-Key"},
			func(i int) headers {
				return headers{"X-User": fmt.Sprint("u", i), "X-Api-Key": fmt.Sprint("k", i), "X-Tenant": fmt.Sprint("t", i), "X-Plan": "internal", "X-Roles": "ops"}
			},
			map[string]bool{"/plans": true, "/roles": true, "/users": true, "/keys": true, "/tenants": true}},
		{"some headers trusted, the tier's and the tenant's not", Identity{Trusted: []string{"X-User", "X-Roles", "X-Api-Key"}, User: "X-User", Roles: "X-Roles", APIKey: "X-Api-Key"},
			func(i int) headers {
				return headers{"X-User": fmt.Sprint("u", i), "X-Api-Key": fmt.Sprint("k", i), "X-Tenant": fmt.Sprint("t", i), "X-Plan": "internal", "X-Roles": "ops"}
			},
			map[string]bool{"/plans": false, "/roles": true, "/users": true, "/keys": true, "/tenants": false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{Counters: counters.NewMemory(1000), Identity: tc.identity, Now: func() time.Time { return t0 }}
			e.Swap(NewSnapshot(objs))
			for path, want := range tc.second {
				var d Decision
				for i := range 2 {
					h := tc.h(i)
					h["X-Forwarded-For"] = "203.0.113.7"
					d = e.Decide(context.Background(), &Request{Namespace: "shop", Method: "GET", Path: path, Header: h, Peer: netip.MustParseAddr("127.0.0.1")})
				}
				if got := !d.Refused(); got != want {
					t.Errorf("%s: the second request allowed = %v, want %v (%s, limit %q)", path, got, want, d.Verdict, d.Limit.Text)
				}
			}
		})
	}
}

// A request is judged as every method it may run as upstream: HEAD as GET,
// and a POST as the method its override header or _method parameter names.
func TestMethodOverridesAreJudged(t *testing.T) {
	e := &Engine{Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(Objects{Routes: []*Route{
		rg("shop", "delete", waygatev1.RouteGateSpec{Route: "DELETE:/payments/{id}", State: waygatev1.RouteDisabled}),
		rg("shop", "get", waygatev1.RouteGateSpec{Route: "GET:/reports", State: waygatev1.RouteMaintenance}),
	}}))
	for _, tc := range []struct {
		method, path, query string
		overrides           string
		want                Verdict
	}{
		{"POST", "/payments/1", "", "", Allowed},
		{"DELETE", "/payments/1", "", "", Disabled},
		{"POST", "/payments/1", "", "DELETE", Disabled},
		{"POST", "/payments/1", "", " delete ", Disabled},
		{"POST", "/payments/1", "", "Delete", Disabled},
		{"POST", "/payments/1", "a=1&_method=DELETE", "", Disabled},
		{"POST", "/payments/1", "_method=PUT", "", Allowed},
		{"delete", "/payments/1", "", "", Disabled},
		{"Delete", "/payments/1", "", "", Disabled},
		{"POST", "/payments/1", "", "PUT, DELETE", Disabled},
		{"POST", "/payments/1", "", "GET,POST,PUT,PATCH,HEAD,OPTIONS,TRACE,CONNECT,BREW,DELETE", Disabled},
		{"POST", "/payments/1", "_method=%44ELETE", "", Disabled},
		{"POST", "/payments/1", "%5Fmethod=DELETE", "", Disabled},
		{"POST", "/payments/1", "_method=GET&_method=DELETE", "", Disabled},
		{"POST", "/payments/1", ".method=DELETE", "", Disabled},
		{"POST", "/payments/1", "x_method=DELETE&method=DELETE", "", Allowed},
		{"POST", "/payments/1", "_%6Dethod=DELETE", "", Disabled},
		{"POST", "/payments/1", "_METHOD=DELETE", "", Disabled},
		{"POST", "/payments/1", "+_method=DELETE", "", Disabled},
		{"POST", "/payments/1", "%20_method=DELETE", "", Disabled},
		{"HEAD", "/reports", "", "", Maintenance},
		{"POST", "/reports", "", "HEAD", Maintenance},
		{"GET", "/reports", "", "POST", Maintenance},
	} {
		d := e.Decide(context.Background(), &Request{Namespace: "shop", Method: tc.method, Path: tc.path, Query: tc.query, Overrides: tc.overrides})
		if d.Verdict != tc.want {
			t.Errorf("%s %s?%s overrides %q: %s, want %s", tc.method, tc.path, tc.query, tc.overrides, d.Verdict, tc.want)
		}
	}
}

// A host rotating through the addresses of its IPv6 /64 is one caller to a
// limit by ip; the next /64 is another. IPv4 addresses count one by one.
func TestIPKeysByNetwork(t *testing.T) {
	e := &Engine{Counters: counters.NewMemory(1000), Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(Objects{Policies: []*Policy{rlp("shop", "p", waygatev1.RateLimitPolicySpec{Route: "*", Limit: "3/minute"})}}))
	decide := func(client string) Verdict {
		return e.Decide(context.Background(), &Request{Namespace: "shop", Method: "GET", Path: "/", Peer: netip.MustParseAddr(client), PeerIsClient: true}).Verdict
	}
	for i := range 100 {
		want := Allowed
		if i >= 3 {
			want = RateLimited
		}
		if got := decide(fmt.Sprintf("2001:db8:0:1:%x:%x::1", i, i*7)); got != want {
			t.Fatalf("address %d of one /64: %s, want %s", i, got, want)
		}
	}
	if got := decide("2001:db8:0:2::1"); got != Allowed {
		t.Errorf("the next /64: %s", got)
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
		if got := decide(a); got != Allowed {
			t.Errorf("%s: %s", a, got)
		}
	}
	wide := &Engine{Counters: counters.NewMemory(1000), Now: e.Now, Networks: Networks{IPv4Bits: 24}}
	wide.Swap(e.Snapshot())
	for i, want := range []Verdict{Allowed, Allowed, Allowed, RateLimited} {
		d := wide.Decide(context.Background(), &Request{Namespace: "shop", Method: "GET", Path: "/", Peer: netip.MustParseAddr(fmt.Sprint("198.51.100.", i+1)), PeerIsClient: true})
		if d.Verdict != want {
			t.Errorf("/24, address %d: %s, want %s", i, d.Verdict, want)
		}
	}
}

// A path that upstreams read two ways is judged both ways: Go's ServeMux,
// Express and Rails keep an encoded slash inside its segment and do not
// resolve dot segments; Tomcat, Spring and nginx do.
func TestEveryReadingOfAPathIsJudged(t *testing.T) {
	e := &Engine{Counters: counters.NewMemory(100), Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(Objects{Routes: []*Route{
		rg("shop", "admin", waygatev1.RouteGateSpec{Route: "/admin/{rest...}", State: waygatev1.RouteDisabled}),
		rg("shop", "files", waygatev1.RouteGateSpec{Route: "GET:/files/{name}", State: waygatev1.RouteMaintenance}),
		rg("shop", "refund", waygatev1.RouteGateSpec{Route: "POST:/orders/{id}/refund", State: waygatev1.RouteDisabled}),
		rg("shop", "public", waygatev1.RouteGateSpec{Route: "/public/{rest...}", State: waygatev1.RouteActive}),
	}}))
	for _, tc := range []struct {
		method, uri string
		want        Verdict
	}{
		{"GET", "/public/x", Allowed},
		{"GET", "/admin/..;/public/x", Disabled},
		{"GET", "/admin/%2e%2e/public/x", Disabled},
		{"GET", "/admin/../public/x", Disabled},
		{"GET", "/public/../admin/x", Disabled},
		{"GET", "/files/a%2Fb", Maintenance},
		{"GET", "/files/a\\b", Maintenance},
		{"GET", "/files/a", Maintenance},
		{"POST", "/orders/123%2F%2E%2E/refund", Disabled},
		{"POST", "/orders/123/refund", Disabled},
	} {
		path, _, _ := strings.Cut(tc.uri, "?")
		normalized := normalizePath(path)
		d := e.Decide(context.Background(), &Request{Namespace: "shop", Method: tc.method, Path: normalized, Literal: literalPath(path, normalized)})
		if d.Verdict != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.uri, d.Verdict, tc.want)
		}
	}
}

// A path upstreams read in yet other ways than the two the gate judges is
// refused, with a 400 that says why.
func TestAmbiguousPathsAreRefused(t *testing.T) {
	e := &Engine{Now: func() time.Time { return t0 }}
	e.Swap(NewSnapshot(Objects{}))
	for uri, want := range map[string]bool{
		"/static/x%2Fy/../../admin/users": true, // Kestrel: /admin/users
		"/reports%2F..%2Fq3":              true, // Werkzeug: /reports/<p> with p=../q3
		"/a%5C..%5Cb":                     true,
		"/users/5#/delete":                true, // Go's server keeps the "#"
		"/files/a%2Fb":                    false,
		"/admin/../public":                false,
		"/admin/%2e%2e/public":            false,
		"/payments?next=%2F..%2F":         false,
		"/%70ayments/%zz":                 false,
	} {
		path, query, _ := strings.Cut(uri, "?")
		req := Request{Namespace: "shop", Method: "GET", Query: query}
		req.Path, req.Literal, req.Ambiguous = Paths(path)
		d := e.Decide(context.Background(), &req)
		if got := d.Verdict == AmbiguousPath; got != want {
			t.Errorf("%s: refused as ambiguous = %v, want %v", uri, got, want)
		}
		if want && (d.Status() != http.StatusBadRequest || !strings.Contains(string(d.Body()), "AMBIGUOUS_PATH")) {
			t.Errorf("%s: %d %s", uri, d.Status(), d.Body())
		}
	}
}

func TestIsMethodOverride(t *testing.T) {
	for name, want := range map[string]bool{
		"X-HTTP-Method-Override": true, "x-http-method-override": true, "X_HTTP_METHOD_OVERRIDE": true, "X-Http-Method": true,
		"X-Method-Override": true, "x_method_override": true,
		"X-HTTP-Method-Overrides": false, "X-Forwarded-Method": false, "X-HTTP": false, "Y-HTTP-Method": false, "": false,
	} {
		if got := IsMethodOverride([]byte(name)); got != want {
			t.Errorf("IsMethodOverride(%q) = %v, want %v", name, got, want)
		}
	}
}
