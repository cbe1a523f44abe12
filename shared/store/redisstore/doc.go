// Package redisstore implements store.Store on Redis (5.0 or later, or a
// compatible server) with go-redis.
//
// # Layout
//
// Every key starts with the store's prefix, so several deployments and test
// runs can share one database. A partition's keys share a Redis Cluster hash
// tag, {partition}, in which '%' and '}' are escaped as %25 and %7D so that
// no partition can end the tag early or imitate another:
//
//	<prefix>{<partition>}:z         sorted set of the partition's sort keys (score 0)
//	<prefix>{<partition>}:i:<sort>  hash of one item: v (value), n (version),
//	                                x (expiry in Unix ms, 0 for none)
//	<prefix>{<partition>}:o:<sort>  hash of the operations a counter remembers
//	                                (AddOnce): operation id -> "delta result
//	                                until" (until in Unix ms); Put and Delete
//	                                remove it, it expires with its newest entry
//
// An item that expires gets PEXPIREAT on its hash; the sorted set expires
// with the last-expiring item it may hold and is made permanent again by any
// permanent item. Members left behind by expired items are removed by the
// Query that meets them.
//
// # Consistency
//
// Each operation is one Lua script (EVALSHA, with EVAL when the server lost
// the script), so conditions, counters and the sorted set change atomically.
// Expiry is decided with the server's TIME, so every instance agrees on it
// whatever its own clock says. Query reads item hashes that are not declared
// as script keys; they share the sorted set's hash slot, so this is safe on
// Redis Cluster too.
//
// Write is one script over the keys of all its items, which on a single
// node (or a standard, non-cluster edition of TencentDB for Redis) may
// span partitions. Redis Cluster runs a script only on keys of one hash
// slot, and every partition has its own tag: on a cluster client a Write
// must keep to one partition (store.ErrInvalidWrite otherwise).
package redisstore
