package storeenv

import (
	"testing"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
)

// RedisStore returns a store under a fresh prefix of the test Redis.
func RedisStore(tb testing.TB) *redisstore.Store {
	tb.Helper()
	client := testredis.Client(tb)
	return redisstore.New(client, testredis.Prefix(tb, client))
}
