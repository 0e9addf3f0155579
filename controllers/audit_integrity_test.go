package controllers_test

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
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
