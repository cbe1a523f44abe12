package notify_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
)

// TestSharedRateBatches: four batch runners, each its own Service, WeChat
// client and Redis client, sharing only Redis, run four batches at once
// under a shared rate of 100/s: WeChat receives no message sooner than the
// one schedule of 100/s allows (the four runners together, not each), and
// every recipient gets one.
func TestSharedRateBatches(t *testing.T) {
	client := testredis.Client(t)
	prefix := testredis.Prefix(t, client)
	r := newRig(t, redisstore.New(client, prefix))
	const rate, runners, per = 100.0, 4, 75
	opts := notify.BatchOptions{Rate: rate, RateScope: notify.RateShared, Workers: 16, PageSize: 25}
	var svcs []*notify.Service
	for range runners {
		svcs = append(svcs, r.service(t, redisstore.New(testredis.Client(t), prefix), opts))
	}
	openIDs := r.users(t, svcs[0], runners*per, runners*per)
	ctx := context.Background()
	for i := range runners {
		if _, err := svcs[0].CreateBatch(ctx, batchOf(openIDs[i*per:(i+1)*per], "")); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, runners)
	for i, svc := range svcs {
		wg.Go(func() { errs[i] = svc.RunBatches(ctx, time.Now().Add(time.Minute)) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	var at []time.Time
	for _, m := range r.fake.AllMessages() {
		at = append(at, m.SentAt)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	if len(at) != runners*per {
		t.Fatalf("sent %d, want %d", len(at), runners*per)
	}
	// As in TestBatchRateLimit: delays can bunch arrivals, never bring
	// one ahead of the schedule - here with the slack of the 20 ms a slot
	// may be used late: the first sends may take the slots of the 20 ms
	// before the start, 3 at 100/s.
	slack := int(0.02*rate) + 1
	for k, got := range at {
		if due := time.Duration(float64(k-slack) / rate * 0.95 * float64(time.Second)); got.Sub(start) < due {
			t.Fatalf("message %d arrived %v after the start, before the %.0f/s schedule allows (%v, -5%%)", k, got.Sub(start), rate, due)
		}
	}
	t.Logf("%d sends by %d runners at %.0f/s shared: %v in all (%.1f/s)", len(at), runners, rate, elapsed, float64(len(at))/elapsed.Seconds())
}
