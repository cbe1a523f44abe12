// Package boltstore implements the store contract on bbolt: one file, one
// bucket, safe for concurrent goroutines. It is the store of local runs
// (`wxnotify dev`).
//
// bbolt locks its file, so one process at a time owns a database; within it,
// writes are serialised by bbolt's single writer, which makes every
// conditional operation and counter atomic. Expired items are invisible to
// reads at once and removed by Sweep.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wxnotify/wxnotify/shared/store"
)

var (
	bucketName = []byte("items")
	// opsBucket holds the operations a counter remembers (see AddOnce),
	// under the same key as the counter in bucketName.
	opsBucket = []byte("ops")
)

// headerSize is the item header: version and expiry (Unix ms, 0 for never),
// both big-endian uint64, followed by the value.
const headerSize = 16

// Options tune Open.
type Options struct {
	// NoSync skips fsync after each write: faster, but a machine crash may
	// lose the last writes. For tests and benchmarks.
	NoSync bool
	// Now is the clock that decides expiry; default time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to release the
	// file; default 2s.
	LockTimeout time.Duration
}

// Store is a bbolt-backed store.Store.
type Store struct {
	db      *bolt.DB
	now     func() time.Time
	writers atomic.Int32 // writes in progress
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path.
func Open(path string, opts ...Options) (*Store, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 2 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketName); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(opsBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	db.MaxBatchDelay = time.Millisecond
	return &Store{db: db, now: o.Now}, nil
}

// write runs a write transaction. A lone writer commits at once; writers
// that find others in progress join bbolt's batch, so that concurrent
// writes share one commit (one fsync) instead of queueing for one each.
// fn reports a failed condition through its result, not its error: an error
// would roll back the writes of the whole batch. fn may run more than once.
func (s *Store) write(fn func(tx *bolt.Tx) (result error)) error {
	var result error
	run := func(tx *bolt.Tx) error {
		result = fn(tx)
		if errors.Is(result, store.ErrConflict) || errors.Is(result, store.ErrOutOfRange) || errors.Is(result, store.ErrNotCounter) {
			return nil // nothing was written: let the rest of the batch commit
		}
		return result
	}
	var err error
	if s.writers.Add(1) == 1 {
		err = s.db.Update(run)
	} else {
		err = s.db.Batch(run)
	}
	s.writers.Add(-1)
	if err != nil {
		return err
	}
	return result
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

// encodeKey joins partition and sort with NUL, which store.CheckKey forbids
// inside either part: the encoding is unambiguous and keeps a partition's
// items contiguous and in sort-key byte order.
func encodeKey(k store.Key) []byte {
	b := make([]byte, 0, len(k.Partition)+1+len(k.Sort))
	b = append(b, k.Partition...)
	b = append(b, 0)
	return append(b, k.Sort...)
}

type record struct {
	version int64
	expMS   int64
	value   []byte // aliases bbolt memory: copy before the tx ends
}

func decode(raw []byte) (record, error) {
	if len(raw) < headerSize {
		return record{}, fmt.Errorf("boltstore: corrupt item of %d bytes", len(raw))
	}
	return record{
		version: int64(binary.BigEndian.Uint64(raw[0:8])),
		expMS:   int64(binary.BigEndian.Uint64(raw[8:16])),
		value:   raw[headerSize:],
	}, nil
}

func encode(version, expMS int64, value []byte) []byte {
	b := make([]byte, headerSize+len(value))
	binary.BigEndian.PutUint64(b[0:8], uint64(version))
	binary.BigEndian.PutUint64(b[8:16], uint64(expMS))
	copy(b[headerSize:], value)
	return b
}

func (r record) live(nowMS int64) bool { return r.expMS == 0 || r.expMS > nowMS }

func (r record) item(k store.Key) store.Item {
	return store.Item{
		Key:       k,
		Value:     bytes.Clone(r.value),
		Version:   r.version,
		ExpiresAt: store.FromMillis(r.expMS),
	}
}

// lookup returns the live record under ek, or ok=false.
func lookup(b *bolt.Bucket, ek []byte, nowMS int64) (record, bool, error) {
	raw := b.Get(ek)
	if raw == nil {
		return record{}, false, nil
	}
	r, err := decode(raw)
	if err != nil {
		return record{}, false, err
	}
	return r, r.live(nowMS), nil
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key store.Key) (store.Item, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Item{}, err
	}
	var it store.Item
	err := s.db.View(func(tx *bolt.Tx) error {
		r, ok, err := lookup(tx.Bucket(bucketName), encodeKey(key), s.nowMS())
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		it = r.item(key)
		return nil
	})
	return it, err
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key store.Key, value []byte, opts store.PutOptions) (int64, error) {
	if err := store.CheckKey(key); err != nil {
		return 0, err
	}
	if err := store.CheckValue(value); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var version int64
	err := s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		ek := encodeKey(key)
		cur, ok, err := lookup(b, ek, s.nowMS())
		if err != nil {
			return err
		}
		switch {
		case opts.IfAbsent && ok:
			return fmt.Errorf("%w: the item exists", store.ErrConflict)
		case opts.IfVersion > 0 && (!ok || cur.version != opts.IfVersion):
			return fmt.Errorf("%w: the item is not at version %d", store.ErrConflict, opts.IfVersion)
		}
		version = 1
		if ok {
			version = cur.version + 1
		}
		if err := tx.Bucket(opsBucket).Delete(ek); err != nil {
			return err
		}
		return b.Put(ek, encode(version, store.ToMillis(opts.ExpiresAt), value))
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key store.Key, opts store.DeleteOptions) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		ek := encodeKey(key)
		if opts.IfVersion > 0 {
			cur, ok, err := lookup(b, ek, s.nowMS())
			if err != nil {
				return err
			}
			if !ok || cur.version != opts.IfVersion {
				return fmt.Errorf("%w: the item is not at version %d", store.ErrConflict, opts.IfVersion)
			}
		}
		if err := tx.Bucket(opsBucket).Delete(ek); err != nil {
			return err
		}
		return b.Delete(ek)
	})
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	var page store.Page
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		prefix := encodeKey(store.Key{Partition: q.Partition, Sort: q.Prefix})
		start := prefix
		if q.After != "" {
			if after := encodeKey(store.Key{Partition: q.Partition, Sort: q.After}); bytes.Compare(after, prefix) >= 0 {
				start = after
			}
		}
		nowMS := s.nowMS()
		skip := len(q.Partition) + 1
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			sort := string(k[skip:])
			if q.After != "" && sort <= q.After {
				continue
			}
			if len(page.Items) == q.Limit {
				// More may follow: the cursor is the last returned key.
				page.Next = page.Items[len(page.Items)-1].Key.Sort
				return nil
			}
			r, err := decode(v)
			if err != nil {
				return err
			}
			if !r.live(nowMS) {
				continue
			}
			page.Items = append(page.Items, r.item(store.Key{Partition: q.Partition, Sort: sort}))
		}
		return nil
	})
	if err != nil {
		return store.Page{}, err
	}
	return page, nil
}

