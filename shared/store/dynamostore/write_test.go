package dynamostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
)

// TestWriteRoundTrips counts the requests of a Write: one
// TransactWriteItems when every Put is conditional, plus one BatchGetItem
// for the versions of unconditional Puts.
func TestWriteRoundTrips(t *testing.T) {
	ctx := context.Background()
	a, b, c := store.Key{Partition: "ntf#1", Sort: "rec"}, store.Key{Partition: "ntf#1", Sort: "idx"}, store.Key{Partition: "outbox", Sort: "o1"}
	tests := []struct {
		name    string
		collide int64 // TransactWriteItems cancelled by colliding transactions first
		ops     []store.WriteOp
		want    int
		check   func(t *testing.T, versions []int64, err error)
	}{
		{"Conditional", 0, []store.WriteOp{
			store.WritePut(a, []byte("r"), store.PutOptions{IfAbsent: true}),
			store.WritePut(b, []byte("i"), store.PutOptions{IfAbsent: true}),
			store.WriteCheck(c, 0),
		}, 1, wantVersions(1, 1, 0)},
		{"Conflict", 0, []store.WriteOp{
			store.WritePut(a, []byte("r"), store.PutOptions{IfAbsent: true}),
			store.WritePut(b, []byte("i"), store.PutOptions{IfVersion: 3}),
		}, 1, func(t *testing.T, _ []int64, err error) {
			var wc *store.WriteConflict
			if !errors.As(err, &wc) || wc.Index != 1 {
				t.Fatalf("got %v, want a *store.WriteConflict at 1", err)
			}
		}},
		{"Unconditional", 0, []store.WriteOp{
			store.WritePut(a, []byte("r"), store.PutOptions{}),
			store.WritePut(b, []byte("i"), store.PutOptions{}),
			store.WritePut(c, []byte("o"), store.PutOptions{IfAbsent: true}),
		}, 2, wantVersions(1, 1, 1)},
		{"Collision", 2, []store.WriteOp{
			store.WritePut(a, []byte("r"), store.PutOptions{IfAbsent: true}),
			store.WriteDelete(c, store.DeleteOptions{}),
		}, 3, wantVersions(1, 0)},
		{"CollisionsThroughout", 100, []store.WriteOp{
			store.WritePut(a, []byte("r"), store.PutOptions{IfAbsent: true}),
		}, 10, func(t *testing.T, _ []int64, err error) {
			if err == nil || errors.Is(err, store.ErrConflict) {
				t.Fatalf("got %v, want an error that is no conflict", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &proxy{}
			p.collide.Store(tc.collide)
			_, table := newTable(t)
			s := dynamostore.New(proxiedClient(t, p), table)
			versions, err := s.Write(ctx, tc.ops)
			tc.check(t, versions, err)
			if got := p.requests.Load(); got != int64(tc.want) {
				t.Errorf("requests: got %d, want %d", got, tc.want)
			}
			if err != nil {
				for _, op := range tc.ops {
					if _, err := s.Get(ctx, op.Key); !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("Get(%v) after a failed Write: got %v, want ErrNotFound", op.Key, err)
					}
				}
			}
		})
	}
}

func wantVersions(want ...int64) func(t *testing.T, versions []int64, err error) {
	return func(t *testing.T, versions []int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) != len(want) {
			t.Fatalf("versions: got %v, want %v", versions, want)
		}
		for i := range want {
			if versions[i] != want[i] {
				t.Fatalf("versions: got %v, want %v", versions, want)
			}
		}
	}
}

// An unconditional Put in a Write reads the version, and when another
// writer moves the item between the read and the transaction, tries again
// with the new one.
func TestWriteUnconditionalPutRaces(t *testing.T) {
	ctx := context.Background()
	client, table := newTable(t)
	k := store.Key{Partition: "p", Sort: "s"}
	other := dynamostore.New(client, table)
	if _, err := other.Put(ctx, k, []byte("v1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	p.beforeTransact = func() {
		p.beforeTransact = nil // once
		if _, err := other.Put(ctx, k, []byte("theirs"), store.PutOptions{}); err != nil {
			t.Error(err)
		}
	}
	s := dynamostore.New(proxiedClient(t, p), table)
	versions, err := s.Write(ctx, []store.WriteOp{store.WritePut(k, []byte("ours"), store.PutOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	if versions[0] != 3 {
		t.Fatalf("version: got %d, want 3 (v1, their v2, our v3)", versions[0])
	}
	if it, err := s.Get(ctx, k); err != nil || string(it.Value) != "ours" || it.Version != 3 {
		t.Fatalf("Get: got %q v%d, %v; want \"ours\" v3", it.Value, it.Version, err)
	}
	if got := p.requests.Load(); got != 5 { // read, cancelled transaction, read, transaction, Get
		t.Fatalf("requests: got %d, want 5", got)
	}
}
