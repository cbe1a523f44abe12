package redisstore

import "github.com/redis/go-redis/v9"

// Reply codes of the scripts.
const (
	codeOK         = 0
	codeConflict   = 1 // a condition did not hold
	codeNotCounter = 2
	codeOutOfRange = 3
)

// luaNow sets now to the server's time in Unix milliseconds.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaLive defines live(n, x): whether an item hash whose version field is n
// and expiry field x (HMGET results) holds a live item.
const luaLive = luaNow + `
local function live(n, x)
  return n ~= false and (x == '0' or tonumber(x) > now)
end
`

// scriptGet returns {value, version, expiry} of the live item, or {}.
//
// KEYS: item. ARGV: none.
const scriptGet = luaLive + `
local r = redis.call('HMGET', KEYS[1], 'v', 'n', 'x')
if not live(r[2], r[3]) then
  return {}
end
return r
`

// scriptPut writes an item and returns {codeOK, version} or {codeConflict}.
//
// KEYS: item, partition set, operations. ARGV: sort key, value, if-absent
// ('1' or '0'), if-version ('0' for none), expiry (Unix ms, '0' for none).
const scriptPut = luaLive + `
local item, set, sort, x = KEYS[1], KEYS[2], ARGV[1], ARGV[5]
local r = redis.call('HMGET', item, 'n', 'x')
local alive = live(r[1], r[2])
if (ARGV[3] == '1' and alive) or (ARGV[4] ~= '0' and (not alive or r[1] ~= ARGV[4])) then
  return {1}
end
redis.call('DEL', KEYS[3])
if x ~= '0' and tonumber(x) <= now then
  -- Already expired: the write succeeds and leaves nothing to read.
  redis.call('DEL', item)
  redis.call('ZREM', set, sort)
  return {0, alive and tonumber(r[1]) + 1 or 1}
end
local version = 1
if alive then
  version = redis.call('HINCRBY', item, 'n', 1)
  redis.call('HSET', item, 'v', ARGV[2], 'x', x)
else
  redis.call('HSET', item, 'v', ARGV[2], 'n', '1', 'x', x)
end
if x == '0' then
  redis.call('PERSIST', item)
  redis.call('ZADD', set, 0, sort)
  redis.call('PERSIST', set)
else
  redis.call('PEXPIREAT', item, x)
  local ttl = redis.call('PTTL', set)
  redis.call('ZADD', set, 0, sort)
  if ttl == -2 or (ttl >= 0 and now + ttl < tonumber(x)) then
    redis.call('PEXPIREAT', set, x)
  end
end
return {0, version}
`

// scriptDelete removes an item and returns {codeOK} or {codeConflict}.
//
// KEYS: item, partition set, operations. ARGV: sort key, if-version ('0'
// for none).
const scriptDelete = luaLive + `
if ARGV[2] ~= '0' then
  local r = redis.call('HMGET', KEYS[1], 'n', 'x')
  if not live(r[1], r[2]) or r[1] ~= ARGV[2] then
    return {1}
  end
end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return {0}
`

// scriptAdd adds to a counter and returns {codeOK, new value},
// {codeNotCounter} or {codeOutOfRange, current value}. Values are decimal
// strings: Lua numbers are doubles and cannot hold every int64, so the
// bounds are compared as text and the sum is left to HINCRBY.
//
// KEYS: item, partition set, operations. ARGV: sort key, delta, lo, hi:
// the add is allowed when lo <= current <= hi (the caller derives them from
// delta and the bounds; lo > hi allows nothing).
const scriptAdd = luaLive + luaCounter + `
local item, set, sort, delta = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local r = redis.call('HMGET', item, 'v', 'n', 'x')
local alive = live(r[2], r[3])
local cur = '0'
if alive then
  cur = r[1]
  if not canonical(cur) then return {2} end
end
if cmp(cur, ARGV[3]) < 0 or cmp(cur, ARGV[4]) > 0 then
  return {3, cur}
end
if alive then
  redis.call('HINCRBY', item, 'v', delta)
  redis.call('HINCRBY', item, 'n', 1)
  return {0, redis.call('HGET', item, 'v')}
end
redis.call('DEL', KEYS[3])
redis.call('HSET', item, 'v', delta, 'n', '1', 'x', '0')
redis.call('PERSIST', item)
redis.call('ZADD', set, 0, sort)
redis.call('PERSIST', set)
return {0, delta}
`

