package gate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/kube"
)

// EnvironmentLabel on a Namespace names the environment its routes are
// served in, overriding the gate's --environment for env_gated routes.
const EnvironmentLabel = "waygate.dev/environment"

// Snapshot is everything the gate decides requests from, built once per
// change of the objects it is built from and never modified afterwards, so
// that decisions read it without locks. A change builds the views of the
// namespaces it touched (With); the others are shared with the snapshot
// before.
type Snapshot struct {
	namespaces map[string]*namespaceView
	// Problems are the objects left out of the snapshot, and why.
	Problems []string
	// Objects counts the RouteGates and RateLimitPolicies it was built of.
	Objects int
}

type namespaceView struct {
	name string
	// env overrides the gate's environment ("" keeps it).
	env      string
	services map[string]*serviceView
	// wide is services[""]: the namespace-wide gate and policy, and the
	// routes gated for every service.
	wide *serviceView
	// problems are its objects left out, objects those it was built of.
	problems []string
	objects  int
}

// serviceView is what applies to the requests of one service (or, for the
// service "", to those of every service). It holds the specs it decides by,
// not the objects: the snapshot keeps what decisions read.
type serviceView struct {
	// routes holds this service's RouteGates over those of the namespace
	// without a service: a key gated for the service wins.
	routes router[waygatev1.RouteGateSpec]
	// all is the service-wide gate (route "*"); exempt its exempt keys.
	all    *Route
	exempt router[struct{}]
	// limit is the service-wide policy (route "*"); limits the route
	// policies, merged as routes are.
	limit  *policy
	limits router[policy]
}

// policy is a RateLimitPolicy compiled for decisions.
type policy struct {
	// id identifies its counters (Policy.Counters).
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
	Routes   []*Route
	Policies []*Policy
	// Environments maps namespaces to the environment their label names.
	Environments map[string]string
}

// Route is what the gate keeps of a RouteGate (RouteOf): where it is,
// when it was created (the oldest claim of a route holds it), its
// generation and its spec; not the rest of the object, so that a route
// costs the gate little more than its spec. A snapshot refers to it, so it
// is never modified.
type Route struct {
	Namespace, Name string
	Created         metav1.Time
	Generation      int64
	Spec            waygatev1.RouteGateSpec
}

// RouteOf is what the gate keeps of rg, sharing its strings.
func RouteOf(rg *waygatev1.RouteGate) *Route {
	return &Route{Namespace: unique.Make(rg.Namespace).Value(), Name: rg.Name, Created: rg.CreationTimestamp, Generation: rg.Generation, Spec: rg.Spec}
}

// Same tells whether r and o, two states of one RouteGate, hold the same
// spec: the same generation.
func (r *Route) Same(o *Route) bool { return r.Generation == o.Generation }

// GetName and GetCreationTimestamp make a Route a kube.Claim.
func (r *Route) GetName() string                   { return r.Name }
func (r *Route) GetCreationTimestamp() metav1.Time { return r.Created }

// Policy is what the gate keeps of a RateLimitPolicy (PolicyOf): a
// Route's part and what identifies its counters.
type Policy struct {
	Namespace, Name string
	Created         metav1.Time
	Generation      int64
	// Counters identifies the policy's counters: its UID and its last reset
	// (ResetAnnotation), so that a reset or a re-created policy starts from
	// zero.
	Counters string
	Spec     waygatev1.RateLimitPolicySpec
}

// PolicyOf is what the gate keeps of p, sharing its strings.
func PolicyOf(p *waygatev1.RateLimitPolicy) *Policy {
	return &Policy{Namespace: unique.Make(p.Namespace).Value(), Name: p.Name, Created: p.CreationTimestamp, Generation: p.Generation,
		Counters: string(p.UID) + "@" + p.Annotations[waygatev1.ResetAnnotation], Spec: p.Spec}
}

// Same tells whether p and o, two states of one RateLimitPolicy, hold the
// same spec and counters.
func (p *Policy) Same(o *Policy) bool {
	return p.Generation == o.Generation && p.Counters == o.Counters
}

