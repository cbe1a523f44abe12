// Package storeenv opens the store backends for tests that must run on all
// of them against real servers: bbolt on a temporary file, Redis at
// $WXN_TEST_REDIS_URL (default 127.0.0.1:6379), and DynamoDB on a dynalite
// (npm, node_modules/.bin/dynalite in the module root) that the first test
// needing it starts on a free port. A server that cannot be reached skips
// the test, or fails it when $CI is true.
//
// A test binary using DynamoDB stops its dynalite with Main:
//
//	func TestMain(m *testing.M) { storeenv.Main(m) }
package storeenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
)

// Backends are the names Open takes, in the order tests run them.
var Backends = []string{"bolt", "redis", "dynamodb"}

// Main runs the tests and stops the servers this package started.
func Main(m *testing.M) {
	code := m.Run()
	dynalite.stop()
	os.Exit(code)
}

// Open returns a fresh, empty store of the named backend, closed (and its
// keys or table dropped) when tb ends.
func Open(tb testing.TB, backend string) store.Store {
	tb.Helper()
	var st store.Store
	switch backend {
	case "bolt":
		b, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true})
		if err != nil {
			tb.Fatal(err)
		}
		st = b
	case "redis":
		st = RedisStore(tb)
	case "dynamodb":
		st = DynamoStore(tb)
	default:
		tb.Fatalf("storeenv: unknown backend %q", backend)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// unavailable skips tb, or fails it under CI, for a server that is missing.
func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPING: " + msg)
}
