package edit_test

import (
	"context"
	"os"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers/operatortest"
)

// One control plane and operator for the package; each test works in its
// own namespace, where alice may edit, carol may only view, and erin may
// change Waygate's objects but not delete them.
var env *operatortest.Env

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env}))
}

// namespace creates a namespace for one test, with the people's roles.
func namespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t, "edit")
	noDelete := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waygate-change"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{waygatev1.GroupVersion.Group},
			Resources: []string{"routegates", "featureflags", "segments", "ratelimitpolicies"},
			Verbs:     []string{"create", "update", "patch"},
		}},
	}
	objs := []client.Object{noDelete}
	for user, roles := range map[string][]rbacv1.RoleRef{
		"alice": {{Kind: "ClusterRole", Name: "waygate-view"}, {Kind: "ClusterRole", Name: "waygate-edit"}},
		"carol": {{Kind: "ClusterRole", Name: "waygate-view"}},
		"erin":  {{Kind: "ClusterRole", Name: "waygate-view"}, {Kind: "Role", Name: noDelete.Name}},
	} {
		for _, role := range roles {
			role.APIGroup = rbacv1.GroupName
			objs = append(objs, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + role.Name},
				RoleRef:    role,
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			})
		}
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The authorizer sees new bindings a moment later.
	for _, user := range []string{"alice", "carol", "erin"} {
		c := as(t, user)
		operatortest.Eventually(t, 10*time.Second, func() error {
			return c.List(ctx, &waygatev1.RouteGateList{}, client.InNamespace(ns))
		})
	}
	return ns
}

// as is a client that impersonates user.
func as(t *testing.T, user string) client.Client {
	t.Helper()
	c, err := env.As(user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
