package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// writeTests are the conformance tests of Write, run by Run.
var writeTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WriteApplies", testWriteApplies},
	{"WriteConflictWritesNothing", testWriteConflictWritesNothing},
	{"WriteExpiredIsAbsent", testWriteExpiredIsAbsent},
	{"WriteVersions", testWriteVersions},
	{"WriteForgetsOps", testWriteForgetsOps},
	{"WriteInvalid", testWriteInvalid},
	{"WriteMaxOps", testWriteMaxOps},
	{"WriteConcurrentTransfer", testWriteConcurrentTransfer},
	{"WriteConcurrentWithAdd", testWriteConcurrentWithAdd},
}

func mustWrite(tb testing.TB, s store.Store, ops ...store.WriteOp) []int64 {
	tb.Helper()
	versions, err := s.Write(context.Background(), ops)
	if err != nil {
		tb.Fatalf("Write: %v", err)
	}
	if len(versions) != len(ops) {
		tb.Fatalf("Write: got %d versions %v for %d ops", len(versions), versions, len(ops))
	}
	return versions
}

// snapshot is what Get says of each key: value and version, or "absent".
func snapshot(tb testing.TB, s store.Store, keys ...store.Key) []string {
	tb.Helper()
	out := make([]string, len(keys))
	for i, k := range keys {
		it, err := s.Get(context.Background(), k)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out[i] = "absent"
		case err != nil:
			tb.Fatalf("Get(%v): %v", k, err)
		default:
			out[i] = fmt.Sprintf("%q v%d", it.Value, it.Version)
		}
	}
	return out
}

func wantSnapshot(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		tb.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func testWriteApplies(t *testing.T, s store.Store) {
	a, b, c, d := key("ntf#1", "rec"), key("ntf#1", "idx"), key("outbox", "o1"), key("user#u", "gone")
	mustPut(t, s, a, "old", store.PutOptions{})
	mustPut(t, s, d, "x", store.PutOptions{})
	versions := mustWrite(t, s,
		store.WritePut(a, []byte("rec"), store.PutOptions{IfVersion: 1}),
		store.WritePut(b, []byte("idx"), store.PutOptions{IfAbsent: true}),
		store.WritePut(c, []byte("hook"), store.PutOptions{}),
		store.WriteDelete(d, store.DeleteOptions{IfVersion: 1}),
		store.WriteCheck(key("user#u", "never"), 0),
	)
	if fmt.Sprint(versions) != "[2 1 1 0 0]" {
		t.Fatalf("versions: got %v, want [2 1 1 0 0]", versions)
	}
	wantSnapshot(t, "after Write", snapshot(t, s, a, b, c, d), []string{`"rec" v2`, `"idx" v1`, `"hook" v1`, "absent"})
	// The items are where Query finds them.
	if got := sortKeys(queryAll(t, s, store.Query{Partition: "ntf#1", Limit: 10})); fmt.Sprint(got) != "[idx rec]" {
		t.Fatalf("Query ntf#1: got %v, want [idx rec]", got)
	}
	if got := sortKeys(queryAll(t, s, store.Query{Partition: "user#u", Limit: 10})); len(got) != 0 {
		t.Fatalf("Query user#u after the Delete: got %v, want none", got)
	}
	// An empty Write does nothing and succeeds.
	if v, err := s.Write(context.Background(), nil); err != nil || len(v) != 0 {
		t.Fatalf("empty Write: got %v, %v; want no versions, nil", v, err)
	}
}

func testWriteConflictWritesNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b, c, m := key("p", "a"), key("p", "b"), key("q", "c"), key("q", "missing")
	mustPut(t, s, a, "a", store.PutOptions{})
	mustPut(t, s, b, "b", store.PutOptions{})
	mustPut(t, s, b, "b2", store.PutOptions{}) // v2
	mustAdd(t, s, c, 5, 0, 10)
	before := snapshot(t, s, a, b, c, m)
	// Each case's failing op, and the writes around it that must not happen.
	failing := []struct {
		name string
		op   store.WriteOp
	}{
		{"PutIfAbsentOnLive", store.WritePut(a, []byte("x"), store.PutOptions{IfAbsent: true})},
		{"PutIfVersionWrong", store.WritePut(b, []byte("x"), store.PutOptions{IfVersion: 1})},
		{"PutIfVersionMissing", store.WritePut(m, []byte("x"), store.PutOptions{IfVersion: 1})},
		{"DeleteIfVersionWrong", store.WriteDelete(c, store.DeleteOptions{IfVersion: 9})},
		{"CheckVersionWrong", store.WriteCheck(b, 1)},
		{"CheckAbsentOnLive", store.WriteCheck(a, 0)},
		{"CheckVersionMissing", store.WriteCheck(m, 1)},
	}
	for _, f := range failing {
		t.Run(f.name, func(t *testing.T) {
			// Every other key gets a write that would succeed on its own.
			others := map[store.Key]store.WriteOp{
				a: store.WritePut(a, []byte("new"), store.PutOptions{IfVersion: 1}),
				b: store.WriteDelete(b, store.DeleteOptions{}),
				c: store.WritePut(c, []byte("7"), store.PutOptions{}),
				m: store.WritePut(m, []byte("new"), store.PutOptions{IfAbsent: true}),
			}
			delete(others, f.op.Key)
			var rest []store.WriteOp
			for _, k := range []store.Key{a, b, c, m} {
				if op, ok := others[k]; ok {
					rest = append(rest, op)
				}
			}
			for _, at := range []int{0, 1, len(rest)} { // first, middle, last
				ops := append(append(append([]store.WriteOp{}, rest[:at]...), f.op), rest[at:]...)
				versions, err := s.Write(ctx, ops)
				wantErr(t, fmt.Sprintf("Write with failing op at %d", at), err, store.ErrConflict)
				var wc *store.WriteConflict
				if !errors.As(err, &wc) || wc.Index != at {
					t.Fatalf("Write with failing op at %d: got %v (%T), want a *store.WriteConflict with Index %d", at, err, err, at)
				}
				if versions != nil {
					t.Fatalf("failed Write returned versions %v", versions)
				}
				wantSnapshot(t, "after failed Write", snapshot(t, s, a, b, c, m), before)
			}
		})
	}
}

