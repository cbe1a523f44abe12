package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// ErrInjected is the error a Faulty store returns for an injected fault.
var ErrInjected = errors.New("storetest: injected store fault")

// Faulty wraps a store and makes a fraction of its calls fail or slow down,
// for tests and soaks of what is built on the store. A failed write may
// fail before the backend saw it, or after it was applied (the caller cannot
// tell, as with a lost reply): AfterWriteRate sets the share of the latter.
type Faulty struct {
	store.Store

	mu  sync.Mutex
	rng *rand.Rand
	// Rate is the probability that a call fails with ErrInjected.
	rate float64
	// afterWrite is the share of failed writes that were applied first.
	afterWrite float64
	latency    time.Duration
	faults     int
	match      func(op string, k store.Key) bool
}

var _ store.Store = (*Faulty)(nil)

// NewFaulty wraps s; it injects nothing until SetRate.
func NewFaulty(s store.Store, seed uint64) *Faulty {
	return &Faulty{Store: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetRate makes a fraction rate of the calls fail, afterWrite of the failed
// writes after they were applied, each call delayed by up to latency.
func (f *Faulty) SetRate(rate, afterWrite float64, latency time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.afterWrite, f.latency = rate, afterWrite, latency
}

// Only restricts faults to calls for which match returns true (op is get,
// put, delete, query, add (Add and AddOnce), undo or write, whose key is
// that of its first operation); nil clears the restriction.
func (f *Faulty) Only(match func(op string, k store.Key) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match = match
}

// Faults is the number of faults injected so far.
func (f *Faulty) Faults() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults
}

// roll decides a call's fate: fail before, fail after (writes), and delay.
func (f *Faulty) roll(op string, k store.Key, write bool) (before, after bool, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.latency > 0 {
		delay = time.Duration(f.rng.Int64N(int64(f.latency)))
	}
	if f.rate == 0 || (f.match != nil && !f.match(op, k)) || f.rng.Float64() >= f.rate {
		return false, false, delay
	}
	f.faults++
	if write && f.rng.Float64() < f.afterWrite {
		return false, true, delay
	}
	return true, false, delay
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Get implements store.Store.
func (f *Faulty) Get(ctx context.Context, k store.Key) (store.Item, error) {
	before, _, d := f.roll("get", k, false)
	if err := sleep(ctx, d); err != nil {
		return store.Item{}, err
	}
	if before {
		return store.Item{}, ErrInjected
	}
	return f.Store.Get(ctx, k)
}

// Put implements store.Store.
func (f *Faulty) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	before, after, d := f.roll("put", k, true)
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	if before {
		return 0, ErrInjected
	}
	ver, err := f.Store.Put(ctx, k, v, o)
	if after && err == nil {
		return 0, ErrInjected
	}
	return ver, err
}

// Delete implements store.Store.
func (f *Faulty) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	before, after, d := f.roll("delete", k, true)
	if err := sleep(ctx, d); err != nil {
		return err
	}
	if before {
		return ErrInjected
	}
	err := f.Store.Delete(ctx, k, o)
	if after && err == nil {
		return ErrInjected
	}
	return err
}

// Query implements store.Store.
func (f *Faulty) Query(ctx context.Context, q store.Query) (store.Page, error) {
	before, _, d := f.roll("query", store.Key{Partition: q.Partition}, false)
	if err := sleep(ctx, d); err != nil {
		return store.Page{}, err
	}
	if before {
		return store.Page{}, ErrInjected
	}
	return f.Store.Query(ctx, q)
}

// Add implements store.Store.
func (f *Faulty) Add(ctx context.Context, k store.Key, delta, min, max int64) (int64, error) {
	before, after, d := f.roll("add", k, true)
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	if before {
		return 0, ErrInjected
	}
	n, err := f.Store.Add(ctx, k, delta, min, max)
	if after && err == nil {
		return 0, ErrInjected
	}
	return n, err
}

// AddOnce implements store.Store.
func (f *Faulty) AddOnce(ctx context.Context, k store.Key, delta, min, max int64, op store.CounterOp) (int64, error) {
	before, after, d := f.roll("add", k, true)
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	if before {
		return 0, ErrInjected
	}
	n, err := f.Store.AddOnce(ctx, k, delta, min, max, op)
	if after && err == nil {
		return 0, ErrInjected
	}
	return n, err
}

// Undo implements store.Store.
func (f *Faulty) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	before, after, d := f.roll("undo", k, true)
	if err := sleep(ctx, d); err != nil {
		return false, err
	}
	if before {
		return false, ErrInjected
	}
	ok, err := f.Store.Undo(ctx, k, id)
	if after && err == nil {
		return false, ErrInjected
	}
	return ok, err
}

// Write implements store.Store. An injected fault fails the whole Write,
// before it reached the backend or after it was applied.
func (f *Faulty) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	before, after, d := f.roll("write", firstKey(ops), true)
	if err := sleep(ctx, d); err != nil {
		return nil, err
	}
	if before {
		return nil, ErrInjected
	}
	versions, err := f.Store.Write(ctx, ops)
	if after && err == nil {
		return nil, ErrInjected
	}
	return versions, err
}

// firstKey is the key a Write is matched and reported by: that of its
// first operation, or the zero key.
func firstKey(ops []store.WriteOp) store.Key {
	if len(ops) == 0 {
		return store.Key{}
	}
	return ops[0].Key
}
