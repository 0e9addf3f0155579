package gate_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/gate/gatetest"
)

var hour = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func TestMemoryCounters(t *testing.T) {
	gatetest.RunCounters(t, func(*testing.T) gate.Counters { return gate.NewMemoryCounters(1000) }, gatetest.FakeClock{Start: hour})
}

// take counts one request of ch at hour and says whether it was allowed.
func take(mc *gate.MemoryCounters, ch gate.Check) bool {
	var res [1]gate.Result
	refused, err := mc.Take(context.Background(), hour, []gate.Check{ch}, res[:])
	return err == nil && refused == -1
}

// flood makes one request for each of n distinct callers, header keys or
// IPv6 addresses (as a host rotating through its /64 would, were each
// address counted alone).
func flood(mc *gate.MemoryCounters, ch gate.Check, n int, byAddr bool) {
	base := netip.MustParseAddr("2001:db8::").As16()
	for i := range n {
		if byAddr {
			a := base
			a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			ch.CallerAddr = netip.AddrFrom16(a)
		} else {
			ch.Caller = fmt.Sprint("caller-", i)
		}
		take(mc, ch)
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
			mc := gate.NewMemoryCounters(maxKeys)
			ch := gate.Check{Policy: "p", Algorithm: waygatev1.FixedWindow, Count: tc.count, Period: time.Hour}
			flood(mc, ch, 200_000, false)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept, want at most %d", n, maxKeys)
			}
			// The latest caller's count is kept while others come.
			ch.Caller = "latest"
			for range tc.count {
				take(mc, ch)
			}
			flood(mc, gate.Check{Policy: "other", Algorithm: waygatev1.FixedWindow, Count: tc.count, Period: time.Hour}, 200_000, false)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept after two floods, want at most %d", n, maxKeys)
			}
			if tc.latestKept && take(mc, ch) {
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
		caller gate.Check
		byAddr bool
	}{
		{"address, flood of addresses", gate.Check{CallerAddr: attacker}, true},
		{"address, flood of header keys", gate.Check{CallerAddr: attacker}, false},
		{"header key, flood of header keys", gate.Check{Caller: "mallory"}, false},
		{"header key, flood of addresses", gate.Check{Caller: "mallory"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxKeys = 6400
			mc := gate.NewMemoryCounters(maxKeys)
			// A limit per day: the flood's counters expire no sooner than
			// the attacker's, so only its exhaustion can keep it.
			limit := gate.Check{Policy: "p", Algorithm: waygatev1.FixedWindow, Count: 3, Period: 24 * time.Hour}
			ch := limit
			ch.Caller, ch.CallerAddr = tc.caller.Caller, tc.caller.CallerAddr
			for range 3 {
				if !take(mc, ch) {
					t.Fatal("refused within the limit")
				}
			}
			if take(mc, ch) {
				t.Fatal("allowed beyond the limit")
			}
			flood(mc, limit, 50*maxKeys, tc.byAddr)
			if n := mc.Len(); n > maxKeys {
				t.Fatalf("%d counters kept, want at most %d", n, maxKeys)
			}
			if take(mc, ch) {
				t.Fatalf("allowed again after a flood of %d callers", 50*maxKeys)
			}
		})
	}
}

// Counting a client network allocates nothing (the decision benchmarks
// count the same through the engine).
func TestMemoryCountersTakeAllocatesNothing(t *testing.T) {
	mc := gate.NewMemoryCounters(1000)
	checks := []gate.Check{
		{Namespace: "shop", Policy: "v4", Algorithm: waygatev1.TokenBucket, Count: 1e9, Period: time.Second, CallerAddr: netip.MustParseAddr("192.0.2.1")},
		{Namespace: "shop", Policy: "v6", Algorithm: waygatev1.SlidingWindow, Count: 1e9, Period: time.Second, CallerAddr: netip.MustParseAddr("2001:db8::")},
	}
	var res [2]gate.Result
	if n := testing.AllocsPerRun(1000, func() { _, _ = mc.Take(context.Background(), hour, checks, res[:]) }); n != 0 {
		t.Fatalf("%v allocations per Take, want 0", n)
	}
}
