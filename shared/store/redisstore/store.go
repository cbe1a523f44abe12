package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/shared/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	owned   bool // Close closes client
	scripts scripts
}

// New returns a Store that keeps its keys under prefix in the database
// client addresses. The caller keeps ownership of client: Close leaves it
// open.
//
// Stores with different prefixes never see each other's items, provided the
// prefixes contain no '{' or '}' (which would also move keys to other hash
// slots on Redis Cluster). End a prefix with a separator, as in
// "wxnotify:prod:", so that SCAN MATCH prefix* lists one store's keys only.
//
// The store honours ctx deadlines only if the client was built with
// ContextTimeoutEnabled. Like any go-redis command, a script whose reply was
// lost to a network error is retried up to the client's MaxRetries, so a
// write may, rarely, apply twice (an Add adds twice, a conditional Put that
// succeeded reports ErrConflict); set MaxRetries to -1 where that matters
// more than riding out transient failures.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix, scripts: newScripts()}
}

// Open connects to the server a redis:// or rediss:// URL names (see
// redis.ParseURL for its options) and returns a Store keeping its keys under
// prefix, as New does. The connection is made lazily, by the first call;
// Close closes it. Context deadlines are honoured.
func Open(rawURL, prefix string) (*Store, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	opts.ContextTimeoutEnabled = true
	// A command whose reply was lost may have run: retrying it could apply
	// an Add twice (a credit granted or consumed twice). Fail instead; the
	// domain treats a store error as "retry the whole operation".
	opts.MaxRetries = -1
	s := New(redis.NewClient(opts), prefix)
	s.owned = true
	return s, nil
}

// Close closes the client if Open created it; a client passed to New is
// left to its owner.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.client.Close()
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key store.Key) (store.Item, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Item{}, err
	}
	item, _ := s.keys(key)
	reply, err := s.scripts.get.Run(ctx, s.client, []string{item}).Slice()
	if err != nil {
		return store.Item{}, opError(ctx, "get "+key.String(), err)
	}
	if len(reply) == 0 {
		return store.Item{}, store.ErrNotFound
	}
	if len(reply) != 3 {
		return store.Item{}, replyError("get", key, reply)
	}
	it, ok := parseItem(key, reply[0], reply[1], reply[2])
	if !ok {
		return store.Item{}, replyError("get", key, reply)
	}
	return it, nil
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
	ifAbsent := "0"
	if opts.IfAbsent {
		ifAbsent = "1"
	}
	item, set := s.keys(key)
	reply, err := s.scripts.put.Run(ctx, s.client, []string{item, set, s.opsKey(key)},
		key.Sort, value, ifAbsent, max(opts.IfVersion, 0), store.ToMillis(opts.ExpiresAt)).Slice()
	if err != nil {
		return 0, opError(ctx, "put "+key.String(), err)
	}
	switch code(reply) {
	case codeOK:
		if len(reply) == 2 {
			if version, ok := reply[1].(int64); ok {
				return version, nil
			}
		}
	case codeConflict:
		if opts.IfAbsent {
			return 0, fmt.Errorf("%w: the item exists", store.ErrConflict)
		}
		return 0, fmt.Errorf("%w: the item is not at version %d", store.ErrConflict, opts.IfVersion)
	}
	return 0, replyError("put", key, reply)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key store.Key, opts store.DeleteOptions) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	item, set := s.keys(key)
	reply, err := s.scripts.del.Run(ctx, s.client, []string{item, set, s.opsKey(key)}, key.Sort, max(opts.IfVersion, 0)).Slice()
	if err != nil {
		return opError(ctx, "delete "+key.String(), err)
	}
	switch code(reply) {
	case codeOK:
		return nil
	case codeConflict:
		return fmt.Errorf("%w: the item is not at version %d", store.ErrConflict, opts.IfVersion)
	}
	return replyError("delete", key, reply)
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
	lo, hi := currentBounds(delta, min, max)
	item, set := s.keys(key)
	reply, err := s.scripts.add.Run(ctx, s.client, []string{item, set, s.opsKey(key)}, key.Sort, delta, lo, hi).Slice()
	if err != nil {
		return 0, opError(ctx, "add "+key.String(), err)
	}
	return addResult(reply, key, delta, min, max)
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
	lo, hi := currentBounds(delta, min, max)
	item, set := s.keys(key)
	reply, err := s.scripts.addOnce.Run(ctx, s.client, []string{item, set, s.opsKey(key)},
		key.Sort, delta, lo, hi, op.ID, keepMS, store.ToMillis(op.ExpiresAt), store.MaxOps).Slice()
	if err != nil {
		return 0, opError(ctx, "add once "+key.String(), err)
	}
	return addResult(reply, key, delta, min, max)
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
	item, _ := s.keys(key)
	reply, err := s.scripts.undo.Run(ctx, s.client, []string{item, s.opsKey(key)}, id).Slice()
	if err != nil {
		return false, opError(ctx, "undo "+key.String(), err)
	}
	switch code(reply) {
	case codeOK:
		if len(reply) == 2 {
			if n, ok := reply[1].(int64); ok {
				return n == 1, nil
			}
		}
	case codeOutOfRange:
		return false, fmt.Errorf("%w: undo overflows the counter", store.ErrOutOfRange)
	}
	return false, replyError("undo", key, reply)
}

