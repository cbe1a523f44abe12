package upgrade

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The key suffixes of shared/store/redisstore: an item is a hash (v value,
// n version, x expiry in Unix ms or 0), a counter's remembered operations a
// hash of id -> "delta result until" (until in Unix ms).
const (
	redisItemInfix = ":i:"
	redisOpsInfix  = ":o:"
)

// RedisDump is every key under a store's prefix.
type RedisDump struct {
	Header
	Keys []RedisKey `json:"keys"`
}

// RedisKey is one key, named without the store's prefix, with its type, its
// contents as Redis holds them and its remaining time to live (-1: none).
type RedisKey struct {
	Key    string          `json:"key"`
	Type   string          `json:"type"`
	PTTLMS int64           `json:"pttlMs"`
	String Blob            `json:"string,omitempty"`
	Hash   map[string]Blob `json:"hash,omitempty"`
	ZSet   []RedisMember   `json:"zset,omitempty"`
	Set    []Blob          `json:"set,omitempty"`
	List   []Blob          `json:"list,omitempty"`
}

// RedisMember is a sorted set's member and score.
type RedisMember struct {
	Member Blob    `json:"member"`
	Score  float64 `json:"score"`
}

// DumpRedis reads every key that starts with prefix.
func DumpRedis(ctx context.Context, c redis.UniversalClient, prefix string) (RedisDump, error) {
	d := RedisDump{Header: Header{Layout: "v1", Backend: "redis", DumpedAtMS: time.Now().UnixMilli()}}
	var names []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return d, fmt.Errorf("scan %s*: %w", prefix, err)
	}
	sort.Strings(names)
	for _, name := range names {
		k, err := dumpRedisKey(ctx, c, name)
		if err != nil {
			return d, fmt.Errorf("key %s: %w", name, err)
		}
		k.Key = strings.TrimPrefix(name, prefix)
		d.Keys = append(d.Keys, k)
	}
	return d, nil
}

func dumpRedisKey(ctx context.Context, c redis.UniversalClient, name string) (RedisKey, error) {
	typ, err := c.Type(ctx, name).Result()
	if err != nil {
		return RedisKey{}, err
	}
	k := RedisKey{Type: typ}
	switch typ {
	case "string":
		s, err := c.Get(ctx, name).Result()
		if err != nil {
			return k, err
		}
		k.String = Blob(s)
	case "hash":
		h, err := c.HGetAll(ctx, name).Result()
		if err != nil {
			return k, err
		}
		k.Hash = make(map[string]Blob, len(h))
		for f, v := range h {
			k.Hash[f] = Blob(v)
		}
	case "zset":
		zs, err := c.ZRangeWithScores(ctx, name, 0, -1).Result()
		if err != nil {
			return k, err
		}
		for _, z := range zs {
			k.ZSet = append(k.ZSet, RedisMember{Member: Blob(z.Member.(string)), Score: z.Score})
		}
	case "set":
		ms, err := c.SMembers(ctx, name).Result()
		if err != nil {
			return k, err
		}
		sort.Strings(ms)
		for _, m := range ms {
			k.Set = append(k.Set, Blob(m))
		}
	case "list":
		ls, err := c.LRange(ctx, name, 0, -1).Result()
		if err != nil {
			return k, err
		}
		for _, l := range ls {
			k.List = append(k.List, Blob(l))
		}
	case "none":
		return k, fmt.Errorf("expired while dumped")
	default:
		return k, fmt.Errorf("type %s is not part of the layout", typ)
	}
	pttl, err := c.PTTL(ctx, name).Result()
	if err != nil {
		return k, err
	}
	k.PTTLMS = -1
	if pttl > 0 {
		k.PTTLMS = pttl.Milliseconds()
	}
	return k, nil
}

// LoadRedis writes d under prefix, every key as dumped with its recorded
// PTTL, except the absolute times inside item and operation hashes, which
// move by d.Shift(now).
func LoadRedis(ctx context.Context, c redis.UniversalClient, prefix string, d RedisDump, now time.Time) error {
	shift := d.Shift(now)
	for _, k := range d.Keys {
		if err := loadRedisKey(ctx, c, prefix+k.Key, k, shift); err != nil {
			return fmt.Errorf("key %s: %w", k.Key, err)
		}
	}
	return nil
}

func loadRedisKey(ctx context.Context, c redis.UniversalClient, name string, k RedisKey, shift int64) error {
	var err error
	switch k.Type {
	case "string":
		err = c.Set(ctx, name, []byte(k.String), 0).Err()
	case "hash":
		h, herr := rebaseRedisHash(k, shift)
		if herr != nil {
			return herr
		}
		err = c.HSet(ctx, name, h).Err()
	case "zset":
		zs := make([]redis.Z, len(k.ZSet))
		for i, m := range k.ZSet {
			zs[i] = redis.Z{Member: []byte(m.Member), Score: m.Score}
		}
		err = c.ZAdd(ctx, name, zs...).Err()
	case "set":
		err = c.SAdd(ctx, name, blobsAny(k.Set)...).Err()
	case "list":
		err = c.RPush(ctx, name, blobsAny(k.List)...).Err()
	default:
		return fmt.Errorf("type %q is not part of the layout", k.Type)
	}
	if err != nil {
		return err
	}
	if k.PTTLMS > 0 {
		return c.PExpire(ctx, name, time.Duration(k.PTTLMS)*time.Millisecond).Err()
	}
	return nil
}

// rebaseRedisHash returns k's hash with the expiry of an item (x) or the
// until of each remembered operation moved by shift ms.
func rebaseRedisHash(k RedisKey, shift int64) (map[string]any, error) {
	h := make(map[string]any, len(k.Hash))
	for f, v := range k.Hash {
		h[f] = []byte(v)
	}
	_, rest, _ := strings.Cut(k.Key, "}") // partitions escape '}': the first ends the hash tag
	switch {
	case strings.HasPrefix(rest, redisItemInfix):
		if x, ok := k.Hash["x"]; ok {
			ms, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("expiry %q: %w", x, err)
			}
			if ms != 0 {
				h["x"] = strconv.FormatInt(ms+shift, 10)
			}
		}
	case strings.HasPrefix(rest, redisOpsInfix):
		for id, v := range k.Hash {
			parts := strings.Fields(string(v))
			if len(parts) != 3 {
				return nil, fmt.Errorf("operation %q: %q is not \"delta result until\"", id, v)
			}
			until, err := strconv.ParseInt(parts[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("operation %q: until: %w", id, err)
			}
			h[id] = parts[0] + " " + parts[1] + " " + strconv.FormatInt(until+shift, 10)
		}
	}
	return h, nil
}

func blobsAny(bs []Blob) []any {
	out := make([]any, len(bs))
	for i, b := range bs {
		out[i] = []byte(b)
	}
	return out
}
