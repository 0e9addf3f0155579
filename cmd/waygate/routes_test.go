package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Every route command changes the gate as asked, says so in one line, and
// is audited with the user who ran it and platform cli.
func TestRouteCommandsAreAudited(t *testing.T) {
	ns := namespace(t)
	for _, tc := range []struct {
		user   string
		args   []string
		out    string
		action string
		change string
	}{
		{"alice", []string{"disable", "GET:/payments", "-r", "Card processor outage"},
			`GET:/payments: disabled "Card processor outage" (created routegate <ns>/get-payments)`, "disable", "active → disabled"},
		{"bob", []string{"maintenance", "get:/payments", "--reason", "Database migration"},
			`GET:/payments: disabled "Card processor outage" → maintenance "Database migration" (routegate <ns>/get-payments)`, "maintenance_on", "disabled → maintenance"},
		{"alice", []string{"enable", "GET:/payments"},
			`GET:/payments: maintenance "Database migration" → active (routegate <ns>/get-payments)`, "maintenance_off", "maintenance → active"},
		{"bob", []string{"schedule", "GET:/payments", "--start", "2030-06-01T03:00:00Z", "--end", "2030-06-01 04:00", "-r", "Nightly re-index"},
			`GET:/payments: active → maintenance from <time> to <time> "Nightly re-index" (routegate <ns>/get-payments)`, "maintenance_scheduled", "active → active"},
		{"alice", []string{"env", "set", "/debug", "staging", "dev"},
			`/debug: env_gated [staging, dev] (created routegate <ns>/debug)`, "env_gate", "active → env_gated"},
		{"bob", []string{"env", "clear", "/debug"},
			`/debug: env_gated [staging, dev] → active (routegate <ns>/debug)`, "enable", "env_gated → active"},
		{"alice", []string{"deprecate", "/v1/orders", "--successor", "/v2/orders", "--sunset", "2031-01-01"},
			`/v1/orders: deprecated (sunset <time>, successor /v2/orders) (created routegate <ns>/v1-orders)`, "deprecate", "active → deprecated"},
	} {
		out := must(t, tc.user, ns, tc.args...)
		golden(t, ns, out, tc.out)
		path := tc.out[:strings.Index(tc.out, ": ")]
		waitAudit(t, ns, 1, "--actor", tc.user, "--action", tc.action, path)
		got := must(t, "carol", ns, "audit", "--actor", tc.user, "--action", tc.action, "--limit", "1", path)
		row := strings.Join([]string{"<time>", tc.user, "cli", tc.action, path, tc.change}, "  ")
		if m := masked(got, ns); !strings.Contains(m, row) {
			t.Errorf("%s: audit entry\n%s\nwant a row starting\n%s", strings.Join(tc.args, " "), m, row)
		}
	}
	// What the gates ask for is what the commands said.
	var rg waygatev1.RouteGate
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "get-payments"}, &rg); err != nil {
		t.Fatal(err)
	}
	if w := rg.Spec.Window; w == nil || !w.Start.Time.Equal(at("2030-06-01T03:00:00Z")) || !w.End.Time.Equal(at("2030-06-01T04:00:00Z")) ||
		rg.Spec.Reason != "Nightly re-index" {
		t.Errorf("get-payments spec after schedule: %+v", rg.Spec)
	}
}

