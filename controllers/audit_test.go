package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// asUser returns a client acting as user, allowed to edit Waygate resources
// in ns, that sends fieldManager with its writes (as kubectl, the CLI or a
// GitOps controller would).
func asUser(t *testing.T, ns, user, fieldManager string, groups ...string) client.Client {
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
	c, err := cp.As(user, groups...)
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
			return fmt.Errorf("%s: %d audit entries, want %d", name, len(got), n)
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
	ns := namespace(t)
	ctx := context.Background()
	alice := asUser(t, ns, "alice", "kubectl-client-side-apply")
	bob := asUser(t, ns, "bob", audit.CLIFieldManager)

	rg := routeGate(ns, "get-payments", waygatev1.RouteGateSpec{Route: "GET:/payments", State: waygatev1.RouteMaintenance, Reason: "Database migration"})
	if err := alice.Create(ctx, rg); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, ns, "get-payments", 1)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := bob.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		rg.Spec.State, rg.Spec.Reason = waygatev1.RouteActive, "Migration done"
		return bob.Update(ctx, rg)
	}); err != nil {
		t.Fatal(err)
	}
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
	// The journal is empty once drained.
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		if j := rg.Annotations[audit.JournalAnnotation]; j != "" {
			return fmt.Errorf("journal not drained: %s", j)
		}
		return nil
	})
}

// Whatever a user writes into the journal is replaced with the truth.
func TestAuditActorCannotBeForged(t *testing.T) {
	ns := namespace(t)
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
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := mallory.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		rg.Annotations = map[string]string{audit.JournalAnnotation: forged}
		rg.Spec.State = waygatev1.RouteActive
		return mallory.Update(ctx, rg)
	}); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, waitEntries(t, ns, "forged", 2)[1:], entry{"mallory", "api", "enable", "GET:/x", "disabled", "active", ""})
}

// A burst of 50 changes by 5 users between reconciles yields exactly 50
// entries, each with its own actor.
func TestAuditBurst(t *testing.T) {
	ns := namespace(t)
	rg := routeGate(ns, "burst", waygatev1.RouteGateSpec{Route: "GET:/burst"})
	create(t, rg)
	waitEntries(t, ns, "burst", 1)
	burst(t, ns, rg, 5, 10, nil)
	checkBurst(t, ns, "burst", 5, 10)
}

// The same burst while the operator stops and starts again: the changes made
// before the stop are in the journal, those during it wait (the webhook is
// away, so the API server refuses them and the users retry), and after the
// restart there are still exactly 50 entries.
func TestAuditBurstAcrossOperatorRestart(t *testing.T) {
	ns := namespace(t)
	rg := routeGate(ns, "restart", waygatev1.RouteGateSpec{Route: "GET:/restart"})
	create(t, rg)
	waitEntries(t, ns, "restart", 1)
	burst(t, ns, rg, 5, 10, func() {
		stopOperator()
		time.Sleep(time.Second)
		var err error
		if stopOperator, err = startOperator(); err != nil {
			t.Fatal(err)
		}
	})
	checkBurst(t, ns, "restart", 5, 10)
}

// burst makes users × each concurrent changes to rg's reason; midway it
// calls during (if set) while the changes go on.
func burst(t *testing.T, ns string, rg *waygatev1.RouteGate, users, each int, during func()) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, users)
	clients := make([]client.Client, users)
	for u := range users {
		clients[u] = asUser(t, ns, fmt.Sprintf("user-%d", u), "kubectl-edit")
	}
	for u := range users {
		c := clients[u]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Retry through conflicts and through the operator being away.
				err := wait(60*time.Second, func() error {
					var cur waygatev1.RouteGate
					if err := c.Get(ctx, client.ObjectKeyFromObject(rg), &cur); err != nil {
						return err
					}
					cur.Spec.Reason = fmt.Sprintf("user-%d change %d", u, i)
					return c.Update(ctx, &cur)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if during != nil {
		time.Sleep(300 * time.Millisecond)
		during()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func checkBurst(t *testing.T, ns, name string, users, each int) {
	t.Helper()
	got := waitEntries(t, ns, name, 1+users*each)
	perActor := map[string]int{}
	reasons := map[string]bool{}
	for _, e := range got[1:] {
		perActor[e.Spec.Actor]++
		if reasons[e.Spec.Reason] {
			t.Errorf("change %q recorded twice", e.Spec.Reason)
		}
		reasons[e.Spec.Reason] = true
		if !strings.HasPrefix(e.Spec.Reason, e.Spec.Actor+" ") {
			t.Errorf("entry by %s records %q, a change of another user", e.Spec.Actor, e.Spec.Reason)
		}
	}
	for u := range users {
		if n := perActor[fmt.Sprintf("user-%d", u)]; n != each {
			t.Errorf("user-%d has %d entries, want %d", u, n, each)
		}
	}
}

// wait retries f until it succeeds or the timeout passes.
func wait(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
