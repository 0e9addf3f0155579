package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// metric reads one sample (name with its labels, as exposed) from a gate.
func metric(t *testing.T, g *controlplane.Gate, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("the gate exposes no %s", sample)
	return 0
}

func TestRedisSharedCounters(t *testing.T) {
	ns := env.Namespace(t, "gate")
	redis := realservers.Redis(t)
	url := "redis://" + redis.Addr + "/0"
	var gates [2]*controlplane.Gate
	for i := range gates {
		g, err := env.StartGate(context.Background(), gateBin, t.TempDir(), fmt.Sprint("gate-", i), "", "--redis-url", url, "--redis-timeout", "100ms")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Stop)
		gates[i] = g
	}
	const limit = 25
	p := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"}, Spec: waygatev1.RateLimitPolicySpec{
		Route: "*", Service: "api", Limit: fmt.Sprint(limit, "/hour"), Algorithm: waygatev1.SlidingWindow, KeyStrategy: waygatev1.KeyGlobal, Enabled: true,
	}}
	// A policy created after the shared one, for another service: once a
	// gate limits its requests, it has the shared policy too (one informer
	// delivers a kind's events in order).
	marker := &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marker"}, Spec: waygatev1.RateLimitPolicySpec{
		Route: "*", Service: "marker", Limit: "1000000/hour", Algorithm: waygatev1.FixedWindow, KeyStrategy: waygatev1.KeyGlobal, Enabled: true,
	}}
	for _, o := range []*waygatev1.RateLimitPolicy{p, marker} {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range gates {
		eventually(t, 10*time.Second, func() error {
			if a := check(t, g, ns, "marker", "GET", "/"); a.Header.Get("X-RateLimit-Limit") == "" {
				return fmt.Errorf("the gate does not limit yet: %s", a)
			}
			return nil
		})
	}
	// Both gates at once, 60 requests each: exactly the limit between them.
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for _, g := range gates {
		for range 4 {
			wg.Go(func() {
				for range 15 {
					if a := check(t, g, ns, "api", "GET", "/items"); a.Status == http.StatusOK {
						mu.Lock()
						allowed++
						mu.Unlock()
					} else if a.Status != http.StatusTooManyRequests {
						t.Errorf("got %s", a)
					}
				}
			})
		}
	}
	wg.Wait()
	if allowed != limit {
		t.Fatalf("%d of 120 requests allowed through two gates sharing a limit of %d", allowed, limit)
	}

	// Redis gone: requests fail open within the timeout, and the metric says so.
	redis.Stop()
	start := time.Now()
	for _, g := range gates {
		if a := check(t, g, ns, "api", "GET", "/items"); a.Status != http.StatusOK {
			t.Fatalf("with Redis down: %s, want the request let through", a)
		}
		if metric(t, g, "waygate_gate_counter_store_up") != 0 || metric(t, g, "waygate_gate_counter_errors_total") < 1 {
			t.Fatal("the metrics do not say Redis is down")
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failing open took %s", took)
	}

	// Redis back (empty: it kept nothing): the limit applies again.
	redis.Start(t)
	eventually(t, 20*time.Second, func() error {
		if a := check(t, gates[0], ns, "api", "GET", "/items"); a.Header.Get("X-RateLimit-Limit") != fmt.Sprint(limit) {
			return fmt.Errorf("not counting again yet: %s", a)
		}
		return nil
	})
	n := 1
	for ; n <= limit; n++ {
		if a := check(t, gates[n%2], ns, "api", "GET", "/items"); a.Status == http.StatusTooManyRequests {
			break
		}
	}
	if n != limit || metric(t, gates[0], "waygate_gate_counter_store_up") != 1 {
		t.Fatalf("after Redis came back, request %d was the first refused, want %d", n+1, limit+1)
	}
}

func TestAPIServerOutage(t *testing.T) {
	ns := env.Namespace(t, "gate")
	kubectl(t, `
apiVersion: waygate.dev/v1alpha1
kind: RouteGate
metadata: {name: payments}
spec: {route: "GET:/payments", service: payments, state: maintenance, reason: Migration}
`, "apply", "-n", ns, "-f", "-")
	waitFor(t, http.StatusServiceUnavailable, "MAINTENANCE_MODE", func() answer { return check(t, gw, ns, "payments", "GET", "/payments") })
	if age := metric(t, gw, "waygate_gate_snapshot_age_seconds"); age != 0 {
		t.Fatalf("snapshot age %v with the API server up", age)
	}

	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = env.StartAPIServer(context.Background())
		}
	}()
	// The gate keeps enforcing what it saw, and says its view is getting old.
	eventually(t, 20*time.Second, func() error {
		if age := metric(t, gw, "waygate_gate_snapshot_age_seconds"); age <= 0 {
			return fmt.Errorf("snapshot age %v with the API server down", age)
		}
		return nil
	})
	for range 3 {
		if a := check(t, gw, ns, "payments", "GET", "/payments"); a.code() != "MAINTENANCE_MODE" {
			t.Fatalf("with the API server down: %s", a)
		}
		if a := check(t, gw, ns, "payments", "GET", "/refunds"); a.Status != http.StatusOK {
			t.Fatalf("with the API server down: %s", a)
		}
		time.Sleep(time.Second)
	}
	if age := metric(t, gw, "waygate_gate_snapshot_age_seconds"); age < 2 {
		t.Errorf("snapshot age %v after 3 s down", age)
	}

	if err := env.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// A change made after the restart is enforced.
	eventually(t, 30*time.Second, func() error {
		_, err := runKubectl("", "patch", "rg", "payments", "-n", ns, "--type", "merge", "-p", `{"spec":{"state":"active"}}`)
		return err
	})
	// The informers come back on client-go's backoff (up to 30 s after
	// a few failed attempts): a loaded machine takes longer than 10 s.
	eventually(t, 30*time.Second, func() error {
		if a := check(t, gw, ns, "payments", "GET", "/payments"); a.Status != http.StatusOK {
			return fmt.Errorf("the change made after the restart is not enforced yet: %s", a)
		}
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		if age := metric(t, gw, "waygate_gate_snapshot_age_seconds"); age != 0 {
			return fmt.Errorf("snapshot age %v after the API server came back", age)
		}
		return nil
	})
}
