package controllers_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// The real-cluster install is accepted by the API server as a whole.
func TestDefaultInstallDryRun(t *testing.T) {
	if err := env.Apply(context.Background(), filepath.Join(env.Root, "config", "default"), client.DryRunAll); err != nil {
		t.Fatalf("config/default rejected by a server-side dry run: %v", err)
	}
}

// Installed into another namespace (config/default's namespace field), the
// admission policy and the audit webhook's matchCondition name the
// operator's service account in that namespace, not waygate-system; the
// dashboard follows too, and images: renames the images (docs/install.md,
// "With kustomize").
func TestInstallIntoAnotherNamespace(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(env.Root, "config", "default", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy of config/default's kustomization as docs/install.md has users
	// write it: its resources in config/, a namespace, the dashboard, and
	// their own registry.
	dir, err := os.MkdirTemp(filepath.Join(env.Root, "bin"), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	k := "namespace: acme-waygate\n" + strings.ReplaceAll(string(raw), "- ../", "- ../../config/")
	k = strings.Replace(k, "resources:\n", "resources:\n- ../../config/dashboard\n", 1)
	for _, c := range []string{"manager", "gate"} {
		name := "- name: ghcr.io/waygate-dev/waygate-" + c + "\n"
		if !strings.Contains(k, name) {
			t.Fatalf("config/default/kustomization.yaml has no image %q", name)
		}
		k = strings.Replace(k, name, name+"  newName: registry.example.com/waygate/waygate-"+c+"\n", 1)
	}
	k = strings.Replace(k, "images:\n", "images:\n- name: ghcr.io/waygate-dev/waygate-dashboard\n  newName: registry.example.com/waygate/waygate-dashboard\n  newTag: v0.1.0\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := env.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"request.userInfo.username == 'system:serviceaccount:acme-waygate:waygate-manager'",
		"request.userInfo.username != 'system:serviceaccount:acme-waygate:waygate-manager'",
		"image: registry.example.com/waygate/waygate-manager:v0.1.0",
		"image: registry.example.com/waygate/waygate-gate:v0.1.0",
		"image: registry.example.com/waygate/waygate-dashboard:v0.1.0",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the install into acme-waygate has no %q", want)
		}
	}
	if strings.Contains(string(out), "waygate-system") {
		t.Error("the install into acme-waygate still names waygate-system")
	}
	if strings.Contains(string(out), "ghcr.io") {
		t.Error("the install with images of registry.example.com still names ghcr.io")
	}
}

// The aggregated roles give viewers read access and editors write access to
// the Waygate kinds, and audit entries are read-only for both. (envtest runs
// no controller manager, so the aggregation into the built-in view, edit and
// admin roles is checked by label; the rules are checked by binding the
// roles themselves.)
func TestAggregatedRoles(t *testing.T) {
	ns := env.Namespace(t, "deploy")
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
		c, err := env.As(user)
		if err != nil {
			t.Fatal(err)
		}
		return c
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
		// RBAC itself, not the admission policy that also refuses it.
		for _, verb := range []string{"create", "update", "delete"} {
			if mayDo(t, user, nil, authorizationv1.ResourceAttributes{Verb: verb, Group: "waygate.dev", Resource: "auditentries", Namespace: ns}) {
				t.Errorf("RBAC lets %s %s AuditEntries", user, verb)
			}
		}
	}
	if err := as("viewer").Create(ctx, routeGate(ns, "by-viewer", waygatev1.RouteGateSpec{Route: "GET:/y"})); !apierrors.IsForbidden(err) {
		t.Errorf("viewer creating a RouteGate: %v, want Forbidden", err)
	}
	if err := as("editor").Delete(ctx, routeGate(ns, "by-editor", waygatev1.RouteGateSpec{})); err != nil {
		t.Errorf("editor deleting a RouteGate: %v", err)
	}
}

// The operator may change only its own webhook configurations and
// certificate Secret, asked of the API server's authorizer.
func TestOperatorRBACIsItsOwn(t *testing.T) {
	cases := []struct {
		resource, namespace, name string
		allowed                   bool
	}{
		{"mutatingwebhookconfigurations", "", "waygate-mutating-webhook-configuration", true},
		{"validatingwebhookconfigurations", "", "waygate-validating-webhook-configuration", true},
		{"mutatingwebhookconfigurations", "", "someone-elses", false},
		{"validatingwebhookconfigurations", "", "someone-elses", false},
		{"secrets", "waygate-system", "waygate-webhook-cert", true},
		{"secrets", "waygate-system", "someone-elses", false},
		{"secrets", "default", "waygate-webhook-cert", false},
	}
	for _, tc := range cases {
		group := "admissionregistration.k8s.io"
		if tc.resource == "secrets" {
			group = ""
		}
		got := mayDo(t, controlplane.OperatorUser, []string{"system:serviceaccounts", "system:serviceaccounts:" + controlplane.OperatorNamespace},
			authorizationv1.ResourceAttributes{Verb: "update", Group: group, Resource: tc.resource, Namespace: tc.namespace, Name: tc.name})
		if got != tc.allowed {
			t.Errorf("operator may update %s %s/%s: %v, want %v", tc.resource, tc.namespace, tc.name, got, tc.allowed)
		}
	}
}

// mayDo asks the API server's authorizer (RBAC) whether user in groups may
// do what attrs say.
func mayDo(t *testing.T, user string, groups []string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: append(groups, "system:authenticated"), ResourceAttributes: &attrs,
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}
