package gate

import (
	"slices"
	"strings"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Identity says where the gate learns who a caller is, for rate limits by
// user or API key, exempt roles and tiers. A client can send any header it
// likes, so by default the gate believes only a verified bearer token
// (Tokens); a request header counts only when Trusted names it, saying that
// the gateway (or an authenticating proxy before it) overwrites it on every
// request.
type Identity struct {
	// Tokens verifies the request's "Authorization: Bearer" token; nil
	// reads none.
	Tokens Tokens
	// Trusted are the request headers the gateway sets itself, which alone
	// are read: of the headers below and of the tierHeader and keyHeader
	// that policies name (a header a tenant names but no gateway sets is a
	// client's choice, so it is not read).
	Trusted []string
	// User carries the authenticated user (keyStrategy user).
	User string
	// Roles carries the caller's roles, comma-separated (exemptRoles).
	Roles string
	// APIKey carries the caller's API key (keyStrategy api_key).
	APIKey string
}

// Tokens verifies bearer tokens.
type Tokens interface {
	// Verify returns the caller a token names, or nil when it is not
	// a token the gate trusts (bad signature, issuer, audience, expired).
	Verify(token string) *Caller
}

// Caller is who a verified token says the caller is.
type Caller struct {
	User, APIKey string
	Roles        []string
	// Claims are the token's claims with a string value, for tiers.
	Claims map[string]string
}

// caller is the verified caller of req's bearer token, looked up once per
// decision; nil without a trusted token.
func (e *Engine) caller(req *Request, w *who) *Caller {
	if !w.looked {
		w.looked = true
		if e.Identity.Tokens != nil && req.Header != nil {
			if auth := req.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
				w.caller = e.Identity.Tokens.Verify(strings.TrimSpace(auth[7:]))
			}
		}
	}
	return w.caller
}

func (e *Engine) user(req *Request, w *who) string {
	if c := e.caller(req, w); c != nil {
		return c.User
	}
	return e.trustedHeader(req, e.Identity.User)
}

func (e *Engine) apiKey(req *Request, w *who) string {
	if c := e.caller(req, w); c != nil {
		return c.APIKey
	}
	return e.trustedHeader(req, e.Identity.APIKey)
}

// tier is the name of the caller's tier: the policy's tierClaim of a
// verified token, else its tierHeader when headers are trusted.
func (e *Engine) tier(req *Request, w *who, spec *waygatev1.RateLimitPolicySpec) string {
	if c := e.caller(req, w); c != nil && spec.TierClaim != "" {
		return c.Claims[spec.TierClaim]
	}
	return e.trustedHeader(req, spec.TierHeader)
}

// hasRole reports whether the caller has one of roles.
func (e *Engine) hasRole(req *Request, w *who, roles []string) bool {
	if c := e.caller(req, w); c != nil {
		for _, r := range c.Roles {
			if slices.Contains(roles, r) {
				return true
			}
		}
		return false
	}
	for have := e.trustedHeader(req, e.Identity.Roles); have != ""; {
		var r string
		r, have, _ = strings.Cut(have, ",")
		if slices.Contains(roles, strings.TrimSpace(r)) {
			return true
		}
	}
	return false
}

// trustedHeader is the value of header name, when the gate is told that
// the gateway sets it.
func (e *Engine) trustedHeader(req *Request, name string) string {
	if name == "" || req.Header == nil || !slices.ContainsFunc(e.Identity.Trusted, func(t string) bool { return strings.EqualFold(t, name) }) {
		return ""
	}
	return strings.TrimSpace(req.Header.Get(name))
}
