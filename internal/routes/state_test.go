package routes

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

var t0 = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func window(from, to time.Duration) *waygatev1.MaintenanceWindow {
	return &waygatev1.MaintenanceWindow{Start: metav1.NewTime(t0.Add(from)), End: metav1.NewTime(t0.Add(to))}
}

func gate(name string, spec waygatev1.RouteGateSpec) waygatev1.RouteGate {
	return waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func until(d time.Duration) *metav1.Time { u := metav1.NewTime(t0.Add(d)); return &u }

func TestEffective(t *testing.T) {
	const (
		active      = waygatev1.RouteActive
		maintenance = waygatev1.RouteMaintenance
		disabled    = waygatev1.RouteDisabled
	)
	route := waygatev1.RouteGateSpec{Route: "GET:/payments", Service: "payments", State: active}
	with := func(change func(*waygatev1.RouteGateSpec)) waygatev1.RouteGateSpec {
		s := route
		change(&s)
		return s
	}
	disabledUntil := func(reason string, d time.Duration) waygatev1.RouteGateSpec {
		return with(func(s *waygatev1.RouteGateSpec) { s.State, s.Reason, s.Until = disabled, reason, until(d) })
	}
	serviceDown := gate("payments-all", waygatev1.RouteGateSpec{Route: "*", Service: "payments", State: maintenance, Reason: "upgrade"})

	cases := []struct {
		name       string
		route      waygatev1.RouteGateSpec
		gates      []waygatev1.RouteGate
		want       waygatev1.RouteState
		reason     string
		governedBy string
		next       time.Time
		ends       time.Time
	}{
		{name: "active", route: route, want: active},
		{name: "active drops the reason", route: with(func(s *waygatev1.RouteGateSpec) { s.Reason = "old" }), want: active},
		{name: "disabled keeps the reason", route: with(func(s *waygatev1.RouteGateSpec) { s.State, s.Reason = disabled, "gone" }), want: disabled, reason: "gone"},
		{name: "before the window", route: with(func(s *waygatev1.RouteGateSpec) { s.Window, s.Reason = window(time.Minute, time.Hour), "reindex" }),
			want: active, next: at(time.Minute)},
		{name: "window start is inclusive", route: with(func(s *waygatev1.RouteGateSpec) { s.Window, s.Reason = window(0, time.Hour), "reindex" }),
			want: maintenance, reason: "reindex", next: at(time.Hour), ends: at(time.Hour)},
		{name: "window end is exclusive", route: with(func(s *waygatev1.RouteGateSpec) { s.Window = window(-time.Hour, 0) }), want: active},
		{name: "maintenance with a window is bounded by it", route: with(func(s *waygatev1.RouteGateSpec) { s.State, s.Window = maintenance, window(time.Hour, 2*time.Hour) }),
			want: active, next: at(time.Hour)},
		{name: "service maintenance wins over the route", route: with(func(s *waygatev1.RouteGateSpec) { s.State = disabled }), gates: []waygatev1.RouteGate{serviceDown},
			want: maintenance, reason: "upgrade", governedBy: "payments-all"},
		{name: "other service", route: with(func(s *waygatev1.RouteGateSpec) { s.Service = "orders" }), gates: []waygatev1.RouteGate{serviceDown}, want: active},
		{name: "namespace-wide gate covers every service", route: with(func(s *waygatev1.RouteGateSpec) { s.Service = "orders" }),
			gates: []waygatev1.RouteGate{gate("all", waygatev1.RouteGateSpec{Route: "*", State: maintenance})}, want: maintenance, governedBy: "all"},
		{name: "exempt by key", route: route, gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", State: maintenance, Exempt: []waygatev1.RouteKey{"GET:/payments"}})}, want: active},
		{name: "exempt by path", route: route, gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", State: maintenance, Exempt: []waygatev1.RouteKey{"/payments"}})}, want: active},
		{name: "another method is not exempt", route: route, gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", State: maintenance, Exempt: []waygatev1.RouteKey{"POST:/payments"}})},
			want: maintenance, governedBy: "g"},
		{name: "force active is immune", route: with(func(s *waygatev1.RouteGateSpec) { s.ForceActive = true }), gates: []waygatev1.RouteGate{serviceDown}, want: active},
		{name: "unless the gate includes it", route: with(func(s *waygatev1.RouteGateSpec) { s.ForceActive = true }),
			gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", State: maintenance, IncludeForceActive: true})}, want: maintenance, governedBy: "g"},
		{name: "service window not yet open sets the next transition", route: route,
			gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", Window: window(time.Hour, 2*time.Hour)})}, want: active, next: at(time.Hour)},
		{name: "earliest transition of route and gate", route: with(func(s *waygatev1.RouteGateSpec) { s.Window = window(-time.Minute, 30*time.Minute) }),
			gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", Window: window(10*time.Minute, 2*time.Hour)})}, want: maintenance, next: at(10 * time.Minute), ends: at(30 * time.Minute)},
		{name: "disabled until later", route: disabledUntil("bad deploy", 2*time.Hour),
			want: disabled, reason: "bad deploy", next: at(2 * time.Hour), ends: at(2 * time.Hour)},
		{name: "until is exclusive", route: disabledUntil("bad deploy", 0), want: active},
		{name: "past until", route: disabledUntil("bad deploy", -time.Hour), want: active},
		{name: "service maintenance wins over a disable until, which is still the next transition", route: disabledUntil("bad deploy", time.Hour),
			gates: []waygatev1.RouteGate{serviceDown}, want: maintenance, reason: "upgrade", governedBy: "payments-all", next: at(time.Hour)},
		{name: "a service window opening before the until", route: disabledUntil("", time.Hour),
			gates: []waygatev1.RouteGate{gate("g", waygatev1.RouteGateSpec{Route: "*", Window: window(10*time.Minute, 2*time.Hour)})}, want: disabled, next: at(10 * time.Minute), ends: at(time.Hour)},
		{name: "a service gate itself ignores others", route: waygatev1.RouteGateSpec{Route: "*", Service: "payments", State: active},
			gates: []waygatev1.RouteGate{gate("all", waygatev1.RouteGateSpec{Route: "*", State: maintenance})}, want: active},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := gate("route", tc.route)
			got := Effective(&rg, tc.gates, t0)
			if got.State != tc.want || got.Reason != tc.reason || got.GovernedBy != tc.governedBy {
				t.Errorf("got state %q reason %q governedBy %q, want %q %q %q", got.State, got.Reason, got.GovernedBy, tc.want, tc.reason, tc.governedBy)
			}
			if !got.Next.Equal(tc.next) || !got.Ends.Equal(tc.ends) {
				t.Errorf("next %v ends %v, want %v %v", got.Next, got.Ends, tc.next, tc.ends)
			}
		})
	}
}

func TestPathOf(t *testing.T) {
	for key, want := range map[string]string{"GET:/payments": "/payments", "/payments": "/payments", "*": "*", "DELETE:/items/{id}": "/items/{id}"} {
		if got := PathOf(key); got != want {
			t.Errorf("PathOf(%q) = %q, want %q", key, got, want)
		}
	}
}
