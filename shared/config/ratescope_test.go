package config

import (
	"strings"
	"testing"
)

// TestBatchRateScope: the batch rate is shared by the runners of a shared
// store unless WXN_BATCH_RATE_SCOPE says otherwise; bbolt's is per process.
func TestBatchRateScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"BoltDefault", nil, "process"},
		{"RedisDefault", []string{"WXN_STORE", "redis", "WXN_REDIS_URL", "redis://127.0.0.1:6379/0"}, "shared"},
		{"DynamoDefault", []string{"WXN_STORE", "dynamodb", "WXN_DYNAMODB_TABLE", "t"}, "shared"},
		{"RedisProcess", []string{"WXN_STORE", "redis", "WXN_REDIS_URL", "redis://127.0.0.1:6379/0", "WXN_BATCH_RATE_SCOPE", "process"}, "process"},
		{"BoltShared", []string{"WXN_BATCH_RATE_SCOPE", "shared"}, "shared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(env(tc.kv...), true)
			if err != nil {
				t.Fatal(err)
			}
			if c.Batch.RateScope != tc.want {
				t.Fatalf("rate scope %q, want %q", c.Batch.RateScope, tc.want)
			}
		})
	}
	if _, err := FromEnv(env("WXN_BATCH_RATE_SCOPE", "global"), true); err == nil || !strings.Contains(err.Error(), "WXN_BATCH_RATE_SCOPE") {
		t.Fatalf("bad scope: got %v, want an error naming WXN_BATCH_RATE_SCOPE", err)
	}
}
