// Package storeobs wraps a store.Store to report each operation's latency
// and outcome, for metrics by backend. It adds no round trip: it times the
// calls it forwards.
package storeobs

import (
	"context"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Op names a store operation as reported.
type Op string

// The operations of the store contract.
const (
	OpGet     Op = "get"
	OpPut     Op = "put"
	OpDelete  Op = "delete"
	OpQuery   Op = "query"
	OpAdd     Op = "add"
	OpAddOnce Op = "add_once"
	OpUndo    Op = "undo"
	OpWrite   Op = "write"
)

// Func is told of one operation: its name, its latency and its error (nil
// on success; a condition that did not hold, store.ErrConflict, is an
// answer like any other and is passed as it is). It must be fast and must
// not block.
type Func func(op Op, d time.Duration, err error)

// Store is a store.Store that reports every operation to a Func.
type Store struct {
	next store.Store
	on   Func
	now  func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns st reporting to on.
func New(st store.Store, on Func) *Store {
	return &Store{next: st, on: on, now: time.Now}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() store.Store { return s.next }

func (s *Store) report(op Op, start time.Time, err error) { s.on(op, s.now().Sub(start), err) }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key store.Key) (store.Item, error) {
	start := s.now()
	it, err := s.next.Get(ctx, key)
	s.report(OpGet, start, err)
	return it, err
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key store.Key, value []byte, opts store.PutOptions) (int64, error) {
	start := s.now()
	v, err := s.next.Put(ctx, key, value, opts)
	s.report(OpPut, start, err)
	return v, err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key store.Key, opts store.DeleteOptions) error {
	start := s.now()
	err := s.next.Delete(ctx, key, opts)
	s.report(OpDelete, start, err)
	return err
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	start := s.now()
	p, err := s.next.Query(ctx, q)
	s.report(OpQuery, start, err)
	return p, err
}

// Add implements store.Store.
func (s *Store) Add(ctx context.Context, key store.Key, delta, min, max int64) (int64, error) {
	start := s.now()
	n, err := s.next.Add(ctx, key, delta, min, max)
	s.report(OpAdd, start, err)
	return n, err
}

// AddOnce implements store.Store.
func (s *Store) AddOnce(ctx context.Context, key store.Key, delta, min, max int64, op store.CounterOp) (int64, error) {
	start := s.now()
	n, err := s.next.AddOnce(ctx, key, delta, min, max, op)
	s.report(OpAddOnce, start, err)
	return n, err
}

// Undo implements store.Store.
func (s *Store) Undo(ctx context.Context, key store.Key, id string) (bool, error) {
	start := s.now()
	ok, err := s.next.Undo(ctx, key, id)
	s.report(OpUndo, start, err)
	return ok, err
}

// Write implements store.Store.
func (s *Store) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	start := s.now()
	v, err := s.next.Write(ctx, ops)
	s.report(OpWrite, start, err)
	return v, err
}

// Close implements store.Store; it is not reported.
func (s *Store) Close() error { return s.next.Close() }
