package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
)

// queue is a ShardDispatcher that keeps what it was handed, as the
// cloud's queue does.
type queue struct {
	mu   sync.Mutex
	refs []notify.ShardRef
}

func (q *queue) DispatchShards(_ context.Context, refs []notify.ShardRef) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refs = append(q.refs, refs...)
	return nil
}

// take empties the queue.
func (q *queue) take() []notify.ShardRef {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.refs
	q.refs = nil
	return out
}

// TestShardedBatchManyRunners: a batch of 8 shards ticked by 4 runners at
// once, each sending 2 shards at a time with deadlines that cut pages
// short: every recipient got exactly one message, and the counters are
// WeChat's truth.
func TestShardedBatchManyRunners(t *testing.T) {
	r := newRig(t, nil)
	opts := notify.BatchOptions{Rate: 5000, Workers: 8, PageSize: 10, ShardSize: 40, Runners: 2,
		Lease: 2 * time.Second, Margin: 5 * time.Millisecond}
	setup := r.service(t, r.st, opts)
	const n, withCredit = 300, 250
	openIDs := r.users(t, setup, n, withCredit)
	ctx := context.Background()
	b, err := setup.CreateBatch(ctx, batchOf(openIDs, "many-runners"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Shards != 8 || b.Pages != 30 {
		t.Fatalf("created: %d shards of %d pages, want 8 (30 pages of 10, 4 a shard)", b.Shards, b.Pages)
	}
	var wg sync.WaitGroup
	var ticks atomic.Int64
	stop := time.Now().Add(60 * time.Second)
	for i := range 4 {
		svc := r.service(t, r.st, opts)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			for time.Now().Before(stop) {
				if cur, err := setup.Batch(ctx, b.ID); err == nil && cur.Status == notify.BatchDone {
					return
				}
				_ = svc.RunBatches(ctx, time.Now().Add(opts.Margin+time.Duration(rng.IntN(80))*time.Millisecond))
				ticks.Add(1)
			}
		})
	}
	wg.Wait()
	final, err := setup.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ticks of 4 runners", ticks.Load())
	checkExactlyOnce(t, r, final, openIDs, withCredit)
}

