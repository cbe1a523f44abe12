package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The cases of AddOnce and Undo: operations applied once, remembered for
// their Keep, forgotten by Put, Delete and expiry, undone exactly.

func op(id string) store.CounterOp { return store.CounterOp{ID: id, Keep: time.Hour} }

func mustAddOnce(tb testing.TB, s store.Store, k store.Key, delta, min, max int64, o store.CounterOp) int64 {
	tb.Helper()
	n, err := s.AddOnce(context.Background(), k, delta, min, max, o)
	if err != nil {
		tb.Fatalf("AddOnce(%v, %d, %q): %v", k, delta, o.ID, err)
	}
	return n
}

func mustUndo(tb testing.TB, s store.Store, k store.Key, id string, want bool) {
	tb.Helper()
	got, err := s.Undo(context.Background(), k, id)
	if err != nil {
		tb.Fatalf("Undo(%v, %q): %v", k, id, err)
	}
	if got != want {
		tb.Fatalf("Undo(%v, %q): got %v, want %v", k, id, got, want)
	}
}

func wantCounter(tb testing.TB, s store.Store, k store.Key, value string, version int64) {
	tb.Helper()
	it := mustGet(tb, s, k)
	if string(it.Value) != value || (version > 0 && it.Version != version) {
		tb.Fatalf("Get(%v): got %q v%d, want %q v%d", k, it.Value, it.Version, value, version)
	}
}

func testAddOnceAppliesOnce(t *testing.T, s store.Store) {
	k := key("u#o1", "c|t|n")
	if n := mustAddOnce(t, s, k, 1, 0, 10, op("grant:a")); n != 1 {
		t.Fatalf("first AddOnce: got %d, want 1", n)
	}
	for range 3 {
		if n := mustAddOnce(t, s, k, 1, 0, 10, op("grant:a")); n != 1 {
			t.Fatalf("repeated AddOnce: got %d, want the first answer 1", n)
		}
	}
	wantCounter(t, s, k, "1", 1)
	if n := mustAddOnce(t, s, k, 1, 0, 10, op("grant:b")); n != 2 {
		t.Fatalf("another operation: got %d, want 2", n)
	}
	mustAdd(t, s, k, 5, 0, 10)
	// A repeat answers what the first call answered, whatever happened since.
	if n := mustAddOnce(t, s, k, 1, 0, 10, op("grant:a")); n != 1 {
		t.Fatalf("repeat after other changes: got %d, want 1", n)
	}
	if n := mustAddOnce(t, s, k, 1, 0, 10, op("grant:b")); n != 2 {
		t.Fatalf("repeat of b: got %d, want 2", n)
	}
	wantCounter(t, s, k, "7", 3)
	// The same id on another counter is another operation.
	other := key("u#o1", "c|u|n")
	if n := mustAddOnce(t, s, other, 1, 0, 10, op("grant:a")); n != 1 {
		t.Fatalf("same id, other counter: got %d, want 1", n)
	}
}

func testAddOnceFailureNotRemembered(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("u#o1", "c|t|n")
	_, err := s.AddOnce(ctx, k, -1, 0, math.MaxInt64, op("take:n1"))
	wantErr(t, "AddOnce -1 on a missing counter", err, store.ErrOutOfRange)
	wantAbsent(t, s, k)
	mustAdd(t, s, k, 1, 0, 10)
	if n := mustAddOnce(t, s, k, -1, 0, math.MaxInt64, op("take:n1")); n != 0 {
		t.Fatalf("AddOnce after the credit came: got %d, want 0", n)
	}
	_, err = s.AddOnce(ctx, k, -1, 0, math.MaxInt64, op("take:n2"))
	wantErr(t, "AddOnce below min", err, store.ErrOutOfRange)
	wantCounter(t, s, k, "0", 2)
	txt := key("p", "text")
	mustPut(t, s, txt, "hello", store.PutOptions{})
	_, err = s.AddOnce(ctx, txt, 1, 0, 10, op("x"))
	wantErr(t, "AddOnce on a non-counter", err, store.ErrNotCounter)
	mustUndo(t, s, txt, "x", false)
	wantCounter(t, s, txt, "hello", 1)
}

