// Package gatetest holds the tests every gate.Counters implementation must
// pass, so that counters in memory and in Redis count alike.
package gatetest

import (
	"context"
	"testing"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
)

// step is one request at an offset from the start of a counter test.
type step struct {
	at      time.Duration
	allowed bool
	// remaining and retry (from the start; 0: not checked) of the result.
	remaining int64
	retry     time.Duration
}

// counterCases are the algorithms' arithmetic, shared by every Counters
// implementation: in memory (internal/gate) and in Redis (internal/dataplane).
var counterCases = []struct {
	name  string
	check gate.Check
	steps []step
}{
	{"fixed window", gate.Check{Algorithm: waygatev1.FixedWindow, Count: 3, Period: time.Second}, []step{
		{0, true, 2, 0}, {100 * time.Millisecond, true, 1, 0}, {200 * time.Millisecond, true, 0, 0},
		{300 * time.Millisecond, false, 0, time.Second},
		{time.Second, true, 2, 0},
	}},
	{"fixed window with a burst", gate.Check{Algorithm: waygatev1.FixedWindow, Count: 2, Burst: 2, Period: time.Minute}, []step{
		{0, true, 3, 0}, {0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0}, {0, false, 0, time.Minute},
	}},
	{"sliding window", gate.Check{Algorithm: waygatev1.SlidingWindow, Count: 4, Period: time.Minute}, []step{
		{0, true, 3, 0}, {time.Second, true, 2, 0}, {2 * time.Second, true, 1, 0}, {3 * time.Second, true, 0, 0},
		// Full: the next window starts with the previous one weighing 4,
		// which has decayed to 3 at 75 s.
		{4 * time.Second, false, 0, 75 * time.Second},
		{60 * time.Second, false, 0, 75 * time.Second},
		{75 * time.Second, true, 0, 0},
		// Two windows later nothing weighs.
		{180 * time.Second, true, 3, 0},
	}},
	{"token bucket", gate.Check{Algorithm: waygatev1.TokenBucket, Count: 2, Burst: 1, Period: time.Second}, []step{
		{0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0},
		{0, false, 0, 500 * time.Millisecond},
		{500 * time.Millisecond, true, 0, 0},
		{600 * time.Millisecond, false, 0, time.Second},
		// Refilled to the limit plus the burst, never beyond.
		{10 * time.Second, true, 2, 0},
	}},
}

// RunCounters runs counterCases against the counters newCounters returns,
// from start (a whole number of hours, so windows line up).
func RunCounters(t *testing.T, newCounters func(t *testing.T) gate.Counters, start time.Time) {
	for _, tc := range counterCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounters(t)
			ch := tc.check
			ch.Policy, ch.Caller = "p-"+tc.name, "alice"
			for i, s := range tc.steps {
				var res [1]gate.Result
				refused, err := c.Take(context.Background(), start.Add(s.at), []gate.Check{ch}, res[:])
				if err != nil {
					t.Fatal(err)
				}
				r := res[0]
				if r.Allowed != s.allowed || (refused == -1) != s.allowed || r.Remaining != s.remaining {
					t.Fatalf("step %d at %s: allowed %v (refused %d) remaining %d, want %v remaining %d", i, s.at, r.Allowed, refused, r.Remaining, s.allowed, s.remaining)
				}
				if s.retry != 0 && !r.RetryAt.Equal(start.Add(s.retry)) {
					t.Fatalf("step %d at %s: retry at %s, want %s", i, s.at, r.RetryAt.Sub(start), s.retry)
				}
			}
		})
	}
	t.Run("layers", func(t *testing.T) {
		c := newCounters(t)
		wide := gate.Check{Policy: "wide", Algorithm: waygatev1.FixedWindow, Count: 10, Period: time.Minute}
		route := gate.Check{Policy: "route", Algorithm: waygatev1.FixedWindow, Count: 1, Period: time.Minute, Caller: "alice"}
		after := gate.Check{Policy: "after", Algorithm: waygatev1.FixedWindow, Count: 1, Period: time.Minute}
		var res [3]gate.Result
		for i, want := range []int{-1, 1, 1} {
			refused, err := c.Take(context.Background(), start, []gate.Check{wide, route, after}, res[:])
			if err != nil || refused != want {
				t.Fatalf("request %d: refused by %d (%v), want %d", i, refused, err, want)
			}
		}
		// The wide layer counted all three; the layer after the refusal
		// only the first.
		if refused, _ := c.Take(context.Background(), start, []gate.Check{wide, after}, res[:2]); refused != 1 || res[0].Remaining != 6 {
			t.Fatalf("refused by %d, wide remaining %d; want 1, 6", refused, res[0].Remaining)
		}
		// Other callers and a reset policy count afresh.
		route.Caller = "bob"
		if refused, _ := c.Take(context.Background(), start, []gate.Check{route}, res[:1]); refused != -1 {
			t.Fatal("bob was refused by alice's counter")
		}
		route.Policy = "route@reset"
		route.Caller = "alice"
		if refused, _ := c.Take(context.Background(), start, []gate.Check{route}, res[:1]); refused != -1 {
			t.Fatal("a reset policy kept alice's count")
		}
	})
}