func testWriteExpiredIsAbsent(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b, c, d := key("p", "a"), key("p", "b"), key("p", "c"), key("p", "d")
	past := time.Now().Add(-time.Minute)
	for _, k := range []store.Key{a, b, c, d} {
		mustPut(t, s, k, "old", store.PutOptions{})
		mustPut(t, s, k, "old", store.PutOptions{ExpiresAt: past}) // v2, expired
	}
	_, err := s.Write(ctx, []store.WriteOp{store.WriteCheck(a, 2)})
	wantErr(t, "Check version of expired", err, store.ErrConflict)
	_, err = s.Write(ctx, []store.WriteOp{store.WriteDelete(a, store.DeleteOptions{IfVersion: 2})})
	wantErr(t, "Delete IfVersion of expired", err, store.ErrConflict)
	versions := mustWrite(t, s,
		store.WriteCheck(a, 0),
		store.WritePut(b, []byte("new"), store.PutOptions{IfAbsent: true}),
		store.WritePut(c, []byte("new"), store.PutOptions{}),
		store.WritePut(d, []byte("gone"), store.PutOptions{ExpiresAt: past}),
	)
	if fmt.Sprint(versions) != "[0 1 1 1]" {
		t.Fatalf("versions over expired items: got %v, want [0 1 1 1]", versions)
	}
	wantSnapshot(t, "after Write", snapshot(t, s, a, b, c, d), []string{"absent", `"new" v1`, `"new" v1`, "absent"})
	// A short expiry set by Write holds.
	exp := time.Now().Add(expiryDelay)
	mustWrite(t, s, store.WritePut(b, []byte("brief"), store.PutOptions{IfVersion: 1, ExpiresAt: exp}))
	if it := mustGet(t, s, b); it.ExpiresAt.Sub(exp).Abs() > time.Millisecond || it.Version != 2 {
		t.Fatalf("Get after Write with expiry: got v%d expiring %v, want v2 expiring %v", it.Version, it.ExpiresAt, exp)
	}
	waitPast(exp)
	wantAbsent(t, s, b)
}