// luaCounter defines the comparison of counter texts.
const luaCounter = `
-- less reports a < b for digit strings of equal length, bytewise (Lua's own
-- string comparison follows the server's collation locale).
local function less(a, b)
  for i = 1, #a do
    local p, q = string.byte(a, i), string.byte(b, i)
    if p ~= q then return p < q end
  end
  return false
end

-- canonical reports whether s is the canonical decimal text of an int64.
local function canonical(s)
  if s == '0' then return true end
  local digits, limit = s, '9223372036854775807'
  if string.sub(s, 1, 1) == '-' then
    digits, limit = string.sub(s, 2), '9223372036854775808'
  end
  if #digits > 19 or not string.find(digits, '^[1-9][0-9]*$') then return false end
  return #digits < 19 or not less(limit, digits)
end

-- cmp compares two canonical int64 texts: -1, 0 or 1.
local function cmp(a, b)
  if a == b then return 0 end
  local an, bn = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if an ~= bn then return an and -1 or 1 end
  if an then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b and -1 or 1 end
  return less(a, b) and -1 or 1
end

`

// luaOps defines the operation log of a counter: a hash from operation id
// to "delta result until" (decimal texts, until in Unix ms). forget(ops)
// drops what is past its time once the log grows, and past maxOps the
// operations closest to being forgotten (down to 3/4 of it), and keeps the hash alive as long
// as its newest operation.
const luaOps = `
local function parseop(e)
  local d, r, u = string.match(e, '^(%S+) (%S+) (%S+)$')
  return d, r, tonumber(u)
end

local function forget(ops, untilms)
  local n = redis.call('HLEN', ops)
  if n > maxOps or (n > 64 and n % 16 == 0) then
    local all = redis.call('HGETALL', ops)
    local kept = {}
    for i = 1, #all, 2 do
      local _, _, u = parseop(all[i + 1])
      if u == nil or u <= now then
        redis.call('HDEL', ops, all[i])
      else
        kept[#kept + 1] = {all[i], u}
      end
    end
    if #kept > maxOps then
      -- Down to three quarters of the cap, so that a counter at its cap is
      -- trimmed once in a while, not at every operation.
      table.sort(kept, function(a, b) return a[2] < b[2] end)
      for i = 1, #kept - math.floor(maxOps * 3 / 4) do
        redis.call('HDEL', ops, kept[i][1])
      end
    end
  end
  local ttl = redis.call('PTTL', ops)
  if ttl == -1 or (ttl >= 0 and now + ttl < untilms) then
    redis.call('PEXPIREAT', ops, untilms)
  end
end
`

