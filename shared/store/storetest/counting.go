package storetest

import (
	"context"
	"sync/atomic"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Counting wraps a store and counts its round trips, for benchmarks and
// soak reports ("store round trips per send").
type Counting struct {
	store.Store
	gets, puts, deletes, queries, adds, undos, writes atomic.Int64
}

var _ store.Store = (*Counting)(nil)

// NewCounting wraps s.
func NewCounting(s store.Store) *Counting { return &Counting{Store: s} }

// Total is the number of calls so far.
func (c *Counting) Total() int64 {
	return c.gets.Load() + c.puts.Load() + c.deletes.Load() + c.queries.Load() + c.adds.Load() + c.undos.Load() + c.writes.Load()
}

// Counts returns the calls per operation.
func (c *Counting) Counts() map[string]int64 {
	return map[string]int64{"get": c.gets.Load(), "put": c.puts.Load(), "delete": c.deletes.Load(),
		"query": c.queries.Load(), "add": c.adds.Load(), "undo": c.undos.Load(), "write": c.writes.Load()}
}

// Get implements store.Store.
func (c *Counting) Get(ctx context.Context, k store.Key) (store.Item, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, k)
}

// Put implements store.Store.
func (c *Counting) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	c.puts.Add(1)
	return c.Store.Put(ctx, k, v, o)
}

// Delete implements store.Store.
func (c *Counting) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, k, o)
}

// Query implements store.Store.
func (c *Counting) Query(ctx context.Context, q store.Query) (store.Page, error) {
	c.queries.Add(1)
	return c.Store.Query(ctx, q)
}

// Add implements store.Store.
func (c *Counting) Add(ctx context.Context, k store.Key, d, min, max int64) (int64, error) {
	c.adds.Add(1)
	return c.Store.Add(ctx, k, d, min, max)
}

// AddOnce implements store.Store.
func (c *Counting) AddOnce(ctx context.Context, k store.Key, d, min, max int64, op store.CounterOp) (int64, error) {
	c.adds.Add(1)
	return c.Store.AddOnce(ctx, k, d, min, max, op)
}

// Undo implements store.Store.
func (c *Counting) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	c.undos.Add(1)
	return c.Store.Undo(ctx, k, id)
}

// Write implements store.Store; a Write is one round trip, whatever its
// number of operations.
func (c *Counting) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	c.writes.Add(1)
	return c.Store.Write(ctx, ops)
}