func testWriteVersions(t *testing.T, s store.Store) {
	a, n := key("p", "a"), key("p", "n")
	for i := int64(1); i <= 3; i++ {
		versions := mustWrite(t, s, store.WritePut(a, []byte("v"), store.PutOptions{}), store.WriteCheck(n, 0))
		if versions[0] != i || versions[1] != 0 {
			t.Fatalf("Write %d: got versions %v, want [%d 0]", i, versions, i)
		}
	}
	// Put and Add move the version Write sees, and Write's moves theirs.
	if v := mustPut(t, s, a, "1", store.PutOptions{IfVersion: 3}); v != 4 {
		t.Fatalf("Put after Writes: got v%d, want 4", v)
	}
	if got := mustAdd(t, s, a, 1, 0, 10); got != 2 {
		t.Fatalf("Add after Writes: got %d, want 2", got)
	}
	versions := mustWrite(t, s, store.WritePut(a, []byte("7"), store.PutOptions{IfVersion: 5}), store.WriteCheck(n, 0))
	if versions[0] != 6 {
		t.Fatalf("Write after Add: got versions %v, want [6 0]", versions)
	}
	if got := mustAdd(t, s, a, 1, 0, 10); got != 8 {
		t.Fatalf("Add on a counter Write set: got %d, want 8", got)
	}
	mustWrite(t, s, store.WriteCheck(a, 7), store.WriteDelete(n, store.DeleteOptions{}))
	wantCounter(t, s, a, "8", 7) // a Check writes nothing
	mustWrite(t, s, store.WriteDelete(a, store.DeleteOptions{IfVersion: 7}))
	wantAbsent(t, s, a)
	if versions := mustWrite(t, s, store.WritePut(a, []byte("back"), store.PutOptions{IfAbsent: true})); versions[0] != 1 {
		t.Fatalf("Write after Delete: got versions %v, want [1]", versions)
	}
}

// testWriteForgetsOps: a Put or Delete in a Write forgets the counter's
// operations, as Put and Delete do.
func testWriteForgetsOps(t *testing.T, s store.Store) {
	k, other := key("u#o1", "c|t|n"), key("u#o1", "other")
	mustAddOnce(t, s, k, 3, 0, 10, op("grant:a"))
	mustWrite(t, s, store.WritePut(k, []byte("0"), store.PutOptions{IfVersion: 1}), store.WritePut(other, []byte("x"), store.PutOptions{}))
	mustUndo(t, s, k, "grant:a", false)
	if n := mustAddOnce(t, s, k, 3, 0, 10, op("grant:a")); n != 3 {
		t.Fatalf("AddOnce after Write Put: got %d, want 3", n)
	}
	mustWrite(t, s, store.WriteDelete(k, store.DeleteOptions{}))
	wantAbsent(t, s, k)
	if n := mustAddOnce(t, s, k, 2, 0, 10, op("grant:a")); n != 2 {
		t.Fatalf("AddOnce after Write Delete: got %d, want 2", n)
	}
}

func testWriteInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := key("p", "a"), key("p", "b")
	mustPut(t, s, a, "a", store.PutOptions{})
	before := snapshot(t, s, a, b)
	put := func(k store.Key) store.WriteOp { return store.WritePut(k, []byte("x"), store.PutOptions{}) }
	cases := []struct {
		name string
		ops  []store.WriteOp
		want error
	}{
		{"Duplicate", []store.WriteOp{put(a), put(b), store.WriteCheck(a, 1)}, store.ErrInvalidWrite},
		{"DuplicateDelete", []store.WriteOp{store.WriteDelete(b, store.DeleteOptions{}), put(b)}, store.ErrInvalidWrite},
		{"TooLarge", []store.WriteOp{put(b), store.WritePut(a, make([]byte, store.MaxValueSize+1), store.PutOptions{})}, store.ErrTooLarge},
		{"EmptySort", []store.WriteOp{put(b), put(key("p", ""))}, store.ErrInvalidKey},
		{"NULInKey", []store.WriteOp{put(b), store.WriteCheck(key("p\x00", "s"), 0)}, store.ErrInvalidKey},
		{"UnknownKind", []store.WriteOp{put(b), {Kind: 0, Key: key("p", "c")}}, store.ErrInvalidWrite},
		{"NegativeVersion", []store.WriteOp{put(b), store.WriteCheck(key("p", "c"), -1)}, store.ErrInvalidWrite},
		{"NegativeIfVersion", []store.WriteOp{put(b), store.WritePut(key("p", "c"), nil, store.PutOptions{IfVersion: -2})}, store.ErrInvalidWrite},
	}
	tooMany := make([]store.WriteOp, store.MaxWriteOps+1)
	for i := range tooMany {
		tooMany[i] = put(key("many", fmt.Sprintf("k%02d", i)))
	}
	cases = append(cases, struct {
		name string
		ops  []store.WriteOp
		want error
	}{"TooMany", tooMany, store.ErrInvalidWrite})
	for _, c := range cases {
		_, err := s.Write(ctx, c.ops)
		wantErr(t, "Write "+c.name, err, c.want)
		if errors.Is(err, store.ErrConflict) {
			t.Fatalf("Write %s: got %v, which also claims a conflict", c.name, err)
		}
		wantSnapshot(t, "after Write "+c.name, snapshot(t, s, a, b), before)
	}
	if got := queryAll(t, s, store.Query{Partition: "many", Limit: 100}); len(got) != 0 {
		t.Fatalf("Write of too many ops wrote %d items", len(got))
	}
	// IfAbsent and IfVersion together never hold.
	_, err := s.Write(ctx, []store.WriteOp{store.WritePut(a, []byte("x"), store.PutOptions{IfAbsent: true, IfVersion: 1})})
	wantErr(t, "Write Put IfAbsent and IfVersion", err, store.ErrConflict)
	wantSnapshot(t, "after Write IfAbsent and IfVersion", snapshot(t, s, a, b), before)
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Write(ctx, []store.WriteOp{put(b)})
	wantErr(t, "Write with canceled ctx", err, context.Canceled)
	wantSnapshot(t, "after canceled Write", snapshot(t, s, a, b), before)
}

func testWriteMaxOps(t *testing.T, s store.Store) {
	ops := make([]store.WriteOp, store.MaxWriteOps)
	keys := make([]store.Key, len(ops))
	for i := range ops {
		keys[i] = key(fmt.Sprintf("p%d", i%3), fmt.Sprintf("k%02d", i))
		ops[i] = store.WritePut(keys[i], []byte(fmt.Sprint(i)), store.PutOptions{IfAbsent: true})
	}
	mustWrite(t, s, ops...)
	for i, k := range keys {
		if it := mustGet(t, s, k); string(it.Value) != fmt.Sprint(i) || it.Version != 1 {
			t.Fatalf("Get(%v): got %q v%d, want %q v1", k, it.Value, it.Version, fmt.Sprint(i))
		}
	}
}

// writeWorkers is how many goroutines the concurrent Write tests run; each
// Write is several writes' worth of work on some backends.
const writeWorkers = 8

