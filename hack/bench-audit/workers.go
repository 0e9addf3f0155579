package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func benchGate(ns, name string) *waygatev1.RouteGate {
	return &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:/" + name), State: waygatev1.RouteMaintenance, Reason: "start"},
	}
}

// setReason changes rg's reason with a merge patch, as kubectl patch and
// GitOps tools do: the API server applies it to the latest object, so the
// operator's own writes in between cause no conflicts.
func setReason(ctx context.Context, c client.Client, rg *waygatev1.RouteGate, reason string) error {
	patch := fmt.Sprintf(`{"spec":{"reason":%q}}`, reason)
	return c.Patch(ctx, rg, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// forEachWorker runs f(worker, iteration) in workers goroutines for d.
func forEachWorker(ctx context.Context, workers int, d time.Duration, f func(i, n int) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if err := f(i, n); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// count counts the AuditEntries in ns, a page at a time.
func count(ctx context.Context, c client.Client, ns string) (int, error) {
	n := 0
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(waygatev1.GroupVersion.WithKind("AuditEntryList"))
	for cont := ""; ; {
		if err := c.List(ctx, &list, client.InNamespace(ns), client.Limit(1000), client.Continue(cont)); err != nil {
			return 0, err
		}
		n += len(list.Items)
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}

// waitCount waits until ns holds at least want AuditEntries.
func waitCount(ctx context.Context, c client.Client, ns string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := count(ctx, c, ns)
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d audit entries after %s, want %d", ns, got, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
