// Package parallel runs a benchmark's n operations in a number of workers.
package parallel

import (
	"context"
	"sync"
	"sync/atomic"
)

// Do runs f(0) … f(n-1) in workers goroutines, and stops at the first
// error, which it returns, or when ctx ends.
func Do(ctx context.Context, workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && len(errs) == 0 {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
