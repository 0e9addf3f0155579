package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// status lists the routes with the state the operator reports; status ROUTE
// shows one; -o json prints the objects.
func TestStatus(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "disable", "POST:/refunds", "-r", "Ledger move")
	must(t, "alice", ns, "env", "set", "/debug", "staging")
	must(t, "alice", ns, "schedule", "GET:/reports", "--start", "2030-06-01T03:00:00Z", "--end", "2030-06-01T04:00:00Z", "-r", "Re-index")
	must(t, "alice", ns, "maintenance", "*", "--service", "orders", "-r", "Upgrade")
	must(t, "alice", ns, "deprecate", "/orders/v1", "--service", "orders", "--successor", "/orders/v2")
	settledTo(t, ns, `
ROUTE  SERVICE  STATE  REASON  NEXT CHANGE
/debug  -  env_gated  -  -
GET:/reports  -  active  -  <age>
POST:/refunds  -  disabled  Ledger move  -
*  orders  maintenance  Upgrade  -
/orders/v1  orders  maintenance  Upgrade  -`, "status")
	golden(t, ns, must(t, "carol", ns, "status", "-o", "wide"), `
ROUTE  SERVICE  STATE  REASON  NEXT CHANGE  ALLOWED ENVS  GOVERNED BY  ROUTEGATE  READY  AGE
/debug  -  env_gated  -  -  staging  -  debug  True  <age>
GET:/reports  -  active  -  <age>  -  -  get-reports  True  <age>
POST:/refunds  -  disabled  Ledger move  -  -  -  post-refunds  True  <age>
*  orders  maintenance  Upgrade  -  -  -  orders-all-routes  True  <age>
/orders/v1  orders  maintenance  Upgrade  -  -  orders-all-routes  orders-v1  True  <age>`)
	golden(t, ns, must(t, "carol", ns, "status", "/orders/v1"), `
Route:  /orders/v1
Service:  orders
State:  maintenance
Reason:  Upgrade
Governed by:  routegate orders-all-routes (service-wide maintenance)
Asked for:  deprecated (successor /orders/v2)
Ready:  True ServiceMaintenance: in maintenance by service-wide RouteGate "orders-all-routes"
RouteGate:  <ns>/orders-v1`)

	var rg waygatev1.RouteGate
	if err := json.Unmarshal([]byte(must(t, "carol", ns, "status", "GET:/reports", "-o", "json")), &rg); err != nil {
		t.Fatal(err)
	}
	if rg.Kind != "RouteGate" || rg.Spec.Window == nil || rg.Status.NextTransition == nil {
		t.Errorf("status -o json: %+v", rg)
	}
	if out := must(t, "auditor", ns, "status", "-A"); !strings.Contains(masked(out, ns), "<ns>  POST:/refunds  -  disabled") {
		t.Errorf("status -A has no namespace column:\n%s", out)
	}
}

