package cli

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/waygate-dev/waygate/internal/edit"
)

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

func TestExplainManaged(t *testing.T) {
	err := explain(fmt.Errorf("marking for deletion: %w", &edit.ManagedError{Kind: "RateLimitPolicy", Namespace: "shop", Name: "get-search", Tool: "Flux", Mark: "label kustomize.toolkit.fluxcd.io/name"}))
	want := "ratelimitpolicy shop/get-search is managed by Flux (label kustomize.toolkit.fluxcd.io/name): the next sync reverts a change made here; change it in Git, or pass --force to change it anyway"
	if err == nil || err.Error() != want {
		t.Errorf("explain(managed) = %v, want %s", err, want)
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
