package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers"
)

func routeGate(ns, name string, spec waygatev1.RouteGateSpec) *waygatev1.RouteGate {
	return &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// waitState waits until rg's state in effect is want and returns the gate.
func waitState(t *testing.T, rg *waygatev1.RouteGate, want waygatev1.RouteState) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		if rg.Status.State != want || rg.Status.ObservedGeneration != rg.Generation {
			return fmt.Errorf("%s: state %q (generation %d observed %d), want %q", rg.Name, rg.Status.State, rg.Generation, rg.Status.ObservedGeneration, want)
		}
		return nil
	})
}

func TestRouteGateStates(t *testing.T) {
	ns := env.Namespace(t, "routes")
	cases := []struct {
		name   string
		spec   waygatev1.RouteGateSpec
		state  waygatev1.RouteState
		reason string
	}{
		{"active", waygatev1.RouteGateSpec{Route: "GET:/a"}, waygatev1.RouteActive, controllers.ReasonStateApplied},
		{"maintenance", waygatev1.RouteGateSpec{Route: "GET:/b", State: waygatev1.RouteMaintenance, Reason: "migration"}, waygatev1.RouteMaintenance, controllers.ReasonStateApplied},
		{"disabled", waygatev1.RouteGateSpec{Route: "/c", State: waygatev1.RouteDisabled}, waygatev1.RouteDisabled, controllers.ReasonStateApplied},
		{"env-gated", waygatev1.RouteGateSpec{Route: "/d", State: waygatev1.RouteEnvGated, AllowedEnvs: []string{"staging"}}, waygatev1.RouteEnvGated, controllers.ReasonStateApplied},
		{"future-window", waygatev1.RouteGateSpec{Route: "/e", Window: &waygatev1.MaintenanceWindow{
			Start: metav1.NewTime(clk.Now().Add(time.Hour)), End: metav1.NewTime(clk.Now().Add(2 * time.Hour))}}, waygatev1.RouteActive, controllers.ReasonWindowScheduled},
		{"open-window", waygatev1.RouteGateSpec{Route: "/f", Window: &waygatev1.MaintenanceWindow{
			Start: metav1.NewTime(clk.Now().Add(-time.Hour)), End: metav1.NewTime(clk.Now().Add(time.Hour))}}, waygatev1.RouteMaintenance, controllers.ReasonWindowOpen},
		{"past-window", waygatev1.RouteGateSpec{Route: "/g", State: waygatev1.RouteMaintenance, Window: &waygatev1.MaintenanceWindow{
			Start: metav1.NewTime(clk.Now().Add(-2 * time.Hour)), End: metav1.NewTime(clk.Now().Add(-time.Hour))}}, waygatev1.RouteActive, controllers.ReasonStateApplied},
		{"disabled-until", waygatev1.RouteGateSpec{Route: "/h", State: waygatev1.RouteDisabled, Until: &metav1.Time{Time: clk.Now().Add(time.Hour)}},
			waygatev1.RouteDisabled, controllers.ReasonDisabledUntil},
		{"past-until", waygatev1.RouteGateSpec{Route: "/i", State: waygatev1.RouteDisabled, Until: &metav1.Time{Time: clk.Now().Add(-time.Hour)}},
			waygatev1.RouteActive, controllers.ReasonStateApplied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := routeGate(ns, tc.name, tc.spec)
			create(t, rg)
			waitState(t, rg, tc.state)
			waitReady(t, rg, func() []metav1.Condition { return rg.Status.Conditions }, metav1.ConditionTrue, tc.reason)
		})
	}
}

// skipTo moves the operator's clock to at (nothing happens when it is
// already past).
func skipTo(at time.Time) { clk.Skip(at.Sub(clk.Now())) }

