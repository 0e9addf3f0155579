package counters

// The cases every Store must pass, so that counters in memory and in Redis
// count alike.

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// A testClock is the time counter tests run in: a store that counts at the time
// it is given runs in a fakeClock, one that reads its own clock (Redis's
// TIME) in realClock.
type testClock interface {
	// start is when a case starts, a whole second so that its windows line
	// up, once it has come.
	start() time.Time
	// at is the time d after start, once it has come.
	at(start time.Time, d time.Duration) time.Time
	// slack is how far a result's time may be from the one expected.
	slack() time.Duration
}

// fakeClock runs every case at Start (a whole hour), jumping from step to
// step: results must agree with the expected ones to the microsecond.
type fakeClock struct{ Start time.Time }

func (c fakeClock) start() time.Time                            { return c.Start }
func (fakeClock) at(start time.Time, d time.Duration) time.Time { return start.Add(d) }
func (fakeClock) slack() time.Duration                          { return 0 }

// realClock runs the cases now, sleeping until each step. A step comes a
// little late (scheduling, the call to the store), so the cases keep their
// steps away from the edges where that would change an answer, and times
// may be off by realSlack.
type realClock struct{}

// realSlack bounds how late a step runs and how early a store's time,
// converted to the caller's clock, may come back (on two cores shared
// with other tests, a step is sometimes tens of milliseconds late).
const realSlack = 100 * time.Millisecond

func (realClock) start() time.Time {
	now := time.Now()
	s := now.Truncate(time.Second).Add(time.Second)
	time.Sleep(s.Sub(now))
	return s
}

func (realClock) at(start time.Time, d time.Duration) time.Time {
	time.Sleep(time.Until(start.Add(d)))
	return time.Now()
}

func (realClock) slack() time.Duration { return realSlack }

// step is one request at an offset from the start of a counter test.
type step struct {
	at      time.Duration
	allowed bool
	// remaining and retry (from the start; 0: not checked) of the result.
	remaining int64
	retry     time.Duration
}

// counterCases are the algorithms' arithmetic, shared by every Counters
// implementation: in memory and in Redis.
// Periods are a second at most and every case ends within 3 s, so that a
// store on the real clock runs them quickly; no step is within realSlack of
// an edge that would change its answer.
var counterCases = []struct {
	name  string
	check Check
	steps []step
}{
	{"fixed window", Check{Algorithm: waygatev1.FixedWindow, Count: 3, Period: time.Second}, []step{
		{0, true, 2, 0}, {100 * time.Millisecond, true, 1, 0}, {200 * time.Millisecond, true, 0, 0},
		{300 * time.Millisecond, false, 0, time.Second},
		{time.Second, true, 2, 0},
	}},
	{"fixed window with a burst", Check{Algorithm: waygatev1.FixedWindow, Count: 2, Burst: 2, Period: time.Second}, []step{
		{0, true, 3, 0}, {0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0}, {0, false, 0, time.Second},
	}},
	{"sliding window", Check{Algorithm: waygatev1.SlidingWindow, Count: 4, Period: time.Second}, []step{
		{0, true, 3, 0}, {50 * time.Millisecond, true, 2, 0}, {100 * time.Millisecond, true, 1, 0}, {150 * time.Millisecond, true, 0, 0},
		// Full: the next window starts with the previous one weighing 4,
		// which has decayed to 3 at 1.25 s.
		{200 * time.Millisecond, false, 0, 1250 * time.Millisecond},
		{time.Second, false, 0, 1250 * time.Millisecond},
		{1250 * time.Millisecond, true, 0, 0},
		// Two windows later nothing weighs.
		{3 * time.Second, true, 3, 0},
	}},
	{"token bucket", Check{Algorithm: waygatev1.TokenBucket, Count: 2, Burst: 1, Period: time.Second}, []step{
		{0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0},
		{0, false, 0, 500 * time.Millisecond},
		{600 * time.Millisecond, true, 0, 0},
		// 0.2 tokens at 600 ms, 0.4 at 700: the next whole one at 1 s.
		{700 * time.Millisecond, false, 0, time.Second},
		// Refilled to the limit plus the burst, never beyond.
		{3 * time.Second, true, 2, 0},
	}},
}