// scriptAddOnce is scriptAdd for a named operation; it returns as
// scriptAdd does, the first answer for an operation the counter remembers.
//
// KEYS: item, partition set, operations. ARGV: sort key, delta, lo, hi,
// operation id, keep (ms), expiry (Unix ms, '0' to leave it), max ops.
const scriptAddOnce = luaLive + luaCounter + `
local item, set, ops, sort, delta, id = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[5]
local maxOps = tonumber(ARGV[8])
` + luaOps + `
local r = redis.call('HMGET', item, 'v', 'n', 'x')
local alive = live(r[2], r[3])
local cur = '0'
if alive then
  cur = r[1]
  if not canonical(cur) then return {2} end
  local e = redis.call('HGET', ops, id)
  if e then
    local _, res, u = parseop(e)
    if u and u > now then return {0, res} end
  end
else
  redis.call('DEL', ops)
end
if cmp(cur, ARGV[3]) < 0 or cmp(cur, ARGV[4]) > 0 then
  return {3, cur}
end
local value, x = delta, '0'
if alive then
  redis.call('HINCRBY', item, 'v', delta)
  redis.call('HINCRBY', item, 'n', 1)
  value, x = redis.call('HGET', item, 'v'), r[3]
else
  redis.call('HSET', item, 'v', delta, 'n', '1', 'x', '0')
  redis.call('ZADD', set, 0, sort)
end
if ARGV[7] ~= '0' then
  x = ARGV[7]
  if tonumber(x) <= now then
    -- Already expired: applied, and nothing is left to read.
    redis.call('DEL', item, ops)
    redis.call('ZREM', set, sort)
    return {0, value}
  end
  redis.call('HSET', item, 'x', x)
  redis.call('PEXPIREAT', item, x)
  local ttl = redis.call('PTTL', set)
  if ttl == -2 or (ttl >= 0 and now + ttl < tonumber(x)) then
    redis.call('PEXPIREAT', set, x)
  end
elseif not alive then
  redis.call('PERSIST', item)
  redis.call('PERSIST', set)
end
local untilms = now + tonumber(ARGV[6])
redis.call('HSET', ops, id, delta .. ' ' .. value .. ' ' .. untilms)
forget(ops, untilms)
return {0, value}
`

// scriptUndo reverts a remembered operation and returns {codeOK, 1}, or
// {codeOK, 0} when the counter does not remember it, or {codeOutOfRange}
// when the value would overflow.
//
// KEYS: item, operations. ARGV: operation id.
const scriptUndo = luaLive + luaCounter + `
local item, ops, id = KEYS[1], KEYS[2], ARGV[1]
local r = redis.call('HMGET', item, 'v', 'n', 'x')
if not live(r[2], r[3]) or not canonical(r[1]) then return {0, 0} end
local e = redis.call('HGET', ops, id)
if not e then return {0, 0} end
local d, _, u = string.match(e, '^(%S+) (%S+) (%S+)$')
if u == nil or tonumber(u) <= now then
  redis.call('HDEL', ops, id)
  return {0, 0}
end
local neg = '-' .. d
if d == '0' then
  neg = '0'
elseif string.sub(d, 1, 1) == '-' then
  neg = string.sub(d, 2)
end
local res = redis.pcall('HINCRBY', item, 'v', neg)
if type(res) == 'table' and res.err then return {3} end
redis.call('HINCRBY', item, 'n', 1)
redis.call('HDEL', ops, id)
return {0, 1}
`

// scriptQuery returns {next, sort, value, version, expiry, sort, ...} for the
// live items among the first limit members of the partition set in
// [min, max], removing the members whose items are gone. next is the last
// member examined when more follow, else empty.
//
// KEYS: partition set. ARGV: item key prefix, min, max (ZRANGEBYLEX
// syntax), limit.
const scriptQuery = luaLive + `
local set, base, limit = KEYS[1], ARGV[1], tonumber(ARGV[4])
local members = redis.call('ZRANGEBYLEX', set, ARGV[2], ARGV[3], 'LIMIT', 0, limit + 1)
local out = {''}
for i = 1, math.min(#members, limit) do
  local m = members[i]
  local r = redis.call('HMGET', base .. m, 'v', 'n', 'x')
  if live(r[2], r[3]) then
    out[#out + 1] = m
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
  else
    redis.call('ZREM', set, m)
  end
end
if #members > limit then
  out[1] = members[limit]
end
return out
`

// scripts holds the store's Lua scripts. A Script is safe for concurrent use.
type scripts struct {
	get, put, del, add, addOnce, undo, query, write *redis.Script
}

func newScripts() scripts {
	return scripts{
		get:     redis.NewScript(scriptGet),
		put:     redis.NewScript(scriptPut),
		del:     redis.NewScript(scriptDelete),
		add:     redis.NewScript(scriptAdd),
		addOnce: redis.NewScript(scriptAddOnce),
		undo:    redis.NewScript(scriptUndo),
		query:   redis.NewScript(scriptQuery),
		write:   redis.NewScript(scriptWrite),
	}
}