// disable --until sets spec.until, which the route's other changes drop: a
// plain disable is for good, enable serves it again.
func TestDisableUntil(t *testing.T) {
	ns := namespace(t)
	get := func() *waygatev1.RouteGate {
		t.Helper()
		var rg waygatev1.RouteGate
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "get-exports"}, &rg); err != nil {
			t.Fatal(err)
		}
		return &rg
	}
	before := time.Now().Truncate(time.Second)
	golden(t, ns, must(t, "alice", ns, "disable", "GET:/exports", "--until", "2h", "-r", "Bad deploy"),
		`GET:/exports: disabled until <time> "Bad deploy" (created routegate <ns>/get-exports)`)
	if rg := get(); rg.Spec.State != waygatev1.RouteDisabled || rg.Spec.Until == nil ||
		rg.Spec.Until.Time.Before(before.Add(2*time.Hour)) || rg.Spec.Until.After(time.Now().Add(2*time.Hour)) {
		t.Fatalf("after disable --until 2h: %+v, want disabled until 2 h from now", rg.Spec)
	}
	waitAudit(t, ns, 1, "--actor", "alice", "--action", "disable", "GET:/exports")
	if out := settled(t, ns, "status", "GET:/exports"); !strings.Contains(masked(out, ns), "Next change:  <time> (<age>)") {
		t.Errorf("status shows no next change:\n%s", out)
	}

	golden(t, ns, must(t, "alice", ns, "disable", "GET:/exports", "--until", "2030-06-01T18:00:00Z"),
		`GET:/exports: disabled until <time> "Bad deploy" → disabled until <time> "Bad deploy" (routegate <ns>/get-exports)`)
	if rg := get(); rg.Spec.Until == nil || !rg.Spec.Until.Time.Equal(at("2030-06-01T18:00:00Z")) {
		t.Fatalf("after disable --until 2030-06-01T18:00:00Z: %+v", rg.Spec)
	}
	golden(t, ns, must(t, "alice", ns, "disable", "GET:/exports"),
		`GET:/exports: disabled until <time> "Bad deploy" → disabled "Bad deploy" (routegate <ns>/get-exports)`)
	if rg := get(); rg.Spec.Until != nil {
		t.Fatalf("a plain disable kept the until: %+v", rg.Spec)
	}
	must(t, "alice", ns, "disable", "GET:/exports", "--until", "1h")
	golden(t, ns, must(t, "alice", ns, "enable", "GET:/exports"),
		`GET:/exports: disabled until <time> "Bad deploy" → active (routegate <ns>/get-exports)`)
	if rg := get(); rg.Spec.State != waygatev1.RouteActive || rg.Spec.Until != nil {
		t.Fatalf("after enable: %+v", rg.Spec)
	}
}

// waitAudit waits until `waygate audit args...` finds n entries: the
// operator writes entries a moment after the changes, those of different
// objects in any order.
func waitAudit(t *testing.T, ns string, n int, args ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		out, err := waygate(t, "carol", ns, append([]string{"audit", "--limit", "100"}, args...)...)
		if err != nil {
			return fmt.Errorf("audit %v: %w", args, err)
		}
		if rows := strings.Count(out, "\n") - 1; strings.Contains(out, "No audit entries match") || rows < n {
			return fmt.Errorf("audit %v: not %d entries yet:\n%s", args, n, out)
		}
		return nil
	})
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// With -o json or yaml, a change prints the object as the API server
// stored it instead of a line.
func TestChangeOutputsObject(t *testing.T) {
	ns := namespace(t)
	var rg waygatev1.RouteGate
	if err := json.Unmarshal([]byte(must(t, "alice", ns, "disable", "GET:/x", "-o", "json")), &rg); err != nil {
		t.Fatal(err)
	}
	if rg.Kind != "RouteGate" || rg.Name != "get-x" || rg.Spec.State != waygatev1.RouteDisabled || rg.ResourceVersion == "" {
		t.Errorf("disable -o json: %+v", rg)
	}
	if out := must(t, "alice", ns, "enable", "GET:/x", "-o", "yaml"); !strings.Contains(out, "kind: RouteGate") || !strings.Contains(out, "state: active") {
		t.Errorf("enable -o yaml:\n%s", out)
	}
}

// Without --reason, a change of state drops the old state's reason; a
// change that keeps the state keeps it.
func TestReasonFollowsState(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "env", "set", "/debug", "staging", "-r", "Not for production")
	golden(t, ns, must(t, "alice", ns, "env", "set", "/debug", "staging", "dev"),
		`/debug: env_gated [staging] "Not for production" → env_gated [staging, dev] "Not for production" (routegate <ns>/debug)`)
	golden(t, ns, must(t, "alice", ns, "env", "set", "/debug", "staging", "dev"),
		`/debug: env_gated [staging, dev] "Not for production", unchanged (routegate <ns>/debug)`)
	golden(t, ns, must(t, "alice", ns, "disable", "/debug"),
		`/debug: env_gated [staging, dev] "Not for production" → disabled (routegate <ns>/debug)`)
}
