package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// writeAddTests are the conformance tests of a Write's Adds, run by Run.
var writeAddTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WriteAddApplies", testWriteAddApplies},
	{"WriteAddConflictWritesNothing", testWriteAddConflictWritesNothing},
	{"WriteAddRefused", testWriteAddRefused},
	{"WriteAddExpiry", testWriteAddExpiry},
	{"WriteAddConcurrent", testWriteAddConcurrent},
}

// testWriteAddApplies: an Add creates a missing counter at version 1,
// adds to a live one (+1 version), rides with Puts, reports version 0 and,
// as Add, keeps the operations the counter remembers.
func testWriteAddApplies(t *testing.T, s store.Store) {
	a, b, rec := key("st|app|d", "t1|sent"), key("st|app|d", "t1|failed"), key("ntf#1", "rec")
	versions := mustWrite(t, s,
		store.WritePut(rec, []byte("sent"), store.PutOptions{IfAbsent: true}),
		store.WriteAdd(a, 1, time.Time{}),
		store.WriteAdd(b, -3, time.Time{}),
	)
	if fmt.Sprint(versions) != "[1 0 0]" {
		t.Fatalf("versions: got %v, want [1 0 0]", versions)
	}
	wantSnapshot(t, "after first Write", snapshot(t, s, rec, a, b), []string{`"sent" v1`, `"1" v1`, `"-3" v1`})
	if it := mustGet(t, s, a); !it.ExpiresAt.IsZero() {
		t.Fatalf("new counter without expiry: got expiry %v", it.ExpiresAt)
	}
	mustWrite(t, s, store.WritePut(rec, []byte("delivered"), store.PutOptions{IfVersion: 1}), store.WriteAdd(a, 41, time.Time{}))
	wantSnapshot(t, "after second Write", snapshot(t, s, rec, a, b), []string{`"delivered" v2`, `"42" v2`, `"-3" v1`})
	// Add and Put see the counter a Write's Add left.
	if n := mustAdd(t, s, a, 1, 0, 100); n != 43 {
		t.Fatalf("Add after Write Add: got %d, want 43", n)
	}
	mustWrite(t, s, store.WriteAdd(a, 0, time.Time{}))
	wantCounter(t, s, a, "43", 4)
	// A counter Put set is added to.
	c := key("st|app|d", "t2|sent")
	mustPut(t, s, c, "7", store.PutOptions{})
	mustWrite(t, s, store.WriteAdd(c, 2, time.Time{}))
	wantCounter(t, s, c, "9", 2)
	// The operations remembered survive a Write's Add.
	mustAddOnce(t, s, c, 1, 0, 100, op("grant:x"))
	mustWrite(t, s, store.WriteAdd(c, 5, time.Time{}))
	if n := mustAddOnce(t, s, c, 1, 0, 100, op("grant:x")); n != 10 {
		t.Fatalf("AddOnce repeated after a Write Add: got %d, want the first answer 10", n)
	}
	wantCounter(t, s, c, "15", 4)
	mustUndo(t, s, c, "grant:x", true)
	wantCounter(t, s, c, "14", 5)
	// The counters are items of their partition.
	got := sortKeys(queryAll(t, s, store.Query{Partition: "st|app|d", Prefix: "t", Limit: 10}))
	if fmt.Sprint(got) != "[t1|failed t1|sent t2|sent]" {
		t.Fatalf("Query: got %v", got)
	}
}

// testWriteAddConflictWritesNothing: a failed condition elsewhere in the
// Write leaves the Add undone.
func testWriteAddConflictWritesNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, m, rec := key("st|a|d", "t|sent"), key("st|a|d", "t|held"), key("ntf#2", "rec")
	mustPut(t, s, rec, "x", store.PutOptions{})
	mustWrite(t, s, store.WriteAdd(n, 5, time.Time{}))
	before := snapshot(t, s, n, m, rec)
	for _, ops := range [][]store.WriteOp{
		{store.WriteAdd(n, 1, time.Time{}), store.WriteAdd(m, 1, time.Time{}), store.WritePut(rec, []byte("y"), store.PutOptions{IfVersion: 7})},
		{store.WritePut(rec, []byte("y"), store.PutOptions{IfAbsent: true}), store.WriteAdd(n, 1, time.Time{})},
		{store.WriteAdd(m, 1, time.Time{}), store.WriteCheck(rec, 0)},
	} {
		_, err := s.Write(ctx, ops)
		var wc *store.WriteConflict
		if !errors.As(err, &wc) {
			t.Fatalf("Write: got %v, want a *store.WriteConflict", err)
		}
		if wc.Index >= 0 && ops[wc.Index].Kind == store.AddKind {
			t.Fatalf("Write: conflict blamed on Add op %d: %v", wc.Index, err)
		}
		wantSnapshot(t, "after conflicting Write", snapshot(t, s, n, m, rec), before)
	}
}

