package soak

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// traceStore records the writes to users' ledgers and pairing balances
// that reach the store (under the fault injector), for debugUser.
type traceStore struct {
	store.Store
	mu  sync.Mutex
	log map[string][]string
}

func (t *traceStore) note(p, s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.log == nil {
		t.log = map[string][]string{}
	}
	t.log[p] = append(t.log[p], time.Now().Format("15:04:05.000")+" "+s)
}

// interesting: a credit counter, a consent state or a pairing balance.
func interesting(k store.Key) bool {
	return strings.HasPrefix(k.Partition, "u|") && (strings.HasPrefix(k.Sort, "c|") || strings.HasPrefix(k.Sort, "p|") || strings.HasPrefix(k.Sort, "unk|") || strings.HasPrefix(k.Sort, "sev|"))
}

func (t *traceStore) Add(ctx context.Context, k store.Key, d, lo, hi int64) (int64, error) {
	v, err := t.Store.Add(ctx, k, d, lo, hi)
	if interesting(k) {
		t.note(k.Partition, fmt.Sprintf("Add %s %+d [%d,%d] -> %d %v", k.Sort[:4], d, lo, hi, v, err))
	}
	return v, err
}

func (t *traceStore) Put(ctx context.Context, k store.Key, b []byte, o store.PutOptions) (int64, error) {
	v, err := t.Store.Put(ctx, k, b, o)
	if interesting(k) {
		t.note(k.Partition, fmt.Sprintf("Put %s %.300s -> %v", k.Sort[len(k.Sort)-2:], b, err))
	}
	return v, err
}

func (t *traceStore) AddOnce(ctx context.Context, k store.Key, d, lo, hi int64, op store.CounterOp) (int64, error) {
	v, err := t.Store.AddOnce(ctx, k, d, lo, hi, op)
	if interesting(k) {
		t.note(k.Partition, fmt.Sprintf("AddOnce %s %+d [%d,%d] %s -> %d %v", k.Sort[:4], d, lo, hi, op.ID, v, err))
	}
	return v, err
}

func (t *traceStore) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	ok, err := t.Store.Undo(ctx, k, id)
	if interesting(k) {
		t.note(k.Partition, fmt.Sprintf("Undo %s %s -> %v %v", k.Sort[:4], id, ok, err))
	}
	return ok, err
}

func (t *traceStore) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	err := t.Store.Delete(ctx, k, o)
	if interesting(k) {
		t.note(k.Partition, fmt.Sprintf("Delete %s -> %v", k.Sort, err))
	}
	return err
}
