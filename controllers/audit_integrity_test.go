package controllers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

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

// A journal record the webhook did not write (planted with the operator's
// identity, which the webhook does not see) is recorded as audit_tampered,
// not as the change it claims; one dated ahead does not stall the drain.
func TestAuditTamperedJournal(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	rg := routeGate(ns, "planted", waygatev1.RouteGateSpec{Route: "GET:/planted", State: waygatev1.RouteMaintenance})
	create(t, rg)
	waitEntries(t, ns, "planted", 1)
	// Planted after the creation is acknowledged, so as to replace no
	// record of it.
	acknowledged(t, rg, 1)
	asOperator(t, rg, func(rg *waygatev1.RouteGate) {
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

// A change written past the webhook (with the operator's identity, which
// the webhook does not see) leaves a trace: the generation no record
// accounts for becomes an audit_gap entry; so do journal records removed
// past it. Changes made as usual afterwards are recorded as usual.
func TestAuditGapPastTheWebhook(t *testing.T) {
	ns := env.Namespace(t, "audit")
	rg := routeGate(ns, "bypassed", waygatev1.RouteGateSpec{Route: "GET:/bypassed", State: waygatev1.RouteActive})
	create(t, rg)
	waitEntries(t, ns, "bypassed", 1)
	asOperator(t, rg, func(rg *waygatev1.RouteGate) { rg.Spec.State = waygatev1.RouteDisabled })
	got := waitEntries(t, ns, "bypassed", 2)
	if s := got[1].Spec; s.Action != audit.ActionGap || s.Actor != audit.UnknownActor || s.Path != "GET:/bypassed" || s.Target.Generation != 2 ||
		!strings.Contains(s.Reason, "generation 2 of RouteGate "+ns+"/bypassed was written past the audit webhook") {
		t.Fatalf("after a change past the webhook:\n%s\nwant an audit_gap entry for generation 2", describeEntries(got))
	}

	update(t, rg, func(g *waygatev1.RouteGate) { g.Spec.State = waygatev1.RouteMaintenance })
	got = waitEntries(t, ns, "bypassed", 3)
	if s := got[2].Spec; s.Actor != "admin" || s.Action == audit.ActionGap {
		t.Fatalf("a change through the webhook after the gap:\n%s\nwant it recorded as admin's", describeEntries(got))
	}

	// Records removed from the journal: the operator's identity plants one
	// numbered two past the last, as if two had been taken out.
	acknowledged(t, rg, 2)
	asOperator(t, rg, func(rg *waygatev1.RouteGate) {
		next := rg.Status.AuditSequence + 3
		if err := audit.SetJournal(rg, []audit.Record{{ID: "planted", Seq: next, Time: metav1.NowMicro(), Actor: "ceo",
			Action: "maintenance_off", Path: "GET:/bypassed", Generation: rg.Generation}}); err != nil {
			t.Fatal(err)
		}
	})
	got = waitEntries(t, ns, "bypassed", 5)
	var gap, planted bool
	for _, e := range got[3:] {
		gap = gap || e.Spec.Action == audit.ActionGap && strings.Contains(e.Spec.Reason, "journal records 3 to 4 of RouteGate "+ns+"/bypassed are missing")
		planted = planted || e.Spec.Action == audit.ActionTampered
	}
	if !gap || !planted {
		t.Fatalf("after records were removed past the webhook:\n%s\nwant an audit_gap for records 3 to 4 and the planted one as audit_tampered", describeEntries(got))
	}
}

// A manifest with metadata.generateName, created with kubectl, is recorded
// as its creator's: the webhook names the object before it signs the
// record, so the controller verifies what was signed.
func TestAuditGenerateName(t *testing.T) {
	ns := env.Namespace(t, "audit")
	asUser(t, ns, "alice", "")
	kubeconfig := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := controlplane.WriteKubeconfig(env.Admin, kubeconfig); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(controlplane.AssetsDir(env.Root), "kubectl"), "--kubeconfig", kubeconfig, "--as", "alice",
		"create", "-o", "name", "-f", "-")
	cmd.Stdin = strings.NewReader(`apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata:
  generateName: payments-
  namespace: ` + ns + `
spec:
  route: GET:/payments
  state: maintenance
  reason: migrating the ledger
`)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl create: %v\n%s", err, out)
	}
	name := strings.TrimPrefix(strings.TrimSpace(string(out)), "routegate.waygate.dev/")
	if !strings.HasPrefix(name, "payments-") || len(name) != len("payments-")+5 {
		t.Fatalf("kubectl created %q, want payments- and five characters", out)
	}
	got := waitEntries(t, ns, name, 1)
	if s := got[0].Spec; s.Actor != "alice" || s.Platform != waygatev1.PlatformKubectl || s.Action == audit.ActionTampered || s.Reason != "migrating the ledger" {
		t.Fatalf("a generateName create:\n%s\nwant it recorded as alice's, from kubectl", describeEntries(got))
	}
}

// Two webhook replicas and the leader during a key rotation, in the order
// that hurts: the leader reads the keys, the rotation (a new key first)
// reaches one webhook replica, which signs a change with the new key at
// once, while the other still signs with the old one. The leader, on the
// old keys read a moment before, records both changes as their actors'.
func TestAuditKeyRotationAcrossReplicas(t *testing.T) {
	ns := env.Namespace(t, "audit") // the keys of this test live here
	ctx := context.Background()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	keys := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: audit.KeySecret},
		Data:       map[string][]byte{"keys": []byte(b64("the-old-key-0123456789") + "\n")},
	}
	create(t, keys)
	load := func() *audit.Keyring {
		t.Helper()
		k, err := audit.LoadKeyring(ctx, k8s, k8s, ns)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	leader, oldReplica := load(), load()
	keys.Data["keys"] = []byte(b64("the-new-key-0123456789") + "\n" + b64("the-old-key-0123456789") + "\n")
	if err := k8s.Update(ctx, keys); err != nil {
		t.Fatal(err)
	}
	newReplica := load()

	rg := routeGate(ns, "rotated", waygatev1.RouteGateSpec{Route: "GET:/rotated", State: waygatev1.RouteMaintenance})
	rg.UID, rg.Generation, rg.Finalizers = "0b9c5b8e-rotated", 2, []string{audit.Finalizer}
	recs := []audit.Record{
		{ID: "by-the-old-key", Seq: 1, Time: metav1.NewMicroTime(time.Now().Add(-time.Second)), Actor: "alice", Platform: waygatev1.PlatformKubectl,
			Action: "route_created", Path: "GET:/rotated", New: "active", Generation: 1},
		{ID: "by-the-new-key", Seq: 2, Time: metav1.NowMicro(), Actor: "bob", Platform: waygatev1.PlatformKubectl,
			Action: "maintenance_on", Path: "GET:/rotated", Old: "active", New: "maintenance", Generation: 2},
	}
	oldReplica.Sign(rg, &recs[0])
	newReplica.Sign(rg, &recs[1])
	if leader.Verify(rg, recs[1]) {
		t.Fatal("the leader's keys verify the new key's signature: the test does not rotate")
	}
	if err := audit.SetJournal(rg, recs); err != nil {
		t.Fatal(err)
	}
	w := &audit.Writer{Client: operator, Keys: leader, Clock: clk}
	if _, _, err := w.Drain(ctx, rg); err != nil {
		t.Fatal(err)
	}
	got := waitEntries(t, ns, "rotated", 2)
	for i, want := range []string{"alice", "bob"} {
		if s := got[i].Spec; s.Actor != want || s.Action == audit.ActionTampered {
			t.Fatalf("after a rotation:\n%s\nwant the changes of alice (old key) and bob (new key) as theirs", describeEntries(got))
		}
	}
}

