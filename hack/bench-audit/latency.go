package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// lags are the times from changes' acceptance to their arrival somewhere.
type lags struct {
	p50, p99, worst time.Duration
	// n changes were made; lost never arrived.
	n, lost int
}

func (l lags) String() string {
	return fmt.Sprintf("p50 %s  p99 %s  max %s over %d changes, lost %d",
		l.p50.Round(time.Millisecond), l.p99.Round(time.Millisecond), l.worst.Round(time.Millisecond), l.n, l.lost)
}

// follower reports, through arrived, the reason of each change that
// arrives where it looks, until ctx ends.
type follower func(ctx context.Context, arrived func(reason string)) error

// entriesOf follows the AuditEntries of ns as they are written.
func entriesOf(cp *controlplane.ControlPlane, ns string) follower {
	return func(ctx context.Context, arrived func(string)) error {
		wc, err := client.NewWithWatch(cp.Admin, client.Options{Scheme: controlplane.Scheme})
		if err != nil {
			return err
		}
		w, err := wc.Watch(ctx, &waygatev1.AuditEntryList{}, client.InNamespace(ns))
		if err != nil {
			return err
		}
		go func() {
			defer w.Stop()
			for ev := range w.ResultChan() {
				if e, ok := ev.Object.(*waygatev1.AuditEntry); ok && ev.Type == watch.Added {
					arrived(e.Spec.Reason)
				}
			}
		}()
		return nil
	}
}

// latency makes rate changes a second for d to RouteGates of ns and
// measures, for each, the time from its acceptance to its arrival where
// follow looks.
func latency(ctx context.Context, cp *controlplane.ControlPlane, ns string, rate int, d time.Duration, follow follower) (lags, error) {
	c := cp.Client
	rgs := make([]*waygatev1.RouteGate, rate)
	for i := range rgs {
		rgs[i] = benchGate(ns, fmt.Sprintf("lat-%d", i))
		if err := c.Create(ctx, rgs[i]); err != nil {
			return lags{}, err
		}
	}
	if err := waitCount(ctx, c, ns, rate, time.Minute); err != nil {
		return lags{}, err
	}
	var mu sync.Mutex
	seen := map[string]time.Time{}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := follow(ctx, func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := seen[reason]; !ok {
			seen[reason] = time.Now()
		}
	}); err != nil {
		return lags{}, err
	}

	accepted := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < int(d.Seconds())*rate; i++ {
		<-tick.C
		reason := fmt.Sprintf("lat-%d", i)
		if err := setReason(ctx, c, rgs[i%rate], reason); err != nil {
			return lags{}, err
		}
		accepted[reason] = time.Now()
	}
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	var l lags
	for {
		mu.Lock()
		lat, l.lost = lat[:0], 0
		for reason, at := range accepted {
			if s, ok := seen[reason]; ok {
				lat = append(lat, max(s.Sub(at), 0))
			} else {
				l.lost++
			}
		}
		mu.Unlock()
		if l.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return l, errors.New("no changes arrived")
	}
	l.p50, l.p99, l.worst, l.n = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], len(accepted)
	return l, nil
}
