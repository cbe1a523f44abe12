package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// reserveTests are the conformance tests of what the shared batch rate
// limit (package notify, ratelimit.go) needs of AddOnce, run by Run: named
// additions of several units at once, each returning the counter after it,
// reserve disjoint ranges under concurrency; the expiry rides with them; a
// bounded addition refused leaves the counter as it was.
var reserveTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AddOnceReservesRanges", testAddOnceReservesRanges},
	{"AddOnceBoundedReservation", testAddOnceBoundedReservation},
}

// testAddOnceReservesRanges: concurrent AddOnce calls adding chunks of 1 to
// 10 to one expiring counter: the ranges (v-chunk, v] they return tile
// 1..total with no overlap and no gap, and the counter expires when told.
func testAddOnceReservesRanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("rl|app|1", "n")
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	type reserved struct{ first, last int64 }
	var (
		mu     sync.Mutex
		ranges []reserved
		total  int64
		g0     int64 // what rl:g0:0 returned
		errs   []error
		wg     sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range 4 { // 200 operations: the counter remembers them all
				chunk := int64(1 + (g*4+i)%10)
				o := store.CounterOp{ID: fmt.Sprintf("rl:g%d:%d", g, i), Keep: time.Hour, ExpiresAt: expires}
				v, err := s.AddOnce(ctx, k, chunk, 0, math.MaxInt64, o)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ranges = append(ranges, reserved{v - chunk + 1, v})
					if g == 0 && i == 0 {
						g0 = v
					}
					total += chunk
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].first < ranges[j].first })
	next := int64(1)
	for _, r := range ranges {
		if r.first != next {
			t.Fatalf("ranges %v: one starts at %d, want %d (no overlap, no gap)", ranges, r.first, next)
		}
		next = r.last + 1
	}
	it := mustGet(t, s, k)
	if string(it.Value) != fmt.Sprint(total) || next != total+1 || !it.ExpiresAt.Equal(expires) {
		t.Fatalf("counter %q expiring %v after ranges up to %d; want %d expiring %v", it.Value, it.ExpiresAt, next-1, total, expires)
	}
	// A repeat of an applied reservation (its reply lost) returns the same
	// range and reserves nothing more.
	o := store.CounterOp{ID: "rl:g0:0", Keep: time.Hour, ExpiresAt: expires}
	if v, err := s.AddOnce(ctx, k, 1, 0, math.MaxInt64, o); err != nil || v != g0 {
		t.Fatalf("repeated reservation: got %d, %v; want its first value %d, nothing added", v, err, g0)
	}
	wantCounter(t, s, k, fmt.Sprint(total), 0)
}

// testAddOnceBoundedReservation: the catch-up of a lagging counter is a
// bounded AddOnce; when another caller moved the counter on first it is
// refused (ErrOutOfRange), changes nothing and is not remembered.
func testAddOnceBoundedReservation(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("rl|app|2", "n")
	o := func(id string) store.CounterOp { return store.CounterOp{ID: id, Keep: time.Hour} }
	if v := mustAddOnce(t, s, k, 3, 0, math.MaxInt64, o("a")); v != 3 {
		t.Fatalf("first reservation: got %d, want 3", v)
	}
	// Two callers catch up to slot 50 with a chunk of 5: bound 54.
	if v := mustAddOnce(t, s, k, 51, 0, 54, o("b")); v != 54 {
		t.Fatalf("catch-up: got %d, want 54", v)
	}
	if _, err := s.AddOnce(ctx, k, 51, 0, 54, o("c")); !errors.Is(err, store.ErrOutOfRange) {
		t.Fatalf("second catch-up: got %v, want ErrOutOfRange", err)
	}
	wantCounter(t, s, k, "54", 0)
	// Refused, so not remembered: the same id applies unbounded.
	if v := mustAddOnce(t, s, k, 5, 0, math.MaxInt64, o("c")); v != 59 {
		t.Fatalf("reservation after the refused catch-up: got %d, want 59", v)
	}
}
