package config

import (
	"strings"
	"testing"
)

// TestBatchDispatch: a queue URL means SQS; WXN_BATCH_DISPATCH=scf means
// SCF's asynchronous invocations; nothing means the process's own runners.
// Contradictions and malformed URLs fail, naming the variable.
func TestBatchDispatch(t *testing.T) {
	const queue = "https://sqs.us-east-1.amazonaws.com/123456789012/wxnotify-shards"
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"Default", nil, DispatchLocal},
		{"QueueURL", []string{"WXN_BATCH_QUEUE_URL", queue}, DispatchSQS},
		{"SQS", []string{"WXN_BATCH_DISPATCH", "sqs", "WXN_BATCH_QUEUE_URL", queue}, DispatchSQS},
		{"SCF", []string{"WXN_BATCH_DISPATCH", "scf", "WXN_BATCH_DISPATCH_ENDPOINT", "https://scf.internal.tencentcloudapi.com"}, DispatchSCF},
		{"Local", []string{"WXN_BATCH_DISPATCH", "local"}, DispatchLocal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(env(tc.kv...), true)
			if err != nil {
				t.Fatal(err)
			}
			if c.Batch.Dispatch != tc.want {
				t.Fatalf("dispatch %q, want %q", c.Batch.Dispatch, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"Unknown", []string{"WXN_BATCH_DISPATCH", "kafka"}, "WXN_BATCH_DISPATCH: \"kafka\" is not sqs, scf or local"},
		{"SQSWithoutQueue", []string{"WXN_BATCH_DISPATCH", "sqs"}, "WXN_BATCH_QUEUE_URL"},
		{"SCFWithQueue", []string{"WXN_BATCH_DISPATCH", "scf", "WXN_BATCH_QUEUE_URL", queue}, "unset one of them"},
		{"BadQueueURL", []string{"WXN_BATCH_QUEUE_URL", "sqs.us-east-1.amazonaws.com/1/q"}, "WXN_BATCH_QUEUE_URL: \"sqs.us-east-1.amazonaws.com/1/q\" is not an http(s) URL"},
		{"BadEndpoint", []string{"WXN_BATCH_DISPATCH", "scf", "WXN_BATCH_DISPATCH_ENDPOINT", "ftp://x"}, "WXN_BATCH_DISPATCH_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromEnv(env(tc.kv...), true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
