package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// methods are the HTTP methods a route key may name.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// routeKey normalises what a user typed into a route key: METHOD:/path with
// the method in upper case, /path, or "*". A path without its leading slash
// gets one.
func routeKey(arg string) (string, error) {
	if arg == waygatev1.AllRoutes {
		return arg, nil
	}
	method, path, hasMethod := strings.Cut(arg, ":")
	if !hasMethod || strings.HasPrefix(arg, "/") {
		method, path = "", arg
	}
	method = strings.ToUpper(method)
	if method != "" && !slices.Contains(methods, method) {
		return "", fmt.Errorf("%q is not a route key: %s is not an HTTP method; write METHOD:/path (e.g. GET:/payments) or /path for every method", arg, method)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if strings.ContainsAny(path, " \t?#") {
		return "", fmt.Errorf("%q is not a route key: a path has no spaces, query or fragment; write METHOD:/path (e.g. GET:/payments)", arg)
	}
	if method == "" {
		return path, nil
	}
	return method + ":" + path, nil
}

// pathOf is the path of a route key.
func pathOf(key string) string {
	if i := strings.Index(key, ":/"); i >= 0 {
		return key[i+1:]
	}
	return key
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// routeObjectName derives a readable object name (RouteGate,
// RateLimitPolicy) from a route key:
// GET:/payments/{id} → get-payments-id, GET:/ → get-root, and for "*"
// all-routes, after the service when there is one: payments-all-routes.
func routeObjectName(service, key string) string {
	k := key
	switch {
	case key == waygatev1.AllRoutes:
		k = strings.TrimSpace(service + " all routes")
	case pathOf(key) == "/":
		k = strings.TrimSuffix(key, "/") + " root"
	}
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(k), "-"), "-")
	// Room for uniqueName's suffix within 63 characters.
	if len(base) > 52 {
		base = strings.TrimRight(base[:52], "-")
	}
	return base
}

// uniqueName is name with a short suffix from what it names, for when name
// is taken by a gate of another route.
func uniqueName(name, service, key string) string {
	sum := sha256.Sum256([]byte(service + "\x00" + key))
	return name + "-" + hex.EncodeToString(sum[:])[:6]
}

// closeMatches returns the keys among candidates that look like what the
// user meant by key: the same path with another method, or a few typing
// mistakes away. Closest first, at most three.
func closeMatches(key string, candidates []string) []string {
	type match struct {
		key  string
		dist int
	}
	var found []match
	for _, c := range candidates {
		if c == key || slices.ContainsFunc(found, func(m match) bool { return m.key == c }) {
			continue
		}
		// Another method of the same path counts as one mistake.
		d := min(distance(strings.ToLower(key), strings.ToLower(c)), 1+distance(strings.TrimSuffix(pathOf(key), "/"), strings.TrimSuffix(pathOf(c), "/")))
		if d <= max(2, len(key)/5) {
			found = append(found, match{c, d})
		}
	}
	slices.SortStableFunc(found, func(a, b match) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.key, b.key)
	})
	var out []string
	for _, m := range found[:min(len(found), 3)] {
		out = append(out, m.key)
	}
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
