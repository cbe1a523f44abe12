package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Write implements store.Store: one bbolt transaction checks every
// condition, then applies every Put and Delete.
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
		for i, op := range ops {
			keys[i] = encodeKey(op.Key)
			cur, ok, err := lookup(b, keys[i], nowMS)
			if err != nil {
				return err
			}
			if !op.Holds(ok, cur.version) {
				return store.Conflict(ops, i) // nothing written yet
			}
			if op.Kind == store.PutKind {
				versions[i] = 1
				if ok {
					versions[i] = cur.version + 1
				}
			}
		}
		for i, op := range ops {
			if op.Kind == store.CheckKind {
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
