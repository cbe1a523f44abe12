// Package storetest is the conformance suite of the store contract. Every
// backend runs it against a real server:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newTestStore(t) })
//	}
//
// Each call of newStore must return a fresh, empty store that no other call
// shares (a new file, key prefix or table), closed by the caller's cleanup.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Run runs the whole conformance suite.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutReplaces", testPutReplaces},
		{"ValueIsCopied", testValueIsCopied},
		{"EmptyValue", testEmptyValue},
		{"BinaryValue", testBinaryValue},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfVersion", testPutIfVersion},
		{"Delete", testDelete},
		{"DeleteIfVersion", testDeleteIfVersion},
		{"KeysAreDistinct", testKeysAreDistinct},
		{"InvalidKeys", testInvalidKeys},
		{"ValueSizeLimit", testValueSizeLimit},
		{"Expiry", testExpiry},
		{"ExpiredIsAbsent", testExpiredIsAbsent},
		{"PutClearsExpiry", testPutClearsExpiry},
		{"QueryOrder", testQueryOrder},
		{"QueryPrefix", testQueryPrefix},
		{"QueryPaging", testQueryPaging},
		{"QuerySkipsExpired", testQuerySkipsExpired},
		{"QuerySkipsDeleted", testQuerySkipsDeleted},
		{"QueryInvalid", testQueryInvalid},
		{"AddCreates", testAddCreates},
		{"AddBounds", testAddBounds},
		{"AddMissingOutOfRange", testAddMissingOutOfRange},
		{"AddOverflow", testAddOverflow},
		{"AddPutInterplay", testAddPutInterplay},
		{"AddNotCounter", testAddNotCounter},
		{"AddKeepsExpiry", testAddKeepsExpiry},
		{"AddExpiredRestarts", testAddExpiredRestarts},
		{"AddOnceAppliesOnce", testAddOnceAppliesOnce},
		{"AddOnceFailureNotRemembered", testAddOnceFailureNotRemembered},
		{"AddOnceInvalidOp", testAddOnceInvalidOp},
		{"AddOnceForgetsAfterKeep", testAddOnceForgetsAfterKeep},
		{"AddOnceExpiry", testAddOnceExpiry},
		{"AddOnceManyOps", testAddOnceManyOps},
		{"PutForgetsOps", testPutForgetsOps},
		{"Undo", testUndo},
		{"ConcurrentAddOnce", testConcurrentAddOnce},
		{"ContextCanceled", testContextCanceled},
		{"ConcurrentCounter", testConcurrentCounter},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"ConcurrentPutIfAbsent", testConcurrentPutIfAbsent},
		{"ConcurrentPutIfVersion", testConcurrentPutIfVersion},
	}
	tests = append(tests, writeTests...)
	tests = append(tests, writeAddTests...)
	tests = append(tests, reserveTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func key(p, s string) store.Key { return store.Key{Partition: p, Sort: s} }

func mustPut(tb testing.TB, s store.Store, k store.Key, v string, opts store.PutOptions) int64 {
	tb.Helper()
	ver, err := s.Put(context.Background(), k, []byte(v), opts)
	if err != nil {
		tb.Fatalf("Put(%v): %v", k, err)
	}
	return ver
}

func mustGet(tb testing.TB, s store.Store, k store.Key) store.Item {
	tb.Helper()
	it, err := s.Get(context.Background(), k)
	if err != nil {
		tb.Fatalf("Get(%v): %v", k, err)
	}
	return it
}

func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantAbsent(tb testing.TB, s store.Store, k store.Key) {
	tb.Helper()
	_, err := s.Get(context.Background(), k)
	wantErr(tb, fmt.Sprintf("Get(%v)", k), err, store.ErrNotFound)
}

func testGetMissing(t *testing.T, s store.Store) {
	wantAbsent(t, s, key("p", "missing"))
}

func testPutGet(t *testing.T, s store.Store) {
	k := key("user#o1", "profile")
	ver := mustPut(t, s, k, `{"a":1}`, store.PutOptions{})
	if ver != 1 {
		t.Fatalf("first Put version: got %d, want 1", ver)
	}
	it := mustGet(t, s, k)
	if string(it.Value) != `{"a":1}` || it.Version != 1 || it.Key != k || !it.ExpiresAt.IsZero() {
		t.Fatalf("Get: got %+v (value %q), want key %v value {\"a\":1} version 1 no expiry", it, it.Value, k)
	}
}

func testPutReplaces(t *testing.T, s store.Store) {
	k := key("p", "s")
	mustPut(t, s, k, "one", store.PutOptions{})
	ver := mustPut(t, s, k, "two", store.PutOptions{})
	if ver != 2 {
		t.Fatalf("second Put version: got %d, want 2", ver)
	}
	if it := mustGet(t, s, k); string(it.Value) != "two" || it.Version != 2 {
		t.Fatalf("Get: got %q v%d, want %q v2", it.Value, it.Version, "two")
	}
}

func testValueIsCopied(t *testing.T, s store.Store) {
	k := key("p", "s")
	v := []byte("original")
	if _, err := s.Put(context.Background(), k, v, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXXXXX")
	if it := mustGet(t, s, k); string(it.Value) != "original" {
		t.Fatalf("Get after caller mutated its slice: got %q, want %q", it.Value, "original")
	}
}

func testEmptyValue(t *testing.T, s store.Store) {
	k := key("p", "empty")
	mustPut(t, s, k, "", store.PutOptions{})
	if it := mustGet(t, s, k); len(it.Value) != 0 || it.Version != 1 {
		t.Fatalf("Get: got %q v%d, want empty v1", it.Value, it.Version)
	}
}

func testBinaryValue(t *testing.T, s store.Store) {
	k := key("p", "bin")
	v := make([]byte, 512)
	for i := range v {
		v[i] = byte(i)
	}
	if _, err := s.Put(context.Background(), k, v, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if it := mustGet(t, s, k); !bytes.Equal(it.Value, v) {
		t.Fatalf("Get: binary value changed (got %d bytes, want %d)", len(it.Value), len(v))
	}
	// Values that look like counters but are not canonical stay as they are.
	for i, odd := range []string{"007", "-0", "+1", " 1", "1 ", "1e3", "9223372036854775808"} {
		k := key("p", fmt.Sprintf("odd%d", i))
		mustPut(t, s, k, odd, store.PutOptions{})
		if it := mustGet(t, s, k); string(it.Value) != odd {
			t.Errorf("Get(%q): got %q, want it unchanged", odd, it.Value)
		}
	}
}

func testPutIfAbsent(t *testing.T, s store.Store) {
	k := key("p", "s")
	ver := mustPut(t, s, k, "first", store.PutOptions{IfAbsent: true})
	if ver != 1 {
		t.Fatalf("Put IfAbsent on missing: got version %d, want 1", ver)
	}
	_, err := s.Put(context.Background(), k, []byte("second"), store.PutOptions{IfAbsent: true})
	wantErr(t, "Put IfAbsent on existing", err, store.ErrConflict)
	if it := mustGet(t, s, k); string(it.Value) != "first" || it.Version != 1 {
		t.Fatalf("after failed Put: got %q v%d, want %q v1", it.Value, it.Version, "first")
	}
}

func testPutIfVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "s")
	_, err := s.Put(ctx, k, []byte("x"), store.PutOptions{IfVersion: 1})
	wantErr(t, "Put IfVersion on missing", err, store.ErrConflict)
	wantAbsent(t, s, k)

	mustPut(t, s, k, "a", store.PutOptions{})
	ver := mustPut(t, s, k, "b", store.PutOptions{IfVersion: 1})
	if ver != 2 {
		t.Fatalf("Put IfVersion 1: got version %d, want 2", ver)
	}
	_, err = s.Put(ctx, k, []byte("c"), store.PutOptions{IfVersion: 1})
	wantErr(t, "Put with stale IfVersion", err, store.ErrConflict)
	_, err = s.Put(ctx, k, []byte("c"), store.PutOptions{IfVersion: 3})
	wantErr(t, "Put with future IfVersion", err, store.ErrConflict)
	if it := mustGet(t, s, k); string(it.Value) != "b" || it.Version != 2 {
		t.Fatalf("after failed Puts: got %q v%d, want %q v2", it.Value, it.Version, "b")
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "s")
	if err := s.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatalf("Delete missing: got %v, want nil", err)
	}
	mustPut(t, s, k, "v", store.PutOptions{})
	if err := s.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantAbsent(t, s, k)
	if ver := mustPut(t, s, k, "again", store.PutOptions{IfAbsent: true}); ver != 1 {
		t.Fatalf("Put after Delete: got version %d, want 1", ver)
	}
}

func testDeleteIfVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "s")
	err := s.Delete(ctx, k, store.DeleteOptions{IfVersion: 1})
	wantErr(t, "Delete IfVersion on missing", err, store.ErrConflict)
	mustPut(t, s, k, "a", store.PutOptions{})
	mustPut(t, s, k, "b", store.PutOptions{})
	err = s.Delete(ctx, k, store.DeleteOptions{IfVersion: 1})
	wantErr(t, "Delete with stale IfVersion", err, store.ErrConflict)
	mustGet(t, s, k)
	if err := s.Delete(ctx, k, store.DeleteOptions{IfVersion: 2}); err != nil {
		t.Fatalf("Delete IfVersion 2: %v", err)
	}
	wantAbsent(t, s, k)
}

func testKeysAreDistinct(t *testing.T, s store.Store) {
	// Pairs whose naive concatenations collide must stay distinct items.
	keys := []store.Key{
		key("a", "b:c"), key("a:b", "c"), key("a/b", "c"), key("a", "b/c"),
		key("ab", "c"), key("a", "bc"), key("{a}", "b"), key("a", "{b}"),
		key("用户", "模板"), key("a b", "c"), key("a", "b c"),
	}
	for i, k := range keys {
		mustPut(t, s, k, fmt.Sprint(i), store.PutOptions{})
	}
	for i, k := range keys {
		if it := mustGet(t, s, k); string(it.Value) != fmt.Sprint(i) || it.Version != 1 {
			t.Errorf("Get(%v): got %q v%d, want %q v1", k, it.Value, it.Version, fmt.Sprint(i))
		}
	}
	page, err := s.Query(context.Background(), store.Query{Partition: "a", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range page.Items {
		got = append(got, it.Key.Sort)
	}
	if want := []string{"b c", "b/c", "b:c", "bc", "{b}"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Query(a): got %q, want %q", got, want)
	}
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := []store.Key{
		key("", "s"), key("p", ""), key("p\x00q", "s"), key("p", "s\x00"),
		key(string([]byte{0xff, 0xfe}), "s"), key(strings.Repeat("p", store.MaxPartitionSize+1), "s"),
		key("p", strings.Repeat("s", store.MaxSortSize+1)),
	}
	for _, k := range bad {
		_, err := s.Get(ctx, k)
		wantErr(t, fmt.Sprintf("Get(%q)", k), err, store.ErrInvalidKey)
		_, err = s.Put(ctx, k, []byte("v"), store.PutOptions{})
		wantErr(t, fmt.Sprintf("Put(%q)", k), err, store.ErrInvalidKey)
		err = s.Delete(ctx, k, store.DeleteOptions{})
		wantErr(t, fmt.Sprintf("Delete(%q)", k), err, store.ErrInvalidKey)
		_, err = s.Add(ctx, k, 1, 0, 10)
		wantErr(t, fmt.Sprintf("Add(%q)", k), err, store.ErrInvalidKey)
	}
	// The largest valid keys work.
	k := key(strings.Repeat("p", store.MaxPartitionSize), strings.Repeat("s", store.MaxSortSize))
	mustPut(t, s, k, "v", store.PutOptions{})
	mustGet(t, s, k)
}

func testValueSizeLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "big")
	max := bytes.Repeat([]byte{'x'}, store.MaxValueSize)
	max[0], max[len(max)-1] = 'a', 'z'
	if _, err := s.Put(ctx, k, max, store.PutOptions{}); err != nil {
		t.Fatalf("Put of MaxValueSize bytes: %v", err)
	}
	if it := mustGet(t, s, k); !bytes.Equal(it.Value, max) {
		t.Fatalf("Get: got %d bytes, want the %d stored intact", len(it.Value), len(max))
	}
	_, err := s.Put(ctx, k, append(max, 'x'), store.PutOptions{})
	wantErr(t, "Put of MaxValueSize+1 bytes", err, store.ErrTooLarge)
	if it := mustGet(t, s, k); it.Version != 1 || len(it.Value) != store.MaxValueSize {
		t.Fatalf("after refused Put: got %d bytes v%d, want the first value v1", len(it.Value), it.Version)
	}
}

