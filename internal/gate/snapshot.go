package gate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

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
	// all is the service-wide gate (route "*"): its name and spec only;
	// exempt its exempt keys.
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
	gates := map[scope][]waygatev1.RouteGate{}
	for _, rg := range objs.RouteGates {
		k := scope{rg.Namespace, string(rg.Spec.Service), string(rg.Spec.Route)}
		gates[k] = append(gates[k], rg)
		nv := s.namespace(k.ns)
		nv.addService(k.service)
		nv.objects++
	}
	policies := map[scope][]waygatev1.RateLimitPolicy{}
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
func (s *Snapshot) addGate(k scope, rg *waygatev1.RouteGate) {
	nv := s.namespaces[k.ns]
	if k.route == waygatev1.AllRoutes {
		v := nv.services[k.service]
		v.all = &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Name: rg.Name}, Spec: rg.Spec}
		for _, e := range rg.Spec.Exempt {
			v.exempt.add(string(e), &struct{}{}, !rg.Spec.CaseSensitive)
		}
		return
	}
	spec := rg.Spec // a copy: the snapshot keeps none of the object
	for _, v := range nv.views(k.service) {
		v.routes.add(k.route, &spec, !spec.CaseSensitive)
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