// runConformance runs the shared cases against the counters newCounters
// returns, in clock, all at once: on the real clock they mostly sleep (and
// t.Parallel would run only as many at once as there are processors).
// Every case counts in a namespace of its own, so that on a Redis Cluster
// they land on several masters.
func runConformance(t *testing.T, newCounters func(t *testing.T) Store, clock testClock) {
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(name string, f func(t *testing.T)) { wg.Go(func() { t.Run(name, f) }) }
	for i, tc := range counterCases {
		run(tc.name, func(t *testing.T) {
			c := newCounters(t)
			ch := tc.check
			ch.Namespace, ch.Policy, ch.Caller = fmt.Sprint("ns-", i), "p-"+tc.name, "alice"
			warmUp(t, c, ch)
			start := clock.start()
			for i, s := range tc.steps {
				var res [1]Result
				now := clock.at(start, s.at)
				// A step that ran late may be told to retry that much later
				// (a token bucket counts from the request's time).
				late := max(now.Sub(start.Add(s.at)), 0)
				refused, err := c.Take(context.Background(), now, []Check{ch}, res[:])
				if err != nil {
					t.Fatal(err)
				}
				r := res[0]
				if r.Allowed != s.allowed || (refused == -1) != s.allowed || r.Remaining != s.remaining {
					t.Fatalf("step %d at %s: allowed %v (refused %d) remaining %d, want %v remaining %d", i, s.at, r.Allowed, refused, r.Remaining, s.allowed, s.remaining)
				}
				if off := r.RetryAt.Sub(start.Add(s.retry)); s.retry != 0 && (off < -clock.slack() || off > clock.slack()+late) {
					t.Fatalf("step %d at %s (%s late): retry at %s, want %s (± %s)", i, s.at, late, r.RetryAt.Sub(start), s.retry, clock.slack())
				}
			}
		})
	}
	run("layers", func(t *testing.T) {
		c := newCounters(t)
		wide := Check{Namespace: "shop", Policy: "wide", Algorithm: waygatev1.FixedWindow, Count: 10, Period: time.Minute}
		route := Check{Namespace: "shop", Policy: "route", Algorithm: waygatev1.FixedWindow, Count: 1, Period: time.Minute, Caller: "alice"}
		after := Check{Namespace: "shop", Policy: "after", Algorithm: waygatev1.FixedWindow, Count: 1, Period: time.Minute}
		start := clock.start()
		var res [3]Result
		for i, want := range []int{-1, 1, 1} {
			refused, err := c.Take(context.Background(), clock.at(start, 0), []Check{wide, route, after}, res[:])
			if err != nil || refused != want {
				t.Fatalf("request %d: refused by %d (%v), want %d", i, refused, err, want)
			}
		}
		// The wide layer counted all three; the layer after the refusal
		// only the first.
		if refused, _ := c.Take(context.Background(), clock.at(start, 0), []Check{wide, after}, res[:2]); refused != 1 || res[0].Remaining != 6 {
			t.Fatalf("refused by %d, wide remaining %d; want 1, 6", refused, res[0].Remaining)
		}
		// Other callers and a reset policy count afresh.
		route.Caller = "bob"
		if refused, _ := c.Take(context.Background(), clock.at(start, 0), []Check{route}, res[:1]); refused != -1 {
			t.Fatal("bob was refused by alice's counter")
		}
		route.Policy = "route@reset"
		route.Caller = "alice"
		if refused, _ := c.Take(context.Background(), clock.at(start, 0), []Check{route}, res[:1]); refused != -1 {
			t.Fatal("a reset policy kept alice's count")
		}
	})
	run("caller kinds", func(t *testing.T) {
		c := newCounters(t)
		start := clock.start()
		for _, addr := range []string{"192.0.2.7", "2001:db8:1:2::"} {
			a := netip.MustParseAddr(addr)
			raw := a.AsSlice()
			raw16 := a.As16()
			// A header may carry any bytes: the address's text, its raw
			// bytes (4 or 16, and 16 for an IPv4 one), or its text as an
			// IPv4-mapped address.
			for i, caller := range []string{a.String(), string(raw), string(raw16[:]), netip.AddrFrom16(raw16).String(), "ip:" + a.String()} {
				byAddr := Check{Namespace: "shop", Policy: fmt.Sprint("kinds-", addr, "-", i), Algorithm: waygatev1.FixedWindow, Count: 1, Period: time.Minute, CallerAddr: a}
				var res [1]Result
				if refused, err := c.Take(context.Background(), clock.at(start, 0), []Check{byAddr}, res[:]); err != nil || refused != -1 {
					t.Fatalf("%s: its first request was refused (%d, %v)", addr, refused, err)
				}
				if refused, err := c.Take(context.Background(), clock.at(start, 0), []Check{byAddr}, res[:]); err != nil || refused != 0 {
					t.Fatalf("%s: its second request was not refused (%d, %v)", addr, refused, err)
				}
				byKey := byAddr
				byKey.CallerAddr, byKey.Caller = netip.Addr{}, caller
				if refused, err := c.Take(context.Background(), clock.at(start, 0), []Check{byKey}, res[:]); err != nil || refused != -1 {
					t.Fatalf("the header key %q was refused by the counter of the address %s (%d, %v)", caller, addr, refused, err)
				}
			}
		}
	})
	run("namespaces", func(t *testing.T) {
		testNamespaces(t, newCounters(t), clock)
	})
}

