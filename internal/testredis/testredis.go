// Package testredis gives tests a client of a real Redis: $WXN_TEST_REDIS_URL,
// or 127.0.0.1:6379. A server that does not answer skips the test, or fails
// it when $CI is true.
package testredis

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Start is the command that starts a Redis the tests can use.
const Start = `redis-server --daemonize yes --port 6379 --save "" --appendonly no`

// URL is the server the tests use: $WXN_TEST_REDIS_URL, or the
// default port on localhost.
func URL() string {
	return cmp.Or(os.Getenv("WXN_TEST_REDIS_URL"), "redis://127.0.0.1:6379/0")
}

// probeRedis pings the test server, once per test binary, so that a missing
// server costs one dial timeout rather than one per test.
var probeRedis = sync.OnceValue(func() error {
	opts, err := redis.ParseURL(URL())
	if err != nil {
		return err
	}
	opts.MaxRetries, opts.DialerRetries, opts.DialTimeout = -1, 1, time.Second
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return errors.Join(client.Ping(ctx).Err(), client.Close())
})

// Client returns a client of the test server (context deadlines honoured),
// closed when tb ends.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("WXN_TEST_REDIS_URL: %v", err)
	}
	if err := probeRedis(); err != nil {
		unavailable(tb, fmt.Sprintf("no redis answers at %s (%v); start one with\n\t%s\nor point WXN_TEST_REDIS_URL at one", opts.Addr, err, Start))
	}
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	tb.Cleanup(func() {
		if err := client.Close(); err != nil {
			tb.Errorf("closing the redis client: %v", err)
		}
	})
	return client
}

// Prefix returns a fresh key prefix whose keys are deleted when tb
// ends.
func Prefix(tb testing.TB, client *redis.Client) string {
	tb.Helper()
	prefix := "wxntest:" + rand.Text() + ":"
	tb.Cleanup(func() { DeleteKeys(tb, client, prefix) })
	return prefix
}

// DeleteKeys deletes every key that starts with prefix (which holds no
// glob characters).
func DeleteKeys(tb testing.TB, client *redis.Client, prefix string) {
	tb.Helper()
	ctx := context.Background()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("scanning %s*: %v", prefix, err)
		return
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := client.Unlink(ctx, keys[:n]...).Err(); err != nil {
			tb.Errorf("deleting %s*: %v", prefix, err)
			return
		}
		keys = keys[n:]
	}
}

func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPING REDIS TESTS: " + msg)
}
