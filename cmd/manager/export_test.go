package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/collector"
)

// otlp is the environment and flags that export to c over protocol.
func otlp(c *collector.Collector, protocol string) (map[string]string, []string) {
	endpoint := "http://" + c.HTTP
	if protocol == "grpc" {
		endpoint = "http://" + c.GRPC
	}
	return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol},
		[]string{"--audit-export=otlp"}
}

// change creates or updates the RouteGate r<i> of ns as kubectl would (a
// change the webhook records); it reports whether the API server took it.
func change(ctx context.Context, ns string, i int, state waygatev1.RouteState) bool {
	rg := &waygatev1.RouteGate{
		TypeMeta:   metav1.TypeMeta{APIVersion: waygatev1.GroupVersion.String(), Kind: "RouteGate"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("r", i)},
		Spec: waygatev1.RouteGateSpec{
			Route: waygatev1.RouteKey(fmt.Sprintf("GET:/r%d", i)), Service: "shop", State: state, Reason: "change " + string(state),
		},
	}
	return env.Client.Patch(ctx, rg, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership) == nil //nolint:staticcheck // server-side apply of a typed object
}

// entries are the audit entries of ns, by the id the export gives them.
func entries(t *testing.T, ns string) map[string]waygatev1.AuditEntry {
	t.Helper()
	var list waygatev1.AuditEntryList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]waygatev1.AuditEntry{}
	for _, e := range list.Items {
		out[e.Namespace+"/"+e.Name] = e
	}
	return out
}

// drained waits until ns's objects have no change left to write into the
// audit log, and returns its entries.
func drained(t *testing.T, ns string, atLeast int) map[string]waygatev1.AuditEntry {
	t.Helper()
	var got map[string]waygatev1.AuditEntry
	var pending []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = entries(t, ns); len(got) < atLeast {
			continue
		}
		var rgs waygatev1.RouteGateList
		if err := env.Client.List(context.Background(), &rgs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		pending = pending[:0]
		for i := range rgs.Items {
			journal, err := audit.Journal(&rgs.Items[i])
			if err != nil {
				t.Fatal(err)
			}
			if p := audit.Pending(journal, rgs.Items[i].Status.AuditSequence); len(p) > 0 {
				pending = append(pending, fmt.Sprintf("%s (%d)", rgs.Items[i].Name, len(p)))
			}
		}
		if len(pending) == 0 {
			return got
		}
	}
	t.Fatalf("%s: %d entries (want at least %d), and changes still unwritten after a minute in %v", ns, len(got), atLeast, pending)
	return nil
}

// delivered waits (a minute at most) until the collector has every entry of want, and
// returns how many records it received for each id.
func delivered(t *testing.T, c *collector.Collector, want map[string]waygatev1.AuditEntry) map[string]int {
	t.Helper()
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		seen := map[string]int{}
		for _, r := range received(t, c) {
			seen[r.Attrs["waygate.audit.id"]]++
		}
		missing = missing[:0]
		for id := range want {
			if seen[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return seen
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d of %d entries did not reach the collector within a minute, e.g. %v", len(missing), len(want), missing[:min(3, len(missing))])
		}
	}
}

// Each entry arrives once as a log record with the entry's fields, over
// OTLP/HTTP and over gRPC, with a burst of changes.
func TestExportBurst(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			c := startCollector(t)
			environ, args := otlp(c, protocol)
			startOperator(t, environ, args...)
			ns := env.Namespace(t, "burst")
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < 80; i += 8 {
						change(ctx, ns, i, waygatev1.RouteActive)
						if i%2 == 0 {
							change(ctx, ns, i, waygatev1.RouteMaintenance)
						}
					}
				})
			}
			wg.Wait()
			want := drained(t, ns, 120)
			seen := delivered(t, c, want)
			byID := map[string]collector.Record{}
			for _, r := range received(t, c) {
				byID[r.Attrs["waygate.audit.id"]] = r
			}
			for id, e := range want {
				s, r := e.Spec, byID[id]
				for key, value := range map[string]string{
					"waygate.audit.path": s.Path, "waygate.audit.action": s.Action, "waygate.audit.actor": s.Actor,
					"waygate.audit.platform": string(s.Platform), "waygate.audit.old_status": s.OldStatus,
					"waygate.audit.new_status": s.NewStatus, "waygate.audit.reason": s.Reason,
					"waygate.audit.target.kind": s.Target.Kind, "waygate.audit.target.name": s.Target.Name,
					"waygate.audit.target.uid": s.Target.UID, "waygate.audit.target.generation": strconv.FormatInt(s.Target.Generation, 10),
					"k8s.namespace.name": e.Namespace,
				} {
					if r.Attrs[key] != value {
						t.Errorf("%s: %s = %q, want %q", id, key, r.Attrs[key], value)
					}
				}
				if seen[id] != 1 {
					t.Errorf("%s arrived %d times, want once", id, seen[id])
				}
			}
			t.Logf("%d entries, each delivered once", len(want))
		})
	}
}

