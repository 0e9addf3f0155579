// Package routes is the route vocabulary every part of Waygate shares: route
// keys and the methods they name, the names of RouteGates made for them, and
// the state in effect for a route at a moment (a window, a disable's until,
// a service-wide gate). The operator reports that state and the gate enforces it from this
// one code, so both agree.
package routes

import (
	"sort"
	"strings"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// RouteState is the state in effect for a route at one moment.
type RouteState struct {
	State  waygatev1.RouteState
	Reason string
	// GovernedBy is the name of the service-wide gate whose maintenance is in
	// effect for the route, if any.
	GovernedBy string
	// Next is when the state in effect will next change on its own; zero if
	// it never will.
	Next time.Time
	// Ends is when the route's own refusal in effect ends by itself (an
	// open window's end, a disable's until), if it will: the Retry-After of
	// the gate's refusals.
	Ends time.Time
}

// OwnState is the state a gate's own spec puts in effect at now, ignoring
// service-wide gates. A window puts the route into maintenance between start
// and end, and leaves it active outside; until ends a disable, leaving the
// route active from then.
func OwnState(spec *waygatev1.RouteGateSpec, now time.Time) RouteState {
	w := spec.Window
	if w == nil {
		switch {
		case spec.State == waygatev1.RouteActive:
			return RouteState{State: spec.State}
		case spec.Until == nil:
			return RouteState{State: spec.State, Reason: spec.Reason}
		case now.Before(spec.Until.Time):
			return RouteState{State: spec.State, Reason: spec.Reason, Next: spec.Until.Time, Ends: spec.Until.Time}
		default:
			return RouteState{State: waygatev1.RouteActive}
		}
	}
	start, end := w.Start.Time, w.End.Time
	switch {
	case now.Before(start):
		return RouteState{State: waygatev1.RouteActive, Next: start}
	case now.Before(end):
		return RouteState{State: waygatev1.RouteMaintenance, Reason: spec.Reason, Next: end, Ends: end}
	default:
		return RouteState{State: waygatev1.RouteActive}
	}
}

// Effective is the state in effect for route at now, given the service-wide
// gates ("*") of its namespace. The maintenance of a service-wide gate that
// covers the route wins over the route's own state, as a request checks global
// maintenance first; exempt routes and forceActive routes (unless the gate
// includes them) keep their own state.
func Effective(route *waygatev1.RouteGate, serviceGates []waygatev1.RouteGate, now time.Time) RouteState {
	own := OwnState(&route.Spec, now)
	if route.Spec.Route == waygatev1.AllRoutes {
		return own
	}
	// Name order makes the governing gate deterministic when several apply;
	// namespace-wide gates (no service) sort first.
	gates := append([]waygatev1.RouteGate(nil), serviceGates...)
	sort.Slice(gates, func(i, j int) bool {
		if gates[i].Spec.Service != gates[j].Spec.Service {
			return gates[i].Spec.Service < gates[j].Spec.Service
		}
		return gates[i].Name < gates[j].Name
	})
	next := own.Next
	for i := range gates {
		g := &gates[i]
		if !Covers(g, route) {
			continue
		}
		gs := ServiceState(g.Name, &g.Spec, now)
		next = earliest(next, gs.Next)
		if gs.State == waygatev1.RouteMaintenance {
			gs.Next = next
			return gs
		}
	}
	own.Next = next
	return own
}

// ServiceState is the state the service-wide gate name (of spec) puts in
// effect at now for a route it covers.
func ServiceState(name string, spec *waygatev1.RouteGateSpec, now time.Time) RouteState {
	gs := OwnState(spec, now)
	if gs.State == waygatev1.RouteMaintenance {
		gs.GovernedBy = name
	}
	return gs
}

// Governs reports whether the service-wide gate g may apply to a route of
// service: same service (or g has none), and not forceActive unless g
// includes forceActive routes. Exemptions are the caller's to check.
func Governs(g *waygatev1.RouteGateSpec, service waygatev1.ServiceName, forceActive bool) bool {
	if g.Service != "" && g.Service != service {
		return false
	}
	return !forceActive || g.IncludeForceActive
}

// Covers reports whether the service-wide gate g applies to route: it
// governs the route and does not exempt its key or its path.
func Covers(g, route *waygatev1.RouteGate) bool {
	if g.Spec.Route != waygatev1.AllRoutes || route.Spec.Route == waygatev1.AllRoutes {
		return false
	}
	if !Governs(&g.Spec, route.Spec.Service, route.Spec.ForceActive) {
		return false
	}
	key := route.Spec.Route
	path := waygatev1.RouteKey(PathOf(string(key)))
	for _, e := range g.Spec.Exempt {
		if e == key || e == path {
			return false
		}
	}
	return true
}

// PathOf is the path of a route key: "/payments" for both "GET:/payments"
// and "/payments".
func PathOf(key string) string {
	_, path := CutMethod(key)
	return path
}

// CutMethod splits a route key into its method ("" for none) and path. A
// key that starts with "/" has no method, whatever colons its path holds
// ("/a:/b" is a path).
func CutMethod(key string) (method, path string) {
	if m, p, ok := strings.Cut(key, ":/"); ok && !strings.HasPrefix(key, "/") {
		return m, "/" + p
	}
	return "", key
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
