package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits every implementation enforces identically, so that code tested on one
// backend behaves the same on the others.
const (
	// MaxValueSize is the largest value a Put accepts (256 KiB). DynamoDB's
	// item limit is 400 KB, which leaves room for keys and attributes.
	MaxValueSize = 256 << 10
	// MaxPartitionSize and MaxSortSize bound the key parts in bytes
	// (DynamoDB allows 2048 bytes for a partition key and 1024 for a sort key).
	MaxPartitionSize = 1024
	MaxSortSize      = 1024
	// MaxQueryLimit is the largest page a Query returns.
	MaxQueryLimit = 1000
	// MaxOpIDSize bounds the ID of a CounterOp in bytes.
	MaxOpIDSize = 128
	// MaxOpKeep is the longest a counter remembers an operation.
	MaxOpKeep = 30 * 24 * time.Hour
	// MaxOps is the most operations a counter remembers: past it, those
	// closest to being forgotten are forgotten first (a backend may forget a
	// few more at once, to trim less often).
	MaxOps = 256
	// MaxWriteOps is the most operations one Write takes. DynamoDB's
	// TransactWriteItems allows 100; 25 bounds the cost of one call.
	MaxWriteOps = 25
)

// Errors returned by every implementation. Check them with errors.Is: a
// backend may wrap them with context, but never with key contents (keys
// carry user ids, and errors end up in logs).
var (
	// ErrNotFound: no live item has the key (it never existed, was deleted,
	// or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a condition (IfAbsent, IfVersion) did not hold. Nothing
	// was written.
	ErrConflict = errors.New("store: condition failed")
	// ErrOutOfRange: an Add would have taken a counter outside [min, max].
	// Nothing was written.
	ErrOutOfRange = errors.New("store: counter bound reached")
	// ErrNotCounter: Add was called on an item whose value is not a decimal
	// int64.
	ErrNotCounter = errors.New("store: value is not a counter")
	// ErrTooLarge: the value is larger than MaxValueSize. Nothing was written.
	ErrTooLarge = errors.New("store: value too large")
	// ErrInvalidKey: a key part is empty, too long, not UTF-8 or contains NUL.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrInvalidOp: a CounterOp's ID or Keep is out of bounds.
	ErrInvalidOp = errors.New("store: invalid counter operation")
	// ErrInvalidWrite: a Write has no valid shape: too many operations, two
	// on the same key, an unknown kind or a negative version.
	ErrInvalidWrite = errors.New("store: invalid write")
)

// Key addresses an item: a partition (an entity kind plus its id, usually)
// and a sort key that orders the items of the partition for Query.
//
// Both parts must be non-empty valid UTF-8 without NUL bytes, at most
// MaxPartitionSize and MaxSortSize bytes. Sort keys compare as byte strings.
type Key struct {
	Partition string
	Sort      string
}

func (k Key) String() string { return k.Partition + "/" + k.Sort }

// Item is one stored value with its metadata.
type Item struct {
	Key   Key
	Value []byte
	// Version is 1 for a newly created item and grows by one with every
	// successful Put or Add on the key. An item that expired and is written
	// again starts over at 1.
	Version int64
	// ExpiresAt is the zero time for items that never expire. Precision is
	// the millisecond.
	ExpiresAt time.Time
}

// PutOptions are the conditions and expiry of a Put.
type PutOptions struct {
	// IfAbsent makes the Put fail with ErrConflict when a live item has the
	// key. An expired item counts as absent.
	IfAbsent bool
	// IfVersion, when > 0, makes the Put fail with ErrConflict unless a live
	// item with exactly this version has the key.
	IfVersion int64
	// ExpiresAt, when not zero, is the time from which the item is invisible
	// to every read and eligible for deletion. A Put without it makes the
	// item permanent again.
	ExpiresAt time.Time
}

// DeleteOptions are the conditions of a Delete.
type DeleteOptions struct {
	// IfVersion, when > 0, makes the Delete fail with ErrConflict unless a
	// live item with exactly this version has the key.
	IfVersion int64
}