// While the collector is away nothing undelivered is pruned, though
// retention would; once it is back everything arrives, then retention
// prunes, and records it, and that record is exported too.
func TestExportCollectorDown(t *testing.T) {
	c := startCollector(t)
	environ, args := otlp(c, "http/protobuf")
	startOperator(t, environ, append(args, "--audit-max-entries=5", "--audit-prune-interval=1s")...)
	ns := env.Namespace(t, "outage")
	ctx := context.Background()
	for i := range 3 {
		change(ctx, ns, i, waygatev1.RouteActive)
	}
	before := drained(t, ns, 3)
	delivered(t, c, before)

	c.Stop()
	for i := 3; i < 33; i++ {
		change(ctx, ns, i, waygatev1.RouteActive)
	}
	during := drained(t, ns, 30)
	time.Sleep(5 * time.Second) // several prune intervals
	left := entries(t, ns)
	for id := range during {
		if _, ok := left[id]; !ok && before[id].Name == "" {
			t.Errorf("%s was pruned before it was delivered", id)
		}
	}

	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	all := entries(t, ns)
	for id, e := range during {
		all[id] = e
	}
	delivered(t, c, all)
	// With everything delivered, retention catches up, and says so.
	var pruned map[string]waygatev1.AuditEntry
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pruned = map[string]waygatev1.AuditEntry{}
		changes := 0
		for id, e := range entries(t, ns) {
			if e.Spec.Action == audit.ActionPruned {
				pruned[id] = e
			} else {
				changes++
			}
		}
		if changes <= 5 && len(pruned) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention left %d changes (want 5) and %d audit_pruned entries", changes, len(pruned))
		}
	}
	delivered(t, c, pruned)
}

// Entries written while the operator is killed mid-export, replaced, and
// handed over by a graceful stop all arrive (some twice, with one id).
func TestExportAcrossRestartsAndLeaderChanges(t *testing.T) {
	c := startCollector(t)
	environ, args := otlp(c, "http/protobuf")
	first := startOperator(t, environ, args...)
	ns := env.Namespace(t, "restarts")
	ctx, stop := context.WithCancel(context.Background())
	var made atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // about 20 changes a second
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		// A change refused while no webhook answers leaves the route as it
		// was, and the next one may then set the state it has already.
		states := map[int]waygatev1.RouteState{}
		for i := 0; ctx.Err() == nil; i++ {
			r, state := i%40, []waygatev1.RouteState{waygatev1.RouteActive, waygatev1.RouteMaintenance}[i/40%2]
			if states[r] != state && change(context.Background(), ns, r, state) {
				states[r] = state
				made.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})
	time.Sleep(3 * time.Second)
	first.kill(t) // its lease stays until it expires
	second := startOperator(t, environ, args...)
	time.Sleep(20 * time.Second) // past the lease, and some more changes
	second.Stop()                // a graceful stop hands the lease over at once
	startOperator(t, environ, args...)
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	want := drained(t, ns, int(made.Load()))
	seen := delivered(t, c, want)
	twice := 0
	for id := range want {
		if seen[id] > 1 {
			twice++
		}
	}
	t.Logf("%d changes made, %d entries, all delivered, %d of them more than once", made.Load(), len(want), twice)
}
