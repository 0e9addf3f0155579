// Package gate is the gate's decision engine: snapshots of the RouteGates and
// RateLimitPolicies in effect, route matching, path readings, decisions and
// their responses; the limits of a decision are counted by a store of
// internal/gate/counters (in memory or in Redis). Only the data plane
// imports it; the route vocabulary it shares with the operator, the CLI and
// the dashboard is internal/routes.
package gate

import (
	"cmp"
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate/counters"
	"github.com/waygate-dev/waygate/internal/routes"
)

// Verdict is what the gate does with a request.
type Verdict uint8

// The verdicts. Every verdict but Allowed refuses the request.
const (
	Allowed Verdict = iota
	Maintenance
	Disabled
	EnvGated
	RateLimited
	// LimiterDown refuses a request whose rate limit could not be counted,
	// when the gate is told to fail closed.
	LimiterDown
	// NotReady refuses every request until the gate has its first snapshot:
	// it does not know yet what is in effect.
	NotReady
	// AmbiguousPath refuses a path that upstreams route in more ways than
	// the gate judges (see Ambiguous): no client needs to send one.
	AmbiguousPath
	numVerdicts
)

var verdictNames = [numVerdicts]string{"allowed", "maintenance", "disabled", "env_gated", "rate_limited", "limiter_unavailable", "not_ready", "ambiguous_path"}

// String is the verdict's name in metrics and logs.
func (v Verdict) String() string { return verdictNames[v] }

// Verdicts are every verdict, for metrics.
func Verdicts() []Verdict {
	vs := make([]Verdict, numVerdicts)
	for i := range vs {
		vs[i] = Verdict(i)
	}
	return vs
}

// Header reads a request header; adapters implement it over their own
// request types without copying.
type Header interface {
	Get(name string) string
}

// Request is what the gate knows of a request.
type Request struct {
	// Namespace and Service are where the route's gates live, from the
	// gateway's configuration (the auth URL, or ext_authz context).
	Namespace, Service string
	Method             string
	// Path, Literal and Ambiguous are the request's path as Paths reads
	// it: cleaned, the literal reading ("" when the same), and whether
	// upstreams read it in yet other ways;
	// Query is its raw query string (for _method parameters).
	Path      string
	Literal   string
	Ambiguous bool
	Query     string
	// Overrides are the values of the request's method-override headers
	// (see IsMethodOverride), joined by commas.
	Overrides string
	Header    Header
	// Peer is who called the gate: the gateway (forward-auth, whose
	// X-Forwarded-For names the client), or, when PeerIsClient, the client
	// as the gateway saw it (ext_authz's source address).
	Peer         netip.Addr
	PeerIsClient bool
}

// Decision is the gate's answer to a request.
type Decision struct {
	Verdict Verdict
	// At is when the request was decided.
	At time.Time
	// Path is the request's path, for the response body.
	Path string
	// Reason explains a maintenance or disabled route.
	Reason string
	// RetryAt is when a refused request may succeed: the end of a
	// maintenance window or of a disable (spec.until), or when a rate limit
	// allows again; zero if unknown.
	RetryAt time.Time
	// Environment and AllowedEnvs explain an env_gated refusal.
	Environment string
	AllowedEnvs []string
	// Deprecation announces a deprecated route that is still served.
	Deprecation *waygatev1.Deprecation
	// Limit is the rate limit that refused the request or, when allowed, the
	// one with the fewest requests left; Limit.Text is empty when none
	// applied.
	Limit LimitStatus
}

// LimitStatus is what the X-RateLimit-* headers say.
type LimitStatus struct {
	Text      string
	Count     int64
	Remaining int64
	Reset     time.Time
}

// Refused reports whether the request is refused.
func (d *Decision) Refused() bool { return d.Verdict != Allowed }

