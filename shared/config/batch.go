package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Batch holds the batch runner's settings.
type Batch struct {
	Rate float64 // WXN_BATCH_RATE: sends per second of each app (default 100)
	// RateScope is WXN_BATCH_RATE_SCOPE: "shared" (the rate bounds every
	// runner of the app together, through the store; the default on Redis
	// and DynamoDB) or "process" (each runner on its own; the default on
	// bbolt, which one process holds).
	RateScope string
	Workers   int // WXN_BATCH_WORKERS: concurrent sends (default 32)
	PageSize  int // WXN_BATCH_PAGE_SIZE: recipients per page and checkpoint (default 500)
	// ShardSize is WXN_BATCH_SHARD_SIZE: recipients per shard, the part of
	// a batch one runner sends (default 10,000).
	ShardSize int
	// Runners is WXN_BATCH_RUNNERS: the shards one process sends at once
	// when no queue hands them to other runners (default 1).
	Runners int
	// QueueURL is WXN_BATCH_QUEUE_URL: the SQS queue the tick hands the
	// shards to, for the batch function's invocations to send (AWS).
	QueueURL string
	// Dispatch is WXN_BATCH_DISPATCH: how the tick hands out shards:
	// DispatchSQS (to QueueURL; the default when it is set), DispatchSCF
	// (asynchronous invocations of the batch function itself, on SCF) or
	// DispatchLocal (this process's Runners; the default otherwise).
	Dispatch string
	// DispatchEndpoint is WXN_BATCH_DISPATCH_ENDPOINT: the API endpoint of
	// the queue (SQS) or of SCF, replacing the public one (a VPC or
	// internal endpoint).
	DispatchEndpoint string
}

// The ways shards are handed out (WXN_BATCH_DISPATCH).
const (
	DispatchLocal = "local"
	DispatchSQS   = "sqs"
	DispatchSCF   = "scf"
)

func readBatch(getenv func(string) string) (Batch, error) {
	var b Batch
	if v := getenv("WXN_BATCH_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 100000 {
			return b, fmt.Errorf("WXN_BATCH_RATE: %q is not a rate between 0 and 100000 sends per second", v)
		}
		b.Rate = r
	}
	switch v := getenv("WXN_BATCH_RATE_SCOPE"); v {
	case "", "process", "shared":
		b.RateScope = v
	default:
		return b, fmt.Errorf("WXN_BATCH_RATE_SCOPE: %q is not process or shared", v)
	}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"WXN_BATCH_WORKERS", &b.Workers, 1000}, {"WXN_BATCH_PAGE_SIZE", &b.PageSize, 1000},
		{"WXN_BATCH_SHARD_SIZE", &b.ShardSize, 1_000_000}, {"WXN_BATCH_RUNNERS", &b.Runners, 64}} {
		if v := getenv(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > f.max {
				return b, fmt.Errorf("%s: %q is not a whole number between 1 and %d", f.name, v, f.max)
			}
			*f.dst = n
		}
	}
	b.QueueURL = strings.TrimSpace(getenv("WXN_BATCH_QUEUE_URL"))
	b.DispatchEndpoint = strings.TrimSpace(getenv("WXN_BATCH_DISPATCH_ENDPOINT"))
	for _, f := range []struct{ name, v string }{{"WXN_BATCH_QUEUE_URL", b.QueueURL}, {"WXN_BATCH_DISPATCH_ENDPOINT", b.DispatchEndpoint}} {
		if f.v == "" {
			continue
		}
		if u, err := url.Parse(f.v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return b, fmt.Errorf("%s: %q is not an http(s) URL", f.name, f.v)
		}
	}
	switch v := strings.TrimSpace(getenv("WXN_BATCH_DISPATCH")); v {
	case "":
		b.Dispatch = DispatchLocal
		if b.QueueURL != "" {
			b.Dispatch = DispatchSQS
		}
	case DispatchSQS:
		if b.QueueURL == "" {
			return b, errors.New("WXN_BATCH_DISPATCH: sqs needs the queue's URL in WXN_BATCH_QUEUE_URL")
		}
		b.Dispatch = v
	case DispatchSCF, DispatchLocal:
		if b.QueueURL != "" {
			return b, fmt.Errorf("WXN_BATCH_DISPATCH: %s, but WXN_BATCH_QUEUE_URL names a queue: unset one of them", v)
		}
		b.Dispatch = v
	default:
		return b, fmt.Errorf("WXN_BATCH_DISPATCH: %q is not sqs, scf or local", v)
	}
	return b, nil
}
