package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The operations a counter remembers live in opsBucket under the counter's
// own key, in one value: a uvarint count, then per operation its id
// (uvarint length and bytes), delta, result and the Unix ms until which it
// is remembered (varints). Both items change in one bbolt transaction.

// opEntry is one remembered operation.
type opEntry struct {
	id      string
	delta   int64
	result  int64
	untilMS int64
}

type opLog []opEntry

func decodeOps(raw []byte) (opLog, error) {
	if raw == nil {
		return nil, nil
	}
	corrupt := fmt.Errorf("boltstore: corrupt operation log of %d bytes", len(raw))
	n, k := binary.Uvarint(raw)
	if k <= 0 || n > store.MaxOps+1 {
		return nil, corrupt
	}
	raw = raw[k:]
	log := make(opLog, 0, n)
	for range n {
		l, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < l {
			return nil, corrupt
		}
		e := opEntry{id: string(raw[k : k+int(l)])}
		raw = raw[k+int(l):]
		for _, v := range []*int64{&e.delta, &e.result, &e.untilMS} {
			x, k := binary.Varint(raw)
			if k <= 0 {
				return nil, corrupt
			}
			*v, raw = x, raw[k:]
		}
		log = append(log, e)
	}
	return log, nil
}

func (l opLog) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(len(l)))
	for _, e := range l {
		b = binary.AppendUvarint(b, uint64(len(e.id)))
		b = append(b, e.id...)
		b = binary.AppendVarint(b, e.delta)
		b = binary.AppendVarint(b, e.result)
		b = binary.AppendVarint(b, e.untilMS)
	}
	return b
}

// find returns the index of the live operation id, or -1.
func (l opLog) find(id string, nowMS int64) int {
	return slices.IndexFunc(l, func(e opEntry) bool { return e.id == id && e.untilMS > nowMS })
}

// add remembers e, dropping forgotten operations (and an older entry of the
// same id) and, past MaxOps, the ones closest to being forgotten.
func (l opLog) add(e opEntry, nowMS int64) opLog {
	l = slices.DeleteFunc(l, func(o opEntry) bool { return o.untilMS <= nowMS || o.id == e.id })
	l = append(l, e)
	if len(l) > store.MaxOps {
		slices.SortStableFunc(l, func(a, b opEntry) int { return int(max(-1, min(1, a.untilMS-b.untilMS))) })
		l = l[len(l)-store.MaxOps:]
	}
	return l
}

func saveOps(tx *bolt.Tx, ek []byte, l opLog) error {
	if len(l) == 0 {
		return tx.Bucket(opsBucket).Delete(ek)
	}
	return tx.Bucket(opsBucket).Put(ek, l.encode())
}

// AddOnce implements store.Store.
func (s *Store) AddOnce(ctx context.Context, key store.Key, delta, min, max int64, op store.CounterOp) (int64, error) {
	keepMS, err := store.CheckAddOnce(key, min, max, op)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var result int64
	err = s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		ek := encodeKey(key)
		nowMS := s.nowMS()
		cur, ok, err := lookup(b, ek, nowMS)
		if err != nil {
			return err
		}
		var (
			n, version, expMS int64
			log               opLog
		)
		if ok {
			if n, err = store.ParseCounter(cur.value); err != nil {
				return err
			}
			version, expMS = cur.version, cur.expMS
			if log, err = decodeOps(tx.Bucket(opsBucket).Get(ek)); err != nil {
				return err
			}
			if i := log.find(op.ID, nowMS); i >= 0 {
				result = log[i].result
				return nil // a repeat: nothing changes
			}
		}
		next, err := store.AddInBounds(n, delta, min, max)
		if err != nil {
			return err
		}
		if !op.ExpiresAt.IsZero() {
			expMS = store.ToMillis(op.ExpiresAt)
		}
		result = next
		if err := saveOps(tx, ek, log.add(opEntry{id: op.ID, delta: delta, result: next, untilMS: nowMS + keepMS}, nowMS)); err != nil {
			return err
		}
		return b.Put(ek, encode(version+1, expMS, store.FormatCounter(next)))
	})
	if err != nil {
		return 0, err
	}
	return result, nil
}

// Undo implements store.Store.
func (s *Store) Undo(ctx context.Context, key store.Key, id string) (bool, error) {
	if err := store.CheckKey(key); err != nil {
		return false, err
	}
	if err := store.CheckOpID(id); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	undone := false
	err := s.write(func(tx *bolt.Tx) error {
		undone = false
		b := tx.Bucket(bucketName)
		ek := encodeKey(key)
		nowMS := s.nowMS()
		cur, ok, err := lookup(b, ek, nowMS)
		if err != nil || !ok {
			return err
		}
		n, err := store.ParseCounter(cur.value)
		if err != nil {
			return nil // not a counter: it remembers nothing
		}
		log, err := decodeOps(tx.Bucket(opsBucket).Get(ek))
		if err != nil {
			return err
		}
		i := log.find(id, nowMS)
		if i < 0 {
			return nil
		}
		next, err := store.AddInBounds(n, -log[i].delta, math.MinInt64, math.MaxInt64)
		if err != nil || log[i].delta == math.MinInt64 {
			return fmt.Errorf("%w: undo of %d on %d overflows", store.ErrOutOfRange, log[i].delta, n)
		}
		undone = true
		if err := saveOps(tx, ek, slices.Delete(log, i, i+1)); err != nil {
			return err
		}
		return b.Put(ek, encode(cur.version+1, cur.expMS, store.FormatCounter(next)))
	})
	if err != nil {
		return false, err
	}
	return undone, nil
}
