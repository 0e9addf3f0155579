package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/waygate-dev/waygate/internal/dataplane/jwttest"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// A gate that verifies tokens counts callers by what their token says,
// behind nginx as documented; a forged token, or headers claiming a user,
// a tier or a role, identify no one.
func TestVerifiedIdentitiesThroughNginx(t *testing.T) {
	ns := env.Namespace(t, "gate")
	issuer, forger := jwttest.NewIssuer(t), jwttest.NewIssuer(t)
	g, err := env.StartGate(context.Background(), gateBin, t.TempDir(), "jwt-gate", "",
		"--jwt-jwks-file", issuer.KeySet(), "--jwt-issuer", "https://id.example", "--jwt-audience", "shop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	up := realservers.NewUpstream(t)
	addr := realservers.FreeAddr(t)
	realservers.Nginx(t, addr, realservers.Substitute(t, documented(t, "nginx"),
		"waygate-gate.waygate-system.svc:8080", g.HTTP,
		"payments.default.svc:8080", up.Addr,
		"/v1/nginx/default/", "/v1/nginx/"+ns+"/",
		"listen 80;", "listen "+addr+";"))
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-user}
spec:
  route: "GET:/orders"
  service: payments
  limit: 1/hour
  keyStrategy: user
  onMissingKey: block
  tierClaim: plan
  tierHeader: X-Plan
  tiers: [{name: internal, limit: unlimited}]
`, "apply", "-n", ns, "-f", "-")

	claims := func(sub, plan string) map[string]any {
		return map[string]any{"iss": "https://id.example", "aud": "shop", "exp": time.Now().Add(time.Hour), "sub": sub, "plan": plan}
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	alice, bob := issuer.Token(claims("alice", "free")), issuer.Token(claims("bob", "free"))
	internal := issuer.Token(claims("ci", "internal"))
	forged := forger.Token(claims("carol", "internal"))

	base := "http://" + addr + "/orders"
	waitFor(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", func() answer { return get(t, "GET", base) })
	for i, tc := range []struct {
		headers []string
		want    int
	}{
		{bearer(alice), http.StatusOK},
		{bearer(alice), http.StatusTooManyRequests},
		{append(bearer(alice), "X-Forwarded-User", "someone-else", "X-Plan", "internal"), http.StatusTooManyRequests},
		{bearer(bob), http.StatusOK},
		{bearer(internal), http.StatusOK},
		{bearer(internal), http.StatusOK},
		{bearer(forged), http.StatusTooManyRequests},
		{[]string{"X-Forwarded-User", "dave", "X-Plan", "internal"}, http.StatusTooManyRequests},
	} {
		if a := get(t, "GET", base, tc.headers...); a.Status != tc.want {
			t.Errorf("request %d: %s, want %d", i, a, tc.want)
		}
	}
}