// expiryDelay is how far in the future short-lived items expire: long enough
// for the writes and the first read to happen before even on a loaded
// machine, short enough to wait for.
const expiryDelay = 1500 * time.Millisecond

func waitPast(t time.Time) { time.Sleep(time.Until(t) + 50*time.Millisecond) }

func testExpiry(t *testing.T, s store.Store) {
	k := key("p", "short")
	exp := time.Now().Add(expiryDelay)
	mustPut(t, s, k, "v", store.PutOptions{ExpiresAt: exp})
	it := mustGet(t, s, k) // well before exp: a write and a read take milliseconds
	if d := it.ExpiresAt.Sub(exp); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("ExpiresAt: got %v, want %v (ms precision)", it.ExpiresAt, exp)
	}
	far := key("p", "long")
	mustPut(t, s, far, "v", store.PutOptions{ExpiresAt: time.Now().Add(time.Hour)})
	waitPast(exp)
	wantAbsent(t, s, k)
	mustGet(t, s, far)
}

func testExpiredIsAbsent(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "s")
	past := time.Now().Add(-time.Minute)
	mustPut(t, s, k, "old", store.PutOptions{ExpiresAt: past})
	wantAbsent(t, s, k)
	_, err := s.Put(ctx, k, []byte("x"), store.PutOptions{IfVersion: 1})
	wantErr(t, "Put IfVersion on expired", err, store.ErrConflict)
	err = s.Delete(ctx, k, store.DeleteOptions{IfVersion: 1})
	wantErr(t, "Delete IfVersion on expired", err, store.ErrConflict)
	ver := mustPut(t, s, k, "new", store.PutOptions{IfAbsent: true})
	if ver != 1 {
		t.Fatalf("Put IfAbsent over expired: got version %d, want 1", ver)
	}
	if it := mustGet(t, s, k); string(it.Value) != "new" || !it.ExpiresAt.IsZero() {
		t.Fatalf("Get: got %q expiring %v, want %q without expiry", it.Value, it.ExpiresAt, "new")
	}
}

