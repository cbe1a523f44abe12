package notify

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
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
	pageSize := 500
	if v := os.Getenv("WXN_BENCH_PAGE_SIZE"); v != "" { // to see what the page's barrier costs
		fmt.Sscan(v, &pageSize)
	}
	svc, err := New(Options{AppID: "wxbench", Store: counting, WeChat: wx, Catalog: catalog, Sessions: sessions,
		Batch: BatchOptions{Rate: 1e5, Workers: workers, PageSize: pageSize, Margin: time.Second}})
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
		bb.openIDs = append(bb.openIDs, openID)
	}
	// Each user's credit and the audience index entry its grant left (the
	// batch's send takes the last credit and prunes it), written by a few
	// writers at once: bbolt with fsync commits them together.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < users; i = int(next.Add(1)) - 1 {
				openID := bb.openIDs[i]
				if _, err := st.Put(ctx, svc.creditsKey(openID, benchTmpl), []byte("1"), store.PutOptions{}); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.Put(ctx, store.Key{Partition: svc.audiencePartition(benchTmpl), Sort: openID + audienceSep + "bench"}, []byte("1"), store.PutOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
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

// BenchmarkBatchRatio is issue 19's claim: a batch keeps up with a raw pool
// of as many goroutines calling the same WeChat client. For each WeChat
// latency (0: it answers at once, so that the engine's own cost shows; 50
// ms: issue 6's) and store, the same sub-benchmark runs the raw pool, the
// batch and the raw pool again (each pool on its own fake WeChat and users),
// and reports the batch's rate as a share of the mean of the two pools'
// (ratio-to-raw: the machine's load drifts less between neighbouring runs),
// the heap allocations and the process CPU time per recipient of both (the
// in-process fake WeChat's included: the difference is the engine's; a Redis
// server's CPU is not) and the wall time per recipient. With
// WXN_BENCH_MIN_RATIO set (0.8) a lower ratio fails. The phases carry the
// profile label phase=raw|batch (go tool pprof -tagfocus). Run with
// -benchtime 1x; WXN_BENCH_RECIPIENTS sets the batch size.
func BenchmarkBatchRatio(b *testing.B) {
	const workers = 100
	n := 20000
	if v := os.Getenv("WXN_BENCH_RECIPIENTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	minRatio := 0.0
	if v := os.Getenv("WXN_BENCH_MIN_RATIO"); v != "" {
		fmt.Sscan(v, &minRatio)
	}
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		for _, backend := range []string{"bolt", "bolt-nosync", "redis"} {
			b.Run(fmt.Sprintf("%dms/%s", latency.Milliseconds(), backend), func(b *testing.B) {
				raws := []*batchBench{newBatchBench(b, openBolt(b, true), n, latency, workers), newBatchBench(b, openBolt(b, true), n, latency, workers)}
				var st store.Store
				switch backend {
				case "bolt":
					st = openBolt(b, false)
				case "bolt-nosync":
					st = openBolt(b, true)
				default:
					st = openRedis(b)
				}
				bb := newBatchBench(b, st, n, latency, workers)
				var rawRate, rawAllocs, rawCPU float64
				for i, raw := range raws {
					if i == 1 {
						var ops float64
						m := measure(n, "batch", func() { _, ops = bb.run(b) })
						b.ReportMetric(m.rate, "sends/s")
						b.ReportMetric(m.allocs, "allocs/recipient")
						b.ReportMetric(m.cpu, "cpu-ns/recipient")
						b.ReportMetric(1e9/m.rate, "ns/recipient")
						b.ReportMetric(ops, "store-ops/recipient")
						defer func() { // once both pools ran
							ratio := m.rate / (rawRate / 2)
							b.ReportMetric(ratio, "ratio-to-raw")
							if minRatio > 0 && ratio < minRatio {
								b.Errorf("the batch reached %.0f%% of the raw pool's rate (%.0f of %.0f sends/s), want >= %.0f%%",
									100*ratio, m.rate, rawRate/2, 100*minRatio)
							}
						}()
					}
					m := measure(n, "raw", func() { raw.pool(b, workers) })
					rawRate, rawAllocs, rawCPU = rawRate+m.rate, rawAllocs+m.allocs/2, rawCPU+m.cpu/2
					raw.fake.Close()
				}
				b.ReportMetric(rawRate/2, "raw-sends/s")
				b.ReportMetric(rawAllocs, "raw-allocs/send")
				b.ReportMetric(rawCPU, "raw-cpu-ns/send")
			})
		}
	}
}

// phase is what measure saw of n sends.
type phase struct{ rate, allocs, cpu float64 }

// measure runs f, which makes n sends, under the profile label phase=label
// and returns its rate, heap allocations and process CPU time per send.
func measure(n int, label string, f func()) phase {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs, cpu, start := ms.Mallocs, cpuTime(), time.Now()
	pprof.Do(context.Background(), pprof.Labels("phase", label), func(context.Context) { f() })
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	runtime.ReadMemStats(&ms)
	return phase{rate: float64(n) / elapsed.Seconds(), allocs: float64(ms.Mallocs-mallocs) / float64(n), cpu: float64(cpu) / float64(n)}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pool sends to every user with a raw pool of workers goroutines.
func (bb *batchBench) pool(b *testing.B, workers int) {
	b.Helper()
	n := len(bb.openIDs)
	var next atomic.Int64
	var wg sync.WaitGroup
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
}