// addResult decodes the reply of the add and add-once scripts.
func addResult(reply []any, key store.Key, delta, min, max int64) (int64, error) {
	switch code(reply) {
	case codeOK:
		if n, ok := counterAt(reply, 1); ok {
			return n, nil
		}
	case codeNotCounter:
		return 0, store.ErrNotCounter
	case codeOutOfRange:
		if cur, ok := counterAt(reply, 1); ok {
			if _, err := store.AddInBounds(cur, delta, min, max); err != nil {
				return 0, err
			}
		}
	}
	return 0, replyError("add", key, reply)
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	// Sort keys are UTF-8, which never contains the byte 0xff, so every key
	// starting with Prefix sorts before Prefix+"\xff".
	lower, upper := "-", "+"
	switch {
	case q.After != "" && q.After >= q.Prefix:
		lower = "(" + q.After
	case q.Prefix != "":
		lower = "[" + q.Prefix
	}
	if q.Prefix != "" {
		upper = "(" + q.Prefix + "\xff"
	}
	tag := s.tag(q.Partition)
	reply, err := s.scripts.query.Run(ctx, s.client, []string{tag + setSuffix},
		tag+itemInfix, lower, upper, q.Limit).Slice()
	if err != nil {
		return store.Page{}, opError(ctx, "query "+strconv.Quote(q.Partition), err)
	}
	if len(reply)%4 != 1 {
		return store.Page{}, queryReplyError(q, reply)
	}
	next, ok := reply[0].(string)
	if !ok {
		return store.Page{}, queryReplyError(q, reply)
	}
	page := store.Page{Next: next}
	if n := len(reply) / 4; n > 0 {
		page.Items = make([]store.Item, 0, n)
	}
	for i := 1; i < len(reply); i += 4 {
		sort, ok := reply[i].(string)
		if !ok {
			return store.Page{}, queryReplyError(q, reply)
		}
		it, ok := parseItem(store.Key{Partition: q.Partition, Sort: sort}, reply[i+1], reply[i+2], reply[i+3])
		if !ok {
			return store.Page{}, queryReplyError(q, reply)
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}

// Key suffixes after a partition's hash tag.
const (
	setSuffix = ":z"
	itemInfix = ":i:"
	opsInfix  = ":o:"
)

// keys returns the Redis keys of an item's hash and of its partition's
// sorted set.
func (s *Store) keys(k store.Key) (item, set string) {
	tag := s.tag(k.Partition)
	return tag + itemInfix + k.Sort, tag + setSuffix
}

// opsKey returns the Redis key of the hash of the operations a counter
// remembers (AddOnce), in the slot of its partition.
func (s *Store) opsKey(k store.Key) string { return s.tag(k.Partition) + opsInfix + k.Sort }

// tag returns the prefix and the hash tag of a partition. Escaping '%' and
// '}' keeps the tag closed where it should be and the encoding injective.
func (s *Store) tag(partition string) string {
	var b strings.Builder
	b.Grow(len(s.prefix) + len(partition) + 2)
	b.WriteString(s.prefix)
	b.WriteByte('{')
	for {
		i := strings.IndexAny(partition, "%}")
		if i < 0 {
			break
		}
		b.WriteString(partition[:i])
		if partition[i] == '%' {
			b.WriteString("%25")
		} else {
			b.WriteString("%7D")
		}
		partition = partition[i+1:]
	}
	b.WriteString(partition)
	b.WriteByte('}')
	return b.String()
}

// currentBounds returns the decimal bounds [lo, hi] the current value of a
// counter must lie in for current+delta to lie in [min, max]; lo > hi when
// no value qualifies. The subtractions saturate instead of overflowing.
func currentBounds(delta, min, max int64) (lo, hi string) {
	loN, hiN := min-delta, max-delta
	if delta > 0 && loN > min { // min-delta < MinInt64: any value is high enough
		loN = math.MinInt64
	}
	if delta < 0 && hiN < max { // max-delta > MaxInt64: any value is low enough
		hiN = math.MaxInt64
	}
	if (delta < 0 && loN < min) || (delta > 0 && hiN > max) {
		return "1", "0" // min-delta > MaxInt64 or max-delta < MinInt64
	}
	return strconv.FormatInt(loN, 10), strconv.FormatInt(hiN, 10)
}

// code returns the reply code of a script reply, or -1.
func code(reply []any) int64 {
	if len(reply) == 0 {
		return -1
	}
	c, ok := reply[0].(int64)
	if !ok {
		return -1
	}
	return c
}

// counterAt parses the decimal counter at reply[i].
func counterAt(reply []any, i int) (int64, bool) {
	if len(reply) <= i {
		return 0, false
	}
	s, ok := reply[i].(string)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseItem builds an item from the value, version and expiry fields of its
// hash.
func parseItem(key store.Key, value, version, expiry any) (store.Item, bool) {
	v, ok1 := value.(string)
	n, ok2 := version.(string)
	x, ok3 := expiry.(string)
	if !ok1 || !ok2 || !ok3 {
		return store.Item{}, false
	}
	ver, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return store.Item{}, false
	}
	ms, err := strconv.ParseInt(x, 10, 64)
	if err != nil {
		return store.Item{}, false
	}
	return store.Item{Key: key, Value: []byte(v), Version: ver, ExpiresAt: store.FromMillis(ms)}, true
}

// opError wraps an error of the client in op, which names the call. When ctx
// ended, the error wraps ctx.Err() too, whatever the client made of it (a read
// timeout, usually).
func opError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, ctxErr, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func replyError(op string, _ store.Key, reply []any) error {
	return fmt.Errorf("redisstore: %s: unexpected script reply %.200v", op, reply)
}

func queryReplyError(q store.Query, reply []any) error {
	return fmt.Errorf("redisstore: query: unexpected script reply %.200v", reply)
}
