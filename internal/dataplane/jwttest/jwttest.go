// Package jwttest issues JSON Web Tokens for tests of the gate's token
// verification: an issuer with its own key, whose public key set it writes
// to a file as the gate's --jwt-jwks-file reads it.
package jwttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Issuer signs tokens with an ES256 key of its own.
type Issuer struct {
	t   testing.TB
	Key *ecdsa.PrivateKey
}

// NewIssuer makes an issuer with a new key.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{t: t, Key: k}
}

// KeySet writes the issuer's public key as a JSON Web Key Set in a file of
// the test's and returns its path.
func (i *Issuer) KeySet() string {
	i.t.Helper()
	pub, err := jwk.PublicKeyOf(&i.Key.PublicKey)
	if err != nil {
		i.t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		i.t.Fatal(err)
	}
	raw, err := json.Marshal(set)
	if err != nil {
		i.t.Fatal(err)
	}
	path := filepath.Join(i.t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		i.t.Fatal(err)
	}
	return path
}

// Token signs claims (time.Time values are NumericDates).
func (i *Issuer) Token(claims map[string]any) string {
	i.t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			i.t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), i.Key))
	if err != nil {
		i.t.Fatal(err)
	}
	return string(signed)
}
