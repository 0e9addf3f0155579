package counters

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

var hour = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func TestMemoryCounters(t *testing.T) {
	runConformance(t, func(*testing.T) Store { return NewMemory(1000) }, fakeClock{Start: hour})
}

// allowed counts one request of ch at hour and says whether it was allowed.
func allowed(mc *Memory, ch Check) bool {
	var res [1]Result
	refused, err := mc.Take(context.Background(), hour, []Check{ch}, res[:])
	return err == nil && refused == -1
}

// flood makes one request for each of n distinct callers, header keys or
// IPv6 addresses (as a host rotating through its /64 would, were each
// address counted alone).
func flood(mc *Memory, ch Check, n int, byAddr bool) {
	base := netip.MustParseAddr("2001:db8::").As16()
	for i := range n {
		if byAddr {
			a := base
			a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			ch.CallerAddr = netip.AddrFrom16(a)
		} else {
			ch.Caller = fmt.Sprint("caller-", i)
		}
		allowed(mc, ch)
	}
}

func TestMemoryCountersAreBounded(t *testing.T) {
	const maxKeys = 6400
	for _, tc := range []struct {
		name string
		// count of the flood's limit: 1 exhausts every counter it makes.
		count int64
		// latestKept: a flood of exhausted callers may evict the latest
		// (exhausted too), as the sample has nothing better to evict.
		latestKept bool
	}{
		{"callers with requests left", 5, true},
		{"exhausted callers", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := NewMemory(maxKeys)
			ch := Check{Policy: "p", Algorithm: waygatev1.FixedWindow, Count: tc.count, Period: time.Hour}
			flood(mc, ch, 200_000, false)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept, want at most %d", n, maxKeys)
			}
			// The latest caller's count is kept while others come.
			ch.Caller = "latest"
			for range tc.count {
				allowed(mc, ch)
			}
			flood(mc, Check{Policy: "other", Algorithm: waygatev1.FixedWindow, Count: tc.count, Period: time.Hour}, 200_000, false)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept after two floods, want at most %d", n, maxKeys)
			}
			if tc.latestKept && allowed(mc, ch) {
				t.Fatal("the latest caller's count was lost")
			}
		})
	}
}

// A caller that was refused stays refused however many new callers come.
func TestMemoryCountersKeepExhausted(t *testing.T) {
	attacker := netip.MustParseAddr("2001:db8:ffff:1::")
	for _, tc := range []struct {
		name   string
		caller Check
		byAddr bool
	}{
		{"address, flood of addresses", Check{CallerAddr: attacker}, true},
		{"address, flood of header keys", Check{CallerAddr: attacker}, false},
		{"header key, flood of header keys", Check{Caller: "mallory"}, false},
		{"header key, flood of addresses", Check{Caller: "mallory"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxKeys = 6400
			mc := NewMemory(maxKeys)
			// A limit per day: the flood's counters expire no sooner than
			// the attacker's, so only its exhaustion can keep it.
			limit := Check{Policy: "p", Algorithm: waygatev1.FixedWindow, Count: 3, Period: 24 * time.Hour}
			ch := limit
			ch.Caller, ch.CallerAddr = tc.caller.Caller, tc.caller.CallerAddr
			for range 3 {
				if !allowed(mc, ch) {
					t.Fatal("refused within the limit")
				}
			}
			if allowed(mc, ch) {
				t.Fatal("allowed beyond the limit")
			}
			flood(mc, limit, 50*maxKeys, tc.byAddr)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept, want at most %d", n, maxKeys)
			}
			if allowed(mc, ch) {
				t.Fatalf("allowed again after a flood of %d callers", 50*maxKeys)
			}
		})
	}
}

// Counting a client network allocates nothing (the decision benchmarks
// count the same through the engine).
func TestMemoryCountersTakeAllocatesNothing(t *testing.T) {
	mc := NewMemory(1000)
	checks := []Check{
		{Namespace: "shop", Policy: "v4", Algorithm: waygatev1.TokenBucket, Count: 1e9, Period: time.Second, CallerAddr: netip.MustParseAddr("192.0.2.1")},
		{Namespace: "shop", Policy: "v6", Algorithm: waygatev1.SlidingWindow, Count: 1e9, Period: time.Second, CallerAddr: netip.MustParseAddr("2001:db8::")},
	}
	var res [2]Result
	if n := testing.AllocsPerRun(1000, func() { _, _ = mc.Take(context.Background(), hour, checks, res[:]) }); n != 0 {
		t.Fatalf("%v allocations per Take, want 0", n)
	}
}
