package edit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/edit"
	"github.com/waygate-dev/waygate/internal/routes"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// helm is the mark Helm puts on what it manages.
var helm = map[string]string{"app.kubernetes.io/managed-by": "Helm"}

// gate creates, as the cluster admin, an active RouteGate of route named
// name, with labels.
func gate(t *testing.T, ns, name, route string, labels map[string]string) *waygatev1.RouteGate {
	t.Helper()
	rg := &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(route), State: waygatev1.RouteActive},
	}
	if err := env.Client.Create(context.Background(), rg); err != nil {
		t.Fatal(err)
	}
	return rg
}

// relabel sets the labels of the stored rg, as the cluster admin: what a
// GitOps tool adopting rg, or letting it go, does behind a person's back.
func relabel(t *testing.T, rg *waygatev1.RouteGate, labels map[string]string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest := stored(t, rg)
		latest.Labels = labels
		return env.Client.Update(context.Background(), latest)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stored is rg as the API server has it.
func stored(t *testing.T, rg client.Object) *waygatev1.RouteGate {
	t.Helper()
	latest := &waygatev1.RouteGate{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(rg), latest); err != nil {
		t.Fatal(err)
	}
	return latest
}

func disable(rg *waygatev1.RouteGate) error {
	rg.Spec.State = waygatev1.RouteDisabled
	return nil
}

// The GitOps guard judges the object as it is when the change is written,
// not the copy the person read earlier: a gate Helm adopted since is
// refused, one Helm let go of since is changed, and force changes either.
func TestUpdateGuardsTheLatest(t *testing.T) {
	ns := namespace(t)
	w := edit.New(as(t, "alice"), audit.CLIFieldManager)
	for _, tc := range []struct {
		name         string
		read, latest map[string]string // labels of the copy in hand, and of the stored gate
		force        bool
		refused      bool
	}{
		{name: "adopted", read: nil, latest: helm, refused: true},
		{name: "adopted-forced", read: nil, latest: helm, force: true},
		{name: "let-go", read: helm, latest: nil},
		{name: "managed", read: helm, latest: helm, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inHand := gate(t, ns, tc.name, "GET:/"+tc.name, tc.read)
			relabel(t, inHand, tc.latest)
			_, err := edit.Update(context.Background(), w, inHand, tc.force, disable)
			state := stored(t, inHand).Spec.State
			if !tc.refused {
				if err != nil || state != waygatev1.RouteDisabled {
					t.Fatalf("Update: %v, state %s; want disabled", err, state)
				}
				return
			}
			var managed *edit.ManagedError
			if !errors.As(err, &managed) {
				t.Fatalf("Update: %v, want a *ManagedError", err)
			}
			want := edit.ManagedError{Kind: "RouteGate", Namespace: ns, Name: tc.name, Tool: "Helm", Mark: "label app.kubernetes.io/managed-by"}
			if *managed != want {
				t.Errorf("refusal %+v, want %+v", *managed, want)
			}
			if state != waygatev1.RouteActive {
				t.Errorf("refused, yet the state is %s", state)
			}
		})
	}
}

// updates counts the updates a client sends.
type updates struct {
	client.Client
	n int
}

func (c *updates) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.n++
	return c.Client.Update(ctx, obj, opts...)
}

// Update returns the object as it was, writes under the writer's field
// manager, and sends nothing when the change changes nothing.
func TestUpdateWritesOnlyChanges(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	rg := gate(t, ns, "orders", "GET:/orders", nil)
	alice := &updates{Client: as(t, "alice")}
	w := edit.New(alice, audit.DashboardFieldManager)

	before, err := edit.Update(ctx, w, &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rg.Name}}, false, disable)
	if err != nil {
		t.Fatal(err)
	}
	if before.Spec.State != waygatev1.RouteActive {
		t.Errorf("before: state %s, want active", before.Spec.State)
	}
	written := stored(t, rg)
	managers := map[string]bool{}
	for _, f := range written.ManagedFields {
		managers[f.Manager] = true
	}
	if written.Spec.State != waygatev1.RouteDisabled || !managers[audit.DashboardFieldManager] {
		t.Errorf("after: state %s, field managers %v; want disabled by %s", written.Spec.State, managers, audit.DashboardFieldManager)
	}

	sent := alice.n
	before, err = edit.Update(ctx, w, rg.DeepCopy(), false, disable)
	if err != nil {
		t.Fatal(err)
	}
	if alice.n != sent || before.Spec.State != waygatev1.RouteDisabled {
		t.Errorf("disabling a disabled gate sent %d updates (before: %s)", alice.n-sent, before.Spec.State)
	}
}

// A write that conflicts with someone else's is retried on the latest
// version, keeping both changes.
func TestUpdateRetriesOnConflict(t *testing.T) {
	ns := namespace(t)
	rg := gate(t, ns, "search", "GET:/search", nil)
	w := edit.New(as(t, "alice"), audit.CLIFieldManager)
	calls := 0
	before, err := edit.Update(context.Background(), w, rg.DeepCopy(), false, func(rg *waygatev1.RouteGate) error {
		calls++
		if calls == 1 {
			// Bob's change lands between the read and the write.
			if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				bobs := stored(t, rg)
				bobs.Spec.AllowedEnvs = []string{"staging"}
				return env.Client.Update(context.Background(), bobs)
			}); err != nil {
				return err
			}
		}
		rg.Spec.Reason = "Hotfix"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := stored(t, rg)
	if calls < 2 || got.Spec.Reason != "Hotfix" || len(got.Spec.AllowedEnvs) != 1 {
		t.Errorf("after %d tries: reason %q, environments %v; want Hotfix and bob's staging", calls, got.Spec.Reason, got.Spec.AllowedEnvs)
	}
	if len(before.Spec.AllowedEnvs) != 1 || before.Spec.Reason != "" {
		t.Errorf("before should be the version with bob's change: %+v", before.Spec)
	}
}

