package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// global turns maintenance of every route of a service, or of the
// namespace, on and off, with exempt routes; each switch is audited as
// global_maintenance_on/off.
func TestGlobal(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "disable", "POST:/refunds", "--service", "payments")
	must(t, "alice", ns, "maintenance", "GET:/health", "--service", "payments")
	golden(t, ns, must(t, "alice", ns, "global", "enable", "--service", "payments", "-r", "Ledger upgrade"),
		`* (service payments): maintenance "Ledger upgrade" (created routegate <ns>/payments-all-routes)`)
	golden(t, ns, must(t, "bob", ns, "global", "exempt-add", "get:/health", "--service", "payments"),
		`* (service payments): maintenance "Ledger upgrade" → maintenance except GET:/health "Ledger upgrade" (routegate <ns>/payments-all-routes)`)
	golden(t, ns, must(t, "bob", ns, "global", "enable", "-r", "Cluster move"),
		`*: maintenance "Cluster move" (created routegate <ns>/all-routes)`)
	// Namespace-wide maintenance governs first: both routes count there.
	eventually(t, 20*time.Second, func() error {
		out, err := waygate(t, "carol", ns, "global", "status")
		if err == nil && (strings.Contains(out, "pending") || !strings.Contains(masked(out, ns), "Cluster move  -  false  2")) {
			return fmt.Errorf("not reconciled yet:\n%s", out)
		}
		return err
	})
	golden(t, ns, must(t, "carol", ns, "global", "status"), `
SERVICE  STATE  REASON  EXEMPT  FORCE-ACTIVE TOO  ROUTES GOVERNED  NEXT CHANGE
(namespace)  maintenance  Cluster move  -  false  2  -
payments  maintenance  Ledger upgrade  GET:/health  false  0  -`)

	_, err := waygate(t, "bob", ns, "global", "exempt-remove", "GET:/metrics", "--service", "payments")
	if err == nil || err.Error() != "GET:/metrics is not exempt; exempt now: GET:/health" {
		t.Errorf("exempt-remove of a route that is not exempt: %v", err)
	}
	golden(t, ns, must(t, "alice", ns, "global", "disable", "--service", "payments"),
		`* (service payments): maintenance except GET:/health "Ledger upgrade" → active except GET:/health (routegate <ns>/payments-all-routes)`)
	must(t, "alice", ns, "global", "disable")
	waitAudit(t, ns, 2, "--action", "global_maintenance_off")
	golden(t, ns, must(t, "carol", ns, "audit", "--action", "global_maintenance_on"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  global_maintenance_on  __global__  active → maintenance  Cluster move
<time>  alice  cli  global_maintenance_on  service:payments  active → maintenance  Ledger upgrade`)
	golden(t, ns, must(t, "carol", ns, "audit", "--action", "global_maintenance_off"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  alice  cli  global_maintenance_off  __global__  maintenance → active  -
<time>  alice  cli  global_maintenance_off  service:payments  maintenance → active  -`)
}
