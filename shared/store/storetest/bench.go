package storetest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Bench is the benchmark suite every backend runs: one call of each store
// operation the send path uses (Get, conditional Put, counter Add, the
// AddOnce that takes a credit, an AddOnce and its Undo as a give-back) and
// a Query page, and three new items (a record, its index, an outbox entry)
// written as three Puts and as one Write, each against a fresh store from
// newStore. Values are 256 bytes.
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
	b.Run("AddOnce", func(b *testing.B) {
		// A credit taken by a send, as the send path takes it: a new
		// operation each time, on a counter remembering the recent ones.
		s := newStore(b)
		k := store.Key{Partition: "credits#o1", Sort: "tmpl"}
		if _, err := s.Add(ctx, k, math.MaxInt64/2, 0, math.MaxInt64); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			op := store.CounterOp{ID: fmt.Sprintf("take:ntf_%08d", i), Keep: time.Hour}
			if _, err := s.AddOnce(ctx, k, -1, 0, math.MaxInt64, op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Undo", func(b *testing.B) {
		s := newStore(b)
		k := store.Key{Partition: "credits#o1", Sort: "tmpl"}
		op := store.CounterOp{ID: "take:ntf_1", Keep: time.Hour}
		if _, err := s.Add(ctx, k, 10, 0, math.MaxInt64); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.AddOnce(ctx, k, -1, 0, math.MaxInt64, op); err != nil {
				b.Fatal(err)
			}
			if ok, err := s.Undo(ctx, k, op.ID); err != nil || !ok {
				b.Fatalf("Undo: got %v, %v; want true", ok, err)
			}
		}
	})
	threeKeys := func(i int) [3]store.Key {
		id := fmt.Sprintf("ntf_%08d", i)
		return [3]store.Key{{Partition: "ntf#" + id, Sort: "rec"}, {Partition: "user#o1", Sort: "hist#" + id}, {Partition: "outbox", Sort: id}}
	}
	b.Run("Put3", func(b *testing.B) {
		s := newStore(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			for _, k := range threeKeys(i) {
				if _, err := s.Put(ctx, k, value, store.PutOptions{IfAbsent: true}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Write3", func(b *testing.B) {
		s := newStore(b)
		b.ReportAllocs()
		i := 0
		ops := make([]store.WriteOp, 3)
		for b.Loop() {
			i++
			for j, k := range threeKeys(i) {
				ops[j] = store.WritePut(k, value, store.PutOptions{IfAbsent: true})
			}
			if _, err := s.Write(ctx, ops); err != nil {
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