// Query selects the live items of one partition whose sort key starts with
// Prefix and sorts after After, in ascending sort-key order.
type Query struct {
	Partition string
	// Prefix may be empty: all items of the partition.
	Prefix string
	// After is exclusive: the Next of the previous page, or empty to start.
	After string
	// Limit is the largest number of items returned, 1..MaxQueryLimit.
	Limit int
}

// Page is one page of a Query.
type Page struct {
	Items []Item
	// Next is the cursor for the following page (pass it as Query.After),
	// or empty when the query is exhausted. A page may hold fewer than Limit
	// items (expired items are skipped) while Next is still non-empty.
	Next string
}

// CounterOp names an AddOnce, so that the store applies it at most once.
type CounterOp struct {
	// ID names the operation: non-empty valid UTF-8 without NUL, at most
	// MaxOpIDSize bytes. Operations are remembered per counter: the same ID
	// on two counters names two operations.
	ID string
	// Keep is how long the counter remembers the operation, from the
	// AddOnce that applied it: at least a millisecond, at most MaxOpKeep.
	Keep time.Duration
	// ExpiresAt, when not zero, becomes the counter's expiry when the
	// operation is applied. Zero leaves the expiry as Add does.
	ExpiresAt time.Time
}

// CheckOp validates op and returns its Keep in whole milliseconds (at
// least one), wrapping ErrInvalidOp.
func CheckOp(op CounterOp) (keepMS int64, err error) {
	if err := CheckOpID(op.ID); err != nil {
		return 0, err
	}
	if op.Keep < time.Millisecond || op.Keep > MaxOpKeep {
		return 0, fmt.Errorf("%w: keep %s outside 1ms..%s", ErrInvalidOp, op.Keep, MaxOpKeep)
	}
	return op.Keep.Milliseconds(), nil
}

// CheckAddOnce validates the arguments of AddOnce - the key, the bounds,
// the operation - and returns the operation's Keep in milliseconds.
func CheckAddOnce(key Key, min, max int64, op CounterOp) (keepMS int64, err error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	if err := CheckBounds(min, max); err != nil {
		return 0, err
	}
	return CheckOp(op)
}

// CheckOpID validates an operation ID, wrapping ErrInvalidOp.
func CheckOpID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty id", ErrInvalidOp)
	case len(id) > MaxOpIDSize:
		return fmt.Errorf("%w: id is %d bytes, limit %d", ErrInvalidOp, len(id), MaxOpIDSize)
	case !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w: id is not UTF-8 without NUL", ErrInvalidOp)
	}
	return nil
}