// TestShardDuplicatedDelivery: the queue hands every shard twice, and the
// copies run at once on two runners: nothing is sent or counted twice. A
// tick hands a shard over only once until Redispatch has passed.
func TestShardDuplicatedDelivery(t *testing.T) {
	r := newRig(t, nil)
	q := &queue{}
	opts := notify.BatchOptions{Rate: 5000, Workers: 4, PageSize: 5, ShardSize: 10, Dispatcher: q,
		Redispatch: 300 * time.Millisecond}
	a, b := r.service(t, r.st, opts), r.service(t, r.st, opts)
	openIDs := r.users(t, a, 60, 45)
	ctx := context.Background()
	created, err := a.CreateBatch(ctx, batchOf(openIDs, "dup"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	if err := a.RunBatches(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	refs := q.take()
	if len(refs) != 6 || r.fake.Delivered() != 0 {
		t.Fatalf("first tick: %d shards handed to the queue and %d sent, want 6 and none (the queue's runners send)", len(refs), r.fake.Delivered())
	}
	if err := b.RunBatches(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	if again := q.take(); len(again) != 0 {
		t.Fatalf("a tick while the shards wait in the queue handed %d over again, want none", len(again))
	}
	time.Sleep(opts.Redispatch + 50*time.Millisecond)
	if err := b.RunBatches(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	if again := q.take(); len(again) != 6 {
		t.Fatalf("after Redispatch, a tick handed %d shards over again, want 6", len(again))
	}
	var wg sync.WaitGroup
	for _, ref := range append(refs, refs...) {
		for _, svc := range []*notify.Service{a, b} {
			wg.Go(func() {
				if err := svc.RunShard(ctx, ref, deadline); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	final, err := a.Batch(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, r, final, openIDs, 45)
	if err := a.RunBatches(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	if again := q.take(); len(again) != 0 {
		t.Fatalf("a tick after the batch ended handed %d shards over, want none", len(again))
	}
}

// hangingStore hangs the writes of shard records while held: a runner
// that meets it stops mid-shard with its lease, as a crashed one does.
type hangingStore struct {
	store.Store
	held    atomic.Bool
	release chan struct{}
	hung    atomic.Int64
}

func (h *hangingStore) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	if h.held.Load() && strings.HasPrefix(k.Sort, "s|") {
		h.hung.Add(1)
		<-h.release
	}
	return h.Store.Put(ctx, k, v, o)
}

// TestShardCrashedRunnerTakenOver: a runner stops answering in the middle
// of its shard, holding the lease; once the lease ends another runner
// takes the shard over from its last checkpoint and ends the batch; when
// the first one wakes, its checkpoint finds the shard taken and it stops.
// Every recipient got one message.
func TestShardCrashedRunnerTakenOver(t *testing.T) {
	r := newRig(t, nil)
	opts := notify.BatchOptions{Rate: 5000, Workers: 4, PageSize: 10, Lease: 300 * time.Millisecond}
	h := &hangingStore{Store: r.st, release: make(chan struct{})}
	crashing, other := r.service(t, h, opts), r.service(t, r.st, opts)
	openIDs := r.users(t, other, 80, 70)
	ctx := context.Background()
	b, err := other.CreateBatch(ctx, batchOf(openIDs, "crash"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for r.fake.Delivered() < 25 {
			time.Sleep(time.Millisecond)
		}
		h.held.Store(true)
	}()
	first := make(chan error, 1)
	go func() { first <- crashing.RunBatches(ctx, time.Now().Add(time.Minute)) }()
	for h.hung.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	hungAt := r.fake.Delivered()
	if err := other.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if cur, _ := other.Batch(ctx, b.ID); cur.Status == notify.BatchDone {
		t.Fatalf("a tick while the crashed runner's lease held ended the batch: %+v", cur)
	}
	time.Sleep(opts.Lease)
	if err := other.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	final, err := other.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the runner hung after %d messages", hungAt)
	checkExactlyOnce(t, r, final, openIDs, 70)
}

// TestAudienceShards: an audience cut into shards by openid, sent by two
// runners at once: every holder once, the counters exact.
func TestAudienceShards(t *testing.T) {
	r := newRig(t, nil)
	opts := notify.BatchOptions{Rate: 5000, Workers: 4, PageSize: 4, ShardSize: 7, Runners: 3}
	svc := r.service(t, r.st, opts)
	holders := make(map[string]bool)
	for i := range 50 {
		o := r.fake.OpenID(fmt.Sprintf("aud%03d", i))
		r.grant(t, svc, o)
		holders[o] = true
	}
	ctx := context.Background()
	b, err := svc.CreateBatch(ctx, notify.BatchRequest{Template: "lead_digest", Audience: notify.AudienceConsenting, Data: digestData})
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 50 || b.Shards != 8 {
		t.Fatalf("created: %d users in %d shards, want 50 in 8 (7 a shard)", b.Total, b.Shards)
	}
	var wg sync.WaitGroup
	for range 2 {
		runner := r.service(t, r.st, opts)
		wg.Go(func() {
			if err := runner.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	done, err := svc.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for o := range holders {
		if got := len(r.fake.Messages(o)); got != 1 {
			t.Fatalf("holder %s got %d messages, want 1", o, got)
		}
	}
	if done.Status != notify.BatchDone || done.Sent != 50 || done.Total != 50 || r.fake.Delivered() != 50 {
		t.Fatalf("batch: %+v with %d delivered, want done with 50 sent", done, r.fake.Delivered())
	}
}

// TestBatchBeforeShardsResumes: a batch recorded before shards (no
// layout, its place in its cursor and its counters on its record) is
// turned into one shard by the tick and goes on from its cursor: the page
// its record counts as done is not sent again, and its counters add up.
func TestBatchBeforeShardsResumes(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, Workers: 4, PageSize: 10})
	openIDs := r.users(t, svc, 40, 40)
	ctx := context.Background()
	b, err := svc.CreateBatch(ctx, batchOf(openIDs, "legacy"))
	if err != nil {
		t.Fatal(err)
	}
	// The record as the earlier layout wrote it after its first page.
	key := store.Key{Partition: "bat|" + appID + "|" + b.ID, Sort: "m"}
	it, err := r.st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(it.Value, &rec); err != nil {
		t.Fatal(err)
	}
	delete(rec, "shards")
	delete(rec, "shardPages")
	rec["cursor"], rec["sent"], rec["status"] = "1", 10, "running"
	raw, _ := json.Marshal(rec)
	if _, err := r.st.Put(ctx, key, raw, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	done, err := svc.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range openIDs {
		if want, got := min(1, i/10), len(r.fake.Messages(o)); got != want {
			t.Fatalf("user %d got %d messages, want %d (page 0 was done before)", i, got, want)
		}
	}
	if done.Status != notify.BatchDone || done.Shards != 1 || done.Sent != 40 || done.Pending() != 0 {
		t.Fatalf("batch: %+v, want done in one shard with 40 sent (10 before it)", done)
	}
}
