package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error)
	go func() { done <- run(ctx, &out, &out, "carol", ns, "audit", "POST:/refunds", "--watch") }()
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
	cancel()
	if err := <-done; err != nil {
		t.Errorf("audit --watch ended by Ctrl-C: %v, want no error", err)
	}
	golden(t, ns, out.String(), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  disable  POST:/refunds  active → disabled  -
<time>  alice  cli  enable  POST:/refunds  disabled → active  Ledger ready`)
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
