package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

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

// A burst of 50 changes by 5 users between reconciles yields exactly 50
// entries, each with its own actor.
func TestAuditBurst(t *testing.T) {
	ns := env.Namespace(t, "audit")
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
	ns := env.Namespace(t, "audit")
	rg := routeGate(ns, "restart", waygatev1.RouteGateSpec{Route: "GET:/restart"})
	create(t, rg)
	waitEntries(t, ns, "restart", 1)
	var doneAtStop int64
	p := burst(t, ns, rg, 5, 10, func(p *burstProgress) {
		p.down.Store(true)
		doneAtStop = p.done.Load()
		env.StopOperator()
		time.Sleep(time.Second)
		if err := env.StartOperator(); err != nil {
			t.Fatal(err)
		}
		p.down.Store(false)
	})
	// The restart came mid-burst: changes were made before it, and users
	// tried (and were refused) while the operator was away.
	if doneAtStop == 0 || doneAtStop >= 50 || p.refusedWhileDown.Load() == 0 {
		t.Fatalf("%d of 50 changes made before the stop, %d refused while the operator was down: the restart was not mid-burst",
			doneAtStop, p.refusedWhileDown.Load())
	}
	checkBurst(t, ns, "restart", 5, 10)
}

// burstProgress is how far a burst has come.
type burstProgress struct {
	done, refusedWhileDown atomic.Int64
	// down is set while the operator is away.
	down atomic.Bool
}