func TestRouteGateWindowTurnsMaintenanceOnAndOff(t *testing.T) {
	ns := env.Namespace(t, "routes")
	// The API stores times to the second.
	start := clk.Now().Add(time.Minute).Truncate(time.Second)
	end := start.Add(time.Minute)
	rg := routeGate(ns, "window", waygatev1.RouteGateSpec{
		Route: "GET:/reports", Reason: "re-index",
		Window: &waygatev1.MaintenanceWindow{Start: metav1.NewTime(start), End: metav1.NewTime(end)},
	})
	create(t, rg)
	waitState(t, rg, waygatev1.RouteActive)
	if rg.Status.NextTransition == nil || !rg.Status.NextTransition.Time.Equal(start) {
		t.Fatalf("nextTransition = %v, want the window start %v", rg.Status.NextTransition, start)
	}

	// Just before the start the route is still active, though the
	// operator looks again then (its reconciles wait on its clock).
	skipTo(start.Add(-2 * time.Second))
	time.Sleep(300 * time.Millisecond)
	waitState(t, rg, waygatev1.RouteActive)

	skipTo(start.Add(1500 * time.Millisecond))
	waitState(t, rg, waygatev1.RouteMaintenance)
	if rg.Status.Reason != "re-index" || !rg.Status.NextTransition.Time.Equal(end) {
		t.Fatalf("in the window: reason %q, nextTransition %v; want re-index, %v", rg.Status.Reason, rg.Status.NextTransition, end)
	}

	skipTo(end.Add(1500 * time.Millisecond))
	waitState(t, rg, waygatev1.RouteActive)
	if rg.Status.NextTransition != nil {
		t.Fatalf("after the window: nextTransition %v, want none", rg.Status.NextTransition)
	}
	// Each transition is audited as the scheduler's doing.
	wantEntries(t, waitEntries(t, ns, "window", 3),
		entry{"admin", "api", "maintenance_scheduled", "GET:/reports", "active", "active", "re-index"},
		entry{"system:scheduler", "system", "maintenance_on", "GET:/reports", "active", "maintenance", "re-index"},
		entry{"system:scheduler", "system", "maintenance_off", "GET:/reports", "maintenance", "active", "re-index"},
	)
	if got := entriesOf(t, ns, "window"); !got[1].Spec.Timestamp.Time.Equal(start) || !got[2].Spec.Timestamp.Time.Equal(end) {
		t.Errorf("transitions recorded at %v and %v, want the window's %v and %v", got[1].Spec.Timestamp, got[2].Spec.Timestamp, start, end)
	}
	// Each transition is announced as an event on the gate.
	eventually(t, 10*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			if e.Regarding.Name == rg.Name && e.Reason == "StateChanged" {
				seen[e.Note] = true
			}
		}
		for _, want := range []string{"route GET:/reports: active → maintenance (re-index)", "route GET:/reports: maintenance → active"} {
			if !seen[want] {
				return fmt.Errorf("no event %q among %v", want, seen)
			}
		}
		return nil
	})
}

