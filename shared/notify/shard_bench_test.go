package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// The multi-runner benchmark: runner processes (this test binary run again
// with WXN_SHARD_CHILD set) share only Redis and the fake WeChat, and take
// shards from a queue the benchmark keeps, one at a time each, as Lambda
// functions take SQS messages.

// shardChildSpec is what a runner process is told.
type shardChildSpec struct {
	Prefix  string  `json:"prefix"`
	WeChat  string  `json:"wechat"`
	Secret  string  `json:"secret"`
	Rate    float64 `json:"rate"`
	Workers int     `json:"workers"`
}

func init() {
	spec := os.Getenv("WXN_SHARD_CHILD")
	if spec == "" {
		return
	}
	os.Exit(shardChild(spec))
}

const shardBenchApp = "wxshardbench"

func shardBenchCatalog() *Catalog {
	c, _ := NewCatalog([]Template{{Alias: "lead_digest", ID: benchTmpl, Keywords: []Keyword{{Name: "thing1"}, {Name: "number2"}}}})
	return c
}

func shardBenchService(st store.Store, wechatURL, secret string, opts BatchOptions) (*Service, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: opts.Workers + 8}}
	cfg := wechat.Config{AppID: shardBenchApp, Secret: secret, BaseURL: wechatURL, HTTPClient: hc}
	tokens, err := wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{})
	if err != nil {
		return nil, err
	}
	cfg.Tokens = tokens
	wx, err := wechat.New(cfg)
	if err != nil {
		return nil, err
	}
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, nil)
	return New(Options{AppID: shardBenchApp, Store: st, WeChat: wx, Catalog: shardBenchCatalog(), Sessions: sessions, Batch: opts})
}

