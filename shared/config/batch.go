package config

import (
	"fmt"
	"strconv"
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
}

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
	return b, nil
}