// A disable with an until ends by itself: the route is active from the
// until on, with no write to its spec, and the scheduler records the end as
// an enable.
func TestRouteGateDisableUntilEnds(t *testing.T) {
	ns := env.Namespace(t, "routes")
	until := clk.Now().Add(time.Minute).Truncate(time.Second)
	rg := routeGate(ns, "until", waygatev1.RouteGateSpec{
		Route: "GET:/exports", State: waygatev1.RouteDisabled, Reason: "bad deploy", Until: &metav1.Time{Time: until},
	})
	create(t, rg)
	waitState(t, rg, waygatev1.RouteDisabled)
	if rg.Status.Reason != "bad deploy" || rg.Status.NextTransition == nil || !rg.Status.NextTransition.Time.Equal(until) {
		t.Fatalf("disabled: reason %q, nextTransition %v; want bad deploy, the until %v", rg.Status.Reason, rg.Status.NextTransition, until)
	}
	c := waitReady(t, rg, func() []metav1.Condition { return rg.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonDisabledUntil)
	if want := "route is disabled until " + until.UTC().Format(time.RFC3339); c.Message != want {
		t.Errorf("Ready message %q, want %q", c.Message, want)
	}
	generation := rg.Generation

	skipTo(until.Add(-2 * time.Second))
	time.Sleep(300 * time.Millisecond)
	waitState(t, rg, waygatev1.RouteDisabled)

	skipTo(until.Add(1500 * time.Millisecond))
	waitState(t, rg, waygatev1.RouteActive)
	if rg.Status.NextTransition != nil || rg.Status.Reason != "" {
		t.Fatalf("after the until: nextTransition %v, reason %q; want none", rg.Status.NextTransition, rg.Status.Reason)
	}
	if rg.Generation != generation || rg.Spec.State != waygatev1.RouteDisabled {
		t.Errorf("the end changed the spec: generation %d → %d, state %s", generation, rg.Generation, rg.Spec.State)
	}
	waitReady(t, rg, func() []metav1.Condition { return rg.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonStateApplied)
	wantEntries(t, waitEntries(t, ns, "until", 2),
		entry{"admin", "api", "disable", "GET:/exports", "active", "disabled", "bad deploy"},
		entry{"system:scheduler", "system", "enable", "GET:/exports", "disabled", "active", "bad deploy"},
	)
	if got := entriesOf(t, ns, "until"); !got[1].Spec.Timestamp.Time.Equal(until) {
		t.Errorf("the end recorded at %v, want the until %v", got[1].Spec.Timestamp, until)
	}
}

func TestServiceWideMaintenance(t *testing.T) {
	ns := env.Namespace(t, "routes")
	ctx := context.Background()
	pay := routeGate(ns, "pay", waygatev1.RouteGateSpec{Route: "GET:/payments", Service: "payments"})
	health := routeGate(ns, "health", waygatev1.RouteGateSpec{Route: "GET:/health", Service: "payments"})
	forced := routeGate(ns, "forced", waygatev1.RouteGateSpec{Route: "POST:/webhooks", Service: "payments", ForceActive: true})
	other := routeGate(ns, "other", waygatev1.RouteGateSpec{Route: "GET:/orders", Service: "orders"})
	for _, rg := range []*waygatev1.RouteGate{pay, health, forced, other} {
		create(t, rg)
		waitState(t, rg, waygatev1.RouteActive)
	}

	all := routeGate(ns, "payments-all", waygatev1.RouteGateSpec{
		Route: "*", Service: "payments", State: waygatev1.RouteMaintenance, Reason: "upgrade",
		Exempt: []waygatev1.RouteKey{"/health"},
	})
	create(t, all)
	waitState(t, pay, waygatev1.RouteMaintenance)
	if pay.Status.GovernedBy != "payments-all" || pay.Status.Reason != "upgrade" {
		t.Fatalf("governedBy %q reason %q, want payments-all, upgrade", pay.Status.GovernedBy, pay.Status.Reason)
	}
	waitReady(t, pay, func() []metav1.Condition { return pay.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonServiceMaintenance)
	for _, rg := range []*waygatev1.RouteGate{health, forced, other} {
		waitState(t, rg, waygatev1.RouteActive) // exempt, forceActive, another service
	}

	// includeForceActive takes the forced route down too.
	update(t, all, func(g *waygatev1.RouteGate) { g.Spec.IncludeForceActive = true })
	waitState(t, forced, waygatev1.RouteMaintenance)

	// Switching the service gate off restores every route.
	update(t, all, func(g *waygatev1.RouteGate) { g.Spec.State = waygatev1.RouteActive })
	waitState(t, pay, waygatev1.RouteActive)
	waitState(t, forced, waygatev1.RouteActive)
	if pay.Status.GovernedBy != "" {
		t.Fatalf("governedBy %q after the service gate was switched off", pay.Status.GovernedBy)
	}

	// A namespace-wide gate (no service) covers every service.
	global := routeGate(ns, "global", waygatev1.RouteGateSpec{Route: "*", State: waygatev1.RouteMaintenance})
	create(t, global)
	waitState(t, other, waygatev1.RouteMaintenance)
	waitState(t, pay, waygatev1.RouteMaintenance)
	if err := k8s.Delete(ctx, global); err != nil {
		t.Fatal(err)
	}
	waitState(t, other, waygatev1.RouteActive)
}

func TestDuplicateRouteGate(t *testing.T) {
	ns := env.Namespace(t, "routes")
	first := routeGate(ns, "first", waygatev1.RouteGateSpec{Route: "GET:/x", State: waygatev1.RouteDisabled})
	create(t, first)
	waitReady(t, first, func() []metav1.Condition { return first.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonStateApplied)
	second := routeGate(ns, "second", waygatev1.RouteGateSpec{Route: "GET:/x"})
	create(t, second)
	c := waitReady(t, second, func() []metav1.Condition { return second.Status.Conditions }, metav1.ConditionFalse, controllers.ReasonDuplicate)
	if want := `route GET:/x is already gated by RouteGate "first"; delete this RouteGate or merge it into "first"`; c.Message != want {
		t.Fatalf("message %q, want %q", c.Message, want)
	}
	// Another route whose key falls in the same bucket of the index is no
	// duplicate.
	var neighbour waygatev1.RouteKey
	for i := 0; neighbour == ""; i++ {
		if k := waygatev1.RouteKey(fmt.Sprint("GET:/x", i)); controllers.ScopeBucket(k) == controllers.ScopeBucket("GET:/x") {
			neighbour = k
		}
	}
	third := routeGate(ns, "third", waygatev1.RouteGateSpec{Route: neighbour})
	create(t, third)
	waitReady(t, third, func() []metav1.Condition { return third.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonStateApplied)
	// When the holder goes, the other gate takes over.
	if err := k8s.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	waitReady(t, second, func() []metav1.Condition { return second.Status.Conditions }, metav1.ConditionTrue, controllers.ReasonStateApplied)
}

// An edit that lands between a window's start and the reconcile that would
// record it does not lose the transition: both are recorded, in order.
func TestWindowStartAndAnEditJustAfter(t *testing.T) {
	ns := env.Namespace(t, "routes")
	start := clk.Now().Add(time.Minute).Truncate(time.Second)
	rg := routeGate(ns, "edited", waygatev1.RouteGateSpec{
		Route: "GET:/reports", Reason: "re-index",
		Window: &waygatev1.MaintenanceWindow{Start: metav1.NewTime(start), End: metav1.NewTime(start.Add(time.Hour))},
	})
	create(t, rg)
	waitEntries(t, ns, "edited", 1)
	// The controller looks again a second after the start; the edit comes
	// before that.
	skipTo(start.Add(100 * time.Millisecond))
	update(t, rg, func(g *waygatev1.RouteGate) { g.Spec.Reason = "re-index, longer" })
	if clk.Now().After(start.Add(900 * time.Millisecond)) {
		t.Fatal("the edit came too late to race the controller; the test proves nothing")
	}
	got := waitEntries(t, ns, "edited", 3)
	wantEntries(t, got,
		entry{"admin", "api", "maintenance_scheduled", "GET:/reports", "active", "active", "re-index"},
		entry{"system:scheduler", "system", "maintenance_on", "GET:/reports", "active", "maintenance", "re-index"},
		entry{"admin", "api", "route_updated", "GET:/reports", "maintenance", "maintenance", "re-index, longer"},
	)
	if !got[1].Spec.Timestamp.Time.Equal(start) {
		t.Errorf("the transition is recorded at %v, want the window's start %v", got[1].Spec.Timestamp, start)
	}
}