// Store is the key-value contract every backend implements.
//
// Every method is one round trip to the backend in the common case, honours
// ctx (a cancelled or expired ctx returns an error wrapping ctx.Err() and
// writes nothing that was not already committed), and is safe for concurrent
// use by many goroutines and many processes sharing the same backend.
// Implementations never panic on bad input: they return ErrInvalidKey,
// ErrTooLarge or a descriptive error.
type Store interface {
	// Get returns the live item with the key, or ErrNotFound.
	Get(ctx context.Context, key Key) (Item, error)

	// Put stores value under key, replacing any previous item, subject to
	// opts. It returns the new version. Values larger than MaxValueSize fail
	// with ErrTooLarge; failed conditions with ErrConflict. The value slice
	// is not retained.
	Put(ctx context.Context, key Key, value []byte, opts PutOptions) (version int64, err error)

	// Delete removes the item with the key. Deleting a missing item without
	// a condition succeeds; with IfVersion it fails with ErrConflict.
	Delete(ctx context.Context, key Key, opts DeleteOptions) error

	// Query returns one page of a partition's live items in sort-key order.
	Query(ctx context.Context, q Query) (Page, error)

	// Add atomically adds delta to the counter at key and returns the new
	// value, failing with ErrOutOfRange (and changing nothing) if the result
	// would be below min or above max. A missing or expired item counts as
	// 0 and is created without expiry; an existing item keeps its expiry.
	// A counter is an item whose value is the canonical decimal text of an int64 (see ParseCounter), so
	// Get returns it as such and Put may set it (e.g. to "0"); Add on any
	// other value fails with ErrNotCounter. delta 0 reads the counter,
	// creating it if needed.
	Add(ctx context.Context, key Key, delta, min, max int64) (int64, error)

	// AddOnce is Add for the operation op names, applied at most once: the
	// counter remembers the operations applied to it (each for its
	// op.Keep), and an AddOnce whose op.ID it remembers changes nothing -
	// neither the value, nor the version, nor the expiry - and returns the
	// value the first one returned. So a call whose reply was lost (a
	// timeout after the backend applied it) can be repeated safely, and so
	// can one made concurrently by another process. An AddOnce that fails
	// (ErrOutOfRange, ErrNotCounter) is not remembered. With op.ExpiresAt
	// the counter gets that expiry (a missing one is created with it).
	//
	// A counter forgets its operations when the item is replaced (Put),
	// deleted or expires; a plain Add keeps them. It remembers at most
	// MaxOps. An invalid op (see CounterOp) fails with ErrInvalidOp.
	AddOnce(ctx context.Context, key Key, delta, min, max int64, op CounterOp) (int64, error)

	// Undo reverts the operation id that AddOnce applied to the counter at
	// key, if the counter still remembers it: its delta is subtracted from
	// the current value (whatever the bounds; an int64 overflow fails with
	// ErrOutOfRange), the version grows by one, the operation is forgotten
	// (so that an AddOnce with the same id applies again) and Undo reports
	// true. When the counter does not remember id (it was never applied,
	// is undone already, was forgotten, or the item was replaced since),
	// Undo changes nothing and reports false. Repeating an Undo whose reply
	// was lost is therefore safe.
	Undo(ctx context.Context, key Key, id string) (bool, error)

	// Write applies ops atomically, all or nothing, in one round trip:
	// either every condition holds (each Put's IfAbsent and IfVersion, each
	// Delete's IfVersion, each Check) and every Put, Delete and Add is
	// applied, or nothing is written and the error wraps ErrConflict (a
	// *WriteConflict names the operation that failed when the backend can
	// tell). Conditions are evaluated against the items as they were
	// before the Write; no other call sees a part of it.
	//
	// It returns the new version of each Put, by index, and 0 for Deletes,
	// Checks and Adds (an Add has no condition: see AddKind). A Put in a Write follows the rules of Put: version 1 for a
	// new item (an expired one counts as absent), +1 otherwise, and the
	// counter operations the item remembered are forgotten; so does a
	// Delete. At most MaxWriteOps operations, no two on the same key
	// (ErrInvalidWrite); every key and value is checked as Put and Delete
	// check them. An empty Write does nothing. The ops and their values are
	// not retained.
	//
	// A backend may restrict which keys one Write spans (see redisstore on
	// Redis Cluster) and may need more than one round trip in cases its
	// documentation names (see dynamostore for unconditional Puts and
	// Adds on expired items).
	Write(ctx context.Context, ops []WriteOp) (versions []int64, err error)

	// Close releases the backend's resources.
	Close() error
}

// WriteKind says what a WriteOp does.
type WriteKind uint8

// The kinds of WriteOp.
const (
	// PutKind stores WriteOp.Value under the key, subject to WriteOp.Put.
	PutKind WriteKind = iota + 1
	// DeleteKind removes the item, subject to WriteOp.Delete.
	DeleteKind
	// CheckKind writes nothing: it requires a live item at version
	// WriteOp.Version, or with Version 0 that no live item has the key.
	CheckKind
	// AddKind adds WriteOp.Delta to the counter at the key, without
	// condition or bounds, as Add does: a missing or expired item counts as
	// 0 and is created at version 1, a live counter's version grows by one
	// and it keeps the operations it remembers. A non-zero
	// WriteOp.ExpiresAt becomes its expiry; zero leaves it as Add does. A
	// live item that is not a counter fails the whole Write with
	// ErrNotCounter, an int64 overflow with ErrOutOfRange (nothing is
	// written). Its version in Write's result is 0: a transaction may not
	// return it.
	AddKind
)

func (k WriteKind) String() string {
	switch k {
	case PutKind:
		return "put"
	case DeleteKind:
		return "delete"
	case CheckKind:
		return "check"
	case AddKind:
		return "add"
	}
	return "kind " + strconv.Itoa(int(k))
}

