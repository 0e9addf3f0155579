package routes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Methods are the HTTP methods a route key may name, in the order the
// gate's engine indexes them.
var Methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// ParseRouteKey normalises what a user typed into a route key: METHOD:/path with
// the method in upper case, /path, or "*". A path without its leading slash
// gets one.
func ParseRouteKey(arg string) (string, error) {
	if arg == waygatev1.AllRoutes {
		return arg, nil
	}
	method, path, hasMethod := strings.Cut(arg, ":")
	if !hasMethod || strings.HasPrefix(arg, "/") {
		method, path = "", arg
	}
	method = strings.ToUpper(method)
	if method != "" && !slices.Contains(Methods[:], method) {
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

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// Name makes s an object name: lower case, "-" for whatever a name cannot
// hold.
func Name(s string) string {
	return strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// ObjectName derives a readable object name (RouteGate,
// RateLimitPolicy) from a route key:
// GET:/payments/{id} → get-payments-id, GET:/ → get-root, and for "*"
// all-routes, after the service when there is one: payments-all-routes.
func ObjectName(service, key string) string {
	k := key
	switch {
	case key == waygatev1.AllRoutes:
		k = strings.TrimSpace(service + " all routes")
	case PathOf(key) == "/":
		k = strings.TrimSuffix(key, "/") + " root"
	}
	base := Name(k)
	// Room for UniqueName's suffix within 63 characters.
	if len(base) > 52 {
		base = strings.TrimRight(base[:52], "-")
	}
	return base
}

// UniqueName is name with a short suffix from what it names, for when name
// is taken by a gate of another route.
func UniqueName(name, service, key string) string {
	sum := sha256.Sum256([]byte(service + "\x00" + key))
	return name + "-" + hex.EncodeToString(sum[:])[:6]
}