func testPutClearsExpiry(t *testing.T, s store.Store) {
	k := key("p", "s")
	exp := time.Now().Add(expiryDelay)
	mustPut(t, s, k, "a", store.PutOptions{ExpiresAt: exp})
	mustPut(t, s, k, "b", store.PutOptions{IfVersion: 1})
	waitPast(exp)
	if it := mustGet(t, s, k); string(it.Value) != "b" || !it.ExpiresAt.IsZero() {
		t.Fatalf("Get: got %q expiring %v, want %q without expiry", it.Value, it.ExpiresAt, "b")
	}
}

func sortKeys(items []store.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Key.Sort
	}
	return out
}

func queryAll(tb testing.TB, s store.Store, q store.Query) []store.Item {
	tb.Helper()
	var all []store.Item
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tb.Fatal("Query never returned an empty Next")
		}
		page, err := s.Query(context.Background(), q)
		if err != nil {
			tb.Fatalf("Query(%+v): %v", q, err)
		}
		if len(page.Items) > q.Limit {
			tb.Fatalf("Query: got %d items, limit %d", len(page.Items), q.Limit)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		if page.Next <= q.After {
			tb.Fatalf("Query: Next %q does not advance past After %q", page.Next, q.After)
		}
		q.After = page.Next
	}
}

func testQueryOrder(t *testing.T, s store.Store) {
	sorts := []string{"b", "a", "c", "aa", "B", "a0", "é", "z"}
	for _, sk := range sorts {
		mustPut(t, s, key("q", sk), "v:"+sk, store.PutOptions{})
	}
	mustPut(t, s, key("q2", "a"), "other partition", store.PutOptions{})
	mustPut(t, s, key("qq", "a"), "other partition", store.PutOptions{})
	items := queryAll(t, s, store.Query{Partition: "q", Limit: 100})
	want := []string{"B", "a", "a0", "aa", "b", "c", "z", "é"}
	if got := sortKeys(items); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Query order: got %q, want %q (byte order)", got, want)
	}
	for _, it := range items {
		if string(it.Value) != "v:"+it.Key.Sort || it.Version != 1 || it.Key.Partition != "q" {
			t.Fatalf("Query item: got %+v, want value %q v1 in partition q", it, "v:"+it.Key.Sort)
		}
	}
	page, err := s.Query(context.Background(), store.Query{Partition: "empty", Limit: 10})
	if err != nil || len(page.Items) != 0 || page.Next != "" {
		t.Fatalf("Query of empty partition: got %d items, next %q, err %v; want none", len(page.Items), page.Next, err)
	}
}