// shardChild is one runner: it reads shard refs, one JSON a line, runs
// each and answers "ok" or the error, a line each.
func shardChild(raw string) int {
	var spec shardChildSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	st, err := redisstore.Open(testredis.URL(), spec.Prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	svc, err := shardBenchService(st, spec.WeChat, spec.Secret, BatchOptions{Rate: spec.Rate, RateScope: RateShared,
		Workers: spec.Workers, Margin: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var ref ShardRef
		answer := "ok"
		if err := json.Unmarshal(in.Bytes(), &ref); err != nil {
			answer = "bad ref: " + err.Error()
		} else if err := svc.RunShard(context.Background(), ref, time.Now().Add(time.Hour)); err != nil {
			answer = "error: " + err.Error()
		}
		fmt.Fprintln(out, answer)
		if err := out.Flush(); err != nil {
			return 1
		}
	}
	return 0
}

// deliveryCounter stands in front of the fake WeChat and counts each
// user's accepted messages, and when they came.
type deliveryCounter struct {
	fake  http.Handler
	index map[string]int
	got   []atomic.Int32
	start time.Time
	// ticks counts the accepted messages of each 100 ms since start.
	ticks []atomic.Int32
}

const counterTick = 100 * time.Millisecond

func (d *deliveryCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/cgi-bin/message/subscribe/send" {
		d.fake.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	d.fake.ServeHTTP(rec, r)
	var req struct {
		ToUser string `json:"touser"`
	}
	var ans struct {
		Errcode int `json:"errcode"`
	}
	_ = json.Unmarshal(body, &req)
	if json.Unmarshal(rec.Body.Bytes(), &ans) == nil && ans.Errcode == 0 {
		if i, ok := d.index[req.ToUser]; ok {
			d.got[i].Add(1)
		}
		if t := int(time.Since(d.start) / counterTick); t >= 0 && t < len(d.ticks) {
			d.ticks[t].Add(1)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// procQueue is the benchmark's queue: shards handed to it go to whichever
// runner process is free.
type procQueue struct {
	refs chan ShardRef
}

func (q *procQueue) DispatchShards(_ context.Context, refs []ShardRef) error {
	for _, r := range refs {
		q.refs <- r
	}
	return nil
}

type shardBenchResult struct {
	// rate is the messages per second WeChat accepted while every runner
	// had shards to send: from the first message to the second the first
	// runner found the queue empty. overall is first to last message.
	rate, overall float64
	// peak is the most messages WeChat accepted in one second.
	peak       float64
	wall       time.Duration
	duplicates int
	lost       int
}

// rates reads the counter's ticks between from and to (ticks since start).
func (d *deliveryCounter) rates(until time.Time) (steady, overall, peak float64) {
	n := make([]int, len(d.ticks))
	first, last := -1, -1
	for i := range d.ticks {
		n[i] = int(d.ticks[i].Load())
		if n[i] > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0, 0
	}
	sum := func(a, b int) (s int) {
		for i := a; i <= b; i++ {
			s += n[i]
		}
		return s
	}
	overall = float64(sum(first, last)) / (float64(last-first+1) * counterTick.Seconds())
	end := min(last, int(until.Sub(d.start)/counterTick)-1)
	if end <= first {
		end = last
	}
	steady = float64(sum(first, end)) / (float64(end-first+1) * counterTick.Seconds())
	per := int(time.Second / counterTick)
	for i := first; i+per-1 <= last; i++ {
		peak = max(peak, float64(sum(i, i+per-1)))
	}
	return steady, overall, peak
}

// runShardBench sends an audience batch of users to runners processes.
func runShardBench(b *testing.B, users, runners, workers int, rate float64, latency time.Duration) shardBenchResult {
	b.Helper()
	client := testredis.Client(b)
	prefix := testredis.Prefix(b, client)
	st := redisstore.New(client, prefix)
	fake := wechattest.NewServer(wechattest.Options{AppID: shardBenchApp, DiscardMessages: true, Templates: []wechattest.Template{{
		PriTmplID: benchTmpl, Title: "线索日报", Type: 2, Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "number2"}},
	}}})
	b.Cleanup(fake.Close)
	if latency > 0 {
		if err := fake.Inject(wechattest.Fault{API: wechattest.APISend, Latency: latency}); err != nil {
			b.Fatal(err)
		}
	}
	counter := &deliveryCounter{fake: fake.Handler(), index: make(map[string]int, users), got: make([]atomic.Int32, users),
		ticks: make([]atomic.Int32, int(2*time.Hour/counterTick))}
	front := httptest.NewServer(counter)
	b.Cleanup(front.Close)
	queue := &procQueue{refs: make(chan ShardRef, MaxBatchShards)}
	svc, err := shardBenchService(st, front.URL, fake.Secret(), BatchOptions{Rate: rate, RateScope: RateShared,
		Workers: workers, ShardSize: max(500, users/(4*runners)), Dispatcher: queue})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	openIDs := make([]string, users)
	for u := range users {
		openIDs[u] = fake.OpenID(fmt.Sprintf("user%07d", u))
		counter.index[openIDs[u]] = u
		if _, err := fake.Subscribe(openIDs[u], map[string]string{benchTmpl: "accept"}); err != nil {
			b.Fatal(err)
		}
	}
	// Each user's credit and audience entry, by many writers at once.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < users; i = int(next.Add(1)) - 1 {
				if _, err := st.Put(ctx, svc.creditsKey(openIDs[i], benchTmpl), []byte("1"), store.PutOptions{}); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.Put(ctx, store.Key{Partition: svc.audiencePartition(benchTmpl), Sort: openIDs[i] + audienceSep + "bench"}, []byte("1"), store.PutOptions{}); err != nil {
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
	batch, err := svc.CreateBatch(ctx, BatchRequest{Template: "lead_digest", Audience: AudienceConsenting,
		Data: map[string]string{"thing1": "Daily leads", "number2": "1"}})
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(shardChildSpec{Prefix: prefix, WeChat: front.URL, Secret: fake.Secret(), Rate: rate, Workers: workers})
	var procs sync.WaitGroup
	errs := make(chan error, runners)
	var dryOnce sync.Once
	var dry time.Time // when a runner first found no shard left
	var feeders []func()
	for range runners {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "WXN_SHARD_CHILD="+string(spec))
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		feeders = append(feeders, func() {
			answers := bufio.NewScanner(stdout)
			for {
				var ref ShardRef
				select {
				case r, ok := <-queue.refs:
					if !ok {
						_ = stdin.Close()
						_ = cmd.Wait()
						return
					}
					ref = r
				default:
					dryOnce.Do(func() { dry = time.Now() })
					r, ok := <-queue.refs
					if !ok {
						_ = stdin.Close()
						_ = cmd.Wait()
						return
					}
					ref = r
				}
				line, _ := json.Marshal(ref)
				if _, err := fmt.Fprintf(stdin, "%s\n", line); err != nil || !answers.Scan() {
					errs <- fmt.Errorf("runner: %v %v", err, answers.Err())
					break
				}
				if a := answers.Text(); a != "ok" {
					errs <- errors.New(a)
				}
			}
		})
	}
	start := time.Now()
	counter.start = start
	if err := svc.RunBatches(ctx, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	for _, f := range feeders { // the shards are in the queue
		procs.Go(f)
	}
	var done Batch
	for {
		if done, err = svc.Batch(ctx, batch.ID); err != nil {
			b.Fatal(err)
		}
		if done.Status == BatchDone {
			break
		}
		select {
		case err := <-errs:
			b.Fatal(err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	wall := time.Since(start)
	close(queue.refs)
	procs.Wait()
	res := shardBenchResult{wall: wall}
	for i := range counter.got {
		switch n := counter.got[i].Load(); {
		case n == 0:
			res.lost++
		case n > 1:
			res.duplicates += int(n - 1)
		}
	}
	if dry.IsZero() {
		dry = time.Now()
	}
	res.rate, res.overall, res.peak = counter.rates(dry)
	if done.Sent != users-res.lost || res.duplicates != 0 || res.lost != 0 {
		b.Fatalf("%d users: %d duplicates, %d lost, the batch says %+v", users, res.duplicates, res.lost, done)
	}
	return res
}

func reportShardBench(b *testing.B, r shardBenchResult) {
	b.ReportMetric(r.rate, "sends/s")
	b.ReportMetric(r.overall, "overall-sends/s")
	b.ReportMetric(r.peak, "peak-1s")
	b.ReportMetric(r.wall.Seconds(), "wall-s")
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkShardRunners: one runner process, then 8, sending an audience
// batch of WXN_BENCH_RECIPIENTS (default 20,000) users on Redis with the
// fake WeChat answering after WXN_BENCH_LATENCY_MS (default 50) and
// WXN_BENCH_WORKERS (default 8) workers a runner, the rate limit not
// binding; then 8 with the limit binding at half of what they reached.
// It fails on any duplicate or loss (WeChat's deliveries are counted by
// user), and when WXN_BENCH_MIN_SCALE is set, on 8 runners below that
// many times one runner's rate, or a bound rate more than 5% over the
// limit.
func BenchmarkShardRunners(b *testing.B) {
	users := benchEnvInt("WXN_BENCH_RECIPIENTS", 20_000)
	workers := benchEnvInt("WXN_BENCH_WORKERS", 8)
	latency := time.Duration(benchEnvInt("WXN_BENCH_LATENCY_MS", 50)) * time.Millisecond
	var one, eight float64
	b.Run("runners=1", func(b *testing.B) {
		for range b.N {
			r := runShardBench(b, users, 1, workers, 1e5, latency)
			one = r.rate
			reportShardBench(b, r)
		}
	})
	b.Run("runners=8", func(b *testing.B) {
		for range b.N {
			r := runShardBench(b, users, 8, workers, 1e5, latency)
			eight = r.rate
			reportShardBench(b, r)
			if one > 0 {
				b.ReportMetric(eight/one, "x-one-runner")
			}
		}
	})
	if one > 0 && eight > 0 {
		limit := float64(int(eight / 2))
		var bound float64
		b.Run(fmt.Sprintf("runners=8,limit=%.0f", limit), func(b *testing.B) {
			for range b.N {
				r := runShardBench(b, users, 8, workers, limit, latency)
				bound = r.rate
				reportShardBench(b, r)
				b.ReportMetric(r.rate/limit, "x-limit")
				b.ReportMetric(r.peak/limit, "peak-x-limit")
			}
		})
		if min := os.Getenv("WXN_BENCH_MIN_SCALE"); min != "" {
			want, _ := strconv.ParseFloat(min, 64)
			if eight/one < want {
				b.Errorf("8 runners reached %.0f/s, %.2fx one runner's %.0f/s, want >= %.1fx", eight, eight/one, one, want)
			}
			if bound > limit*1.05 || bound < limit*0.95 {
				b.Errorf("with the limit at %.0f/s, 8 runners sent %.0f/s: want within 5%%", limit, bound)
			}
		}
	}
}