func testAddOnceInvalidOp(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "c")
	for _, o := range []store.CounterOp{
		{ID: "", Keep: time.Hour},
		{ID: strings.Repeat("x", store.MaxOpIDSize+1), Keep: time.Hour},
		{ID: "bad\x00id", Keep: time.Hour},
		{ID: "bad\xffid", Keep: time.Hour},
		{ID: "ok", Keep: 0},
		{ID: "ok", Keep: store.MaxOpKeep + time.Hour},
	} {
		_, err := s.AddOnce(ctx, k, 1, 0, 10, o)
		wantErr(t, fmt.Sprintf("AddOnce with op %q keep %s", o.ID, o.Keep), err, store.ErrInvalidOp)
	}
	_, err := s.Undo(ctx, k, "")
	wantErr(t, "Undo with an empty id", err, store.ErrInvalidOp)
	wantAbsent(t, s, k)
	if n := mustAddOnce(t, s, k, 1, 0, 10, store.CounterOp{ID: strings.Repeat("y", store.MaxOpIDSize), Keep: time.Hour}); n != 1 {
		t.Fatalf("AddOnce with the longest id: got %d, want 1", n)
	}
}

func testAddOnceForgetsAfterKeep(t *testing.T, s store.Store) {
	k := key("p", "c")
	keep := 300 * time.Millisecond
	mustAddOnce(t, s, k, 1, 0, 10, store.CounterOp{ID: "a", Keep: keep})
	mustAddOnce(t, s, k, 1, 0, 10, store.CounterOp{ID: "b", Keep: time.Hour})
	time.Sleep(keep + 100*time.Millisecond)
	if n := mustAddOnce(t, s, k, 1, 0, 10, store.CounterOp{ID: "a", Keep: keep}); n != 3 {
		t.Fatalf("AddOnce past its keep: got %d, want 3 (applied again)", n)
	}
	if n := mustAddOnce(t, s, k, 1, 0, 10, op("b")); n != 2 {
		t.Fatalf("AddOnce still kept: got %d, want the first answer 2", n)
	}
	mustUndo(t, s, k, "b", true)
	wantCounter(t, s, k, "2", 4)
}

func testAddOnceExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "window")
	exp := time.Now().Add(expiryDelay)
	o := store.CounterOp{ID: "first", Keep: time.Hour, ExpiresAt: exp}
	if n := mustAddOnce(t, s, k, 1, math.MinInt64, math.MaxInt64, o); n != 1 {
		t.Fatalf("AddOnce creating with an expiry: got %d, want 1", n)
	}
	if it := mustGet(t, s, k); it.ExpiresAt.IsZero() || it.ExpiresAt.Sub(exp).Abs() > time.Millisecond {
		t.Fatalf("expiry: got %v, want %v", it.ExpiresAt, exp)
	}
	// A repeat changes nothing, not even the expiry.
	o.ExpiresAt = exp.Add(time.Hour)
	mustAddOnce(t, s, k, 1, math.MinInt64, math.MaxInt64, o)
	if it := mustGet(t, s, k); it.ExpiresAt.Sub(exp).Abs() > time.Millisecond || it.Version != 1 {
		t.Fatalf("after a repeat: got exp %v v%d, want %v v1", it.ExpiresAt, it.Version, exp)
	}
	// A new operation moves the expiry; a plain Add keeps it.
	later := time.Now().Add(time.Hour)
	mustAddOnce(t, s, k, -1, math.MinInt64, math.MaxInt64, store.CounterOp{ID: "second", Keep: time.Hour, ExpiresAt: later})
	mustAdd(t, s, k, 1, math.MinInt64, math.MaxInt64)
	if it := mustGet(t, s, k); it.ExpiresAt.Sub(later).Abs() > time.Millisecond {
		t.Fatalf("after a second operation: got exp %v, want %v", it.ExpiresAt, later)
	}
	// An expired counter is absent, with the operations it remembered.
	short := key("p", "short")
	soon := time.Now().Add(expiryDelay)
	mustAddOnce(t, s, short, 5, 0, 10, store.CounterOp{ID: "x", Keep: time.Hour, ExpiresAt: soon})
	waitPast(soon)
	wantAbsent(t, s, short)
	mustUndo(t, s, short, "x", false)
	if n := mustAddOnce(t, s, short, 5, 0, 10, op("x")); n != 5 {
		t.Fatalf("AddOnce on the expired counter: got %d, want 5 (a new counter)", n)
	}
	if it := mustGet(t, s, short); it.Version != 1 || !it.ExpiresAt.IsZero() {
		t.Fatalf("new counter: got v%d exp %v, want v1 without expiry", it.Version, it.ExpiresAt)
	}
	if _, err := s.AddOnce(ctx, key("p", "past"), 1, 0, 10, store.CounterOp{ID: "y", Keep: time.Hour, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatalf("AddOnce with an expiry in the past: %v", err)
	}
	wantAbsent(t, s, key("p", "past"))
}