// testWriteConcurrentTransfer: transfers between two accounts, each a
// read and a Write conditional on both versions, keep the sum, and a Write
// of two Checks only ever succeeds on a consistent pair.
func testWriteConcurrentTransfer(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := key("acct#a", "balance"), key("acct#b", "balance")
	const total, each = 100, 6
	mustPut(t, s, a, "50", store.PutOptions{})
	mustPut(t, s, b, "50", store.PutOptions{})
	read := func(k store.Key) (int64, int64, error) {
		it, err := s.Get(ctx, k)
		if err != nil {
			return 0, 0, err
		}
		n, err := store.ParseCounter(it.Value)
		return n, it.Version, err
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		errs      []error
		transfers int
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writeWorkers {
		wg.Go(func() {
			for done := 0; done < each; {
				na, va, err := read(a)
				if err != nil {
					fail(err)
					return
				}
				nb, vb, err := read(b)
				if err != nil {
					fail(err)
					return
				}
				if w%4 == 3 { // an auditor: a consistent pair sums to total
					_, err := s.Write(ctx, []store.WriteOp{store.WriteCheck(a, va), store.WriteCheck(b, vb)})
					switch {
					case err == nil && na+nb != total:
						fail(fmt.Errorf("checked pair %d+%d != %d", na, nb, total))
						return
					case err == nil:
						done++
					case !errors.Is(err, store.ErrConflict):
						fail(err)
						return
					}
					continue
				}
				d := int64(1 + w%3)
				if w%2 == 1 {
					d = -d
				}
				_, err = s.Write(ctx, []store.WriteOp{
					store.WritePut(a, store.FormatCounter(na-d), store.PutOptions{IfVersion: va}),
					store.WritePut(b, store.FormatCounter(nb+d), store.PutOptions{IfVersion: vb}),
				})
				switch {
				case err == nil:
					done++
					mu.Lock()
					transfers++
					mu.Unlock()
				case !errors.Is(err, store.ErrConflict):
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent transfers: %v", errs)
	}
	na, va, err := read(a)
	if err != nil {
		t.Fatal(err)
	}
	nb, vb, err := read(b)
	if err != nil {
		t.Fatal(err)
	}
	if na+nb != total {
		t.Fatalf("after transfers: %d + %d = %d, want %d", na, nb, na+nb, total)
	}
	if va != int64(transfers)+1 || vb != int64(transfers)+1 {
		t.Fatalf("after %d transfers: versions %d and %d, want %d", transfers, va, vb, transfers+1)
	}
}

// testWriteConcurrentWithAdd: Adds and Writes (a conditional Put of the
// counter plus a log item) on the same counter lose no update, and every
// successful Write left its log item.
func testWriteConcurrentWithAdd(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("hits", "n")
	mustPut(t, s, k, "0", store.PutOptions{})
	const each = 5
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		writes int
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writeWorkers {
		wg.Go(func() {
			for i := range each {
				if w%2 == 0 {
					if _, err := s.Add(ctx, k, 1, 0, 1<<40); err != nil {
						fail(err)
						return
					}
					continue
				}
				for {
					it, err := s.Get(ctx, k)
					if err != nil {
						fail(err)
						return
					}
					n, err := store.ParseCounter(it.Value)
					if err != nil {
						fail(err)
						return
					}
					_, err = s.Write(ctx, []store.WriteOp{
						store.WritePut(k, store.FormatCounter(n+1), store.PutOptions{IfVersion: it.Version}),
						store.WritePut(key("hits", fmt.Sprintf("log#%d#%d", w, i)), it.Value, store.PutOptions{IfAbsent: true}),
					})
					if err == nil {
						mu.Lock()
						writes++
						mu.Unlock()
						break
					}
					if !errors.Is(err, store.ErrConflict) {
						fail(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Add and Write: %v", errs)
	}
	adds := writeWorkers / 2 * each
	wantCounter(t, s, k, fmt.Sprint(adds+writes), int64(1+adds+writes))
	logs := queryAll(t, s, store.Query{Partition: "hits", Prefix: "log#", Limit: 100})
	if len(logs) != writes {
		t.Fatalf("log items: got %d, want one per Write (%d)", len(logs), writes)
	}
	seen := map[string]bool{}
	for _, it := range logs {
		if seen[string(it.Value)] {
			t.Fatalf("two Writes saw the counter at %s", it.Value)
		}
		seen[string(it.Value)] = true
	}
}