// burst makes users × each concurrent changes to rg's reason; after the
// first five it calls during (if set) while the changes go on.
func burst(t *testing.T, ns string, rg *waygatev1.RouteGate, users, each int, during func(*burstProgress)) *burstProgress {
	t.Helper()
	ctx := context.Background()
	p := &burstProgress{}
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
					err := c.Update(ctx, &cur)
					switch {
					case err == nil:
						p.done.Add(1)
					case p.down.Load() && !apierrors.IsConflict(err):
						p.refusedWhileDown.Add(1)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if during != nil {
		// Midway: once a few changes are made, with most still to come.
		for deadline := time.Now().Add(30 * time.Second); p.done.Load() < 5 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		during(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return p
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

// Audit entries are append-only for everyone but the operator, cluster
// admins included.
func TestAuditEntriesAreAppendOnly(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	e := auditEntry(ns, "kept", "GET:/payments", "alice")
	if err := operator.Create(ctx, e); err != nil {
		t.Fatalf("the operator writing an entry: %v", err)
	}
	// A namespace admin whom RBAC allows everything on entries...
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "entries-admin"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"waygate.dev"}, Resources: []string{"auditentries"}, Verbs: []string{"*"}}},
	})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nsadmin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "entries-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "nsadmin"}},
	})
	nsadmin, err := env.As("nsadmin")
	if err != nil {
		t.Fatal(err)
	}
	// ...and a member of system:masters, whom RBAC never refuses.
	root, err := env.As("root", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	for user, c := range map[string]client.Client{"nsadmin": nsadmin, "root": root} {
		var err error
		eventually(t, 10*time.Second, func() error {
			err = c.Delete(ctx, e)
			if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "cannot delete") {
				return err // RBAC has not seen the binding yet
			}
			return nil
		})
		wantRefused(t, user+" deleting", err, "audit entries are append-only: only the Waygate operator may delete them ("+user+" may not)")

		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"tampered":"yes"}}}`))
		wantRefused(t, user+" labelling", c.Patch(ctx, e, patch), "only the Waygate operator may change them")

		forged := auditEntry(ns, "forged-by-"+user, "GET:/payments", "alice")
		wantRefused(t, user+" writing", c.Create(ctx, forged), "only the Waygate operator may write them")
	}
	// The operator prunes.
	if err := operator.Delete(ctx, e); err != nil {
		t.Fatalf("the operator deleting an entry: %v", err)
	}
}

func wantRefused(t *testing.T, what string, err error, message string) {
	t.Helper()
	if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), message) {
		t.Errorf("%s: %v, want refused with %q", what, err, message)
	}
}

// Deleting any kind is audited with the deleting user; the object goes once
// the deletion is recorded.
func TestAuditDeletion(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	carol := asUser(t, ns, "carol", "")
	objs := map[client.Object]entry{
		// A deletion is called one, with its effect: the route is served again.
		routeGate(ns, "rg", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteDisabled, Reason: "old"}): {"carol", "api", "route_deleted", "GET:/x", "disabled", "active", "old"},
		boolFlag(ns, "ff"): {"carol", "api", "flag_deleted", "flag:ff", "enabled", "", ""},
		&waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "seg"}, Spec: waygatev1.SegmentSpec{Included: []string{"a"}}}:                                      {"carol", "api", "segment_deleted", "segment:seg", "1 included, 0 excluded, 0 rules", "", ""},
		&waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rlp"}, Spec: waygatev1.RateLimitPolicySpec{Route: "*", Limit: "5/second", Enabled: true}}: {"carol", "api", "rl_policy_deleted", audit.GlobalPath, "5/second", "", ""},
	}
	for obj, want := range objs {
		create(t, obj)
		waitEntries(t, ns, obj.GetName(), 1)
		// Dry runs record nothing: no deletion waits in the journal.
		if err := carol.Delete(ctx, obj, client.DryRunAll); err != nil {
			t.Fatalf("dry-run delete of %s: %v", obj.GetName(), err)
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		journal, err := audit.Journal(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range journal {
			if r.Delete {
				t.Fatalf("a dry-run delete of %s was recorded: %+v", obj.GetName(), r)
			}
		}
		if err := carol.Delete(ctx, obj); err != nil {
			t.Fatalf("deleting %s: %v", obj.GetName(), err)
		}
		got := waitEntries(t, ns, obj.GetName(), 2)
		wantEntries(t, got[1:], want)
		eventually(t, 10*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s still there (finalizers %v): %w", obj.GetName(), obj.GetFinalizers(), err)
			}
			return nil
		})
	}
}

// A DELETE carries no field manager: our clients mark the platform of the
// deletion on the object first. The mark stays only when the writer's own
// platform is the one it names, so kubectl cannot pass for the CLI.
func TestAuditDeletionPlatform(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	kubectl := asUser(t, ns, "dan", "kubectl-edit")
	cli := asUser(t, ns, "erin", audit.CLIFieldManager)
	mark := func(rg *waygatev1.RouteGate) {
		metav1.SetMetaDataAnnotation(&rg.ObjectMeta, audit.PlatformAnnotation, "cli")
	}
	for _, tc := range []struct {
		name   string
		marker client.Client
		want   entry
	}{
		{"by-kubectl", kubectl, entry{"dan", "api", "route_deleted", "GET:/by-kubectl", "active", "active", ""}},
		{"by-cli", cli, entry{"erin", "cli", "route_deleted", "GET:/by-cli", "active", "active", ""}},
	} {
		rg := routeGate(ns, tc.name, waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:/" + tc.name), State: waygatev1.RouteActive})
		create(t, rg)
		updateAs(t, tc.marker, rg, mark)
		_, kept := rg.Annotations[audit.PlatformAnnotation]
		if kept != (tc.marker == cli) {
			t.Errorf("%s: platform mark kept = %v", tc.name, kept)
		}
		if err := tc.marker.Delete(ctx, rg); err != nil {
			t.Fatal(err)
		}
		got := waitEntries(t, ns, tc.name, 2)
		wantEntries(t, got[1:], tc.want)
	}
}

// A user cannot let a deletion go before it is recorded by removing the
// finalizer: the webhook keeps it, and the entry names the deleter.
func TestAuditFinalizerIsKept(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	frank := asUser(t, ns, "frank", "")
	rg := routeGate(ns, "held", waygatev1.RouteGateSpec{Route: "GET:/held"})
	if err := frank.Create(ctx, rg); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, ns, "held", 1)
	if !controllerutil.ContainsFinalizer(rg, audit.Finalizer) {
		t.Fatalf("finalizers %v, want %s", rg.Finalizers, audit.Finalizer)
	}
	updateAs(t, frank, rg, func(g *waygatev1.RouteGate) {
		g.Finalizers = nil
	})
	if !controllerutil.ContainsFinalizer(rg, audit.Finalizer) {
		t.Fatalf("frank removed the audit finalizer: %v", rg.Finalizers)
	}
	if err := frank.Delete(ctx, rg); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, waitEntries(t, ns, "held", 2)[1:], entry{"frank", "api", "route_deleted", "GET:/held", "active", "active", ""})
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

// GetAuditLog reads entries newest first, filtered by path, limited; the
// retention prunes by count and by age and exports what it prunes.
func TestAuditLogAndRetention(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC()
	for i := range 6 {
		path := "GET:/payments"
		if i%2 == 1 {
			path = "POST:/refunds"
		}
		at := base.Add(time.Duration(i) * time.Minute)
		// Named as the operator names entries: time first.
		e := auditEntry(ns, audit.TimeKey(at)+fmt.Sprintf("-e%d", i), path, "alice")
		e.Spec.Timestamp = metav1.NewMicroTime(at)
		if err := operator.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	names := func(es []waygatev1.AuditEntry) string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name[strings.LastIndexByte(e.Name, '-')+1:])
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		path  string
		limit int
		want  string
	}{
		{"", 0, "e5,e4,e3,e2,e1,e0"},
		{"GET:/payments", 0, "e4,e2,e0"},
		{"", 2, "e5,e4"},
		{"POST:/refunds", 1, "e5"},
		{"flag:none", 0, ""},
	} {
		got, err := audit.GetAuditLog(ctx, operator, ns, tc.path, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != tc.want {
			t.Errorf("GetAuditLog(%q, %d) = [%s], want [%s]", tc.path, tc.limit, names(got), tc.want)
		}
	}

	// Pages by continue token, each the next older entries; Since stops
	// the reading at the first older entry.
	q := audit.Query{Namespace: ns, Limit: 2}
	var pages []string
	for {
		page, err := q.Run(ctx, operator)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, names(page.Entries))
		if q.Continue = page.Continue; q.Continue == "" {
			break
		}
	}
	if got := strings.Join(pages, " | "); got != "e5,e4 | e3,e2 | e1,e0" {
		t.Errorf("pages [%s], want [e5,e4 | e3,e2 | e1,e0]", got)
	}
	page, err := audit.Query{Namespace: ns, Limit: 10, Since: base.Add(210 * time.Second)}.Run(ctx, operator)
	if err != nil || names(page.Entries) != "e5,e4" || page.Continue != "" {
		t.Errorf("since 3.5 minutes in: [%s] continue %q (%v), want [e5,e4] and no continue", names(page.Entries), page.Continue, err)
	}

	// A failed delete does not stop the others: all are tried, all reported.
	nobody, err := env.As("nobody")
	if err != nil {
		t.Fatal(err)
	}
	failing := &audit.Retention{Reader: operator, Client: nobody, Namespace: ns, MaxPerNamespace: 4, MaxAge: 58 * time.Minute}
	if n, err := failing.Prune(ctx, time.Now()); n != 0 || err == nil || strings.Count(err.Error(), "deleting audit entry") != 3 {
		t.Fatalf("pruning without the right to delete: %d pruned, %v; want 0 and three failures", n, err)
	}

	var exported bytes.Buffer
	r := &audit.Retention{Reader: operator, Client: operator, Namespace: ns, MaxPerNamespace: 4, MaxAge: 58 * time.Minute, Export: &exported}
	n, err := r.Prune(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Count keeps e2..e5; age (58 minutes) also takes e2 (58+ minutes old).
	left, err := audit.GetAuditLog(ctx, operator, ns, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || names(left) != "e5,e4,e3" {
		t.Fatalf("pruned %d, left [%s]; want 3 pruned, [e5,e4,e3] left", n, names(left))
	}
	lines := strings.Split(strings.TrimSpace(exported.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("exported %d lines, want 3:\n%s", len(lines), exported.String())
	}
	// Pruned as read: newest first.
	for i, want := range []string{"e2", "e1", "e0"} {
		var e waygatev1.AuditEntry
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil || !strings.HasSuffix(e.Name, "-"+want) || e.Spec.Actor != "alice" {
			t.Errorf("export line %d = %s (%v), want entry %s", i, lines[i], err, want)
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

// The API server does not call the audit webhook for the operator's own
// writes: the webhook configuration's matchCondition excludes them. A
// deletion makes two (the record of the DELETE on the object, the finalizer
// let go); the webhook sees neither.
func TestOperatorWritesSkipTheAuditWebhook(t *testing.T) {
	ns := env.Namespace(t, "audit")
	webhookUpdates := func() float64 {
		t.Helper()
		rc, err := rest.HTTPClientFor(env.Admin)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rc.Get(strings.TrimSuffix(env.Admin.Host, "/") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, `apiserver_admission_webhook_admission_duration_seconds_count{name="audit.waygate.dev",operation="UPDATE"`) {
				v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				return v
			}
		}
		return 0
	}
	rg := routeGate(ns, "rg", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteMaintenance})
	create(t, rg)
	waitEntries(t, ns, "rg", 1)
	before := webhookUpdates()
	if err := k8s.Delete(context.Background(), rg); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, ns, "rg", 2)
	eventually(t, 10*time.Second, func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})
	if got := webhookUpdates() - before; got != 0 {
		t.Fatalf("the audit webhook was called for %v UPDATEs during a deletion: the operator's writes should skip it", got)
	}
}

// Only the operator writes status: a namespace admin whom RBAC gives every
// */status right still cannot raise status.auditSequence (which would drop
// changes before they are recorded), nor touch the state it reports.
func TestOnlyTheOperatorWritesStatus(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "status-writer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"waygate.dev"}, Resources: []string{"*/status"}, Verbs: []string{"get", "update", "patch"}}},
	})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nsadmin-status-writer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "status-writer"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "nsadmin"}},
	})
	nsadmin := asUser(t, ns, "nsadmin", "")
	rg := routeGate(ns, "rg", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteMaintenance})
	create(t, rg)
	waitEntries(t, ns, "rg", 1)
	// RBAC allows it: what refuses it is the policy.
	if !mayDo(t, "nsadmin", nil, authorizationv1.ResourceAttributes{Verb: "update", Group: "waygate.dev", Resource: "routegates", Subresource: "status", Namespace: ns}) {
		t.Fatal("RBAC does not let nsadmin update status; the test proves nothing")
	}
	var err error
	eventually(t, 10*time.Second, func() error {
		if err := nsadmin.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		rg.Status.AuditSequence += 100
		rg.Status.State = waygatev1.RouteActive
		err = nsadmin.Status().Update(ctx, rg)
		if apierrors.IsConflict(err) {
			return err
		}
		return nil
	})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "written by the Waygate operator only") {
		t.Fatalf("nsadmin writing status: %v, want refused by the policy", err)
	}
}

// A deletion of an object that no finalizer holds (written by the operator's
// own identity, or older than the webhook) is recorded all the same.
func TestAuditDeletionWithoutFinalizer(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	dan := asUser(t, ns, "dan", "")
	// An object without the finalizer, as before the webhook was installed:
	// the operator's identity (which the webhook does not see) takes it off.
	// The delete is made while that version is current, so that the
	// controller cannot have put the finalizer back in between.
	var name string
	eventually(t, 20*time.Second, func() error {
		name = fmt.Sprintf("bare-%d", time.Now().UnixNano())
		rg := routeGate(ns, name, waygatev1.RouteGateSpec{Route: "GET:/bare", State: waygatev1.RouteDisabled})
		create(t, rg)
		waitEntries(t, ns, name, 1)
		if err := operator.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		rg.Finalizers = nil
		if err := operator.Update(ctx, rg); err != nil {
			return err
		}
		rv := rg.ResourceVersion
		return dan.Delete(ctx, rg, client.Preconditions{ResourceVersion: &rv})
	})
	wantEntries(t, waitEntries(t, ns, name, 2)[1:], entry{"dan", "api", "route_deleted", "GET:/bare", "disabled", "active", ""})
}

// A journal record the webhook did not write (planted with the operator's
// identity, which the webhook does not see) is recorded as audit_tampered,
// not as the change it claims; one dated ahead does not stall the drain.
func TestAuditTamperedJournal(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	rg := routeGate(ns, "planted", waygatev1.RouteGateSpec{Route: "GET:/planted", State: waygatev1.RouteMaintenance})
	create(t, rg)
	waitEntries(t, ns, "planted", 1)
	eventually(t, 10*time.Second, func() error {
		if err := operator.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		// Plant after the creation is acknowledged, so as to replace no
		// record of it.
		if rg.Status.AuditSequence < 1 {
			return fmt.Errorf("creation not acknowledged yet")
		}
		next := rg.Status.AuditSequence + 1
		forged := []audit.Record{
			{ID: "forged-1", Seq: next, Time: metav1.NowMicro(), Actor: "ceo", Platform: waygatev1.PlatformKubectl,
				Action: "maintenance_off", Path: "GET:/planted", Old: "maintenance", New: "active"},
			{ID: "forged-2", Seq: next + 1, Time: metav1.NewMicroTime(clk.Now().Add(time.Hour)), Actor: "ceo", Platform: waygatev1.PlatformKubectl,
				Action: "route_deleted", Path: "GET:/planted", Delete: true},
		}
		if err := audit.SetJournal(rg, forged); err != nil {
			t.Fatal(err)
		}
		return operator.Update(ctx, rg)
	})
	got := waitEntries(t, ns, "planted", 3)
	for _, e := range got[1:] {
		if e.Spec.Action != audit.ActionTampered || e.Spec.Actor != audit.UnknownActor || !strings.Contains(e.Spec.Reason, "by ceo") {
			t.Errorf("planted record written as %s by %s (%q), want audit_tampered by unknown", e.Spec.Action, e.Spec.Actor, e.Spec.Reason)
		}
	}
	// The gate is still there: a planted deletion deletes nothing.
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(rg), rg); err != nil || rg.DeletionTimestamp != nil {
		t.Fatalf("the gate after a planted deletion: %v, deleting %v", err, rg.DeletionTimestamp)
	}
}
