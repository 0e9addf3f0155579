package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/kube"
	"github.com/waygate-dev/waygate/internal/routes"
)

// notFoundError says that nothing holds what the user named, and suggests
// what they may have meant.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func isNotFound(err error) bool {
	var e *notFoundError
	return errors.As(err, &e)
}

// keysOf are the keys of items: route keys, flag keys, ...
func keysOf[T any, P interface {
	*T
	client.Object
}](items []T, k kind[T, P]) []string {
	keys := make([]string, 0, len(items))
	for i := range items {
		keys = append(keys, k.key(&items[i]))
	}
	return keys
}

// findByRoute returns the object among items that holds key (in service,
// when given), or a notFoundError that suggests what the user meant.
func findByRoute[T any, P interface {
	*T
	client.Object
}](items []T, k kind[T, P], key, service, ns string) (P, error) {
	var exact []T
	services := map[string]bool{}
	for i := range items {
		r, s := k.key(&items[i]), k.service(&items[i])
		// A service-wide key names the gate of exactly that service, the
		// namespace's when none is given; a route key with no service, any.
		if r == key && (s == service || service == "" && key != waygatev1.AllRoutes) {
			exact = append(exact, items[i])
			services[s] = true
		}
	}
	if len(services) > 1 {
		return nil, fmt.Errorf("%s has a %s in several services (%s): pass --service", key, k.name, strings.Join(slices.Sorted(maps.Keys(services)), ", "))
	}
	if len(exact) > 0 {
		return kube.Holder[T, P](exact), nil
	}
	where := "in namespace " + ns
	if service != "" {
		where = fmt.Sprintf("of service %s %s", service, where)
	}
	all := keysOf(items, k)
	if !strings.Contains(key, ":") && key != waygatev1.AllRoutes {
		var methods []string
		for _, r := range all {
			if routes.PathOf(r) == key && r != key && !slices.Contains(methods, r) {
				methods = append(methods, r)
			}
		}
		switch slices.Sort(methods); len(methods) {
		case 0:
		case 1:
			return nil, &notFoundError{fmt.Sprintf("no %s %s covers every method of %s; did you mean %s?", k.name, where, key, methods[0])}
		default:
			return nil, &notFoundError{fmt.Sprintf("%s is ambiguous: no %s %s covers every method of it, but %s do: name one of them",
				key, k.name, where, strings.Join(methods, ", "))}
		}
	}
	return nil, notFound(fmt.Sprintf("no %s %s has route %s", k.name, where, key), key, all, k.hint)
}

// findByKey returns the object among items whose key is key (a flag's or
// a segment's), or a notFoundError that suggests the keys it resembles.
func findByKey[T any, P interface {
	*T
	client.Object
}](items []T, k kind[T, P], key, ns string) (P, error) {
	var exact []T
	keys := keysOf(items, k)
	for i := range items {
		if keys[i] == key {
			exact = append(exact, items[i])
		}
	}
	if len(exact) > 0 {
		return kube.Holder[T, P](exact), nil
	}
	return nil, notFound(fmt.Sprintf("no %s in namespace %s has key %s", k.name, ns, key), key, keys, k.hint)
}

// notFound is msg, followed by the keys that look like key, or else by
// hint (how to see what there is).
func notFound(msg, key string, keys []string, hint string) error {
	if near := closeMatches(key, keys); len(near) > 0 {
		return &notFoundError{msg + "; did you mean " + strings.Join(near, " or ") + "?"}
	}
	return &notFoundError{msg + "; " + hint}
}
