package counters

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/rueidis"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// testInstruments are instruments no registry collects.
func testInstruments() Instruments {
	return Instruments{Errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "errors"}), Up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "up"})}
}

// newRedis connects to url until the test ends.
func newRedis(t *testing.T, url string, timeout time.Duration) *Redis {
	t.Helper()
	rc, err := NewRedis(url, timeout, false, testInstruments())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	if rc.client.Load() == nil {
		t.Fatalf("not connected to %s", url)
	}
	return rc
}

// The Redis counters, standalone and in a cluster, count as the in-memory
// counters do, in one clock whatever the gates' clocks say, in script
// calls of bounded size.
func TestRedisCounters(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t realservers.T) string
		// cluster: the keys live on several masters.
		cluster bool
	}{
		{"standalone", func(t realservers.T) string { return "redis://" + realservers.Redis(t).Addr + "/0" }, false},
		{"cluster", realservers.RedisCluster, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.url(t)
			t.Run("shared cases", func(t *testing.T) {
				runConformance(t, func(t *testing.T) Store { return newRedis(t, url, time.Second) }, realClock{})
			})
			if tc.cluster {
				if n := mastersThatCounted(t, url); n < 2 {
					t.Errorf("the shared cases' namespaces were counted on %d master(s), want them spread over at least 2", n)
				}
			}
			t.Run("one clock", func(t *testing.T) { testOneClock(t, url) })
			t.Run("bounded calls", func(t *testing.T) { testBoundedCalls(t, url) })
		})
	}
}

// mastersThatCounted is how many nodes of the cluster at url ran the
// counters script.
func mastersThatCounted(t *testing.T, url string) int {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for addr, node := range c.Nodes() {
		stats, err := node.Do(context.Background(), node.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if strings.Contains(stats, "cmdstat_evalsha:calls=") || strings.Contains(stats, "cmdstat_eval:calls=") {
			n++
		}
	}
	return n
}

// testOneClock has two gates whose clocks are 10 s apart count one caller,
// alternately: they count one window, as Redis's clock says, and each gets
// times back in its own clock.
func testOneClock(t *testing.T, url string) {
	gates := []struct {
		rc   *Redis
		skew time.Duration
	}{{newRedis(t, url, time.Second), 5 * time.Second}, {newRedis(t, url, time.Second), -5 * time.Second}}
	for _, tc := range []struct {
		name     string
		check    Check
		requests int
		// every: the time between requests.
		every time.Duration
		// allowed are the bounds of the requests allowed, given how long
		// the requests took from the end of the first to the start of the
		// last (inner) and from the start of the first to the end of the
		// last (outer).
		allowed func(inner, outer time.Duration) (least, most int)
	}{
		{"fixed window 10/minute", Check{Algorithm: waygatev1.FixedWindow, Count: 10, Period: time.Minute}, 30, 0,
			func(_, _ time.Duration) (int, int) { return 10, 10 }},
		// The gates' clocks are in different windows of 10 s, always.
		{"fixed window 10 per 10 s", Check{Algorithm: waygatev1.FixedWindow, Count: 10, Period: 10 * time.Second}, 30, 0,
			func(_, _ time.Duration) (int, int) { return 10, 10 }},
		{"token bucket 2/second", Check{Algorithm: waygatev1.TokenBucket, Count: 2, Period: time.Second}, 100, 10 * time.Millisecond,
			func(inner, outer time.Duration) (int, int) {
				// 2 at once, then one each time a token has refilled,
				// taken by the next request.
				return int(2+2*inner.Seconds()) - 1, int(2 + 2*outer.Seconds())
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := tc.check
			ch.Namespace, ch.Policy, ch.Caller = "shop", "skew-"+tc.name, "alice"
			// Start away from a window's end, so that the requests count in
			// one window of Redis's clock (the windows' edges are whole
			// multiples of the period; the requests take well under 1 s).
			if p := ch.Period; p > time.Second {
				if left := p - time.Duration(time.Now().UnixNano())%p; left < time.Second {
					time.Sleep(left + 10*time.Millisecond)
				}
			}
			allowed := 0
			var first, firstDone, last time.Time
			for i := range tc.requests {
				g := gates[i%2]
				if i > 0 {
					time.Sleep(tc.every)
				}
				if i == tc.requests-1 {
					last = time.Now()
				}
				if i == 0 {
					first = time.Now()
				}
				now := time.Now().Add(g.skew)
				var res [1]Result
				refused, err := g.rc.Take(context.Background(), now, []Check{ch}, res[:])
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					firstDone = time.Now()
				}
				r := res[0]
				if refused == -1 {
					allowed++
				} else if wait := r.RetryAt.Sub(now); wait <= 0 || wait > ch.Period {
					t.Fatalf("request %d of the gate %s off: retry in %s, want within the period %s, in the gate's clock", i, g.skew, wait, ch.Period)
				}
				if full := r.Reset.Sub(now); full <= 0 || full > ch.Period {
					t.Fatalf("request %d of the gate %s off: reset in %s, want within the period %s, in the gate's clock", i, g.skew, full, ch.Period)
				}
			}
			inner, outer := last.Sub(firstDone), time.Since(first)
			if least, most := tc.allowed(inner, outer); allowed < least || allowed > most {
				t.Fatalf("%d of %d requests allowed (in %s), want %d to %d", allowed, tc.requests, outer, least, most)
			}
		})
	}
}