// audit shows the newest entries first, filtered as asked; --watch prints
// new ones as they are written.
func TestAudit(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "maintenance", "GET:/payments", "-r", "Database migration")
	must(t, "bob", ns, "disable", "GET:/payments", "-r", "Outage")
	must(t, "alice", ns, "enable", "GET:/payments")
	must(t, "bob", ns, "disable", "POST:/refunds")
	waitAudit(t, ns, 4)
	golden(t, ns, must(t, "carol", ns, "audit"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  disable  POST:/refunds  active → disabled  -
<time>  alice  cli  enable  GET:/payments  disabled → active  -
<time>  bob  cli  disable  GET:/payments  maintenance → disabled  Outage
<time>  alice  cli  maintenance_on  GET:/payments  active → maintenance  Database migration`)
	golden(t, ns, must(t, "carol", ns, "audit", "GET:/payments", "--limit", "2"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  alice  cli  enable  GET:/payments  disabled → active  -
<time>  bob  cli  disable  GET:/payments  maintenance → disabled  Outage`)
	golden(t, ns, must(t, "carol", ns, "audit", "--actor", "bob", "--action", "disable", "--since", "1h"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  disable  POST:/refunds  active → disabled  -
<time>  bob  cli  disable  GET:/payments  maintenance → disabled  Outage`)
	golden(t, ns, must(t, "carol", ns, "audit", "--actor", "mallory"), `No audit entries match.`)

	var list waygatev1.AuditEntryList
	if err := json.Unmarshal([]byte(must(t, "carol", ns, "audit", "-o", "json", "--limit", "1")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Spec.Path != "POST:/refunds" {
		t.Errorf("audit -o json --limit 1: %+v", list.Items)
	}

	// --watch: the existing entry, then the new one.
	out, stop := watching(t, ns, "audit", "POST:/refunds", "--watch")
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), "active → disabled") {
			return fmt.Errorf("no table yet: %q", out.String())
		}
		return nil
	})
	must(t, "alice", ns, "enable", "POST:/refunds", "-r", "Ledger ready")
	eventually(t, 20*time.Second, func() error {
		if !strings.Contains(out.String(), "Ledger ready") {
			return fmt.Errorf("--watch printed no new entry:\n%s", out.String())
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Errorf("audit --watch ended by Ctrl-C: %v, want no error", err)
	}
	golden(t, ns, out.String(), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  disable  POST:/refunds  active → disabled  -
<time>  alice  cli  enable  POST:/refunds  disabled → active  Ledger ready`)
}

// audit --watch -o json prints every entry, those there and those written
// while it runs, as one JSON object a line (JSON lines, as kubectl get -w
// -o json); -o yaml prints each as a YAML document, separated by ---.
func TestAuditWatchStructured(t *testing.T) {
	ns := namespace(t)
	must(t, "bob", ns, "disable", "POST:/refunds", "-r", "Ledger move")
	must(t, "bob", ns, "disable", "GET:/payments", "-r", "Outage")
	waitAudit(t, ns, 2)
	for _, s := range []struct {
		format string
		split  func(string) []string
		decode func([]byte, any) error
		change []string // made while watching
		want   []string // action and reason of the entries printed
	}{
		{"json", func(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }, json.Unmarshal,
			[]string{"enable", "POST:/refunds", "-r", "Ledger ready"},
			[]string{"disable Ledger move", "enable Ledger ready"}},
		{"yaml", func(s string) []string { return strings.Split(s, "\n---\n") }, func(b []byte, v any) error { return yaml.UnmarshalStrict(b, v) },
			[]string{"disable", "POST:/refunds", "-r", "Ledger moves again"},
			[]string{"enable Ledger ready", "disable Ledger move", "disable Ledger moves again"}},
	} {
		out, stop := watching(t, ns, "audit", "POST:/refunds", "--watch", "-o", s.format)
		eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "Ledger move") {
				return fmt.Errorf("no entry yet: %q", out.String())
			}
			return nil
		})
		must(t, "alice", ns, s.change...)
		last := s.change[len(s.change)-1]
		eventually(t, 20*time.Second, func() error {
			if !strings.Contains(out.String(), last) {
				return fmt.Errorf("--watch -o %s printed no new entry:\n%s", s.format, out.String())
			}
			return nil
		})
		if err := stop(); err != nil {
			t.Errorf("audit --watch -o %s ended by Ctrl-C: %v, want no error", s.format, err)
		}
		var got []string
		for _, doc := range s.split(out.String()) {
			var e waygatev1.AuditEntry
			if err := s.decode([]byte(doc), &e); err != nil {
				t.Fatalf("-o %s: %q is not one AuditEntry: %v\n%s", s.format, doc, err, out.String())
			}
			if e.Kind != "AuditEntry" || e.APIVersion != waygatev1.GroupVersion.String() || e.Spec.Path != "POST:/refunds" {
				t.Errorf("-o %s: kind %q, apiVersion %q, path %q, want an AuditEntry of POST:/refunds", s.format, e.Kind, e.APIVersion, e.Spec.Path)
			}
			got = append(got, e.Spec.Action+" "+e.Spec.Reason)
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("audit --watch -o %s printed %q, want %q", s.format, got, s.want)
		}
	}
}

// watching runs the CLI as carol in ns until stop is called (Ctrl-C), for
// commands that watch; what it prints is in out as it prints it.
func watching(t *testing.T, ns string, args ...string) (out *lockedBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out = &lockedBuffer{}
	done := make(chan error)
	go func() { done <- run(ctx, out, out, "carol", ns, args...) }()
	return out, func() error {
		cancel()
		return <-done
	}
}

// Shell completion offers the route keys of the namespace.
func TestCompletion(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "disable", "POST:/refunds")
	must(t, "alice", ns, "maintenance", "GET:/payments")
	golden(t, ns, must(t, "carol", ns, "__complete", "enable", ""), `
GET:/payments
POST:/refunds
:4
Completion ended with directive: ShellCompDirectiveNoFileComp`)
}

// version names this client, and the operator's image when the user may
// read its Deployment.
func TestVersion(t *testing.T) {
	ns := namespace(t)
	golden(t, ns, must(t, "auditor", ns, "version"), `
client:  test
operator: unknown: you may not read the Deployments in waygate-system, where the operator runs`)
}
