package gate

import (
	"fmt"
	"net/netip"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/kube"
)

// EnvironmentLabel on a Namespace names the environment its routes are
// served in, overriding the gate's --environment for env_gated routes.
const EnvironmentLabel = "waygate.dev/environment"

// Snapshot is everything the gate decides requests from, built once per
// change of the objects it is built from and never modified afterwards, so
// that decisions read it without locks.
type Snapshot struct {
	namespaces map[string]*namespaceView
	// Problems are the objects left out of the snapshot, and why.
	Problems []string
}

type namespaceView struct {
	name string
	// env overrides the gate's environment ("" keeps it).
	env      string
	services map[string]*serviceView
	// wide is services[""]: the namespace-wide gate and policy, and the
	// routes gated for every service.
	wide *serviceView
}

// serviceView is what applies to the requests of one service (or, for the
// service "", to those of every service).
type serviceView struct {
	// routes holds this service's RouteGates over those of the namespace
	// without a service: a key gated for the service wins.
	routes router[waygatev1.RouteGate]
	// all is the service-wide gate (route "*"), exempt its exempt keys.
	all    *waygatev1.RouteGate
	exempt router[struct{}]
	// limit is the service-wide policy (route "*"); limits the route
	// policies, merged as routes are.
	limit  *policy
	limits router[policy]
}

// policy is a RateLimitPolicy compiled for decisions.
type policy struct {
	// id identifies its counters: the object's UID and its last reset, so a
	// reset or a re-created policy starts from zero.
	id        string
	limitText string
	rate      Rate
	spec      *waygatev1.RateLimitPolicySpec
	tiers     []tier
	exempt    []netip.Prefix
}

type tier struct {
	name      string
	limitText string
	rate      Rate // zero: unlimited
}

// Objects is what a snapshot is built from.
type Objects struct {
	RouteGates []waygatev1.RouteGate
	Policies   []waygatev1.RateLimitPolicy
	// Environments maps namespaces to the environment their label names.
	Environments map[string]string
}

// scope is where a RouteGate or a RateLimitPolicy applies.
type scope struct{ ns, service, route string }

// NewSnapshot compiles objs. Of several objects claiming the same route of
// the same service, the holder (the oldest) is in effect, as the operator
// reports; policies that cannot be compiled (which the API server's
// validation should have refused) are left out and named in Problems.
func NewSnapshot(objs Objects) *Snapshot {
	s := &Snapshot{namespaces: map[string]*namespaceView{}}
	gates := map[scope][]waygatev1.RouteGate{}
	for _, rg := range objs.RouteGates {
		k := scope{rg.Namespace, string(rg.Spec.Service), string(rg.Spec.Route)}
		gates[k] = append(gates[k], rg)
		s.namespace(k.ns).addService(k.service)
	}
	policies := map[scope][]waygatev1.RateLimitPolicy{}
	for _, p := range objs.Policies {
		k := scope{p.Namespace, string(p.Spec.Service), string(p.Spec.Route)}
		policies[k] = append(policies[k], p)
		s.namespace(k.ns).addService(k.service)
	}
	for ns, env := range objs.Environments {
		s.namespace(ns).env = env
	}

	// Keys of no service go in first, so that a service's own key replaces
	// them in its view.
	for _, wideFirst := range []bool{true, false} {
		for k, claims := range gates {
			if (k.service == "") == wideFirst {
				s.addGate(k, kube.Holder(claims))
			}
		}
		for k, claims := range policies {
			if (k.service == "") != wideFirst {
				continue
			}
			h := kube.Holder(claims)
			p, err := compilePolicy(h)
			if err != nil {
				s.Problems = append(s.Problems, fmt.Sprintf("RateLimitPolicy %s/%s: %v", h.Namespace, h.Name, err))
				continue
			}
			s.addPolicy(k, p)
		}
	}
	return s
}

// addGate puts rg in effect for k: a service-wide gate in its own view, a
// route key in its service's view, or in every view for no service.
func (s *Snapshot) addGate(k scope, rg *waygatev1.RouteGate) {
	nv := s.namespaces[k.ns]
	if k.route == waygatev1.AllRoutes {
		v := nv.services[k.service]
		v.all = rg
		for _, e := range rg.Spec.Exempt {
			v.exempt.add(string(e), &struct{}{}, !rg.Spec.CaseSensitive)
		}
		return
	}
	for _, v := range nv.views(k.service) {
		v.routes.add(k.route, rg, !rg.Spec.CaseSensitive)
	}
}

// addPolicy is addGate for a rate limit policy.
func (s *Snapshot) addPolicy(k scope, p *policy) {
	nv := s.namespaces[k.ns]
	if k.route == waygatev1.AllRoutes {
		nv.services[k.service].limit = p
		return
	}
	for _, v := range nv.views(k.service) {
		v.limits.add(k.route, p, !p.spec.CaseSensitive)
	}
}

// views are the views a route key of service goes into: its own, or every
// view for no service.
func (nv *namespaceView) views(service string) []*serviceView {
	if service != "" {
		return []*serviceView{nv.services[service]}
	}
	vs := make([]*serviceView, 0, len(nv.services))
	for _, v := range nv.services {
		vs = append(vs, v)
	}
	return vs
}

func (s *Snapshot) namespace(ns string) *namespaceView {
	nv := s.namespaces[ns]
	if nv == nil {
		wide := &serviceView{}
		nv = &namespaceView{name: ns, services: map[string]*serviceView{"": wide}, wide: wide}
		s.namespaces[ns] = nv
	}
	return nv
}

// addService gives service a view of its own.
func (nv *namespaceView) addService(name string) {
	if nv.services[name] == nil {
		nv.services[name] = &serviceView{}
	}
}

// Scope is ns as the snapshot holds it when it has Waygate objects there
// (a string that outlives the request it came from), else otherwise; and
// whether it knows service there (the service "" always, in a known
// namespace). A check URL naming neither is allowed, and may be a typo.
func (s *Snapshot) Scope(ns, service, otherwise string) (name string, known, serviceKnown bool) {
	if s != nil {
		if nv := s.namespaces[ns]; nv != nil {
			return nv.name, true, nv.services[service] != nil
		}
	}
	return otherwise, false, false
}

func compilePolicy(p *waygatev1.RateLimitPolicy) (*policy, error) {
	rate, err := ParseRate(p.Spec.Limit)
	if err != nil {
		return nil, err
	}
	c := &policy{
		id:        string(p.UID) + "@" + p.Annotations[waygatev1.ResetAnnotation],
		limitText: p.Spec.Limit,
		rate:      rate,
		spec:      &p.Spec,
	}
	for _, t := range p.Spec.Tiers {
		ct := tier{name: t.Name, limitText: t.Limit}
		if t.Limit != Unlimited {
			if ct.rate, err = ParseRate(t.Limit); err != nil {
				return nil, fmt.Errorf("tier %s: %w", t.Name, err)
			}
		}
		c.tiers = append(c.tiers, ct)
	}
	for _, cidr := range p.Spec.ExemptCIDRs {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("exemptCIDRs: %q is not a CIDR", cidr)
		}
		c.exempt = append(c.exempt, pfx.Masked())
	}
	return c, nil
}
