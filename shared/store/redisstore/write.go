package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/shared/store"
)

// writeArgs is the number of ARGV entries per operation of scriptWrite.
const writeArgs = 6

// scriptWrite applies the operations of a Write: it checks every condition
// first and returns {codeConflict, index} (index 0-based) for the first that
// fails, or {codeNotCounter, index} / {codeOutOfRange, index} for an Add
// that cannot apply, writing nothing; then it applies the Puts (as
// scriptPut does), Deletes and Adds (as scriptAdd does) and returns
// {codeOK, version per operation} (0 for an Add).
//
// KEYS: per operation, its item, partition set and operations keys. ARGV:
// per operation, kind ('p', 'd', 'c' or 'a'), sort key, value (an Add's
// delta), if-absent ('1' or '0'; an Add's lowest current value, see
// currentBounds), version condition ('0' for none; for a check, '0' means
// absent; an Add's highest current value), expiry (Unix ms, '0' for none).
const scriptWrite = luaLive + luaCounter + `
local n = #KEYS / 3
local cur = {}
for i = 1, n do
  local a = (i - 1) * 6
  local kind, ifAbsent, ver = ARGV[a + 1], ARGV[a + 4], ARGV[a + 5]
  local r = redis.call('HMGET', KEYS[(i - 1) * 3 + 1], 'n', 'x')
  local alive = live(r[1], r[2])
  cur[i] = alive and tonumber(r[1]) or 0
  local ok
  if kind == 'a' then
    ok = true
    if alive then
      local v = redis.call('HGET', KEYS[(i - 1) * 3 + 1], 'v')
      if not canonical(v) then return {2, i - 1} end
      if cmp(v, ifAbsent) < 0 or cmp(v, ver) > 0 then return {3, i - 1} end
    elseif cmp('0', ifAbsent) < 0 or cmp('0', ver) > 0 then
      return {3, i - 1}
    end
  elseif kind == 'c' then
    if ver == '0' then ok = not alive else ok = alive and r[1] == ver end
  else
    ok = not (ifAbsent == '1' and alive) and (ver == '0' or (alive and r[1] == ver))
  end
  if not ok then return {1, i - 1} end
end
local out = {0}
for i = 1, n do
  local a, k = (i - 1) * 6, (i - 1) * 3
  local kind, sort, x = ARGV[a + 1], ARGV[a + 2], ARGV[a + 6]
  local item, set, ops = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  out[i + 1] = 0
  if kind == 'd' then
    redis.call('DEL', item, ops)
    redis.call('ZREM', set, sort)
  elseif kind == 'a' then
    local delta, alive = ARGV[a + 3], cur[i] > 0
    if alive then
      redis.call('HINCRBY', item, 'v', delta)
      redis.call('HINCRBY', item, 'n', 1)
    else
      redis.call('DEL', item, ops)
      redis.call('HSET', item, 'v', delta, 'n', '1', 'x', '0')
      redis.call('ZADD', set, 0, sort)
    end
    if x ~= '0' then
      if tonumber(x) <= now then
        -- Already expired: applied, and nothing is left to read.
        redis.call('DEL', item, ops)
        redis.call('ZREM', set, sort)
      else
        redis.call('HSET', item, 'x', x)
        redis.call('PEXPIREAT', item, x)
        local ttl = redis.call('PTTL', set)
        if ttl == -2 or (ttl >= 0 and now + ttl < tonumber(x)) then
          redis.call('PEXPIREAT', set, x)
        end
      end
    elseif not alive then
      redis.call('PERSIST', item)
      redis.call('PERSIST', set)
    end
  elseif kind == 'p' then
    local version = cur[i] + 1
    out[i + 1] = version
    redis.call('DEL', ops)
    if x ~= '0' and tonumber(x) <= now then
      -- Already expired: the write succeeds and leaves nothing to read.
      redis.call('DEL', item)
      redis.call('ZREM', set, sort)
    else
      redis.call('DEL', item)
      redis.call('HSET', item, 'v', ARGV[a + 3], 'n', version, 'x', x)
      if x == '0' then
        redis.call('ZADD', set, 0, sort)
        redis.call('PERSIST', set)
      else
        redis.call('PEXPIREAT', item, x)
        -- The set lives as long as its last-expiring item: read its TTL
        -- before ZADD creates it (-2: no set yet).
        local ttl = redis.call('PTTL', set)
        redis.call('ZADD', set, 0, sort)
        if ttl == -2 or (ttl >= 0 and now + ttl < tonumber(x)) then
          redis.call('PEXPIREAT', set, x)
        end
      end
    end
  end
end
return out
`