func testQueryPrefix(t *testing.T, s store.Store) {
	for _, sk := range []string{"ntf#1", "ntf#2", "ntf#10", "ntg#1", "nt", "msg#1", "ntf"} {
		mustPut(t, s, key("u", sk), sk, store.PutOptions{})
	}
	cases := []struct {
		prefix, after string
		want          []string
	}{
		{"ntf#", "", []string{"ntf#1", "ntf#10", "ntf#2"}},
		{"ntf", "", []string{"ntf", "ntf#1", "ntf#10", "ntf#2"}},
		{"nt", "", []string{"nt", "ntf", "ntf#1", "ntf#10", "ntf#2", "ntg#1"}},
		{"ntf#", "ntf#1", []string{"ntf#10", "ntf#2"}},
		{"ntf#", "a", []string{"ntf#1", "ntf#10", "ntf#2"}},
		{"ntf#", "ntf#9", nil},
		{"ntf#", "zzz", nil},
		{"x", "", nil},
		{"", "ntf#2", []string{"ntg#1"}},
	}
	for _, tc := range cases {
		items := queryAll(t, s, store.Query{Partition: "u", Prefix: tc.prefix, After: tc.after, Limit: 2})
		if got := sortKeys(items); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Query(prefix %q after %q): got %q, want %q", tc.prefix, tc.after, got, tc.want)
		}
	}
}