// Engine decides requests from the latest snapshot. It is safe for
// concurrent use; Decide takes no lock and, for a request no rate limit
// counts, allocates nothing.
type Engine struct {
	snap atomic.Pointer[Snapshot]
	// Environment is where the gate serves (for env_gated routes), unless a
	// namespace's EnvironmentLabel says otherwise.
	Environment string
	Counters    counters.Store
	Identity    Identity
	Proxies     ProxyTrust
	// Networks is how many leading bits of a client address name one
	// caller: a host with a whole IPv6 /64 is one caller, not 2^64.
	Networks Networks
	// FailClosed refuses requests whose rate limit cannot be counted (the
	// counter store is down); by default they are let through uncounted.
	FailClosed bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Swap puts a new snapshot in effect.
func (e *Engine) Swap(s *Snapshot) { e.snap.Store(s) }

// Snapshot is the snapshot in effect (nil before the first Swap).
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// maxMethods is how many methods a request may be judged as: its own and
// those its method-override headers and _method parameters name, each
// method once (there are no more than that).
const maxMethods = int(numMethods)

// maxLayers is how many rate limits a request meets: the namespace's, the
// service's and the route's for each method and each reading of its path
// it is judged as.
const maxLayers = 2 + 2*maxMethods

// methodOverrides are the request headers with which frameworks (Rails,
// Express's method-override, Symfony, Laravel, ASP.NET) let a request run
// another method's handler, usually a POST running DELETE or PUT. The gate
// cannot know whether the upstream honours them, so a request carrying one
// is judged as each method it may run as: refused if any of them is.
var methodOverrides = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// IsMethodOverride tells whether a request header is one of
// methodOverrides, in any case, and spelt with underscores too (Rack reads
// X_HTTP_METHOD_OVERRIDE; nginx drops such headers, Caddy, Traefik and
// Envoy pass them on). Adapters find the overrides with it in one pass
// over a request's headers (Request.Overrides).
func IsMethodOverride(name []byte) bool {
	if len(name) < len("x-http-method") || name[0]|0x20 != 'x' {
		return false
	}
	for _, o := range methodOverrides {
		if len(name) == len(o) && equalFoldDash(name, o) {
			return true
		}
	}
	return false
}

// equalFoldDash is ASCII case-insensitive equality, "_" equal to "-".
func equalFoldDash(b []byte, s string) bool {
	for i := range b {
		c := b[i] | 0x20
		if b[i] == '_' {
			c = '-'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// Decide decides req: the route's state (the service-wide gates first,
// unless the route is exempt or forceActive, then the route's own gate) for
// every method the request may run as, then its rate limits from the
// namespace's to the route's.
func (e *Engine) Decide(ctx context.Context, req *Request) Decision {
	d := Decision{Path: req.Path, At: e.now()}
	s := e.snap.Load()
	if s == nil {
		d.Verdict = NotReady
		return d
	}
	if req.Ambiguous {
		d.Verdict = AmbiguousPath
		return d
	}
	nv := s.namespaces[req.Namespace]
	if nv == nil {
		return d
	}
	view := nv.services[req.Service]
	if view == nil {
		view = nv.wide
	}
	// Service-wide maintenance: the namespace's gate, then the service's.
	scopes := [2]*serviceView{nv.wide}
	if view != nv.wide {
		scopes[1] = view
	}
	layers := [maxLayers]*policy{nv.wide.limit, scopes[1].limitOrNil()}
	n := 2
	ms, nm := methodsOf(req)
	paths, np := [2]string{req.Path, req.Literal}, 1
	if req.Literal != "" {
		np = 2
	}
	for _, m := range ms[:nm] {
		for _, path := range paths[:np] {
			if e.judge(&d, req, nv, view, &scopes, m, path) {
				return d
			}
			if p := view.limits.match(m, path); p != nil && !slices.Contains(layers[2:n], p) {
				layers[n] = p
				n++
			}
		}
	}
	if layers != [maxLayers]*policy{} && e.Counters != nil {
		e.limit(ctx, req, &d, &layers, d.At)
	}
	return d
}

// judge puts into d the state of req's route for method m and path (one
// reading of req's), and reports whether it refuses the request.
func (e *Engine) judge(d *Decision, req *Request, nv *namespaceView, view *serviceView, scopes *[2]*serviceView, m method, path string) bool {
	now := d.At
	rg := view.routes.match(m, path)
	forceActive := rg != nil && rg.ForceActive
	for _, v := range scopes {
		if v == nil || v.all == nil {
			continue
		}
		st := routes.ServiceState(v.all.Name, &v.all.Spec, now)
		if st.State == waygatev1.RouteMaintenance &&
			routes.Governs(&v.all.Spec, waygatev1.ServiceName(req.Service), forceActive) && v.exempt.match(m, path) == nil {
			d.refuse(Maintenance, st)
			return true
		}
	}
	if rg == nil {
		return false
	}
	st := routes.OwnState(rg, now)
	switch st.State {
	case waygatev1.RouteMaintenance:
		d.refuse(Maintenance, st)
		return true
	case waygatev1.RouteDisabled:
		d.refuse(Disabled, st)
		return true
	case waygatev1.RouteEnvGated:
		env := cmp.Or(nv.env, e.Environment)
		if !slices.Contains(rg.AllowedEnvs, env) {
			d.Verdict, d.Environment, d.AllowedEnvs = EnvGated, env, rg.AllowedEnvs
			return true
		}
	case waygatev1.RouteDeprecated:
		d.Deprecation = rg.Deprecation
	}
	return false
}

// methodsOf are the methods req may run as upstream: its own (in any case:
// ASP.NET matches methods regardless of it), then each other one its
// override headers (a comma-separated list, of which frameworks take one
// or another) or its query's _method parameters (every one, decoded, as
// PHP mangles the name too) name.
func methodsOf(req *Request) (ms [maxMethods]method, n int) {
	ms[0], n = methodOf(upper(req.Method)), 1
	add := func(name string) {
		m := methodOf(upper(strings.TrimSpace(name)))
		if !slices.Contains(ms[:n], m) {
			ms[n] = m
			n++
		}
	}
	for v := range strings.SplitSeq(req.Overrides, ",") {
		if strings.TrimSpace(v) != "" {
			add(v)
		}
	}
	for kv := range strings.SplitSeq(req.Query, "&") {
		if k, v, _ := strings.Cut(kv, "="); methodParam(k) {
			add(unescapeQuery(v))
		}
	}
	return ms, n
}

// methodParam tells whether a raw query name is _method as some framework
// reads it: decoded, in any case, and as PHP reads names (leading spaces
// dropped, "." and " " for "_").
func methodParam(raw string) bool {
	k := strings.TrimLeft(unescapeQuery(raw), " ")
	return len(k) == len("_method") && strings.EqualFold(k[1:], "method") && (k[0] == '_' || k[0] == '.' || k[0] == ' ')
}

// unescapeQuery decodes a query name or value, "+" as a space; what does
// not decode is kept as it is.
func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// upper is strings.ToUpper, without allocating for what is upper case
// already.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || 'a' <= c && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

// scratch holds a decision's rate-limit checks; pooled, as the counters
// (an interface) would otherwise make every decision allocate them.
type scratch struct {
	checks  [maxLayers]counters.Check
	texts   [maxLayers]string
	results [maxLayers]counters.Result
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// limit counts req against the enabled policies of layers, in order.
func (e *Engine) limit(ctx context.Context, req *Request, d *Decision, layers *[maxLayers]*policy, now time.Time) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	n := 0
	var w who
	for _, p := range layers {
		if p == nil || !p.spec.Enabled {
			continue
		}
		ch, text, verdict := e.check(p, req, &w)
		switch verdict {
		case skip:
			continue
		case block:
			d.Verdict, d.RetryAt = RateLimited, now
			d.Limit = LimitStatus{Text: text, Count: ch.Count, Reset: now}
			return
		}
		sc.checks[n], sc.texts[n] = ch, text
		n++
	}
	if n == 0 {
		return
	}
	refused, err := e.Counters.Take(ctx, now, sc.checks[:n], sc.results[:n])
	if err != nil { // the counters report their failures themselves
		if e.FailClosed {
			d.Verdict = LimiterDown
		}
		return
	}
	if refused >= 0 {
		r := &sc.results[refused]
		d.Verdict, d.RetryAt = RateLimited, r.RetryAt
		d.Limit = LimitStatus{Text: sc.texts[refused], Count: sc.checks[refused].Count, Reset: r.Reset}
		return
	}
	for i := range n {
		r := &sc.results[i]
		if d.Limit.Text == "" || r.Remaining < d.Limit.Remaining {
			d.Limit = LimitStatus{Text: sc.texts[i], Count: sc.checks[i].Count, Remaining: r.Remaining, Reset: r.Reset}
		}
	}
}

func (d *Decision) refuse(v Verdict, st routes.RouteState) {
	d.Verdict, d.Reason = v, st.Reason
	d.RetryAt = st.Ends
}

// What a policy does with a request.
type policyVerdict uint8

const (
	count policyVerdict = iota // count it
	skip                       // let it through uncounted
	block                      // refuse it uncounted (no key, onMissingKey block)
)

// check is what policy p counts req by, with the limit's text.
func (e *Engine) check(p *policy, req *Request, w *who) (counters.Check, string, policyVerdict) {
	spec := p.spec
	if len(p.exempt) > 0 {
		ip := e.clientIP(req, w)
		for _, pfx := range p.exempt {
			if pfx.Contains(ip) {
				return counters.Check{}, "", skip
			}
		}
	}
	if len(spec.ExemptRoles) > 0 && e.hasRole(req, w, spec.ExemptRoles) {
		return counters.Check{}, "", skip
	}
	rate, text := p.rate, p.limitText
	if len(p.tiers) > 0 {
		name := e.tier(req, w, spec)
		for i := range p.tiers {
			if t := &p.tiers[i]; t.name == name {
				if t.rate.Count == 0 {
					return counters.Check{}, "", skip
				}
				rate, text = t.rate, t.limitText
				break
			}
		}
	}
	ch := counters.Check{Namespace: req.Namespace, Policy: p.id, Algorithm: spec.Algorithm, Count: rate.Count, Burst: int64(spec.Burst), Period: rate.Period}
	switch spec.KeyStrategy {
	case waygatev1.KeyGlobal:
		return ch, text, count
	case waygatev1.KeyByIP:
		ch.CallerAddr = e.Networks.Of(e.clientIP(req, w))
		return ch, text, count
	case waygatev1.KeyByUser:
		ch.Caller = e.user(req, w)
	case waygatev1.KeyByAPIKey:
		ch.Caller = e.apiKey(req, w)
	case waygatev1.KeyByHeader:
		ch.Caller = e.trustedHeader(req, spec.KeyHeader)
	}
	if ch.Caller != "" {
		return ch, text, count
	}
	switch spec.OnMissingKey {
	case waygatev1.MissingKeyFallbackIP:
		ch.CallerAddr = e.Networks.Of(e.clientIP(req, w))
		return ch, text, count
	case waygatev1.MissingKeyBlock:
		return ch, text, block
	default:
		return counters.Check{}, "", skip
	}
}

// who is what a decision learnt of its caller, each part found once.
type who struct {
	client netip.Addr
	// caller is what the bearer token says, once looked at (looked).
	caller *Caller
	looked bool
}

// clientIP resolves the client's address once per decision.
func (e *Engine) clientIP(req *Request, w *who) netip.Addr {
	if !w.client.IsValid() {
		w.client = e.Proxies.ClientIP(req)
	}
	return w.client
}

func (v *serviceView) limitOrNil() *policy {
	if v == nil {
		return nil
	}
	return v.limit
}
