package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// asUser returns a client acting as user, allowed to edit Waygate resources
// in ns, that sends fieldManager with its writes (as kubectl, the CLI or a
// GitOps controller would).
func asUser(t *testing.T, ns, user, fieldManager string) client.Client {
	t.Helper()
	for _, role := range []string{"waygate-view", "waygate-edit"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
		}
		if err := k8s.Create(context.Background(), rb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	c, err := env.As(user)
	if err != nil {
		t.Fatal(err)
	}
	if fieldManager != "" {
		c = client.WithFieldOwner(c, fieldManager)
	}
	// RBAC caches take a moment to see new bindings.
	eventually(t, 10*time.Second, func() error {
		var l waygatev1.RouteGateList
		return c.List(context.Background(), &l, client.InNamespace(ns))
	})
	return c
}

// entriesOf lists the audit entries about the object name in ns, oldest first.
func entriesOf(t *testing.T, ns, name string) []waygatev1.AuditEntry {
	t.Helper()
	var list waygatev1.AuditEntryList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.MatchingFields{"spec.target.name": name}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Spec.Timestamp.Before(&list.Items[j].Spec.Timestamp) })
	return list.Items
}

// waitEntries waits until name has n entries and returns them, oldest first;
// more than n fails at once.
func waitEntries(t *testing.T, ns, name string, n int) []waygatev1.AuditEntry {
	t.Helper()
	var got []waygatev1.AuditEntry
	eventually(t, 30*time.Second, func() error {
		got = entriesOf(t, ns, name)
		if len(got) > n {
			t.Fatalf("%s: %d audit entries, want %d:\n%s", name, len(got), n, describeEntries(got))
		}
		if len(got) < n {
			return fmt.Errorf("%s: %d audit entries, want %d:\n%s", name, len(got), n, describeEntries(got))
		}
		return nil
	})
	return got
}

func describeEntries(es []waygatev1.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s %s %s %s %s→%s %q\n", e.Spec.Timestamp.Format(time.RFC3339Nano), e.Spec.Actor, e.Spec.Platform, e.Spec.Action, e.Spec.OldStatus, e.Spec.NewStatus, e.Spec.Reason)
	}
	return b.String()
}

// entry is the part of an AuditEntry a test compares.
type entry struct {
	actor, platform, action, path, old, new, reason string
}

func brief(e waygatev1.AuditEntry) entry {
	s := e.Spec
	return entry{s.Actor, string(s.Platform), s.Action, s.Path, s.OldStatus, s.NewStatus, s.Reason}
}

func wantEntries(t *testing.T, got []waygatev1.AuditEntry, want ...entry) {
	t.Helper()
	for i := range want {
		if i >= len(got) || brief(got[i]) != want[i] {
			t.Fatalf("entries:\n%s\nwant entry %d = %+v", describeEntries(got), i, want[i])
		}
	}
}

// The seed's "Reading an entry": two people change one route; each entry
// names its actor, platform, old and new status and reason.
func TestAuditTwoUsersChangeARoute(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	alice := asUser(t, ns, "alice", "kubectl-client-side-apply")
	bob := asUser(t, ns, "bob", audit.CLIFieldManager)

	rg := routeGate(ns, "get-payments", waygatev1.RouteGateSpec{Route: "GET:/payments", State: waygatev1.RouteMaintenance, Reason: "Database migration"})
	if err := alice.Create(ctx, rg); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, ns, "get-payments", 1)
	updateAs(t, bob, rg, func(g *waygatev1.RouteGate) {
		g.Spec.State, g.Spec.Reason = waygatev1.RouteActive, "Migration done"
	})
	got := waitEntries(t, ns, "get-payments", 2)
	wantEntries(t, got,
		entry{"alice", "kubectl", "maintenance_on", "GET:/payments", "active", "maintenance", "Database migration"},
		entry{"bob", "cli", "maintenance_off", "GET:/payments", "maintenance", "active", "Migration done"},
	)
	e := got[1].Spec
	if e.Target.Kind != "RouteGate" || e.Target.UID != string(rg.UID) || e.Target.Generation != 2 {
		t.Errorf("target %+v, want RouteGate %s generation 2", e.Target, rg.UID)
	}
	if want := []string{"spec.reason: Database migration → Migration done", "spec.state: maintenance → active"}; strings.Join(e.Changes, "|") != strings.Join(want, "|") {
		t.Errorf("changes %q, want %q", e.Changes, want)
	}
	if time.Since(e.Timestamp.Time) > time.Minute {
		t.Errorf("timestamp %v is not the time of the change", e.Timestamp)
	}
	// Both changes are acknowledged in the status; the next write drops them
	// from the journal.
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		if rg.Status.AuditSequence != 2 {
			return fmt.Errorf("status.auditSequence %d, want 2", rg.Status.AuditSequence)
		}
		return nil
	})
	update(t, rg, func(g *waygatev1.RouteGate) { g.Labels = map[string]string{"team": "payments"} })
	if j := rg.Annotations[audit.JournalAnnotation]; j != "" {
		t.Errorf("journal still holds written changes: %s", j)
	}
}

