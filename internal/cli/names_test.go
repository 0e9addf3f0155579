package cli

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestRouteKey(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "GET:/payments", want: "GET:/payments"},
		{in: "get:/payments", want: "GET:/payments"},
		{in: "/payments", want: "/payments"},
		{in: "payments", want: "/payments"},
		{in: "*", want: "*"},
		{in: "/items/{id}", want: "/items/{id}"},
		{in: "FETCH:/x", err: `"FETCH:/x" is not a route key: FETCH is not an HTTP method; write METHOD:/path (e.g. GET:/payments) or /path for every method`},
		{in: "GET:/a b", err: `"GET:/a b" is not a route key: a path has no spaces, query or fragment; write METHOD:/path (e.g. GET:/payments)`},
		{in: "/a?b=1", err: `"/a?b=1" is not a route key: a path has no spaces, query or fragment; write METHOD:/path (e.g. GET:/payments)`},
	} {
		got, err := routeKey(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("routeKey(%q): %v, want error %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("routeKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestGateName(t *testing.T) {
	for _, tc := range []struct{ service, key, want string }{
		{"", "GET:/payments", "get-payments"},
		{"payments", "GET:/payments/{id}", "get-payments-id"},
		{"", "/v1/orders", "v1-orders"},
		{"", "GET:/", "get-root"},
		{"", "/", "root"},
		{"", "*", "all-routes"},
		{"orders", "*", "orders-all-routes"},
		{"", "GET:/a/very/long/path/that/goes/on/and/on/beyond/any/reasonable/length", "get-a-very-long-path-that-goes-on-and-on-beyond-any"},
	} {
		if got := routeObjectName(tc.service, tc.key); got != tc.want {
			t.Errorf("routeObjectName(%q, %q) = %q, want %q", tc.service, tc.key, got, tc.want)
		}
	}
	if a, b := uniqueName("x", "s", "GET:/x"), uniqueName("x", "t", "GET:/x"); a == b || len(a) != len("x-")+6 {
		t.Errorf("uniqueName: %q and %q", a, b)
	}
}

func TestCloseMatches(t *testing.T) {
	keys := []string{"GET:/payments", "POST:/payments", "GET:/orders", "/debug", "GET:/payments"}
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"GET:/paymnts", []string{"GET:/payments", "POST:/payments"}},
		{"PUT:/payments", []string{"GET:/payments", "POST:/payments"}},
		{"/payment", []string{"GET:/payments", "POST:/payments"}},
		{"/debug/", []string{"/debug"}},
		{"GET:/order", []string{"GET:/orders"}},
		{"/metrics", nil},
	} {
		if got := closeMatches(tc.key, keys); !slices.Equal(got, tc.want) {
			t.Errorf("closeMatches(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestExplainNoWaygateAPI(t *testing.T) {
	err := explain(&meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "waygate.dev", Kind: "RouteGate"}, SearchedVersions: []string{"v1alpha1"}})
	if err == nil || err.Error() != "this cluster has no Waygate API (waygate.dev/v1alpha1): install Waygate (make deploy), or pick another cluster with --context" {
		t.Errorf("explain(no match) = %v", err)
	}
}

func TestCause(t *testing.T) {
	for _, tc := range []struct {
		cause metav1.StatusCause
		want  string
	}{
		{metav1.StatusCause{Field: "spec.window", Message: "Invalid value: window.end must be after window.start"}, "spec.window: window.end must be after window.start"},
		{metav1.StatusCause{Field: "spec.state", Message: `Invalid value: "object": needs state active`}, "spec.state: needs state active"},
		{metav1.StatusCause{Field: "spec.state", Message: `Unsupported value: "on": supported values: "active"`}, `spec.state: Unsupported value: "on": supported values: "active"`},
		{metav1.StatusCause{Message: "metadata.name: Required value"}, "metadata.name: Required value"},
	} {
		if got := cause(tc.cause); got != tc.want {
			t.Errorf("cause(%+v) = %q, want %q", tc.cause, got, tc.want)
		}
	}
}