// Add implements store.Store.
func (s *Store) Add(ctx context.Context, key store.Key, delta, min, max int64) (int64, error) {
	if err := store.CheckKey(key); err != nil {
		return 0, err
	}
	if err := store.CheckBounds(min, max); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var next int64
	err := s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		ek := encodeKey(key)
		cur, ok, err := lookup(b, ek, s.nowMS())
		if err != nil {
			return err
		}
		var n, version, expMS int64
		if ok {
			if n, err = store.ParseCounter(cur.value); err != nil {
				return err
			}
			version, expMS = cur.version, cur.expMS
		}
		if next, err = store.AddInBounds(n, delta, min, max); err != nil {
			return err
		}
		if !ok {
			// A new counter: what an expired one remembered is gone with it.
			if err := tx.Bucket(opsBucket).Delete(ek); err != nil {
				return err
			}
		}
		return b.Put(ek, encode(version+1, expMS, store.FormatCounter(next)))
	})
	if err != nil {
		return 0, err
	}
	return next, nil
}

// Sweep deletes expired items and returns how many it removed. Reads never
// see expired items, so Sweep only reclaims space; run it now and then.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		nowMS := s.nowMS()
		for k, v := c.First(); k != nil; {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := decode(v)
			if err == nil && !r.live(nowMS) {
				deleted := bytes.Clone(k)
				if err := c.Delete(); err != nil {
					return err
				}
				if err := tx.Bucket(opsBucket).Delete(deleted); err != nil {
					return err
				}
				removed++
				k, v = c.Seek(deleted) // Delete moves the cursor: re-seek from the deleted key
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
	return removed, err
}
