// Package store defines the key-value contract that holds all of wxnotify's
// state: users, sessions, consent credits, notifications, idempotency keys,
// access tokens and batch progress.
//
// The contract is small on purpose: every operation maps to one native round
// trip on DynamoDB (one table, pk/sk), Redis (a hash per item and a sorted set
// per partition, driven by Lua) and bbolt (one bucket per partition), so the
// guarantees the domain builds on (conditional writes, bounded counters) hold
// across concurrently running function instances.
//
// Implementations live in boltstore, redisstore and dynamostore; each runs
// the single conformance suite in storetest.
package store