// The finalizer the operator puts back is a patch of the metadata: it
// leaves the spec as stored (here with fields this version of the kind
// leaves out when empty, written explicitly past the webhook) and makes no
// generation, so the one change past the webhook is one audit_gap.
func TestAuditFinalizerKeepsTheSpec(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	create(t, &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "explicit"},
		Spec: waygatev1.RateLimitPolicySpec{Route: "GET:/explicit", Limit: "5/second"}})
	waitEntries(t, ns, "explicit", 1)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(waygatev1.GroupVersion.WithKind("RateLimitPolicy"))
	eventually(t, 10*time.Second, func() error {
		if err := operator.Get(ctx, client.ObjectKey{Namespace: ns, Name: "explicit"}, u); err != nil {
			return err
		}
		u.SetFinalizers(nil)
		spec := u.Object["spec"].(map[string]any)
		spec["caseSensitive"], spec["exemptCIDRs"] = false, []any{}
		return operator.Update(ctx, u)
	})
	var p waygatev1.RateLimitPolicy
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), &p); err != nil {
			return err
		}
		if len(p.Finalizers) == 0 || p.Status.AuditedGeneration != p.Generation {
			return fmt.Errorf("finalizers %v, status.auditedGeneration %d, generation %d", p.Finalizers, p.Status.AuditedGeneration, p.Generation)
		}
		return nil
	})
	time.Sleep(time.Second) // no second gap
	got := waitEntries(t, ns, "explicit", 2)
	if p.Generation != 2 || got[1].Spec.Action != audit.ActionGap || got[1].Spec.Target.Generation != 2 {
		t.Fatalf("generation %d, entries:\n%s\nwant generation 2 and one audit_gap, for it", p.Generation, describeEntries(got))
	}
}

