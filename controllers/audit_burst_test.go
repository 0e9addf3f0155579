package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// A burst of 50 changes by 5 users between reconciles yields exactly 50
// entries, each with its own actor.
func TestAuditBurst(t *testing.T) {
	ns := env.Namespace(t, "audit")
	rg := routeGate(ns, "burst", waygatev1.RouteGateSpec{Route: "GET:/burst"})
	create(t, rg)
	waitEntries(t, ns, "burst", 1)
	burst(t, ns, rg, 5, 10, nil)
	checkBurst(t, ns, "burst", 5, 10)
}

// The same burst while the operator stops and starts again: the changes made
// before the stop are in the journal, those during it wait (the webhook is
// away, so the API server refuses them and the users retry), and after the
// restart there are still exactly 50 entries.
func TestAuditBurstAcrossOperatorRestart(t *testing.T) {
	ns := env.Namespace(t, "audit")
	rg := routeGate(ns, "restart", waygatev1.RouteGateSpec{Route: "GET:/restart"})
	create(t, rg)
	waitEntries(t, ns, "restart", 1)
	var doneAtStop int64
	p := burst(t, ns, rg, 5, 10, func(p *burstProgress) {
		p.down.Store(true)
		doneAtStop = p.done.Load()
		env.StopOperator()
		time.Sleep(time.Second)
		if err := env.StartOperator(); err != nil {
			t.Fatal(err)
		}
		p.down.Store(false)
	})
	// The restart came mid-burst: changes were made before it, and users
	// tried (and were refused) while the operator was away.
	if doneAtStop == 0 || doneAtStop >= 50 || p.refusedWhileDown.Load() == 0 {
		t.Fatalf("%d of 50 changes made before the stop, %d refused while the operator was down: the restart was not mid-burst",
			doneAtStop, p.refusedWhileDown.Load())
	}
	checkBurst(t, ns, "restart", 5, 10)
}

// burstProgress is how far a burst has come.
type burstProgress struct {
	done, refusedWhileDown atomic.Int64
	// down is set while the operator is away.
	down atomic.Bool
}

// burst makes users × each concurrent changes to rg's reason; after the
// first five it calls during (if set) while the changes go on.
func burst(t *testing.T, ns string, rg *waygatev1.RouteGate, users, each int, during func(*burstProgress)) *burstProgress {
	t.Helper()
	ctx := context.Background()
	p := &burstProgress{}
	var wg sync.WaitGroup
	errs := make(chan error, users)
	clients := make([]client.Client, users)
	for u := range users {
		clients[u] = asUser(t, ns, fmt.Sprintf("user-%d", u), "kubectl-edit")
	}
	for u := range users {
		c := clients[u]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Retry through conflicts and through the operator being away.
				err := wait(60*time.Second, func() error {
					var cur waygatev1.RouteGate
					if err := c.Get(ctx, client.ObjectKeyFromObject(rg), &cur); err != nil {
						return err
					}
					cur.Spec.Reason = fmt.Sprintf("user-%d change %d", u, i)
					err := c.Update(ctx, &cur)
					switch {
					case err == nil:
						p.done.Add(1)
					case p.down.Load() && !apierrors.IsConflict(err):
						p.refusedWhileDown.Add(1)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if during != nil {
		// Midway: once a few changes are made, with most still to come.
		for deadline := time.Now().Add(30 * time.Second); p.done.Load() < 5 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		during(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return p
}

func checkBurst(t *testing.T, ns, name string, users, each int) {
	t.Helper()
	got := waitEntries(t, ns, name, 1+users*each)
	perActor := map[string]int{}
	reasons := map[string]bool{}
	for _, e := range got[1:] {
		perActor[e.Spec.Actor]++
		if reasons[e.Spec.Reason] {
			t.Errorf("change %q recorded twice", e.Spec.Reason)
		}
		reasons[e.Spec.Reason] = true
		if !strings.HasPrefix(e.Spec.Reason, e.Spec.Actor+" ") {
			t.Errorf("entry by %s records %q, a change of another user", e.Spec.Actor, e.Spec.Reason)
		}
	}
	for u := range users {
		if n := perActor[fmt.Sprintf("user-%d", u)]; n != each {
			t.Errorf("user-%d has %d entries, want %d", u, n, each)
		}
	}
}

// wait retries f until it succeeds or the timeout passes.
func wait(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
