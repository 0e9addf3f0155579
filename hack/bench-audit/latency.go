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

// latency makes rate changes a second for d and measures, for each, the time
// from its acceptance to its AuditEntry appearing on a watch.
func latency(ctx context.Context, cp *controlplane.ControlPlane, rate int, d time.Duration) (p50, p99 time.Duration, n, lost int, err error) {
	const ns = "bench-latency"
	c := cp.Client
	wc, err := client.NewWithWatch(cp.Admin, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	rgs := make([]*waygatev1.RouteGate, rate)
	for i := range rgs {
		rgs[i] = benchGate(ns, fmt.Sprintf("lat-%d", i))
		if err := c.Create(ctx, rgs[i]); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	if err := waitCount(ctx, c, ns, rate, time.Minute); err != nil {
		return 0, 0, 0, 0, err
	}
	w, err := wc.Watch(ctx, &waygatev1.AuditEntryList{}, client.InNamespace(ns))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer w.Stop()
	var mu sync.Mutex
	seen := map[string]time.Time{}
	go func() {
		for ev := range w.ResultChan() {
			if e, ok := ev.Object.(*waygatev1.AuditEntry); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[e.Spec.Reason] = time.Now()
				mu.Unlock()
			}
		}
	}()

	accepted := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < int(d.Seconds())*rate; i++ {
		<-tick.C
		reason := fmt.Sprintf("lat-%d", i)
		if err := setReason(ctx, c, rgs[i%rate], reason); err != nil {
			return 0, 0, 0, 0, err
		}
		accepted[reason] = time.Now()
	}
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		mu.Lock()
		lat, lost = lat[:0], 0
		for reason, at := range accepted {
			if s, ok := seen[reason]; ok {
				lat = append(lat, max(s.Sub(at), 0))
			} else {
				lost++
			}
		}
		mu.Unlock()
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0, 0, lost, errors.New("no entries seen")
	}
	return lat[len(lat)/2], lat[len(lat)*99/100], len(accepted), lost, nil
}
