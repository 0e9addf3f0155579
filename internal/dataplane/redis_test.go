package dataplane

import (
	"context"
	"testing"
	"time"

	"github.com/waygate-dev/waygate/internal/apihealth"
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/gate/gatetest"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// The Redis script counts exactly as the in-memory counters do.
func TestRedisCounters(t *testing.T) {
	redis := realservers.Redis(t)
	m := NewMetrics(&Source{health: &apihealth.Health{}})
	gatetest.RunCounters(t, func(t *testing.T) gate.Counters {
		rc, err := NewRedisCounters("redis://"+redis.Addr+"/0", time.Second, false, m)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		// Each case starts on an empty database.
		if c := rc.client.Load(); c != nil {
			if err := (*c).Do(context.Background(), (*c).B().Flushdb().Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}
		return rc
	}, time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC))
}

func TestRedisDownAtStart(t *testing.T) {
	m := NewMetrics(&Source{health: &apihealth.Health{}})
	rc, err := NewRedisCounters("redis://"+realservers.FreeAddr(t)+"/0", 50*time.Millisecond, false, m)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var res [1]gate.Result
	if _, err := rc.Take(context.Background(), time.Now(), []gate.Check{{Policy: "p", Count: 1, Period: time.Second}}, res[:]); err == nil {
		t.Fatal("counting without Redis did not fail")
	}
}
