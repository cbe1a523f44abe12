package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

func newStore(tb testing.TB, opts ...boltstore.Options) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(filepath.Join(tb.TempDir(), "wxnotify.db"), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := store.Key{Partition: "p", Sort: "s"}
	if _, err := s.Put(ctx, k, []byte("kept"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	it, err := s.Get(ctx, k)
	if err != nil || string(it.Value) != "kept" {
		t.Fatalf("after reopen: got %q, %v; want %q", it.Value, err, "kept")
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = boltstore.Open(path, boltstore.Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open of a locked file: got nil error, want a timeout")
	}
}

func TestSweep(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := newStore(t, boltstore.Options{Now: clock, NoSync: true})
	ctx := context.Background()
	for i := range 10 {
		exp := time.Time{}
		if i%2 == 0 {
			exp = now.Add(time.Minute)
		}
		if _, err := s.Put(ctx, store.Key{Partition: "p", Sort: fmt.Sprint(i)}, []byte("v"), store.PutOptions{ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep before expiry: got %d, %v; want 0", n, err)
	}
	now = now.Add(2 * time.Minute)
	if n, err := s.Sweep(ctx); err != nil || n != 5 {
		t.Fatalf("Sweep after expiry: got %d, %v; want 5", n, err)
	}
	page, err := s.Query(ctx, store.Query{Partition: "p", Limit: 100})
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("Query after Sweep: got %d items, %v; want 5", len(page.Items), err)
	}
	if _, err := s.Get(ctx, store.Key{Partition: "p", Sort: "0"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get swept item: got %v, want ErrNotFound", err)
	}
}

// BenchmarkStore runs the store benchmark suite.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b) })
}
