package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// envoyCheck asks the gate over ext_authz about a GET as Envoy would, with the
// namespace and service in the context extensions (none with ns "").
func envoyCheck(t *testing.T, c authv3.AuthorizationClient, ns, service, path, source string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	return envoyCheckFrom(t, c, "GET", ns, service, path, source, headers)
}

func envoyCheckFrom(t *testing.T, c authv3.AuthorizationClient, method, ns, service, path, source string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Headers: headers}},
	}}
	if ns != "" {
		req.Attributes.ContextExtensions = map[string]string{"namespace": ns, "service": service}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func headerOf(opts []*corev3.HeaderValueOption, name string) string {
	for _, o := range opts {
		if o.GetHeader().GetKey() == name {
			return o.GetHeader().GetValue()
		}
	}
	return ""
}

func TestExtAuthz(t *testing.T) {
	ns := env.Namespace(t, "gate")
	conn, err := grpc.NewClient(gw.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	c := authv3.NewAuthorizationClient(conn)
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: get-payments}
spec: {route: "GET:/payments/{id}", service: payments, state: maintenance, reason: Database migration}
---
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: orders-v1}
spec:
  route: /v1/orders
  service: payments
  state: deprecated
  deprecation: {successor: /v2/orders}
---
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: search}
spec: {route: "GET:/search", service: payments, limit: 1/hour, keyStrategy: ip}
`, "apply", "-n", ns, "-f", "-")

	var resp *authv3.CheckResponse
	eventually(t, 10*time.Second, func() error {
		resp = envoyCheck(t, c, ns, "payments", "/payments/42?x=1", "203.0.113.5", nil)
		if resp.GetDeniedResponse() == nil {
			return fmt.Errorf("not yet denied: %v", resp)
		}
		return nil
	})
	d := resp.GetDeniedResponse()
	want := `{"error":{"code":"MAINTENANCE_MODE","message":"This endpoint is temporarily unavailable for maintenance","path":"/payments/42","reason":"Database migration","retry_after":null}}`
	if resp.GetStatus().GetCode() != int32(codes.PermissionDenied) || d.GetStatus().GetCode() != http.StatusServiceUnavailable || d.GetBody() != want ||
		headerOf(d.GetHeaders(), "Content-Type") != "application/json" {
		t.Fatalf("got %v, want 503 with %s", resp, want)
	}

	// Headers a client sends name no scope, and change no verdict: not the
	// namespace (one without gates would let it through), not the method,
	// not the path.
	forged := map[string]string{"x-waygate-namespace": "default", "x-waygate-service": "other", "x-forwarded-uri": "/orders",
		"x-forwarded-method": "POST", "x-original-uri": "/orders", "x-original-url": "http://x/orders", "x-envoy-original-path": "/orders"}
	resp = envoyCheck(t, c, ns, "payments", "/payments/7", "203.0.113.5", forged)
	if resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusServiceUnavailable {
		t.Errorf("with forged headers: %v, want 503", resp)
	}
	if resp = envoyCheck(t, c, "", "", "/payments/7", "203.0.113.5", forged); resp.GetOkResponse() != nil {
		t.Errorf("a scope in headers was believed: %v", resp)
	}
	// HEAD runs the GET handler: a GET gate governs it.
	if resp = envoyCheckFrom(t, c, "HEAD", ns, "payments", "/payments/7", "203.0.113.5", nil); resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusServiceUnavailable {
		t.Errorf("HEAD: %v, want 503", resp)
	}

	// Allowed, with the headers Envoy adds to the client's response.
	resp = envoyCheck(t, c, ns, "payments", "/v1/orders", "203.0.113.5", nil)
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil || headerOf(ok.GetResponseHeadersToAdd(), "Deprecation") != "true" ||
		headerOf(ok.GetResponseHeadersToAdd(), "Link") != `</v2/orders>; rel="successor-version"` {
		t.Fatalf("deprecated: %v", resp)
	}

	// Rate limited by Envoy's source address; a forged X-Forwarded-For
	// changes nothing.
	eventually(t, 10*time.Second, func() error {
		resp = envoyCheck(t, c, ns, "payments", "/search", "203.0.113.5", nil)
		if headerOf(resp.GetOkResponse().GetResponseHeadersToAdd(), "X-RateLimit-Limit") != "1" {
			return fmt.Errorf("no limit yet: %v", resp)
		}
		return nil
	})
	resp = envoyCheck(t, c, ns, "payments", "/search", "203.0.113.5", map[string]string{"x-forwarded-for": "198.51.100.1"})
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != http.StatusTooManyRequests || headerOf(d.GetHeaders(), "Retry-After") == "" ||
		headerOf(d.GetHeaders(), "X-RateLimit-Remaining") != "0" {
		t.Fatalf("second request: %v, want 429 with headers", resp)
	}
	if resp := envoyCheck(t, c, ns, "payments", "/search", "203.0.113.6", nil); resp.GetOkResponse() == nil {
		t.Fatalf("another client: %v", resp)
	}

	// No scope at all: a clear refusal, not a guess.
	resp = envoyCheck(t, c, "", "", "/payments/7", "203.0.113.5", nil)
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != http.StatusInternalServerError || !strings.Contains(d.GetBody(), "context extensions") {
		t.Fatalf("no scope: %v", resp)
	}
}