// A person writes with their own rights: carol, who may only view, can
// neither change nor create a gate, nor delete one.
func TestWritesAreThePersons(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	rg := gate(t, ns, "reports", "GET:/reports", nil)
	w := edit.New(as(t, "carol"), audit.CLIFieldManager)
	if _, err := edit.Update(ctx, w, rg.DeepCopy(), false, disable); !apierrors.IsForbidden(err) {
		t.Errorf("carol's update: %v, want forbidden", err)
	}
	if err := w.Create(ctx, &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "new"},
		Spec: waygatev1.RouteGateSpec{Route: "GET:/new", State: waygatev1.RouteActive}}); !apierrors.IsForbidden(err) {
		t.Errorf("carol's create: %v, want forbidden", err)
	}
	if err := w.Delete(ctx, rg.DeepCopy(), false); !apierrors.IsForbidden(err) {
		t.Errorf("carol's delete: %v, want forbidden", err)
	}
	if got := stored(t, rg); got.Spec.State != waygatev1.RouteActive || got.DeletionTimestamp != nil {
		t.Errorf("after carol's writes: state %s, deleting %v", got.Spec.State, got.DeletionTimestamp)
	}
}

// A deletion is audited with the person and the platform of the writer's
// field manager: cli from the CLI, dashboard from the dashboard.
func TestDeleteIsAuditedWithPlatform(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for _, tc := range []struct {
		fieldManager string
		platform     waygatev1.Platform
	}{
		{audit.CLIFieldManager, waygatev1.PlatformCLI},
		{audit.DashboardFieldManager, waygatev1.PlatformDashboard},
	} {
		t.Run(string(tc.platform), func(t *testing.T) {
			route := "GET:/" + string(tc.platform)
			rg := gate(t, ns, string(tc.platform), route, nil)
			if err := edit.New(as(t, "alice"), tc.fieldManager).Delete(ctx, rg, false); err != nil {
				t.Fatal(err)
			}
			operatortest.Eventually(t, 20*time.Second, func() error {
				page, err := auditlog.Query{Namespace: ns, Path: route, Action: audit.ActionRouteDeleted}.Run(ctx, env.Client)
				if err != nil {
					return err
				}
				if len(page.Entries) != 1 {
					return fmt.Errorf("%d %s entries of %s", len(page.Entries), audit.ActionRouteDeleted, route)
				}
				if e := page.Entries[0].Spec; e.Actor != "alice" || e.Platform != tc.platform {
					return fmt.Errorf("deleted by %s from %s, want alice from %s", e.Actor, e.Platform, tc.platform)
				}
				return nil
			})
		})
	}
}

// A gate a GitOps tool manages is deleted only when forced, and a refused
// or failed deletion leaves no platform mark behind.
func TestDeleteGuardsAndTakesTheMarkBack(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	managed := gate(t, ns, "managed", "GET:/managed", helm)
	alice := edit.New(as(t, "alice"), audit.CLIFieldManager)
	var refusal *edit.ManagedError
	if err := alice.Delete(ctx, managed.DeepCopy(), false); !errors.As(err, &refusal) || refusal.Tool != "Helm" {
		t.Fatalf("deleting a Helm-managed gate: %v, want a *ManagedError naming Helm", err)
	}
	if got := stored(t, managed); got.DeletionTimestamp != nil || got.Annotations[audit.PlatformAnnotation] != "" {
		t.Errorf("after the refusal: deleting %v, annotations %v", got.DeletionTimestamp, got.Annotations)
	}
	if err := alice.Delete(ctx, managed.DeepCopy(), true); err != nil {
		t.Fatalf("forced: %v", err)
	}

	// erin may mark the gate, but not delete it.
	kept := gate(t, ns, "kept", "GET:/kept", nil)
	if err := edit.New(as(t, "erin"), audit.CLIFieldManager).Delete(ctx, kept.DeepCopy(), false); !apierrors.IsForbidden(err) {
		t.Fatalf("erin's delete: %v, want forbidden", err)
	}
	if got := stored(t, kept); got.DeletionTimestamp != nil || got.Annotations[audit.PlatformAnnotation] != "" {
		t.Errorf("after erin's refused delete: deleting %v, annotations %v", got.DeletionTimestamp, got.Annotations)
	}
}

// A new gate is named after its route, with a suffix when a gate of
// another route (of another service) has that name already.
func TestNameForRoute(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	w := edit.New(as(t, "alice"), audit.CLIFieldManager)
	for _, tc := range []struct{ service, route, want string }{
		{"", "GET:/payments/{id}", "get-payments-id"},
		{"billing", "GET:/payments/{id}", routes.UniqueName("get-payments-id", "billing", "GET:/payments/{id}")},
		{"billing", "*", "billing-all-routes"},
	} {
		rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns},
			Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(tc.route), Service: waygatev1.ServiceName(tc.service), State: waygatev1.RouteActive}}
		if err := w.NameForRoute(ctx, rg, tc.service, tc.route); err != nil {
			t.Fatal(err)
		}
		if rg.Name != tc.want {
			t.Errorf("NameForRoute(%q, %q) = %q, want %q", tc.service, tc.route, rg.Name, tc.want)
		}
		if err := w.Create(ctx, rg); err != nil {
			t.Fatalf("creating %s: %v", rg.Name, err)
		}
	}
}
