package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waygate-dev/waygate/internal/gate"
)

// JWTOptions configure the verification of callers' bearer tokens: their
// claims then say who the caller is (user, roles, API key, tier), which a
// client cannot forge.
type JWTOptions struct {
	// JWKSURL or JWKSFile (a mounted Secret) hold the keys tokens are signed
	// with, as a JSON Web Key Set; re-read every Refresh.
	JWKSURL, JWKSFile string
	Refresh           time.Duration
	// Issuer and Audience a token must name.
	Issuer, Audience string
	// The claims that carry the user, the roles (a list, or a string of
	// comma- or space-separated roles) and the API key (client id).
	UserClaim, RolesClaim, APIKeyClaim string
}

// Enabled tells whether tokens are to be verified.
func (o *JWTOptions) Enabled() bool { return o.JWKSURL != "" || o.JWKSFile != "" }

// Validate says what is missing, for the gate's flags.
func (o *JWTOptions) Validate() error {
	switch {
	case !o.Enabled():
		return nil
	case o.JWKSURL != "" && o.JWKSFile != "":
		return errors.New("--jwt-jwks-url and --jwt-jwks-file: give one source of keys")
	case o.Issuer == "" || o.Audience == "":
		return errors.New("--jwt-issuer and --jwt-audience are required with a JWKS: a token signed by the right key for another service must not count")
	case o.JWKSURL != "" && !strings.HasPrefix(o.JWKSURL, "https://") && !strings.HasPrefix(o.JWKSURL, "http://"):
		return fmt.Errorf("--jwt-jwks-url %q: write an http(s) URL", o.JWKSURL)
	}
	return nil
}

// Tokens verifies bearer tokens against a key set it keeps current, and
// remembers its verdicts for a while, so that a caller's repeated token
// costs one signature check.
type Tokens struct {
	o    JWTOptions
	keys atomic.Pointer[jwk.Set]
	// fetch reads the key set's JSON.
	fetch func(ctx context.Context) ([]byte, error)

	// accepted and rejected remember verdicts apart, so that a flood of
	// forged tokens evicts no genuine caller's.
	mu                 sync.Mutex
	accepted, rejected map[[sha256.Size]byte]verdict
}

type verdict struct {
	caller  *gate.Caller
	expires time.Time
}

// maxSeenTokens bounds the verdicts remembered of each kind; rejectedFor is
// how long a rejected token is remembered as such (a flood of one forged
// token costs one check).
const (
	maxSeenTokens = 50_000
	rejectedFor   = time.Minute
)

// NewTokens reads the key set once (a start without keys is an error: the
// gate would otherwise count every caller as anonymous without a word).
func NewTokens(ctx context.Context, o JWTOptions) (*Tokens, error) {
	t := &Tokens{o: o, accepted: map[[sha256.Size]byte]verdict{}, rejected: map[[sha256.Size]byte]verdict{}}
	if o.JWKSFile != "" {
		t.fetch = func(context.Context) ([]byte, error) { return os.ReadFile(o.JWKSFile) }
	} else {
		t.fetch = func(ctx context.Context) ([]byte, error) { return fetchURL(ctx, o.JWKSURL) }
	}
	if err := t.reload(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func fetchURL(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func (t *Tokens) reload(ctx context.Context) error {
	raw, err := t.fetch(ctx)
	if err != nil {
		return fmt.Errorf("reading the JWT keys: %w", err)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return fmt.Errorf("reading the JWT keys: not a JSON Web Key Set: %w", err)
	}
	if set.Len() == 0 {
		return errors.New("reading the JWT keys: the key set has no key")
	}
	t.keys.Store(&set)
	// Verdicts were reached with the old keys.
	t.mu.Lock()
	clear(t.accepted)
	clear(t.rejected)
	t.mu.Unlock()
	return nil
}

// Run re-reads the key set every Refresh until ctx ends; a failure keeps
// the keys in use and is logged.
func (t *Tokens) Run(ctx context.Context) error {
	tick := time.NewTicker(max(t.o.Refresh, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := t.reload(ctx); err != nil {
				ctrl.Log.WithName("jwt").Error(err, "keeping the keys read before")
			}
		}
	}
}

// Verify implements gate.Tokens.
func (t *Tokens) Verify(token string) *gate.Caller {
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	t.mu.Lock()
	v, ok := t.accepted[sum]
	if !ok {
		v, ok = t.rejected[sum]
	}
	t.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.caller
	}
	v = t.verify(token, now)
	seen := t.accepted
	if v.caller == nil {
		seen = t.rejected
	}
	t.mu.Lock()
	if len(seen) >= maxSeenTokens {
		for k := range seen { // any one: map iteration starts at random
			delete(seen, k)
			break
		}
	}
	seen[sum] = v
	t.mu.Unlock()
	return v.caller
}

func (t *Tokens) verify(token string, now time.Time) verdict {
	rejected := verdict{expires: now.Add(rejectedFor)}
	if len(token) > maxTokenBytes || !namesAlgorithm(token) {
		return rejected
	}
	keys := *t.keys.Load()
	tok, err := jwt.ParseString(token,
		// The key set's keys decide the algorithm, never the token's header.
		// A token without a kid is tried against the key of a set of one;
		// with more keys it must name one, so a forged token costs one
		// signature check, not one per key.
		jwt.WithKeySet(keys, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(keys.Len() > 1)),
		jwt.WithValidate(true), jwt.WithIssuer(t.o.Issuer), jwt.WithAudience(t.o.Audience),
		jwt.WithAcceptableSkew(30*time.Second))
	if err != nil {
		return rejected
	}
	exp, ok := tok.Expiration()
	if !ok {
		return rejected // a token that never expires is not one to remember
	}
	c := &gate.Caller{Claims: map[string]string{}}
	for _, k := range tok.Keys() {
		var v any
		if tok.Get(k, &v) == nil {
			if s, ok := v.(string); ok {
				c.Claims[k] = s
			}
		}
	}
	c.User, c.APIKey = c.Claims[t.o.UserClaim], c.Claims[t.o.APIKeyClaim]
	var roles any
	if t.o.RolesClaim != "" && tok.Get(t.o.RolesClaim, &roles) == nil {
		c.Roles = rolesOf(roles)
	}
	return verdict{caller: c, expires: exp}
}

// maxTokenBytes bounds a token the gate looks at.
const maxTokenBytes = 16 << 10

// namesAlgorithm tells whether a compact token's header names a signing
// algorithm: one without would be tried with every algorithm of each key's
// type (six for an RSA key), which a flood of forged tokens must not cost.
func namesAlgorithm(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok || len(head) > 4<<10 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg != "" && !strings.EqualFold(h.Alg, "none")
}

// rolesOf reads a roles claim: a list of strings, or one string of roles
// separated by commas or spaces (OAuth's scope).
func rolesOf(v any) []string {
	switch r := v.(type) {
	case string:
		return strings.FieldsFunc(r, func(c rune) bool { return c == ',' || c == ' ' })
	case []any:
		var out []string
		for _, e := range r {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return r
	}
	return nil
}