func testPutForgetsOps(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("u#o1", "c|t|n")
	mustAddOnce(t, s, k, 3, 0, 10, op("grant:a"))
	mustAddOnce(t, s, k, -1, 0, 10, op("take:n1"))
	// Zeroing the counter (a revoke) takes its operations with it: the
	// credit n1 holds is gone for good, and a later AddOnce of an old id is
	// a new operation.
	mustPut(t, s, k, "0", store.PutOptions{})
	mustUndo(t, s, k, "take:n1", false)
	wantCounter(t, s, k, "0", 3)
	if n := mustAddOnce(t, s, k, 3, 0, 10, op("grant:a")); n != 3 {
		t.Fatalf("AddOnce after Put: got %d, want 3", n)
	}
	if err := s.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	mustUndo(t, s, k, "grant:a", false)
	wantAbsent(t, s, k)
	if n := mustAddOnce(t, s, k, 2, 0, 10, op("grant:a")); n != 2 {
		t.Fatalf("AddOnce after Delete: got %d, want 2", n)
	}
	// A Put of a non-counter and back: nothing remembered either.
	mustPut(t, s, k, "text", store.PutOptions{})
	mustPut(t, s, k, "4", store.PutOptions{})
	mustUndo(t, s, k, "grant:a", false)
	wantCounter(t, s, k, "4", 0)
}

func testUndo(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("u#o1", "c|t|n")
	mustUndo(t, s, k, "take:n1", false)
	wantAbsent(t, s, k)
	mustAdd(t, s, k, 3, 0, 10)
	if n := mustAddOnce(t, s, k, -1, 0, 10, op("take:n1")); n != 2 {
		t.Fatalf("take: got %d, want 2", n)
	}
	mustAdd(t, s, k, 1, 0, 10)                     // a grant meanwhile: 3
	mustAddOnce(t, s, k, -1, 0, 10, op("take:n2")) // another send: 2
	mustUndo(t, s, k, "take:n1", true)
	wantCounter(t, s, k, "3", 5)
	// Undone once: repeats change nothing.
	mustUndo(t, s, k, "take:n1", false)
	mustUndo(t, s, k, "take:n1", false)
	wantCounter(t, s, k, "3", 5)
	// Undone operations may be applied again.
	if n := mustAddOnce(t, s, k, -1, 0, 10, op("take:n1")); n != 2 {
		t.Fatalf("take again after undo: got %d, want 2", n)
	}
	mustUndo(t, s, k, "take:n2", true)
	mustUndo(t, s, k, "take:n1", true)
	wantCounter(t, s, k, "4", 8)
	// Undo ignores the bounds the operation was applied within.
	big := key("p", "big")
	mustAddOnce(t, s, big, -5, -10, 10, op("minus"))
	mustAdd(t, s, big, 15, -10, 10)
	mustUndo(t, s, big, "minus", true)
	wantCounter(t, s, big, "15", 3)
	// A plain Add keeps what the counter remembers; an Undo whose delta
	// would overflow fails and changes nothing.
	edge := key("p", "edge")
	mustAddOnce(t, s, edge, -1, math.MinInt64, math.MaxInt64, op("m"))
	mustAdd(t, s, edge, math.MaxInt64, math.MinInt64, math.MaxInt64)
	mustAdd(t, s, edge, 1, math.MinInt64, math.MaxInt64)
	_, err := s.Undo(ctx, edge, "m")
	wantErr(t, "Undo past MaxInt64", err, store.ErrOutOfRange)
	wantCounter(t, s, edge, "9223372036854775807", 3)
}

