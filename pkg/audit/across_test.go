package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1 "k8s.io/api/core/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/pkg/audit"
)

// The newest entries across three namespaces, in time order, for an
// auditor who may list entries cluster-wide but may not list namespaces:
// spread over the last hour, days, months and before, some written before
// entries were labelled; with Limit, Since and the field filters.
func TestNewestAcrossNamespaces(t *testing.T) {
	ctx := context.Background()
	ns := []string{env.Namespace(t, "across"), env.Namespace(t, "across"), env.Namespace(t, "across")}
	op, err := client.New(env.Operator, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	actor := fmt.Sprintf("across-%d", time.Now().UnixNano()) // this test's entries only
	now := time.Now().UTC()
	ago := []time.Duration{
		10 * time.Second, 3 * time.Minute, 50 * time.Minute, 2 * time.Hour, 20 * time.Hour, 30 * time.Hour,
		3 * 24 * time.Hour, 6 * 24 * time.Hour, 12 * 24 * time.Hour, 30 * 24 * time.Hour, 60 * 24 * time.Hour,
		100 * 24 * time.Hour, 200 * 24 * time.Hour, 400 * 24 * time.Hour,
	}
	type made struct {
		id   string
		at   time.Time
		path string
	}
	var all []made
	for i, d := range ago {
		at := now.Add(-d)
		path := []string{"GET:/payments", "GET:/orders"}[i%2]
		e := audit.NewEntry(ns[i%3], fmt.Sprint("r", i), "uid", fmt.Sprint(i), waygatev1.AuditEntrySpec{
			Path: path, Action: "maintenance_on", Actor: actor, Platform: waygatev1.PlatformAPI,
			Reason: fmt.Sprint("change ", i), Timestamp: metav1.NewMicroTime(at),
			Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: fmt.Sprint("r", i), Namespace: ns[i%3]},
		})
		if i >= len(ago)-2 {
			e.Labels = nil // written before entries were labelled
		}
		if err := op.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		all = append(all, made{e.Namespace + "/" + e.Name, at, path})
	}

	create := func(obj client.Object) {
		t.Helper()
		if err := env.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	create(&rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "audit-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"waygate.dev"}, Resources: []string{"auditentries"}, Verbs: []string{"get", "list", "watch"}}},
	})
	create(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "audit-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "audit-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "auditor"}},
	})
	auditor, err := env.As("auditor")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) { // RBAC sees the binding
		if _, err = audit.GetAuditLog(ctx, auditor, "", "", 1); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := auditor.List(ctx, &corev1.NamespaceList{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the auditor listing namespaces: %v, want forbidden (the test must not need it)", err)
	}

	for _, tc := range []struct {
		name string
		q    audit.Query
		keep func(made) bool
	}{
		{"the newest 5", audit.Query{Limit: 5}, func(made) bool { return true }},
		{"the newest 8: into the days", audit.Query{Limit: 8}, func(made) bool { return true }},
		{"all of them, the unlabelled last", audit.Query{Limit: 100}, func(made) bool { return true }},
		{"since 4 days", audit.Query{Limit: 100, Since: now.Add(-4 * 24 * time.Hour)}, func(m made) bool { return m.at.After(now.Add(-4 * 24 * time.Hour)) }},
		{"since 300 days: the unlabelled too", audit.Query{Limit: 100, Since: now.Add(-300 * 24 * time.Hour)}, func(m made) bool { return m.at.After(now.Add(-300 * 24 * time.Hour)) }},
		{"one route", audit.Query{Limit: 4, Path: "GET:/orders"}, func(m made) bool { return m.path == "GET:/orders" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, m := range all { // made newest first
				if tc.keep(m) && len(want) < tc.q.Limit {
					want = append(want, m.id)
				}
			}
			tc.q.Actor = actor
			page, err := tc.q.Run(ctx, auditor)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Entries {
				got = append(got, e.Namespace+"/"+e.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got\n  %v\nwant\n  %v", got, want)
			}
		})
	}
}
