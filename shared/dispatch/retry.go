package dispatch

import (
	"context"
	"sync"
	"time"
)

// Defaults of both dispatchers.
const (
	// DefaultAttempts is how many times a call, or an entry, is tried.
	DefaultAttempts = 3
	// DefaultBackoff is the wait before the second attempt; it doubles.
	DefaultBackoff = 200 * time.Millisecond
	// DefaultConcurrency bounds the calls made at once.
	DefaultConcurrency = 8
)

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// each runs f(i) for i in [0, n), at most limit at once, and returns the
// errors by index (nil where f passed).
func each(n, limit int, f func(i int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, max(1, limit))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errs
}