// testWriteAddRefused: an Add on a live non-counter or past the int64
// range fails the whole Write and writes nothing.
func testWriteAddRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	txt, big, other := key("st|r|d", "text"), key("st|r|d", "big"), key("st|r|d", "other")
	mustPut(t, s, txt, "hello", store.PutOptions{})
	mustPut(t, s, big, fmt.Sprint(int64(math.MaxInt64-1)), store.PutOptions{})
	before := snapshot(t, s, txt, big, other)
	_, err := s.Write(ctx, []store.WriteOp{store.WritePut(other, []byte("x"), store.PutOptions{}), store.WriteAdd(txt, 1, time.Time{})})
	wantErr(t, "Write Add on text", err, store.ErrNotCounter)
	wantSnapshot(t, "after Add on text", snapshot(t, s, txt, big, other), before)
	_, err = s.Write(ctx, []store.WriteOp{store.WriteAdd(other, 1, time.Time{}), store.WriteAdd(big, 2, time.Time{})})
	wantErr(t, "Write Add past MaxInt64", err, store.ErrOutOfRange)
	wantSnapshot(t, "after overflowing Add", snapshot(t, s, txt, big, other), before)
	mustWrite(t, s, store.WriteAdd(big, 1, time.Time{}))
	wantCounter(t, s, big, fmt.Sprint(int64(math.MaxInt64)), 2)
	low := key("st|r|d", "low")
	mustPut(t, s, low, fmt.Sprint(int64(math.MinInt64)), store.PutOptions{})
	_, err = s.Write(ctx, []store.WriteOp{store.WriteAdd(low, -1, time.Time{})})
	wantErr(t, "Write Add past MinInt64", err, store.ErrOutOfRange)
	wantCounter(t, s, low, fmt.Sprint(int64(math.MinInt64)), 1)
}

// testWriteAddExpiry: an Add's expiry becomes the counter's; without one
// the counter keeps its own; an expired item (counter or not) counts as 0
// and starts over at version 1.
func testWriteAddExpiry(t *testing.T, s store.Store) {
	a, old, txt, kept, gone := key("st|e|d", "a"), key("st|e|d", "old"), key("st|e|d", "txt"), key("st|e|d", "kept"), key("st|e|d", "gone")
	past := time.Now().Add(-time.Second)
	mustPut(t, s, old, "5", store.PutOptions{})
	mustPut(t, s, old, "5", store.PutOptions{ExpiresAt: past}) // v2, expired
	mustPut(t, s, txt, "text", store.PutOptions{ExpiresAt: past})
	far := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	mustPut(t, s, kept, "1", store.PutOptions{ExpiresAt: far})
	exp := time.Now().Add(expiryDelay)
	mustWrite(t, s,
		store.WriteAdd(a, 2, exp),
		store.WriteAdd(old, 3, far),
		store.WriteAdd(txt, 4, time.Time{}),
		store.WriteAdd(kept, 1, time.Time{}),
		store.WriteAdd(gone, 1, past),
	)
	wantSnapshot(t, "after Write", snapshot(t, s, a, old, txt, kept, gone), []string{`"2" v1`, `"3" v1`, `"4" v1`, `"2" v2`, "absent"})
	if it := mustGet(t, s, a); it.ExpiresAt.Sub(exp).Abs() > time.Millisecond {
		t.Fatalf("Add with expiry: got expiry %v, want %v", it.ExpiresAt, exp)
	}
	if it := mustGet(t, s, old); !it.ExpiresAt.Equal(far) {
		t.Fatalf("Add on expired counter: got expiry %v, want %v", it.ExpiresAt, far)
	}
	if it := mustGet(t, s, txt); !it.ExpiresAt.IsZero() {
		t.Fatalf("Add without expiry on an expired item: got expiry %v, want none", it.ExpiresAt)
	}
	if it := mustGet(t, s, kept); !it.ExpiresAt.Equal(far) {
		t.Fatalf("Add without expiry: got expiry %v, want the counter's %v", it.ExpiresAt, far)
	}
	if got := sortKeys(queryAll(t, s, store.Query{Partition: "st|e|d", Limit: 10})); fmt.Sprint(got) != "[a kept old txt]" {
		t.Fatalf("Query: got %v", got)
	}
	// Adds move the expiry of a counter forward.
	mustWrite(t, s, store.WriteAdd(a, 1, exp.Add(100*time.Millisecond)))
	waitPast(exp.Add(100 * time.Millisecond))
	wantAbsent(t, s, a)
	mustWrite(t, s, store.WriteAdd(a, 1, time.Time{}))
	wantCounter(t, s, a, "1", 1)
}

// testWriteAddConcurrent: Writes whose Adds hit the same counters from many
// goroutines lose none.
func testWriteAddConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, m := key("st|c|d", "t|sent"), key("st|c|d", "t|held")
	const each = 5
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	exp := time.Now().Add(time.Hour)
	for w := range writeWorkers {
		wg.Go(func() {
			for i := range each {
				_, err := s.Write(ctx, []store.WriteOp{
					store.WritePut(key(fmt.Sprintf("ntf#%d", w), fmt.Sprint(i)), []byte("x"), store.PutOptions{IfAbsent: true}),
					store.WriteAdd(n, 1, exp),
					store.WriteAdd(m, 2, exp),
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Writes with Adds: %v", errs)
	}
	wantCounter(t, s, n, fmt.Sprint(writeWorkers*each), writeWorkers*each)
	wantCounter(t, s, m, fmt.Sprint(2*writeWorkers*each), writeWorkers*each)
}