// Write implements store.Store with one Lua script.
//
// On Redis Cluster the keys of one script must share a hash slot, and each
// partition has its own hash tag: a Write on a cluster client must keep to
// one partition, and fails with store.ErrInvalidWrite otherwise. A single
// node (or a standard, non-cluster Tencent Cloud Redis) takes any keys.
func (s *Store) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	if err := store.CheckWrite(ops); err != nil {
		return nil, err
	}
	if err := s.checkSlots(ops); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return []int64{}, nil
	}
	keys := make([]string, 0, 3*len(ops))
	args := make([]any, 0, writeArgs*len(ops))
	for _, op := range ops {
		item, set := s.keys(op.Key)
		keys = append(keys, item, set, s.opsKey(op.Key))
		args = append(args, writeArgsOf(op)...)
	}
	reply, err := s.scripts.write.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return nil, opError(ctx, fmt.Sprintf("write of %d ops", len(ops)), err)
	}
	return writeResult(ops, reply)
}

// writeArgsOf returns the ARGV entries of one operation of scriptWrite.
func writeArgsOf(op store.WriteOp) []any {
	kind, ifAbsent, ver, exp := "p", "0", int64(0), int64(0)
	var value []byte
	switch op.Kind {
	case store.PutKind:
		if op.Put.IfAbsent {
			ifAbsent = "1"
		}
		ver, value, exp = op.Put.IfVersion, op.Value, store.ToMillis(op.Put.ExpiresAt)
	case store.DeleteKind:
		kind, ver = "d", op.Delete.IfVersion
	case store.CheckKind:
		kind, ver = "c", op.Version
	case store.AddKind:
		lo, hi := currentBounds(op.Delta, math.MinInt64, math.MaxInt64)
		return []any{"a", op.Key.Sort, strconv.FormatInt(op.Delta, 10), lo, hi, strconv.FormatInt(store.ToMillis(op.ExpiresAt), 10)}
	}
	if value == nil {
		value = []byte{}
	}
	return []any{kind, op.Key.Sort, value, ifAbsent, strconv.FormatInt(ver, 10), strconv.FormatInt(exp, 10)}
}

// writeResult decodes the reply of scriptWrite.
func writeResult(ops []store.WriteOp, reply []any) ([]int64, error) {
	switch code(reply) {
	case codeOK:
		if len(reply) != len(ops)+1 {
			break
		}
		versions := make([]int64, len(ops))
		for i := range ops {
			v, ok := reply[i+1].(int64)
			if !ok {
				return nil, fmt.Errorf("redisstore: write: unexpected script reply %.200v", reply)
			}
			versions[i] = v
		}
		return versions, nil
	case codeConflict, codeNotCounter, codeOutOfRange:
		if len(reply) == 2 {
			if i, ok := reply[1].(int64); ok && i >= 0 && int(i) < len(ops) {
				switch code(reply) {
				case codeNotCounter:
					return nil, fmt.Errorf("redisstore: write: op %d: %w", i, store.ErrNotCounter)
				case codeOutOfRange:
					return nil, fmt.Errorf("redisstore: write: op %d: %w", i, store.ErrOutOfRange)
				}
				return nil, store.Conflict(ops, int(i))
			}
		}
	}
	return nil, fmt.Errorf("redisstore: write: unexpected script reply %.200v", reply)
}

// checkSlots refuses, on a cluster client, a Write spanning partitions.
func (s *Store) checkSlots(ops []store.WriteOp) error {
	if _, cluster := s.client.(*redis.ClusterClient); !cluster || len(ops) == 0 {
		return nil
	}
	for i, op := range ops {
		if op.Key.Partition != ops[0].Key.Partition {
			return fmt.Errorf("%w: op %d is in another partition than op 0, which Redis Cluster cannot write in one script", store.ErrInvalidWrite, i)
		}
	}
	return nil
}