// Writes that make a new generation without changing what the log
// describes are accounted for, not taken for changes past the webhook: a
// number written as 10.0 where 10 was (which the API server counts as a
// change of the spec), and a change a trusted seeder suppressed.
func TestAuditNoFalseGaps(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	p := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "floats"},
		Spec: waygatev1.RateLimitPolicySpec{Route: "GET:/floats", Limit: "5/second", Burst: 10}}
	create(t, p)
	waitEntries(t, ns, "floats", 1)
	// The journal drained, and the request drops it: the webhook would have
	// nothing to patch.
	acknowledged(t, p, 1)
	if err := k8s.Patch(ctx, p, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"waygate.dev/journal":null}},"spec":{"burst":10.0}}`))); err != nil {
		t.Fatal(err)
	}

	seeder := asUser(t, ns, "seeder", "")
	ff := boolFlag(ns, "seeded")
	ff.Annotations = map[string]string{audit.SuppressAnnotation: "false"}
	if err := seeder.Create(ctx, ff); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if err := seeder.Get(ctx, client.ObjectKeyFromObject(ff), ff); err != nil {
			return err
		}
		ff.Spec.Description = "seeded again"
		return seeder.Update(ctx, ff)
	})
	eventually(t, 10*time.Second, func() error {
		for _, o := range []audit.Object{p, ff} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return err
			}
			if o.Common().AuditedGeneration != o.GetGeneration() {
				return fmt.Errorf("%s: status.auditedGeneration %d, generation %d", o.GetName(), o.Common().AuditedGeneration, o.GetGeneration())
			}
		}
		return nil
	})
	time.Sleep(time.Second)
	waitEntries(t, ns, "floats", 1)
	waitEntries(t, ns, "seeded", 0)
}

// acknowledged waits until obj's status acknowledges n changes (reading it
// into obj).
func acknowledged[T audit.Object](t *testing.T, obj T, n int64) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if err := operator.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if got := obj.Common().AuditSequence; got < n {
			return fmt.Errorf("%s: %d changes acknowledged, want %d", obj.GetName(), got, n)
		}
		return nil
	})
}

// asOperator changes obj with the operator's identity, which the audit
// webhook does not see, trying again when the write conflicts with the
// operator's own.
func asOperator[T audit.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if err := operator.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return operator.Update(context.Background(), obj)
	})
}
