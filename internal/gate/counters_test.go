package gate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/gate/gatetest"
)

var hour = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func TestMemoryCounters(t *testing.T) {
	gatetest.RunCounters(t, func(*testing.T) gate.Counters { return gate.NewMemoryCounters(1000) }, hour)
}

func TestMemoryCountersAreBounded(t *testing.T) {
	mc := gate.NewMemoryCounters(6400)
	ch := gate.Check{Policy: "p", Algorithm: waygatev1.FixedWindow, Count: 5, Period: time.Hour}
	var res [1]gate.Result
	for i := range 200_000 {
		ch.Caller = fmt.Sprint("caller-", i)
		_, _ = mc.Take(context.Background(), hour, []gate.Check{ch}, res[:])
	}
	if n := mc.Len(); n > 6400 {
		t.Fatalf("%d counters kept, want at most 6400", n)
	}
	// The latest caller keeps its count.
	for range 5 {
		_, _ = mc.Take(context.Background(), hour, []gate.Check{ch}, res[:])
	}
	if res[0].Allowed {
		t.Fatal("the latest caller's count was lost")
	}
}
