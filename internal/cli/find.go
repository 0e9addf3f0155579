package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
)

// notFoundError says that nothing holds what the user named, and suggests
// what they may have meant.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func isNotFound(err error) bool {
	var e *notFoundError
	return errors.As(err, &e)
}

// routeOf describes a kind that is keyed by route and service: how to read
// them, its name, and the command that lists its objects.
type routeOf[P client.Object] struct {
	key  func(P) (route, service string)
	kind string
	list string
}

var (
	gateRoute = routeOf[*waygatev1.RouteGate]{
		key:  func(g *waygatev1.RouteGate) (string, string) { return string(g.Spec.Route), string(g.Spec.Service) },
		kind: "RouteGate", list: "`waygate status` lists the gated routes",
	}
	policyRoute = routeOf[*waygatev1.RateLimitPolicy]{
		key: func(p *waygatev1.RateLimitPolicy) (string, string) {
			return string(p.Spec.Route), string(p.Spec.Service)
		},
		kind: "RateLimitPolicy", list: "`waygate rl list` lists the rate limits",
	}
)

// routes are the route keys of items.
func routes[T any, P interface {
	*T
	client.Object
}](items []T, of routeOf[P]) []string {
	keys := make([]string, 0, len(items))
	for i := range items {
		r, _ := of.key(&items[i])
		keys = append(keys, r)
	}
	return keys
}

// findByRoute returns the object among items that holds key (in service,
// when given), or a notFoundError that suggests what the user meant.
func findByRoute[T any, P interface {
	*T
	client.Object
}](items []T, of routeOf[P], key, service, ns string) (P, error) {
	var exact []T
	services := map[string]bool{}
	for i := range items {
		r, s := of.key(&items[i])
		// A service-wide key names the gate of exactly that service, the
		// namespace's when none is given; a route key with no service, any.
		if r == key && (s == service || service == "" && key != waygatev1.AllRoutes) {
			exact = append(exact, items[i])
			services[s] = true
		}
	}
	if len(services) > 1 {
		return nil, fmt.Errorf("%s has a %s in several services (%s): pass --service", key, of.kind, strings.Join(slices.Sorted(mapKeys(services)), ", "))
	}
	if len(exact) > 0 {
		return gate.Holder[T, P](exact), nil
	}
	where := "in namespace " + ns
	if service != "" {
		where = fmt.Sprintf("of service %s %s", service, where)
	}
	all := routes(items, of)
	if !strings.Contains(key, ":") && key != waygatev1.AllRoutes {
		var methods []string
		for _, r := range all {
			if pathOf(r) == key && r != key && !slices.Contains(methods, r) {
				methods = append(methods, r)
			}
		}
		switch slices.Sort(methods); len(methods) {
		case 0:
		case 1:
			return nil, &notFoundError{fmt.Sprintf("no %s %s covers every method of %s; did you mean %s?", of.kind, where, key, methods[0])}
		default:
			return nil, &notFoundError{fmt.Sprintf("%s is ambiguous: no %s %s covers every method of it, but %s do: name one of them",
				key, of.kind, where, strings.Join(methods, ", "))}
		}
	}
	msg := fmt.Sprintf("no %s %s has route %s", of.kind, where, key)
	if near := closeMatches(key, all); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	} else {
		msg += "; " + of.list
	}
	return nil, &notFoundError{msg}
}

// findByKey returns the object among items whose key is key (a flag's or
// a segment's), or a notFoundError that suggests the keys it resembles.
func findByKey[T any, P interface {
	*T
	client.Object
	Key() string
}](items []T, kind, key, ns, list string) (P, error) {
	var exact []T
	var keys []string
	for i := range items {
		k := P(&items[i]).Key()
		if k == key {
			exact = append(exact, items[i])
		}
		keys = append(keys, k)
	}
	if len(exact) > 0 {
		return gate.Holder[T, P](exact), nil
	}
	msg := fmt.Sprintf("no %s in namespace %s has key %s", kind, ns, key)
	if near := closeMatches(key, keys); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	} else {
		msg += "; " + list
	}
	return nil, &notFoundError{msg}
}

// mapKeys iterates over the keys of m.
func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
