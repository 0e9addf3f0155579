package dataplane

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
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

func TestCheckNeedsTheRequest(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(CheckPrefix + "shop/payments")
	(&ForwardAuth{}).Handle(&ctx)
	if ctx.Response.StatusCode() != http.StatusBadRequest || !strings.Contains(string(ctx.Response.Body()), "X-Forwarded-Uri or X-Original-URI") {
		t.Fatalf("got %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}