func testAddOnceManyOps(t *testing.T, s store.Store) {
	k := key("p", "many")
	n := store.MaxOps + 5
	for i := range n {
		mustAddOnce(t, s, k, 1, 0, math.MaxInt64, store.CounterOp{ID: fmt.Sprintf("op%04d", i), Keep: time.Hour + time.Duration(i)*time.Millisecond})
	}
	wantCounter(t, s, k, fmt.Sprint(n), 0)
	// The counter keeps the MaxOps operations furthest from being
	// forgotten: the newest are recognised, the oldest applied again.
	if v := mustAddOnce(t, s, k, 1, 0, math.MaxInt64, op(fmt.Sprintf("op%04d", n-1))); v != int64(n) {
		t.Fatalf("repeat of the newest: got %d, want %d", v, n)
	}
	if v := mustAddOnce(t, s, k, 1, 0, math.MaxInt64, op("op0000")); v != int64(n+1) {
		t.Fatalf("repeat of the oldest: got %d, want %d (forgotten, applied again)", v, n+1)
	}
}

func testConcurrentAddOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("u#o1", "c|t|n")
	mustAdd(t, s, k, 10, 0, 100)
	// Every goroutine repeats the same 5 operations: each applies once.
	var wg sync.WaitGroup
	var errs atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			for i := range 5 {
				id := fmt.Sprintf("take:n%d", (g+i)%5)
				if _, err := s.AddOnce(ctx, k, -1, 0, 100, op(id)); err != nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d AddOnce calls failed", errs.Load())
	}
	wantCounter(t, s, k, "5", 0)
	// Concurrent undos of the same operation revert it once.
	var undone atomic.Int64
	for range goroutines {
		wg.Go(func() {
			ok, err := s.Undo(ctx, k, "take:n3")
			if err != nil {
				errs.Add(1)
			}
			if ok {
				undone.Add(1)
			}
		})
	}
	wg.Wait()
	if errs.Load() != 0 || undone.Load() != 1 {
		t.Fatalf("concurrent undos: %d failed, %d undid, want 0 and 1", errs.Load(), undone.Load())
	}
	wantCounter(t, s, k, "6", 0)
	// Distinct operations on a bounded counter never cross the bound.
	var taken atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			_, err := s.AddOnce(ctx, k, -1, 0, 100, op(fmt.Sprintf("take:m%d", g)))
			switch {
			case err == nil:
				taken.Add(1)
			case !errors.Is(err, store.ErrOutOfRange):
				errs.Add(1)
			}
		})
	}
	wg.Wait()
	if errs.Load() != 0 || taken.Load() != 6 {
		t.Fatalf("takes from 6 credits: %d failed, %d taken, want 0 and 6", errs.Load(), taken.Load())
	}
	wantCounter(t, s, k, "0", 0)
}
