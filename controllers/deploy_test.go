package controllers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// The real-cluster install is accepted by the API server as a whole.
func TestDefaultInstallDryRun(t *testing.T) {
	if err := cp.Apply(context.Background(), filepath.Join(cp.Root, "config", "default"), client.DryRunAll); err != nil {
		t.Fatalf("config/default rejected by a server-side dry run: %v", err)
	}
}

// The aggregated roles give viewers read access and editors write access to
// the Waygate kinds, and audit entries are read-only for both. (envtest runs
// no controller manager, so the aggregation into the built-in view, edit and
// admin roles is checked by label; the rules are checked by binding the
// roles themselves.)
func TestAggregatedRoles(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	aggregatesTo := map[string][]string{"waygate-view": {"view", "edit", "admin"}, "waygate-edit": {"edit", "admin"}}
	for role, builtins := range aggregatesTo {
		var cr rbacv1.ClusterRole
		if err := k8s.Get(ctx, client.ObjectKey{Name: role}, &cr); err != nil {
			t.Fatal(err)
		}
		for _, b := range builtins {
			if cr.Labels["rbac.authorization.k8s.io/aggregate-to-"+b] != "true" {
				t.Errorf("ClusterRole %s does not aggregate to %s", role, b)
			}
		}
	}
	bindings := map[string][]string{"viewer": {"waygate-view"}, "editor": {"waygate-view", "waygate-edit"}}
	for user, roles := range bindings {
		for _, role := range roles {
			create(t, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + role},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
			})
		}
	}
	as := func(user string) client.Client {
		c, err := cp.As(user)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	entry := func(name string) *waygatev1.AuditEntry {
		return &waygatev1.AuditEntry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: waygatev1.AuditEntrySpec{Path: "GET:/x", Action: "enable", Actor: "mallory", Platform: waygatev1.PlatformAPI,
				Timestamp: metav1.NowMicro(), Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: "x"}},
		}
	}

	// The authorizer's view of new bindings may lag a moment.
	eventually(t, 10*time.Second, func() error {
		return as("editor").Create(ctx, routeGate(ns, "by-editor", waygatev1.RouteGateSpec{Route: "GET:/x"}))
	})
	for _, user := range []string{"viewer", "editor"} {
		var gates waygatev1.RouteGateList
		if err := as(user).List(ctx, &gates, client.InNamespace(ns)); err != nil {
			t.Errorf("%s cannot list RouteGates: %v", user, err)
		}
		var entries waygatev1.AuditEntryList
		if err := as(user).List(ctx, &entries, client.InNamespace(ns)); err != nil {
			t.Errorf("%s cannot list AuditEntries: %v", user, err)
		}
		if err := as(user).Create(ctx, entry("by-"+user)); !apierrors.IsForbidden(err) {
			t.Errorf("%s creating an AuditEntry: %v, want Forbidden", user, err)
		}
	}
	if err := as("viewer").Create(ctx, routeGate(ns, "by-viewer", waygatev1.RouteGateSpec{Route: "GET:/y"})); !apierrors.IsForbidden(err) {
		t.Errorf("viewer creating a RouteGate: %v, want Forbidden", err)
	}
	if err := as("editor").Delete(ctx, routeGate(ns, "by-editor", waygatev1.RouteGateSpec{})); err != nil {
		t.Errorf("editor deleting a RouteGate: %v", err)
	}
}
