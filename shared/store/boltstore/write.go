package boltstore

import (
	"context"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Write implements store.Store: one bbolt transaction checks every
// condition (and that every Add has a counter to add to), then applies
// every Put, Delete and Add.
func (s *Store) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	if err := store.CheckWrite(ops); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	versions := make([]int64, len(ops))
	if len(ops) == 0 {
		return versions, nil
	}
	err := s.write(func(tx *bolt.Tx) error {
		clear(versions) // fn may run more than once
		b := tx.Bucket(bucketName)
		nowMS := s.nowMS()
		keys := make([][]byte, len(ops))
		adds := make([]record, len(ops)) // the counters the Adds write
		for i, op := range ops {
			keys[i] = encodeKey(op.Key)
			cur, ok, err := lookup(b, keys[i], nowMS)
			if err != nil {
				return err
			}
			if !op.Holds(ok, cur.version) {
				return store.Conflict(ops, i) // nothing written yet
			}
			switch op.Kind {
			case store.PutKind:
				versions[i] = 1
				if ok {
					versions[i] = cur.version + 1
				}
			case store.AddKind:
				if adds[i], err = added(op, cur, ok); err != nil {
					return fmt.Errorf("boltstore: write: op %d: %w", i, err)
				}
			}
		}
		for i, op := range ops {
			switch op.Kind {
			case store.CheckKind:
				continue
			case store.AddKind:
				if adds[i].version == 1 {
					// A new counter: what an expired one remembered is gone with it.
					if err := tx.Bucket(opsBucket).Delete(keys[i]); err != nil {
						return err
					}
				}
				if err := b.Put(keys[i], encode(adds[i].version, adds[i].expMS, adds[i].value)); err != nil {
					return err
				}
				continue
			}
			if err := tx.Bucket(opsBucket).Delete(keys[i]); err != nil {
				return err
			}
			var err error
			if op.Kind == store.PutKind {
				err = b.Put(keys[i], encode(versions[i], store.ToMillis(op.Put.ExpiresAt), op.Value))
			} else {
				err = b.Delete(keys[i])
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return versions, nil
}

// added is the counter an Add of a Write leaves at an item that is cur
// (live or not).
func added(op store.WriteOp, cur record, live bool) (record, error) {
	var n, version, expMS int64
	if live {
		var err error
		if n, err = store.ParseCounter(cur.value); err != nil {
			return record{}, err
		}
		version, expMS = cur.version, cur.expMS
	}
	next, err := store.AddInBounds(n, op.Delta, math.MinInt64, math.MaxInt64)
	if err != nil {
		return record{}, err
	}
	if !op.ExpiresAt.IsZero() {
		expMS = store.ToMillis(op.ExpiresAt)
	}
	return record{version: version + 1, expMS: expMS, value: store.FormatCounter(next)}, nil
}
