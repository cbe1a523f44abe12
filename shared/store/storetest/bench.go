package storetest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"wxnotify/shared/store"
)

// Bench is the benchmark suite every backend runs: one call of each store
// operation the send path uses (Get, conditional Put, counter Add) and a
// Query page, each against a fresh store from newStore. Values are 256
// bytes.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	ctx := context.Background()
	value := []byte(strings.Repeat("x", 256))
	b.Run("Get", func(b *testing.B) {
		s := newStore(b)
		k := store.Key{Partition: "user#o1", Sort: "profile"}
		if _, err := s.Put(ctx, k, value, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutIfVersion", func(b *testing.B) {
		s := newStore(b)
		k := store.Key{Partition: "user#o1", Sort: "profile"}
		ver, err := s.Put(ctx, k, value, store.PutOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if ver, err = s.Put(ctx, k, value, store.PutOptions{IfVersion: ver}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Add", func(b *testing.B) {
		s := newStore(b)
		k := store.Key{Partition: "credits#o1", Sort: "tmpl"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Add(ctx, k, 1, 0, math.MaxInt64); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Query20", func(b *testing.B) {
		s := newStore(b)
		for i := range 100 {
			if _, err := s.Put(ctx, store.Key{Partition: "batch", Sort: fmt.Sprintf("r#%03d", i)}, value[:100], store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			page, err := s.Query(ctx, store.Query{Partition: "batch", Prefix: "r#", Limit: 20})
			if err != nil || len(page.Items) != 20 {
				b.Fatalf("Query: got %d items, %v; want 20", len(page.Items), err)
			}
		}
	})
}
