package controllers_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func auditEntry(ns, name, path, actor string) *waygatev1.AuditEntry {
	return &waygatev1.AuditEntry{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: waygatev1.AuditEntrySpec{
			Path: path, Action: "maintenance_on", Actor: actor, Platform: waygatev1.PlatformKubectl,
			OldStatus: "active", NewStatus: "maintenance", Reason: "Database migration",
			Timestamp: metav1.NowMicro(), Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: "get-payments"},
		},
	}
}

// Entries are found by path and actor with field selectors, served by the
// API server from the CRD's selectableFields.
func TestAuditEntryFieldSelectors(t *testing.T) {
	ns := env.Namespace(t, "entries")
	ctx := context.Background()
	for _, e := range []*waygatev1.AuditEntry{
		auditEntry(ns, "a", "GET:/payments", "alice"), auditEntry(ns, "b", "GET:/payments", "bob"), auditEntry(ns, "c", "POST:/refunds", "alice"),
	} {
		if err := operator.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	for selector, want := range map[string]string{
		"spec.path=GET:/payments":                "a,b",
		"spec.actor=alice":                       "a,c",
		"spec.action=maintenance_on":             "a,b,c",
		"spec.target.kind=RouteGate":             "a,b,c",
		"spec.target.name=other":                 "",
		"spec.path=GET:/payments,spec.actor=bob": "b",
	} {
		var list waygatev1.AuditEntryList
		sel, err := fields.ParseSelector(selector)
		if err != nil {
			t.Fatal(err)
		}
		if err := k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: sel}); err != nil {
			t.Fatalf("%s: %v", selector, err)
		}
		var names []string
		for _, e := range list.Items {
			names = append(names, e.Name)
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("--field-selector %s: got [%s], want [%s]", selector, got, want)
		}
	}
}

// An entry's spec cannot be changed once written.
func TestAuditEntrySpecIsImmutable(t *testing.T) {
	ns := env.Namespace(t, "entries")
	e := auditEntry(ns, "a", "GET:/payments", "alice")
	if err := operator.Create(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	// Refused by the schema even for a cluster admin, before any policy.
	e.Spec.Actor = "mallory"
	err := k8s.Update(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "audit entries are append-only: spec cannot be changed") {
		t.Fatalf("changing an entry's actor: %v, want it refused as append-only", err)
	}
}