// WriteOp is one operation of a Write. Build it with WritePut, WriteDelete,
// WriteCheck or WriteAdd.
type WriteOp struct {
	Kind WriteKind
	Key  Key
	// Value and Put are a PutKind's value and options.
	Value []byte
	Put   PutOptions
	// Delete are a DeleteKind's options.
	Delete DeleteOptions
	// Version is a CheckKind's condition: the live item's version, or 0
	// for "absent".
	Version int64
	// Delta and ExpiresAt are an AddKind's increment and expiry.
	Delta     int64
	ExpiresAt time.Time
}

// WritePut is a Write's Put of value under key.
func WritePut(key Key, value []byte, opts PutOptions) WriteOp {
	return WriteOp{Kind: PutKind, Key: key, Value: value, Put: opts}
}

// WriteDelete is a Write's Delete of key.
func WriteDelete(key Key, opts DeleteOptions) WriteOp {
	return WriteOp{Kind: DeleteKind, Key: key, Delete: opts}
}

// WriteCheck is a Write's condition on key that writes nothing: a live item
// at version (> 0), or no live item (version 0).
func WriteCheck(key Key, version int64) WriteOp {
	return WriteOp{Kind: CheckKind, Key: key, Version: version}
}

// WriteAdd is a Write's unconditional Add of delta to the counter at key;
// a non-zero expiresAt becomes the counter's expiry.
func WriteAdd(key Key, delta int64, expiresAt time.Time) WriteOp {
	return WriteOp{Kind: AddKind, Key: key, Delta: delta, ExpiresAt: expiresAt}
}

// WriteConflict is the error of a Write whose condition at Index (of the
// ops) did not hold; Index is -1 when the backend cannot tell which. It
// wraps ErrConflict.
type WriteConflict struct {
	Index int
	// Reason says what did not hold, without key contents.
	Reason string
}

func (e *WriteConflict) Error() string {
	if e.Index < 0 {
		return "store: write: condition failed: " + e.Reason
	}
	return fmt.Sprintf("store: write: op %d: condition failed: %s", e.Index, e.Reason)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *WriteConflict) Unwrap() error { return ErrConflict }

// Conflict returns the *WriteConflict of op i of ops: the reason its
// condition names.
func Conflict(ops []WriteOp, i int) *WriteConflict {
	if i < 0 || i >= len(ops) {
		return &WriteConflict{Index: -1, Reason: "a condition did not hold"}
	}
	op := ops[i]
	var reason string
	switch {
	case op.Kind == PutKind && op.Put.IfAbsent:
		reason = "put: the item exists"
	case op.Kind == PutKind:
		reason = fmt.Sprintf("put: the item is not at version %d", op.Put.IfVersion)
	case op.Kind == DeleteKind:
		reason = fmt.Sprintf("delete: the item is not at version %d", op.Delete.IfVersion)
	case op.Version == 0:
		reason = "check: the item exists"
	default:
		reason = fmt.Sprintf("check: the item is not at version %d", op.Version)
	}
	return &WriteConflict{Index: i, Reason: reason}
}

// CheckWrite validates the ops of a Write: their number, kinds, keys,
// values and versions, and that no two share a key.
func CheckWrite(ops []WriteOp) error {
	if len(ops) > MaxWriteOps {
		return fmt.Errorf("%w: %d operations, limit %d", ErrInvalidWrite, len(ops), MaxWriteOps)
	}
	seen := make(map[Key]int, len(ops))
	for i, op := range ops {
		if err := checkWriteOp(op); err != nil {
			return fmt.Errorf("store: write: op %d: %w", i, err)
		}
		if j, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: ops %d and %d have the same key", ErrInvalidWrite, j, i)
		}
		seen[op.Key] = i
	}
	return nil
}