// holdingClient holds script calls until released, so that decisions
// queue into one batch, and records the keys of each call.
type holdingClient struct {
	rueidis.Client
	release chan struct{}
	held    atomic.Int32
	mu      sync.Mutex
	calls   [][]string
}

func (h *holdingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	h.held.Add(1)
	<-h.release
	// EVALSHA sha1 numkeys key... arg...
	if words := cmd.Commands(); len(words) > 2 && strings.HasPrefix(words[0], "EVAL") {
		if n, err := strconv.Atoi(words[2]); err == nil && 3+n <= len(words) {
			// A copy: rueidis recycles a command's words once it is done.
			keys := append([]string(nil), words[3:3+n]...)
			h.mu.Lock()
			h.calls = append(h.calls, keys)
			h.mu.Unlock()
		}
	}
	return h.Client.Do(ctx, cmd)
}

// testBoundedCalls has many decisions of several namespaces wait
// together: they are split into script calls of at most maxKeysPerCall
// keys of one hash tag each, and counted exactly.
func testBoundedCalls(t *testing.T, url string) {
	rc := newRedis(t, url, 10*time.Second)
	hc := &holdingClient{Client: *rc.client.Load(), release: make(chan struct{})}
	var c rueidis.Client = hc
	rc.client.Store(&c)

	const namespaces, callers, requests, limit = 8, 50, 4, 2
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	decide := func(ns int, caller string) {
		wg.Go(func() {
			checks := []Check{
				{Namespace: fmt.Sprint("team-", ns), Policy: fmt.Sprint("bound-wide-", ns), Algorithm: waygatev1.FixedWindow, Count: math.MaxInt32, Period: time.Hour},
				{Namespace: fmt.Sprint("team-", ns), Policy: fmt.Sprint("bound-route-", ns), Algorithm: waygatev1.TokenBucket, Count: limit, Period: time.Hour, Caller: caller},
			}
			var res [2]Result
			refused, err := rc.Take(context.Background(), time.Now(), checks, res[:])
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
	// Decisions that take every call in flight, held...
	for i := range maxInFlight {
		decide(0, "first")
		waitFor(t, func() bool { return hc.held.Load() == int32(i+1) }, "a call held")
	}
	// ...so that all the others queue behind them.
	decisions := namespaces * callers * requests
	for i := range decisions {
		decide(i%namespaces, fmt.Sprint("caller-", i/namespaces%callers))
	}
	waitFor(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.queue) == decisions
	}, "every decision queued")
	close(hc.release)
	wg.Wait()

	most := 0
	cluster := hc.Mode() == rueidis.ClientModeCluster
	for _, keys := range hc.calls {
		most = max(most, len(keys))
		tag := keys[0][:strings.Index(keys[0], "}")+1]
		for _, k := range keys {
			if cluster && !strings.HasPrefix(k, tag) {
				t.Fatalf("one call carried keys of several hash tags to a Redis Cluster: %s and %s", keys[0], k)
			}
		}
	}
	// A full call shows that the waiting decisions were batched, then
	// split.
	if most != maxKeysPerCall {
		t.Errorf("the largest script call carried %d keys, want %d", most, maxKeysPerCall)
	}
	for ns := range namespaces {
		for caller := range callers {
			if n := allowed[fmt.Sprint(ns, "/caller-", caller)]; n != limit {
				t.Errorf("team-%d caller-%d: %d of %d requests allowed, want %d", ns, caller, n, requests, limit)
			}
		}
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10s", what)
		}
	}
}