// GetName and GetCreationTimestamp make a Policy a kube.Claim.
func (p *Policy) GetName() string                   { return p.Name }
func (p *Policy) GetCreationTimestamp() metav1.Time { return p.Created }

// scope is where a RouteGate or a RateLimitPolicy applies.
type scope struct{ ns, service, route string }

// NewSnapshot compiles objs, of every namespace.
func NewSnapshot(objs Objects) *Snapshot { return (&Snapshot{}).With(nil, objs) }

// With is s with the namespaces named, and those objs holds, compiled anew
// from objs, which holds every object of those namespaces: one left with no
// object and no environment is gone. The views of the other namespaces are
// s's, shared, so that a change costs its namespace, not the cluster.
func (s *Snapshot) With(namespaces []string, objs Objects) *Snapshot {
	fresh := compile(objs)
	next := &Snapshot{namespaces: make(map[string]*namespaceView, len(s.namespaces)+len(fresh))}
	maps.Copy(next.namespaces, s.namespaces)
	for _, ns := range namespaces {
		delete(next.namespaces, ns)
	}
	maps.Copy(next.namespaces, fresh)
	for _, nv := range next.namespaces {
		next.Problems = append(next.Problems, nv.problems...)
		next.Objects += nv.objects
	}
	slices.Sort(next.Problems)
	return next
}

// ProblemsIn are the objects of namespace ns (every namespace for "") left
// out of the snapshot, and why.
func (s *Snapshot) ProblemsIn(ns string) []string {
	if ns == "" {
		return s.Problems
	}
	if nv := s.namespaces[ns]; nv != nil {
		return nv.problems
	}
	return nil
}

// compile builds the views of the namespaces of objs. Of several objects
// claiming the same route of the same service, the holder (the oldest) is
// in effect, as the operator reports; policies that cannot be compiled
// (which the API server's validation should have refused) are left out and
// named in the namespace's problems.
func compile(objs Objects) map[string]*namespaceView {
	s := &Snapshot{namespaces: map[string]*namespaceView{}}
	gates := map[scope][]*Route{}
	for _, rg := range objs.Routes {
		k := scope{rg.Namespace, string(rg.Spec.Service), string(rg.Spec.Route)}
		gates[k] = append(gates[k], rg)
		nv := s.namespace(k.ns)
		nv.addService(k.service)
		nv.objects++
	}
	policies := map[scope][]*Policy{}
	for _, p := range objs.Policies {
		k := scope{p.Namespace, string(p.Spec.Service), string(p.Spec.Route)}
		policies[k] = append(policies[k], p)
		nv := s.namespace(k.ns)
		nv.addService(k.service)
		nv.objects++
	}
	for ns, env := range objs.Environments {
		s.namespace(ns).env = env
	}

	// Keys of no service go in first, so that a service's own key replaces
	// them in its view.
	for _, wideFirst := range []bool{true, false} {
		for k, claims := range gates {
			if (k.service == "") == wideFirst {
				s.addGate(k, kube.HolderOf(claims))
			}
		}
		for k, claims := range policies {
			if (k.service == "") != wideFirst {
				continue
			}
			h := kube.HolderOf(claims)
			p, err := compilePolicy(h)
			if err != nil {
				nv := s.namespaces[k.ns]
				nv.problems = append(nv.problems, fmt.Sprintf("RateLimitPolicy %s/%s: %v", h.Namespace, h.Name, err))
				continue
			}
			s.addPolicy(k, p)
		}
	}
	return s.namespaces
}

// addGate puts rg in effect for k: a service-wide gate in its own view, a
// route key in its service's view, or in every view for no service.
func (s *Snapshot) addGate(k scope, rg *Route) {
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
		v.routes.add(k.route, &rg.Spec, !rg.Spec.CaseSensitive)
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

func compilePolicy(p *Policy) (*policy, error) {
	rate, err := ParseRate(p.Spec.Limit)
	if err != nil {
		return nil, err
	}
	c := &policy{
		id:        p.Counters,
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