// Whatever a user writes into the journal is replaced with the truth.
func TestAuditActorCannotBeForged(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	mallory := asUser(t, ns, "mallory", "")
	forged := `[{"id":"x","ts":"2020-01-01T00:00:00.000000Z","actor":"alice","platform":"dashboard","action":"disable","path":"GET:/x"}]`
	rg := routeGate(ns, "forged", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteDisabled})
	rg.Annotations = map[string]string{audit.JournalAnnotation: forged}
	if err := mallory.Create(ctx, rg); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, waitEntries(t, ns, "forged", 1), entry{"mallory", "api", "disable", "GET:/x", "active", "disabled", ""})

	// Editing the journal on an update is undone as well.
	updateAs(t, mallory, rg, func(g *waygatev1.RouteGate) {
		g.Annotations = map[string]string{audit.JournalAnnotation: forged}
		g.Spec.State = waygatev1.RouteActive
	})
	wantEntries(t, waitEntries(t, ns, "forged", 2)[1:], entry{"mallory", "api", "enable", "GET:/x", "disabled", "active", ""})
}

// Dry-run creates and updates record nothing.
func TestAuditDryRun(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	dave := asUser(t, ns, "dave", "")
	rg := routeGate(ns, "dry", waygatev1.RouteGateSpec{Route: "GET:/dry", State: waygatev1.RouteMaintenance})
	if err := dave.Create(ctx, rg.DeepCopy(), client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if err := dave.Create(ctx, rg); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, ns, "dry", 1)
	updateAs(t, dave, rg, func(g *waygatev1.RouteGate) {
		g.Spec.State = waygatev1.RouteDisabled
	}, client.DryRunAll)
	// A later real change shows the dry run left nothing behind.
	update(t, rg, func(g *waygatev1.RouteGate) { g.Spec.State = waygatev1.RouteActive })
	got := waitEntries(t, ns, "dry", 2)
	wantEntries(t, got, entry{"dave", "api", "maintenance_on", "GET:/dry", "active", "maintenance", ""},
		entry{"admin", "api", "maintenance_off", "GET:/dry", "maintenance", "active", ""})
}

// waygate.dev/audit: "false" is honoured for the trusted seeder only.
func TestAuditSuppression(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	for user, want := range map[string]int{"seeder": 0, "eve": 1} {
		c := asUser(t, ns, user, "")
		ff := boolFlag(ns, "seeded-by-"+user)
		ff.Annotations = map[string]string{audit.SuppressAnnotation: "false"}
		if err := c.Create(ctx, ff); err != nil {
			t.Fatal(err)
		}
		waitReady(t, ff, flagConds(ff), metav1.ConditionTrue, "Resolved")
		if got := len(entriesOf(t, ns, ff.Name)); got != want {
			t.Errorf("%s created a flag with audit disabled: %d entries, want %d", user, got, want)
		}
	}
}

// A change the audit webhook cannot read is refused, saying which field is
// wrong, rather than let through unrecorded.
func TestAuditRefusesWhatItCannotRead(t *testing.T) {
	ns := env.Namespace(t, "audit")
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "waygate.dev/v1alpha1", "kind": "RateLimitPolicy",
		"metadata": map[string]any{"name": "odd", "namespace": ns},
		"spec":     map[string]any{"route": "GET:/x", "limit": "5/second", "burst": "lots"},
	}}
	err := k8s.Create(context.Background(), u)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `RateLimitPolicy "odd" is invalid: spec.burst:`) {
		t.Fatalf("got %v, want Invalid naming spec.burst", err)
	}
	if n := len(entriesOf(t, ns, "odd")); n != 0 {
		t.Fatalf("%d entries for a refused change", n)
	}
}
