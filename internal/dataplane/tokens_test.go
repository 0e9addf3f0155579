package dataplane

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/waygate-dev/waygate/internal/dataplane/jwttest"
)

// hs256 signs claims with a shared secret: what an attacker who knows the
// public key tries when a verifier lets the token choose its algorithm.
func hs256(secret []byte, claims map[string]any) string {
	enc := base64.RawURLEncoding
	head, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "a"})
	body, _ := json.Marshal(claims)
	msg := enc.EncodeToString(head) + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestTokens(t *testing.T) {
	key, other := jwttest.NewIssuer(t), jwttest.NewIssuer(t)
	tokens, err := NewTokens(context.Background(), JWTOptions{JWKSFile: key.KeySet(), Issuer: "https://id.example", Audience: "shop",
		UserClaim: "sub", RolesClaim: "groups", APIKeyClaim: "client_id"})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	good := map[string]any{"iss": "https://id.example", "aud": "shop", "exp": exp, "sub": "alice", "client_id": "app-1",
		"groups": []string{"dev", "ops"}, "plan": "pro"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	pub, _ := key.Key.PublicKey.Bytes()
	pubJSON, _ := json.Marshal(pub)
	for name, tok := range map[string]string{
		"signed by another key": other.Token(good),
		"another issuer":        key.Token(with("iss", "https://evil.example")),
		"another audience":      key.Token(with("aud", "billing")),
		"expired":               key.Token(with("exp", time.Now().Add(-time.Hour))),
		"never expires":         key.Token(with("exp", nil)),
		"not yet valid":         key.Token(with("nbf", time.Now().Add(time.Hour))),
		"HS256 with the public key as secret": hs256(pubJSON, map[string]any{"iss": "https://id.example", "aud": "shop",
			"exp": exp.Unix(), "sub": "mallory"}),
		"alg none": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://id.example","aud":"shop","sub":"mallory"}`)) + ".",
		"garbage": "not.a.token",
		"no alg": base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://id.example","aud":"shop","sub":"mallory"}`)) + ".c2ln",
	} {
		if c := tokens.Verify(tok); c != nil {
			t.Errorf("%s: verified as %+v", name, c)
		}
	}
	c := tokens.Verify(key.Token(good))
	if c == nil || c.User != "alice" || c.APIKey != "app-1" || !slices.Equal(c.Roles, []string{"dev", "ops"}) || c.Claims["plan"] != "pro" {
		t.Fatalf("a good token: %+v", c)
	}
	if c := tokens.Verify(key.Token(with("groups", "dev ops,admin"))); c == nil || !slices.Equal(c.Roles, []string{"dev", "ops", "admin"}) {
		t.Errorf("roles as a string: %+v", c)
	}
}

func TestTokensNeedKeys(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "jwks.json")
	_ = os.WriteFile(empty, []byte(`{"keys":[]}`), 0o600)
	for name, o := range map[string]JWTOptions{
		"no file":   {JWKSFile: filepath.Join(t.TempDir(), "missing"), Issuer: "i", Audience: "a"},
		"empty set": {JWKSFile: empty, Issuer: "i", Audience: "a"},
	} {
		if _, err := NewTokens(context.Background(), o); err == nil {
			t.Errorf("%s: started", name)
		}
	}
	for name, o := range map[string]JWTOptions{
		"no audience": {JWKSFile: empty, Issuer: "i"},
		"two sources": {JWKSFile: empty, JWKSURL: "https://id.example/jwks", Issuer: "i", Audience: "a"},
		"not a URL":   {JWKSURL: "id.example/jwks", Issuer: "i", Audience: "a"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// Forged tokens are remembered apart from genuine ones: a flood of them
// evicts no caller's verified token.
func TestForgedTokensEvictNoGenuineOne(t *testing.T) {
	issuer := jwttest.NewIssuer(t)
	tokens, err := NewTokens(context.Background(), JWTOptions{JWKSFile: issuer.KeySet(), Issuer: "i", Audience: "a", UserClaim: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	good := issuer.Token(map[string]any{"iss": "i", "aud": "a", "sub": "alice", "exp": time.Now().Add(time.Hour)})
	if c := tokens.Verify(good); c == nil || c.User != "alice" {
		t.Fatalf("the genuine token: %+v", c)
	}
	for i := range maxSeenTokens + 100 {
		if tokens.Verify(fmt.Sprint("forged.", i, ".x")) != nil {
			t.Fatal("a forged token verified")
		}
	}
	tokens.mu.Lock()
	_, kept := tokens.accepted[sha256.Sum256([]byte(good))]
	rejected := len(tokens.rejected)
	tokens.mu.Unlock()
	if !kept || rejected > maxSeenTokens {
		t.Errorf("after the flood: the genuine verdict kept %v, %d rejections remembered (at most %d)", kept, rejected, maxSeenTokens)
	}
}
