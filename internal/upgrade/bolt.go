package upgrade

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The buckets of shared/store/boltstore: items holds a 16-byte header
// (version, expiry in Unix ms or 0, both big-endian uint64) and the value;
// ops holds a counter's remembered operations: a uvarint count, then per
// operation its id (uvarint length, bytes) and three varints: delta, result
// and the Unix ms until which it is remembered.
const (
	boltItems      = "items"
	boltOps        = "ops"
	boltHeaderSize = 16
)

// BoltDump is every bucket, key and value of a bbolt file.
type BoltDump struct {
	Header
	Entries []BoltEntry `json:"entries"`
}

// BoltEntry is one key of one bucket, exactly as stored (Raw), with a
// decoded view for review that loaders ignore.
type BoltEntry struct {
	Bucket string `json:"bucket"`
	Key    Blob   `json:"key"`
	Raw    Blob   `json:"raw"`
	// Version, ExpiresMS and Value decode an item's header and value.
	Version   int64 `json:"version,omitempty"`
	ExpiresMS int64 `json:"expiresMs,omitempty"`
	Value     Blob  `json:"value,omitempty"`
}

// DumpBolt reads every bucket of the bbolt file at path, which no process
// may hold open.
func DumpBolt(path string) (BoltDump, error) {
	d := BoltDump{Header: Header{Layout: "v1", Backend: "bolt", DumpedAtMS: time.Now().UnixMilli()}}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return d, fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = db.Close() }()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("bucket %s: nested buckets are not part of the layout", name)
				}
				e := BoltEntry{Bucket: string(name), Key: Blob(append([]byte(nil), k...)), Raw: Blob(append([]byte(nil), v...))}
				if e.Bucket == boltItems && len(v) >= boltHeaderSize {
					e.Version = int64(binary.BigEndian.Uint64(v[0:8]))
					e.ExpiresMS = int64(binary.BigEndian.Uint64(v[8:16]))
					e.Value = Blob(append([]byte{}, v[boltHeaderSize:]...))
				}
				d.Entries = append(d.Entries, e)
				return nil
			})
		})
	})
	return d, err
}

// LoadBolt writes d into a new bbolt file at path, every value as dumped
// except the absolute times (item expiry, operation memory), which move by
// d.Shift(now).
func LoadBolt(path string, d BoltDump, now time.Time) error {
	shift := d.Shift(now)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, e := range d.Entries {
			b, err := tx.CreateBucketIfNotExists([]byte(e.Bucket))
			if err != nil {
				return err
			}
			v, err := rebaseBolt(e, shift)
			if err != nil {
				return fmt.Errorf("bucket %s key %q: %w", e.Bucket, e.Key, err)
			}
			if err := b.Put(e.Key, v); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, db.Close())
}

// rebaseBolt returns e's raw value with its absolute times moved by shift ms.
func rebaseBolt(e BoltEntry, shift int64) ([]byte, error) {
	v := append([]byte(nil), e.Raw...)
	switch e.Bucket {
	case boltItems:
		if len(v) < boltHeaderSize {
			return nil, fmt.Errorf("item of %d bytes, shorter than its header", len(v))
		}
		if exp := int64(binary.BigEndian.Uint64(v[8:16])); exp != 0 {
			binary.BigEndian.PutUint64(v[8:16], uint64(exp+shift))
		}
		return v, nil
	case boltOps:
		return rebaseBoltOps(v, shift)
	}
	return v, nil
}

// rebaseBoltOps re-encodes an operation log with every until moved by shift.
func rebaseBoltOps(raw []byte, shift int64) ([]byte, error) {
	corrupt := fmt.Errorf("corrupt operation log of %d bytes", len(raw))
	n, k := binary.Uvarint(raw)
	if k <= 0 {
		return nil, corrupt
	}
	raw = raw[k:]
	out := binary.AppendUvarint(nil, n)
	for range n {
		l, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < l {
			return nil, corrupt
		}
		out = binary.AppendUvarint(out, l)
		out = append(out, raw[k:k+int(l)]...)
		raw = raw[k+int(l):]
		for i := range 3 {
			x, k := binary.Varint(raw)
			if k <= 0 {
				return nil, corrupt
			}
			if i == 2 {
				x += shift
			}
			out, raw = binary.AppendVarint(out, x), raw[k:]
		}
	}
	if len(raw) != 0 {
		return nil, corrupt
	}
	return out, nil
}
