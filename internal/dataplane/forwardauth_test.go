package dataplane

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/waygate-dev/waygate/internal/gate"
)

// The refusal endpoint answers only with what a refusal may carry: a
// token forged to set other headers or statuses gets nothing of it.
func TestRenderRefusal(t *testing.T) {
	token := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name, token string
		status      int
		headers     map[string]string
		body        string
	}{
		{"a refusal", token(`{"status":503,"headers":{"Retry-After":"90"},"body":{"error":{"code":"MAINTENANCE_MODE"}}}`), 503,
			map[string]string{"Retry-After": "90"}, `{"error":{"code":"MAINTENANCE_MODE"}}`},
		{"other headers are dropped", token(`{"status":429,"headers":{"Set-Cookie":"a=b","X-RateLimit-Limit":"5"},"body":{}}`), 429,
			map[string]string{"Set-Cookie": "", "X-RateLimit-Limit": "5"}, `{}`},
		{"no refusal status", token(`{"status":200,"body":{}}`), 500, nil, "NO_REFUSAL"},
		{"no JSON body", token(`{"status":503,"body":"<html>"}`), 500, nil, "NO_REFUSAL"},
		{"not base64", "%%%", 500, nil, "NO_REFUSAL"},
		{"none", "", 500, nil, "NO_REFUSAL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI(RefusalPath)
			if tc.token != "" {
				ctx.Request.Header.Set(RefusalHeader, tc.token)
			}
			(&ForwardAuth{}).Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			for k, v := range tc.headers {
				if got := string(ctx.Response.Header.Peek(k)); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if body := string(ctx.Response.Body()); !strings.Contains(body, tc.body) {
				t.Errorf("body %s, want %s in it", body, tc.body)
			}
			if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

// Each endpoint reads its own headers and no other: a request that carries
// only another contract's headers is no request to decide.
func TestCheckNeedsItsOwnHeaders(t *testing.T) {
	for _, tc := range []struct {
		uri     string
		headers []string
		want    string
	}{
		{CheckPrefix + "shop/payments", nil, "X-Forwarded-Method and X-Forwarded-Uri"},
		{CheckPrefix + "shop/payments", []string{"X-Original-Method", "GET", "X-Original-URL", "http://h/p", "X-Original-URI", "/p"}, "X-Forwarded-Method and X-Forwarded-Uri"},
		{CheckPrefix + "shop/payments", []string{"X-Forwarded-Uri", "/p"}, "X-Forwarded-Method and X-Forwarded-Uri"},
		{NginxPrefix + "shop/payments", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/p", "X-Original-URI", "/p"}, "X-Original-Method and X-Original-URL"},
		{NginxPrefix + "shop/payments", []string{"X-Original-Method", "GET", "X-Original-URL", "/p"}, "X-Original-Method and X-Original-URL"},
		{EnvoyPrefix + "shop", nil, "as the path prefix of the ext_authz HTTP service"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(tc.uri)
		for i := 0; i < len(tc.headers); i += 2 {
			ctx.Request.Header.Set(tc.headers[i], tc.headers[i+1])
		}
		(&ForwardAuth{}).Handle(&ctx)
		if ctx.Response.StatusCode() != http.StatusBadRequest || !strings.Contains(string(ctx.Response.Body()), tc.want) {
			t.Errorf("%s %v: got %d %s", tc.uri, tc.headers, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// The request URI of an nginx X-Original-URL is what follows the host, which
// may hold "?" and "#" (nginx lets them through) but no slash.
func TestPathOfURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://shop.example/payments/7?x=1": "/payments/7?x=1",
		"https://h:8443/a":                   "/a",
		"http://evil?x/payments/7":           "/payments/7",
		"http://evil#/payments/7":            "/payments/7",
		"http:///payments":                   "/payments",
		"http://host":                        "",
		"/payments":                          "",
	} {
		if got := string(pathOfURL([]byte(in))); got != want {
			t.Errorf("pathOfURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The endpoint is chosen by the request URI as sent: a path that cleans to
// another endpoint's (Envoy appends the client's path) stays a check, and
// one that cleans to nothing names no OFREP namespace.
func TestEndpointByRawURI(t *testing.T) {
	m := NewMetrics()
	handle := httpHandler(&ForwardAuth{Engine: &gate.Engine{}, Metrics: m}, &OFREP{Flags: &FlagSet{}, Metrics: m}, true, "")
	for uri, want := range map[string]string{
		EnvoyPrefix + "shop/_/admin/..%2F..%2F..%2F..%2F..%2Fns/x/ofrep/v1/configuration": "GATE_NOT_READY",
		EnvoyPrefix + "shop/_/../../../ns/x/ofrep/v1/configuration":                       "GATE_NOT_READY",
		"/ns/../v1/check/shop/payments":                                                   "errorDetails",
		"/ns/..":                                                                          "errorDetails",
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetMethod(http.MethodGet)
		handle(&ctx)
		if body := string(ctx.Response.Body()); ctx.Response.StatusCode() == http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s, want an answer with %s", uri, ctx.Response.StatusCode(), body, want)
		}
	}
}