func testQueryPaging(t *testing.T, s store.Store) {
	const n = 57
	var want []string
	for i := range n {
		sk := fmt.Sprintf("r#%05d", i)
		want = append(want, sk)
		mustPut(t, s, key("batch", sk), sk, store.PutOptions{})
	}
	for _, limit := range []int{1, 10, 56, 57, 58, store.MaxQueryLimit} {
		items := queryAll(t, s, store.Query{Partition: "batch", Prefix: "r#", Limit: limit})
		if got := sortKeys(items); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paging with limit %d: got %d items %q..., want %d in order", limit, len(got), first(got), n)
		}
	}
	page, err := s.Query(context.Background(), store.Query{Partition: "batch", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 10 || page.Next != want[9] {
		t.Fatalf("first page: got %d items next %q, want 10 items next %q", len(page.Items), page.Next, want[9])
	}
}

func first(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

func testQuerySkipsExpired(t *testing.T, s store.Store) {
	exp := time.Now().Add(expiryDelay)
	var want []string
	for i := range 30 {
		sk := fmt.Sprintf("%02d", i)
		opts := store.PutOptions{}
		if i%3 != 0 {
			opts.ExpiresAt = exp
		} else {
			want = append(want, sk)
		}
		mustPut(t, s, key("e", sk), sk, opts)
	}
	mustPut(t, s, key("e", "99"), "past", store.PutOptions{ExpiresAt: time.Now().Add(-time.Second)})
	items := queryAll(t, s, store.Query{Partition: "e", Limit: 7})
	if time.Until(exp) > 100*time.Millisecond && len(items) != 30 {
		// (Checked only when the writes left time before the expiry.)
		t.Fatalf("before expiry: got %d items, want 30", len(items))
	}
	waitPast(exp)
	for _, limit := range []int{1, 4, 100} {
		items := queryAll(t, s, store.Query{Partition: "e", Limit: limit})
		if got := sortKeys(items); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("after expiry, limit %d: got %q, want %q", limit, got, want)
		}
	}
}

func testQuerySkipsDeleted(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, sk := range []string{"a", "b", "c", "d"} {
		mustPut(t, s, key("d", sk), sk, store.PutOptions{})
	}
	for _, sk := range []string{"b", "d"} {
		if err := s.Delete(ctx, key("d", sk), store.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	items := queryAll(t, s, store.Query{Partition: "d", Limit: 10})
	if got := sortKeys(items); strings.Join(got, ",") != "a,c" {
		t.Fatalf("Query after Delete: got %q, want [a c]", got)
	}
}

func testQueryInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, q := range []store.Query{
		{Partition: "", Limit: 1},
		{Partition: "p\x00", Limit: 1},
		{Partition: "p", Limit: 0},
		{Partition: "p", Limit: -1},
		{Partition: "p", Limit: store.MaxQueryLimit + 1},
	} {
		if _, err := s.Query(ctx, q); err == nil {
			t.Errorf("Query(%+v): got nil error, want one", q)
		}
	}
}

func mustAdd(tb testing.TB, s store.Store, k store.Key, delta, min, max int64) int64 {
	tb.Helper()
	n, err := s.Add(context.Background(), k, delta, min, max)
	if err != nil {
		tb.Fatalf("Add(%v, %d, %d, %d): %v", k, delta, min, max, err)
	}
	return n
}

func testAddCreates(t *testing.T, s store.Store) {
	k := key("credits#o1", "tmpl")
	if n := mustAdd(t, s, k, 3, 0, 100); n != 3 {
		t.Fatalf("Add on missing: got %d, want 3", n)
	}
	it := mustGet(t, s, k)
	if string(it.Value) != "3" || it.Version != 1 || !it.ExpiresAt.IsZero() {
		t.Fatalf("Get counter: got %q v%d exp %v, want \"3\" v1 no expiry", it.Value, it.Version, it.ExpiresAt)
	}
	if n := mustAdd(t, s, k, 0, 0, 100); n != 3 {
		t.Fatalf("Add 0: got %d, want 3", n)
	}
	if n := mustAdd(t, s, k, -2, 0, 100); n != 1 {
		t.Fatalf("Add -2: got %d, want 1", n)
	}
	if it := mustGet(t, s, k); string(it.Value) != "1" || it.Version != 3 {
		t.Fatalf("Get counter: got %q v%d, want \"1\" v3", it.Value, it.Version)
	}
	zero := key("p", "zero")
	if n := mustAdd(t, s, zero, 0, 0, 0); n != 0 {
		t.Fatalf("Add 0 on missing: got %d, want 0", n)
	}
	if it := mustGet(t, s, zero); string(it.Value) != "0" {
		t.Fatalf("Get after Add 0 on missing: got %q, want \"0\"", it.Value)
	}
}

func testAddBounds(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "c")
	mustAdd(t, s, k, 1, 0, 2)
	mustAdd(t, s, k, 1, 0, 2)
	_, err := s.Add(ctx, k, 1, 0, 2)
	wantErr(t, "Add above max", err, store.ErrOutOfRange)
	mustAdd(t, s, k, -2, 0, 2)
	_, err = s.Add(ctx, k, -1, 0, 2)
	wantErr(t, "Add below min", err, store.ErrOutOfRange)
	if it := mustGet(t, s, k); string(it.Value) != "0" || it.Version != 3 {
		t.Fatalf("after refused Adds: got %q v%d, want \"0\" v3 (refusals write nothing)", it.Value, it.Version)
	}
	if _, err := s.Add(ctx, k, 1, 5, 2); err == nil || errors.Is(err, store.ErrOutOfRange) {
		t.Fatalf("Add with min > max: got %v, want a bounds error that is not ErrOutOfRange", err)
	}
	// Negative ranges and a value already outside new bounds.
	neg := key("p", "neg")
	if n := mustAdd(t, s, neg, -5, -10, -1); n != -5 {
		t.Fatalf("Add -5 in [-10,-1]: got %d, want -5", n)
	}
	_, err = s.Add(ctx, neg, 5, -10, -1)
	wantErr(t, "Add to 0 with max -1", err, store.ErrOutOfRange)
}

func testAddMissingOutOfRange(t *testing.T, s store.Store) {
	k := key("p", "c")
	_, err := s.Add(context.Background(), k, -1, 0, 10)
	wantErr(t, "Add -1 on missing with min 0", err, store.ErrOutOfRange)
	wantAbsent(t, s, k)
}

func testAddOverflow(t *testing.T, s store.Store) {
	ctx := context.Background()
	const maxInt, minInt = int64(^uint64(0) >> 1), -int64(^uint64(0)>>1) - 1
	k := key("p", "big")
	if n := mustAdd(t, s, k, maxInt, minInt, maxInt); n != maxInt {
		t.Fatalf("Add max: got %d, want %d", n, maxInt)
	}
	_, err := s.Add(ctx, k, 1, minInt, maxInt)
	wantErr(t, "Add past MaxInt64", err, store.ErrOutOfRange)
	small := key("p", "small")
	mustAdd(t, s, small, minInt, minInt, maxInt)
	_, err = s.Add(ctx, small, -1, minInt, maxInt)
	wantErr(t, "Add past MinInt64", err, store.ErrOutOfRange)
	if it := mustGet(t, s, k); string(it.Value) != "9223372036854775807" {
		t.Fatalf("Get: got %q, want MaxInt64", it.Value)
	}
}

func testAddPutInterplay(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("p", "c")
	mustAdd(t, s, k, 5, 0, 10)
	// Zeroing a counter with a conditional Put (as a 43101 answer does).
	it := mustGet(t, s, k)
	if ver := mustPut(t, s, k, "0", store.PutOptions{IfVersion: it.Version}); ver != 2 {
		t.Fatalf("Put \"0\": got version %d, want 2", ver)
	}
	if n := mustAdd(t, s, k, 2, 0, 10); n != 2 {
		t.Fatalf("Add after Put \"0\": got %d, want 2", n)
	}
	mustPut(t, s, k, "-7", store.PutOptions{})
	if n := mustAdd(t, s, k, 7, -10, 10); n != 0 {
		t.Fatalf("Add after Put \"-7\": got %d, want 0", n)
	}
	if it := mustGet(t, s, k); string(it.Value) != "0" || it.Version != 5 {
		t.Fatalf("Get: got %q v%d, want \"0\" v5", it.Value, it.Version)
	}
	// A counter can be replaced by a non-counter and deleted like any item.
	mustPut(t, s, k, "text", store.PutOptions{})
	if err := s.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := mustAdd(t, s, k, 1, 0, 1); n != 1 {
		t.Fatalf("Add after Delete: got %d, want 1", n)
	}
}

func testAddNotCounter(t *testing.T, s store.Store) {
	k := key("p", "text")
	for _, v := range []string{"abc", "", "1.5", "007", "1 ", "99999999999999999999"} {
		mustPut(t, s, k, v, store.PutOptions{})
		_, err := s.Add(context.Background(), k, 1, 0, 10)
		wantErr(t, fmt.Sprintf("Add on %q", v), err, store.ErrNotCounter)
		if it := mustGet(t, s, k); string(it.Value) != v {
			t.Fatalf("after refused Add: got %q, want %q", it.Value, v)
		}
	}
}

func testAddKeepsExpiry(t *testing.T, s store.Store) {
	k := key("p", "window")
	exp := time.Now().Add(expiryDelay)
	mustPut(t, s, k, "0", store.PutOptions{ExpiresAt: exp})
	if n := mustAdd(t, s, k, 1, 0, 10); n != 1 {
		t.Fatalf("Add: got %d, want 1", n)
	}
	if it := mustGet(t, s, k); it.ExpiresAt.IsZero() {
		t.Fatal("Add removed the item's expiry, want it kept")
	}
	waitPast(exp)
	wantAbsent(t, s, k)
}

func testAddExpiredRestarts(t *testing.T, s store.Store) {
	k := key("p", "window")
	mustPut(t, s, k, "5", store.PutOptions{ExpiresAt: time.Now().Add(-time.Second)})
	if n := mustAdd(t, s, k, 1, 0, 10); n != 1 {
		t.Fatalf("Add on expired counter: got %d, want 1 (expired counts as 0)", n)
	}
	if it := mustGet(t, s, k); it.Version != 1 || !it.ExpiresAt.IsZero() {
		t.Fatalf("Get: got v%d exp %v, want v1 without expiry", it.Version, it.ExpiresAt)
	}
	// An expired non-counter is absent too.
	txt := key("p", "oldtext")
	mustPut(t, s, txt, "text", store.PutOptions{ExpiresAt: time.Now().Add(-time.Second)})
	if n := mustAdd(t, s, txt, 2, 0, 10); n != 2 {
		t.Fatalf("Add on expired text: got %d, want 2", n)
	}
}

func testContextCanceled(t *testing.T, s store.Store) {
	k := key("p", "s")
	mustPut(t, s, k, "v", store.PutOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Get":    func() error { _, err := s.Get(ctx, k); return err },
		"Put":    func() error { _, err := s.Put(ctx, k, []byte("w"), store.PutOptions{}); return err },
		"Delete": func() error { return s.Delete(ctx, k, store.DeleteOptions{}) },
		"Query":  func() error { _, err := s.Query(ctx, store.Query{Partition: "p", Limit: 1}); return err },
		"Add":    func() error { _, err := s.Add(ctx, key("p", "n"), 1, 0, 1); return err },
		"AddOnce": func() error {
			_, err := s.AddOnce(ctx, key("p", "n"), 1, 0, 1, store.CounterOp{ID: "x", Keep: time.Hour})
			return err
		},
		"Undo": func() error { _, err := s.Undo(ctx, key("p", "n"), "x"); return err },
		"Write": func() error {
			_, err := s.Write(ctx, []store.WriteOp{store.WritePut(k, []byte("w"), store.PutOptions{})})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with canceled ctx: got %v, want context.Canceled", name, err)
		}
	}
	if it := mustGet(t, s, k); string(it.Value) != "v" || it.Version != 1 {
		t.Fatalf("after canceled calls: got %q v%d, want \"v\" v1", it.Value, it.Version)
	}
}

const goroutines = 50

// testConcurrentCounter: many goroutines taking credits from one counter
// bounded below by 0 never take it below 0, and exactly the credits that
// existed are taken.
func testConcurrentCounter(t *testing.T, s store.Store) {
	k := key("credits", "tmpl")
	const credits = 20
	mustAdd(t, s, k, credits, 0, 1000)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		taken  int
		errs   []error
		values = map[int64]bool{}
	)
	for range goroutines {
		wg.Go(func() {
			for range 3 {
				n, err := s.Add(context.Background(), k, -1, 0, 1000)
				mu.Lock()
				switch {
				case err == nil:
					taken++
					if values[n] {
						errs = append(errs, fmt.Errorf("value %d returned twice", n))
					}
					values[n] = true
				case !errors.Is(err, store.ErrOutOfRange):
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Add: %v", errs)
	}
	if taken != credits {
		t.Fatalf("credits taken: got %d, want %d", taken, credits)
	}
	if it := mustGet(t, s, k); string(it.Value) != "0" {
		t.Fatalf("counter after: got %q, want \"0\"", it.Value)
	}
}

// testConcurrentIncrements: no update is lost.
func testConcurrentIncrements(t *testing.T, s store.Store) {
	k := key("p", "hits")
	const each = 10
	var wg sync.WaitGroup
	errc := make(chan error, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, err := s.Add(context.Background(), k, 1, 0, 1<<40); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("concurrent Add: %v", err)
	}
	if it := mustGet(t, s, k); string(it.Value) != fmt.Sprint(goroutines*each) || it.Version != goroutines*each {
		t.Fatalf("counter: got %q v%d, want %d v%d", it.Value, it.Version, goroutines*each, goroutines*each)
	}
}

// testConcurrentPutIfAbsent: exactly one of many racing creators wins.
func testConcurrentPutIfAbsent(t *testing.T, s store.Store) {
	k := key("idem", "key-1")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
		errs    []error
	)
	for i := range goroutines {
		wg.Go(func() {
			_, err := s.Put(context.Background(), k, []byte(fmt.Sprint(i)), store.PutOptions{IfAbsent: true})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, i)
			case !errors.Is(err, store.ErrConflict):
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("racing Put IfAbsent: %v", errs)
	}
	if len(winners) != 1 {
		t.Fatalf("racing Put IfAbsent: got %d winners %v, want exactly 1", len(winners), winners)
	}
	if it := mustGet(t, s, k); string(it.Value) != fmt.Sprint(winners[0]) || it.Version != 1 {
		t.Fatalf("stored: got %q v%d, want the winner's %d v1", it.Value, it.Version, winners[0])
	}
}

// testConcurrentPutIfVersion: compare-and-swap loops lose no update.
func testConcurrentPutIfVersion(t *testing.T, s store.Store) {
	k := key("p", "cas")
	mustPut(t, s, k, "0", store.PutOptions{})
	const workers, each = 10, 5
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				it, err := s.Get(context.Background(), k)
				if err != nil {
					errc <- err
					return
				}
				n, err := store.ParseCounter(it.Value)
				if err != nil {
					errc <- err
					return
				}
				_, err = s.Put(context.Background(), k, store.FormatCounter(n+1), store.PutOptions{IfVersion: it.Version})
				switch {
				case err == nil:
					done++
				case !errors.Is(err, store.ErrConflict):
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("CAS loop: %v", err)
	}
	if it := mustGet(t, s, k); string(it.Value) != fmt.Sprint(workers*each) || it.Version != workers*each+1 {
		t.Fatalf("after CAS loops: got %q v%d, want %d v%d", it.Value, it.Version, workers*each, workers*each+1)
	}
}
