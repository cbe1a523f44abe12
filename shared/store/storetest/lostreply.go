package storetest

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/wxnotify/wxnotify/shared/store"
)

// ErrLostReply is what a LostReplies store answers for a write whose reply
// it lost: a timeout, after the backend applied the write.
var ErrLostReply = fmt.Errorf("storetest: reply lost after the write was applied: %w", os.ErrDeadlineExceeded)

// LostReplies wraps a store and loses the reply of one chosen write: the
// backend applies it, then the caller gets ErrLostReply, as when Redis
// stalls or the network drops the answer after the command ran. Tests use
// it to prove that every write of a path is safe to repeat.
type LostReplies struct {
	store.Store

	mu     sync.Mutex
	match  func(op string, k store.Key) bool
	writes int // matching writes since Reset
	lose   int // the matching write to lose (1-based), 0 for none
	lost   []string
}

var _ store.Store = (*LostReplies)(nil)

// NewLostReplies wraps s; it loses nothing until Lose.
func NewLostReplies(s store.Store) *LostReplies { return &LostReplies{Store: s} }

// Reset starts counting the applied writes for which match returns true (op
// is put, delete, add, addonce, undo or write, whose key is that of its
// first operation; nil matches every write), and loses
// the reply of the n-th of them (n = 0: none).
func (l *LostReplies) Reset(n int, match func(op string, k store.Key) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.match, l.writes, l.lose, l.lost = match, 0, n, nil
}

// Writes is the number of applied matching writes since Reset.
func (l *LostReplies) Writes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

// Lost lists the writes whose reply was lost since Reset ("put p/s").
func (l *LostReplies) Lost() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lost...)
}

// after reports whether the reply of this applied write is lost.
func (l *LostReplies) after(op string, k store.Key, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || (l.match != nil && !l.match(op, k)) {
		return false // refused writes (a failed condition) applied nothing
	}
	l.writes++
	if l.writes != l.lose {
		return false
	}
	l.lost = append(l.lost, op+" "+k.String())
	return true
}

// Put implements store.Store.
func (l *LostReplies) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	ver, err := l.Store.Put(ctx, k, v, o)
	if l.after("put", k, err) {
		return 0, ErrLostReply
	}
	return ver, err
}

// Delete implements store.Store.
func (l *LostReplies) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	err := l.Store.Delete(ctx, k, o)
	if l.after("delete", k, err) {
		return ErrLostReply
	}
	return err
}

// Add implements store.Store.
func (l *LostReplies) Add(ctx context.Context, k store.Key, delta, min, max int64) (int64, error) {
	n, err := l.Store.Add(ctx, k, delta, min, max)
	if l.after("add", k, err) {
		return 0, ErrLostReply
	}
	return n, err
}

// AddOnce implements store.Store.
func (l *LostReplies) AddOnce(ctx context.Context, k store.Key, delta, min, max int64, op store.CounterOp) (int64, error) {
	n, err := l.Store.AddOnce(ctx, k, delta, min, max, op)
	if l.after("addonce", k, err) {
		return 0, ErrLostReply
	}
	return n, err
}

// Undo implements store.Store.
func (l *LostReplies) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	ok, err := l.Store.Undo(ctx, k, id)
	if l.after("undo", k, err) {
		return false, ErrLostReply
	}
	return ok, err
}

// Write implements store.Store.
func (l *LostReplies) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	versions, err := l.Store.Write(ctx, ops)
	if l.after("write", firstKey(ops), err) {
		return nil, ErrLostReply
	}
	return versions, err
}
