package notify

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// batchBench is a batch function instance against the fake WeChat with a
// fixed latency per send.
type batchBench struct {
	svc      *Service
	wx       *wechat.Client
	fake     *wechattest.Server
	counting *storetest.Counting
	openIDs  []string
}

func newBatchBench(b *testing.B, st store.Store, users int, latency time.Duration, workers int) *batchBench {
	b.Helper()
	fake := wechattest.NewServer(wechattest.Options{AppID: "wxbench", DiscardMessages: true, Templates: []wechattest.Template{{
		PriTmplID: benchTmpl, Title: "线索日报", Type: 2, Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "number2"}},
	}}})
	b.Cleanup(fake.Close)
	if latency > 0 {
		if err := fake.Inject(wechattest.Fault{API: wechattest.APISend, Latency: latency}); err != nil {
			b.Fatal(err)
		}
	}
	counting := storetest.NewCounting(st)
	// One HTTP connection per worker, as a tuned deployment would have.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers + 8}}
	cfg := wechat.Config{AppID: "wxbench", Secret: fake.Secret(), BaseURL: fake.URL(), HTTPClient: hc}
	tokens, err := wechat.NewStoreTokenSource(counting, cfg, wechat.TokenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Tokens = tokens
	wx, err := wechat.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	catalog, _ := NewCatalog([]Template{{Alias: "lead_digest", ID: benchTmpl, Keywords: []Keyword{{Name: "thing1"}, {Name: "number2"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, nil)
	svc, err := New(Options{AppID: "wxbench", Store: counting, WeChat: wx, Catalog: catalog, Sessions: sessions,
		Batch: BatchOptions{Rate: 1e5, Workers: workers, PageSize: 500, Margin: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	bb := &batchBench{svc: svc, wx: wx, fake: fake, counting: counting}
	for u := range users {
		openID := fake.OpenID(fmt.Sprintf("user%06d", u))
		if _, err := fake.Subscribe(openID, map[string]string{benchTmpl: "accept"}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Put(ctx, svc.creditsKey(openID, benchTmpl), []byte("1"), store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		// The audience index entry its grant left: the batch's send takes
		// the last credit and prunes it.
		if _, err := st.Put(ctx, store.Key{Partition: svc.audiencePartition(benchTmpl), Sort: openID + audienceSep + "bench"}, []byte("1"), store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		bb.openIDs = append(bb.openIDs, openID)
	}
	if _, err := tokens.Token(ctx); err != nil {
		b.Fatal(err)
	}
	return bb
}

func (bb *batchBench) request(i int) wechat.SendRequest {
	return wechat.SendRequest{ToUser: bb.openIDs[i], TemplateID: benchTmpl,
		Data: map[string]string{"thing1": "Daily leads", "number2": fmt.Sprint(i % 100)}}
}

// run sends the batch to every user and returns sends/s and the store
// round trips per recipient.
func (bb *batchBench) run(b *testing.B) (rate, opsPerRecipient float64) {
	b.Helper()
	ctx := context.Background()
	req := BatchRequest{Template: "lead_digest", Data: map[string]string{"thing1": "Daily leads"}}
	for i, o := range bb.openIDs {
		req.Recipients = append(req.Recipients, BatchRecipient{OpenID: o, Data: map[string]string{"number2": fmt.Sprint(i % 100)}})
	}
	if _, err := bb.svc.CreateBatch(ctx, req); err != nil {
		b.Fatal(err)
	}
	before := bb.counting.Total()
	start := time.Now()
	for bb.fake.Delivered() < len(bb.openIDs) {
		if err := bb.svc.RunBatches(ctx, time.Now().Add(15*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if d := bb.fake.Delivered(); d != len(bb.openIDs) {
		b.Fatalf("delivered %d, want %d (duplicates or losses)", d, len(bb.openIDs))
	}
	return float64(len(bb.openIDs)) / elapsed.Seconds(), float64(bb.counting.Total()-before) / float64(len(bb.openIDs))
}

// BenchmarkBatch is issue 6's batch benchmark: 20,000 recipients, 50 ms per
// WeChat send, one instance with 100 workers, against (a) a sequential loop
// and (b) a plain pool of 100 goroutines, both through the same client with
// no ledger, idempotency or records. Run with -benchtime 1x.
func BenchmarkBatch(b *testing.B) {
	const latency, workers = 50 * time.Millisecond, 100
	n := 20000
	if v := os.Getenv("WXN_BENCH_RECIPIENTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	b.Run("sequential-loop", func(b *testing.B) {
		const sample = 100 // at 50 ms a send, the whole 20,000 would take 17 minutes
		bb := newBatchBench(b, openBolt(b, true), sample, latency, 1)
		start := time.Now()
		for i := range sample {
			if _, err := bb.wx.SendSubscribeMessage(context.Background(), bb.request(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(sample/time.Since(start).Seconds(), "sends/s")
	})
	b.Run("plain-pool", func(b *testing.B) {
		bb := newBatchBench(b, openBolt(b, true), n, latency, workers)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if _, err := bb.wx.SendSubscribeMessage(context.Background(), bb.request(i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "sends/s")
	})
	for _, backend := range []string{"bolt", "redis"} {
		b.Run("batch-"+backend, func(b *testing.B) {
			var st store.Store
			if backend == "bolt" {
				st = openBolt(b, false)
			} else {
				st = openRedis(b)
			}
			bb := newBatchBench(b, st, n, latency, workers)
			rate, ops := bb.run(b)
			b.ReportMetric(rate, "sends/s")
			b.ReportMetric(ops, "store-ops/recipient")
		})
	}
}

// BenchmarkBatchMemory measures the live heap a batch run adds (WeChat
// without latency, the Redis store - a remote store, as in the cloud, so
// that bbolt's in-process page cache stays out of the figure): it must not
// grow with the batch, since the runner holds one page at a time. Run with
// -benchtime 1x.
func BenchmarkBatchMemory(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bb := newBatchBench(b, openRedis(b), n, 0, 32)
			ctx := context.Background()
			req := BatchRequest{Template: "lead_digest", Data: map[string]string{"thing1": "Daily leads", "number2": "1"}}
			for _, o := range bb.openIDs {
				req.Recipients = append(req.Recipients, BatchRecipient{OpenID: o})
			}
			if _, err := bb.svc.CreateBatch(ctx, req); err != nil {
				b.Fatal(err)
			}
			req, bb.openIDs = BatchRequest{}, nil // what the creating request held is gone
			// The live heap (after a collection), sampled while the batch runs:
			// its growth over the heap before the run is what the runner holds.
			// The fake WeChat's users (its truth, O(users)) were there before.
			live := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			before := live()
			var peak atomic.Uint64
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if l := live(); l > peak.Load() {
						peak.Store(l)
					}
					select {
					case <-done:
						return
					case <-time.After(250 * time.Millisecond):
					}
				}
			}()
			for bb.fake.Delivered() < n {
				if err := bb.svc.RunBatches(ctx, time.Now().Add(15*time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
			close(done)
			<-sampled
			after := live()
			b.ReportMetric(float64(after-min(after, before))/(1<<20), "retained-MiB")
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), before))/(1<<20), "peak-growth-MiB")
			b.ReportMetric(float64(before)/(1<<20), "live-heap-before-MiB")
		})
	}
}

func openBolt(b *testing.B, noSync bool) store.Store {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), boltstore.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

func openRedis(b *testing.B) store.Store {
	b.Helper()
	url := os.Getenv("WXN_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	prefix := fmt.Sprintf("wxnbench:%d:", time.Now().UnixNano())
	st, err := redisstore.Open(url, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = st.Close()
		opts, _ := redis.ParseURL(url)
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return st
}