func checkWriteOp(op WriteOp) error {
	if err := CheckKey(op.Key); err != nil {
		return err
	}
	switch op.Kind {
	case PutKind:
		if op.Put.IfVersion < 0 {
			return fmt.Errorf("%w: put IfVersion %d < 0", ErrInvalidWrite, op.Put.IfVersion)
		}
		return CheckValue(op.Value)
	case DeleteKind:
		if op.Delete.IfVersion < 0 {
			return fmt.Errorf("%w: delete IfVersion %d < 0", ErrInvalidWrite, op.Delete.IfVersion)
		}
	case CheckKind:
		if op.Version < 0 {
			return fmt.Errorf("%w: check version %d < 0", ErrInvalidWrite, op.Version)
		}
	case AddKind:
	default:
		return fmt.Errorf("%w: unknown %s", ErrInvalidWrite, op.Kind)
	}
	return nil
}

// Holds reports whether the condition of op holds for an item that is live
// (with version) or not.
func (op WriteOp) Holds(live bool, version int64) bool {
	switch op.Kind {
	case PutKind:
		if op.Put.IfAbsent && live {
			return false
		}
		return op.Put.IfVersion == 0 || (live && version == op.Put.IfVersion)
	case DeleteKind:
		return op.Delete.IfVersion == 0 || (live && version == op.Delete.IfVersion)
	case CheckKind:
		if op.Version == 0 {
			return !live
		}
		return live && version == op.Version
	case AddKind:
		return true
	}
	return false
}

// CheckKey reports whether k is a valid key, wrapping ErrInvalidKey.
func CheckKey(k Key) error {
	if err := checkPart("partition", k.Partition, MaxPartitionSize); err != nil {
		return err
	}
	return checkPart("sort key", k.Sort, MaxSortSize)
}

// CheckPartition reports whether p is a valid partition, wrapping ErrInvalidKey.
func CheckPartition(p string) error { return checkPart("partition", p, MaxPartitionSize) }

func checkPart(what, s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidKey, what)
	case len(s) > limit:
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalidKey, what, len(s), limit)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidKey, what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%w: %s contains NUL", ErrInvalidKey, what)
		}
	}
	return nil
}

// CheckValue reports whether v fits in an item, wrapping ErrTooLarge.
func CheckValue(v []byte) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(v), MaxValueSize)
	}
	return nil
}

// CheckQuery validates q, wrapping ErrInvalidKey for a bad partition.
func CheckQuery(q Query) error {
	if err := CheckPartition(q.Partition); err != nil {
		return err
	}
	if q.Limit < 1 || q.Limit > MaxQueryLimit {
		return fmt.Errorf("store: query limit %d outside 1..%d", q.Limit, MaxQueryLimit)
	}
	return nil
}

// CheckBounds validates the bounds of an Add.
func CheckBounds(min, max int64) error {
	if min > max {
		return fmt.Errorf("store: counter bounds min %d > max %d", min, max)
	}
	return nil
}

// ParseCounter decodes a counter value, wrapping ErrNotCounter. Only the
// canonical decimal text of an int64 (as FormatCounter writes it: no sign
// for positives, no leading zeros, no spaces) is a counter, so that every
// backend agrees on which values are counters.
func ParseCounter(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(v) {
		return 0, fmt.Errorf("%w: %q", ErrNotCounter, truncateForError(v))
	}
	return n, nil
}

// FormatCounter encodes a counter value.
func FormatCounter(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// AddInBounds returns cur+delta, or ErrOutOfRange when it leaves [min, max]
// or overflows.
func AddInBounds(cur, delta, min, max int64) (int64, error) {
	next := cur + delta
	if (delta > 0 && next < cur) || (delta < 0 && next > cur) || next < min || next > max {
		return cur, fmt.Errorf("%w: %d%+d outside [%d, %d]", ErrOutOfRange, cur, delta, min, max)
	}
	return next, nil
}

// ToMillis converts an expiry to Unix milliseconds, 0 for never.
func ToMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	ms := t.UnixMilli()
	if ms <= 0 {
		return 1 // a time at or before the epoch is already expired, never "no expiry"
	}
	return ms
}

// FromMillis converts Unix milliseconds back to an expiry, the zero time for 0.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func truncateForError(v []byte) string {
	if len(v) > 32 {
		return string(v[:32]) + "..."
	}
	return string(v)
}
