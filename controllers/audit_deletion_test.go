package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

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
		// After the status that acknowledges the entry, the operator
		// writes the object no more.
		acknowledged(t, rg, 1)
		rg.Finalizers = nil
		if err := operator.Update(ctx, rg); err != nil {
			return err
		}
		rv := rg.ResourceVersion
		return dan.Delete(ctx, rg, client.Preconditions{ResourceVersion: &rv})
	})
	wantEntries(t, waitEntries(t, ns, name, 2)[1:], entry{"dan", "api", "route_deleted", "GET:/bare", "disabled", "active", ""})
}