// The script counts as the in-memory counters do, to the microsecond: the
// same requests, at the time the script read from Redis, get the same
// results from both.
func TestRedisScriptCountsAsMemory(t *testing.T) {
	url := "redis://" + realservers.Redis(t).Addr + "/0"
	rc := newRedis(t, url, time.Second)
	c := *rc.client.Load()
	mc := NewMemory(1000)
	// Short periods, so that windows turn and buckets refill many times.
	checks := []Check{
		{Namespace: "shop", Policy: "fixed", Algorithm: waygatev1.FixedWindow, Count: 6, Burst: 1, Period: 70 * time.Millisecond},
		{Namespace: "shop", Policy: "sliding", Algorithm: waygatev1.SlidingWindow, Count: 5, Period: 50 * time.Millisecond},
		{Namespace: "shop", Policy: "bucket", Algorithm: waygatev1.TokenBucket, Count: 3, Burst: 1, Period: 30 * time.Millisecond},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	refusedBy := map[string]int{}
	for i := range 400 {
		time.Sleep(time.Duration(rnd.IntN(4000)) * time.Microsecond)
		// Each check first in turn, so that each may refuse.
		order := append(append([]Check(nil), checks[i%3:]...), checks[:i%3]...)
		w := &waiter{checks: order}
		keys, args := scriptArgs([]*waiter{w})
		vals, err := countersScript.Exec(context.Background(), c, keys, args).AsIntSlice()
		if err != nil {
			t.Fatal(err)
		}
		now := vals[0]
		var want [3]Result
		refused, _ := mc.Take(context.Background(), time.UnixMicro(now), order, want[:])
		counted := len(order)
		if refused >= 0 {
			counted = refused + 1
			refusedBy[order[refused].Policy]++
		}
		if len(vals) < 2 || vals[1] != int64(counted) || len(vals) != 2+4*counted {
			t.Fatalf("request %d: the script answered %v, the memory counters counted %d limits", i, vals, counted)
		}
		for j := range counted {
			v, r := vals[2+4*j:6+4*j], want[j]
			var retry int64
			if !r.Allowed {
				retry = r.RetryAt.UnixMicro()
			}
			if got, want := [4]int64{v[0], v[1], v[2], v[3]}, [4]int64{b2i(r.Allowed), r.Remaining, r.Reset.UnixMicro(), retry}; got != want {
				t.Fatalf("request %d at %d µs, %s: the script answered (allowed, remaining, reset, retry) %v, the memory counters %v", i, now, order[j].Policy, got, want)
			}
		}
	}
	// Every limit refused some requests, so the stores were compared
	// refusing as well as allowing.
	for _, ch := range checks {
		if refusedBy[ch.Policy] == 0 {
			t.Errorf("no request was refused by the limit %s: the comparison missed refusals", ch.Policy)
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// A Redis that is down when the gate starts is no error: counting fails
// (the engine fails open or closed), and the store says so in its metrics.
func TestRedisDownAtStart(t *testing.T) {
	m := testInstruments()
	m.Up.Set(1)
	rc, err := NewRedis("redis://"+realservers.FreeAddr(t)+"/0", 50*time.Millisecond, false, m)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var res [1]Result
	if _, err := rc.Take(context.Background(), time.Now(), []Check{{Policy: "p", Count: 1, Period: time.Second}}, res[:]); err == nil {
		t.Fatal("counting without Redis did not fail")
	}
	if up, errs := testutil.ToFloat64(m.Up), testutil.ToFloat64(m.Errors); up != 0 || errs < 1 {
		t.Errorf("without Redis: up %v, errors %v; want up 0 and errors counted", up, errs)
	}
}

// The limits of one decision share a namespace, so that their keys share a
// hash slot: a decision that mixes them is refused before it reaches Redis
// (where a cluster client would panic).
func TestRedisRefusesMixedNamespaces(t *testing.T) {
	rc := newRedis(t, "redis://"+realservers.Redis(t).Addr+"/0", time.Second)
	checks := []Check{{Namespace: "shop", Policy: "a", Count: 1, Period: time.Second}, {Namespace: "bank", Policy: "b", Count: 1, Period: time.Second}}
	var res [2]Result
	if _, err := rc.Take(context.Background(), time.Now(), checks, res[:]); err == nil || !strings.Contains(err.Error(), `"bank"`) {
		t.Fatalf("a decision of two namespaces: %v, want an error naming them", err)
	}
}