// warmUp counts a request of another policy in ch's namespace, so that
// the first step is not late (a store may connect, or load a script).
func warmUp(t *testing.T, c Store, ch Check) {
	ch.Policy += "-warm-up"
	var res [1]Result
	if _, err := c.Take(context.Background(), time.Now(), []Check{ch}, res[:]); err != nil {
		t.Fatal(err)
	}
}

// testNamespaces counts concurrent decisions of several namespaces, which
// a shared store may batch together.
func testNamespaces(t *testing.T, c Store, clock testClock) {
	const namespaces, callers, requests = 8, 4, 5
	const wideCount, routeCount = 100, 3
	wide := func(ns int) Check {
		return Check{Namespace: fmt.Sprint("team-", ns), Policy: fmt.Sprint("wide-", ns), Algorithm: waygatev1.FixedWindow, Count: wideCount, Period: time.Hour}
	}
	start := clock.start()
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for ns := range namespaces {
		for caller := range callers {
			for range requests {
				wg.Go(func() {
					route := Check{Namespace: fmt.Sprint("team-", ns), Policy: fmt.Sprint("route-", ns), Algorithm: waygatev1.TokenBucket,
						Count: routeCount, Period: time.Hour, Caller: fmt.Sprint("caller-", caller)}
					var res [2]Result
					refused, err := c.Take(context.Background(), clock.at(start, 0), []Check{wide(ns), route}, res[:])
					if err != nil {
						t.Error(err)
						return
					}
					if refused == -1 {
						mu.Lock()
						allowed[fmt.Sprint(ns, "/", caller)]++
						mu.Unlock()
					}
				})
			}
		}
	}
	wg.Wait()
	for ns := range namespaces {
		for caller := range callers {
			if n := allowed[fmt.Sprint(ns, "/", caller)]; n != routeCount {
				t.Errorf("team-%d caller-%d: %d of %d requests allowed, want %d", ns, caller, n, requests, routeCount)
			}
		}
		// Every request reached the namespace's layer, and only its
		// namespace's requests did.
		var res [1]Result
		if _, err := c.Take(context.Background(), clock.at(start, 0), []Check{wide(ns)}, res[:]); err != nil || res[0].Remaining != wideCount-callers*requests-1 {
			t.Errorf("team-%d: %d remaining (%v), want %d", ns, res[0].Remaining, err, wideCount-callers*requests-1)
		}
	}
}
