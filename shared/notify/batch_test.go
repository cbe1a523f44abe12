package notify_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const (
	appID   = "wxbatchtest"
	leadTID = "lead-tmpl-id"
)

// rig is a send path on a real store with the fake WeChat: what a batch
// function instance is.
type rig struct {
	fake    *wechattest.Server
	st      store.Store
	catalog *notify.Catalog
}

func newRig(tb testing.TB, st store.Store) *rig {
	tb.Helper()
	if st == nil {
		bolt, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = bolt.Close() })
		st = bolt
	}
	fake := wechattest.NewServer(wechattest.Options{AppID: appID, Templates: []wechattest.Template{{
		PriTmplID: leadTID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "number2"}},
	}}})
	tb.Cleanup(fake.Close)
	catalog, err := notify.NewCatalog([]notify.Template{{Alias: "lead_digest", ID: leadTID,
		Keywords: []notify.Keyword{{Name: "thing1"}, {Name: "number2"}}}})
	if err != nil {
		tb.Fatal(err)
	}
	return &rig{fake: fake, st: st, catalog: catalog}
}

// service is one function instance: its own WeChat client and token cache,
// the shared store.
func (r *rig) service(tb testing.TB, st store.Store, opts notify.BatchOptions) *notify.Service {
	return r.serviceLease(tb, st, opts, 5*time.Second)
}

// serviceLease is service with another send lease: how long a send in
// flight holds its idempotency key against a duplicate.
func (r *rig) serviceLease(tb testing.TB, st store.Store, opts notify.BatchOptions, lease time.Duration) *notify.Service {
	tb.Helper()
	cfg := wechat.Config{AppID: appID, Secret: r.fake.Secret(), BaseURL: r.fake.URL()}
	tokens, err := wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Tokens = tokens
	wx, err := wechat.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	sessions, _ := notify.NewSessions(make([]byte, 32), time.Hour, nil)
	svc, err := notify.New(notify.Options{AppID: appID, Store: st, WeChat: wx, Catalog: r.catalog, Sessions: sessions,
		SendLease: lease, Batch: opts})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// users makes n users; the first withCredit get one accepted popup each,
// on WeChat's side and in the ledger.
func (r *rig) users(tb testing.TB, svc *notify.Service, n, withCredit int) []string {
	tb.Helper()
	ctx := context.Background()
	out := make([]string, n)
	for i := range n {
		out[i] = r.fake.OpenID(fmt.Sprintf("user%05d", i))
		if i < withCredit {
			res, err := r.fake.Subscribe(out[i], map[string]string{leadTID: "accept"})
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := svc.RecordReport(ctx, out[i], notify.Report{Result: map[string]string{leadTID: res[leadTID].(string)}}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

func batchOf(openIDs []string, key string) notify.BatchRequest {
	req := notify.BatchRequest{Template: "lead_digest", Data: map[string]string{"thing1": "Daily leads"}, IdempotencyKey: key}
	for i, o := range openIDs {
		req.Recipients = append(req.Recipients, notify.BatchRecipient{OpenID: o, Data: map[string]string{"number2": fmt.Sprint(i % 50)}})
	}
	return req
}

// checkExactlyOnce checks WeChat's truth: every user with a credit got
// exactly one message, the others none, and the counters say the same.
func checkExactlyOnce(tb testing.TB, r *rig, b notify.Batch, openIDs []string, withCredit int) {
	tb.Helper()
	for i, o := range openIDs {
		want := 0
		if i < withCredit {
			want = 1
		}
		if got := len(r.fake.Messages(o)); got != want {
			tb.Fatalf("user %d got %d messages, want %d", i, got, want)
		}
	}
	if b.Status != notify.BatchDone || b.Sent != withCredit || b.Skipped != len(openIDs)-withCredit || b.Failed != 0 ||
		b.Unknown != 0 || b.Pending() != 0 || b.Total != len(openIDs) {
		tb.Fatalf("batch: got %+v, want done with sent %d skipped %d", b, withCredit, len(openIDs)-withCredit)
	}
	if got := r.fake.Delivered(); got != withCredit {
		tb.Fatalf("messages delivered in all: got %d, want %d", got, withCredit)
	}
}

func TestBatchSendsOncePerRecipient(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, Workers: 8, PageSize: 7})
	openIDs := r.users(t, svc, 40, 30)
	ctx := context.Background()
	req := batchOf(openIDs, "digest-1")
	req.Recipients = append(req.Recipients, req.Recipients[0]) // a duplicate gets one message
	b, err := svc.CreateBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != notify.BatchScheduled || b.Total != 40 || b.Pages != 6 {
		t.Fatalf("created: got %+v, want scheduled, 40 recipients in 6 pages", b)
	}
	again, err := svc.CreateBatch(ctx, req)
	if err != nil || again.ID != b.ID {
		t.Fatalf("same key, same payload: got %v %v, want the same batch %s", again.ID, err, b.ID)
	}
	other := batchOf(openIDs[:3], "digest-1")
	if _, err := svc.CreateBatch(ctx, other); notify.CodeOf(err) != notify.CodeConflict {
		t.Fatalf("same key, other payload: got %v, want conflict", err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	done, err := svc.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, r, done, openIDs, 30)
	// A later tick finds nothing to do.
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r.fake.Delivered() != 30 {
		t.Fatalf("a second tick sent again: %d delivered", r.fake.Delivered())
	}
}

func TestBatchValidationNamesTheRecipient(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{})
	req := batchOf([]string{"o1", "o2", "o3"}, "")
	req.Recipients[2].Data = map[string]string{"number2": "seven"}
	_, err := svc.CreateBatch(context.Background(), req)
	var e *notify.Error
	if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Field != "recipients[2].data.number2" {
		t.Fatalf("got %v, want bad_request on recipients[2].data.number2", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*notify.BatchRequest)
		field string
	}{
		{"NoRecipients", func(r *notify.BatchRequest) { r.Recipients = nil }, "recipients"},
		{"BothKinds", func(r *notify.BatchRequest) { r.Audience = "consenting" }, "audience"},
		{"UnknownAudience", func(r *notify.BatchRequest) { r.Recipients, r.Audience = nil, "everyone" }, "audience"},
		{"UnknownTemplate", func(r *notify.BatchRequest) { r.Template = "nope" }, "template"},
		{"BadRecipient", func(r *notify.BatchRequest) { r.Recipients[1] = notify.BatchRecipient{} }, "recipients[1].to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := batchOf([]string{"o1", "o2"}, "")
			tc.edit(&req)
			_, err := svc.CreateBatch(context.Background(), req)
			if !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("got %v, want an error on %s", err, tc.field)
			}
		})
	}
}

func TestBatchAudienceConsenting(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, PageSize: 4})
	openIDs := r.users(t, svc, 12, 9)
	ctx := context.Background()
	// One of them spent their credit meanwhile: no longer in the audience.
	if n, err := svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: openIDs[0]}, Template: "lead_digest",
		Data: map[string]string{"thing1": "x", "number2": "1"}}); err != nil || n.Status != notify.StatusSent {
		t.Fatalf("send: %v %v", n.Status, err)
	}
	b, err := svc.CreateBatch(ctx, notify.BatchRequest{Template: "lead_digest", Audience: notify.AudienceConsenting,
		Data: map[string]string{"thing1": "Daily leads", "number2": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 8 {
		t.Fatalf("audience size: got %d, want 8", b.Total)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	done, _ := svc.Batch(ctx, b.ID)
	if done.Status != notify.BatchDone || done.Sent != 8 || done.Skipped != 0 || done.Total != 8 {
		t.Fatalf("audience batch: got %+v, want done with 8 sent, none skipped", done)
	}
	for i, o := range openIDs {
		want := 0
		if i < 9 {
			want = 1
		}
		if i == 0 {
			want = 1 // the earlier single send
		}
		if got := len(r.fake.Messages(o)); got != want {
			t.Fatalf("user %d: got %d messages, want %d", i, got, want)
		}
	}
}

func TestBatchCancel(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000})
	openIDs := r.users(t, svc, 5, 5)
	ctx := context.Background()
	req := batchOf(openIDs, "")
	req.NotBefore = time.Now().Add(time.Hour)
	b, err := svc.CreateBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Batch(ctx, b.ID); got.Status != notify.BatchScheduled || r.fake.Delivered() != 0 {
		t.Fatalf("before notBefore: got %s and %d delivered, want scheduled and none", got.Status, r.fake.Delivered())
	}
	c, err := svc.CancelBatch(ctx, b.ID)
	if err != nil || c.Status != notify.BatchCancelled {
		t.Fatalf("cancel: got %v %v", c.Status, err)
	}
	if _, err := svc.CancelBatch(ctx, "bat_nope"); notify.CodeOf(err) != notify.CodeNotFound {
		t.Fatalf("cancel unknown: got %v, want not_found", err)
	}
}

// TestBatchCancelStopsWithinAPage cancels a running batch: it stops at the
// next page it reads, with the pages it sent counted. The runner reads a
// page while the last sends of the one before are under way, so a cancel
// that comes just after it read the batch record lets that page go out
// too: at most one page and the workers' sends in flight after the cancel.
func TestBatchCancelStopsWithinAPage(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 200, Workers: 4, PageSize: 10})
	openIDs := r.users(t, svc, 200, 200)
	ctx := context.Background()
	b, err := svc.CreateBatch(ctx, batchOf(openIDs, ""))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.RunBatches(ctx, time.Now().Add(time.Minute)) }()
	for r.fake.Delivered() < 25 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := svc.CancelBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	atCancel := r.fake.Delivered()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Batch(ctx, b.ID)
	delivered := r.fake.Delivered()
	if got.Status != notify.BatchCancelled || delivered > atCancel+10+4 || got.Sent != delivered {
		t.Fatalf("after cancel: status %s, %d delivered (%d at cancel), %d counted; want cancelled, at most one more page and 4 in flight, all counted",
			got.Status, delivered, atCancel, got.Sent)
	}
}

// TestBatchInterruptedG6 is G6: a 2,000-recipient batch interrupted at
// random points - deadlines reached mid-page, checkpoints lost after the
// sends (the process killed between the WeChat calls and the checkpoint),
// store errors on 5% of all calls - by two runners ticking at once, resumed
// until done: every recipient with a credit got exactly one message, none
// twice, and the counters equal WeChat's truth.
func TestBatchInterruptedG6(t *testing.T) {
	if testing.Short() {
		t.Skip("G6 soak skipped in -short mode")
	}
	base, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	r := newRig(t, base)
	const n, withCredit = 2000, 1900
	opts := notify.BatchOptions{Rate: 20000, Workers: 16, PageSize: 50, Lease: 400 * time.Millisecond, Margin: 10 * time.Millisecond}
	setup := r.service(t, base, opts)
	openIDs := r.users(t, setup, n, withCredit)
	b, err := setup.CreateBatch(context.Background(), batchOf(openIDs, "g6"))
	if err != nil {
		t.Fatal(err)
	}
	// Two instances, each on its own faulty view of the store.
	var runners []*notify.Service
	var faults []*storetest.Faulty
	for i := range 2 {
		f := storetest.NewFaulty(base, uint64(i+1))
		f.SetRate(0.05, 0, 0)
		faults = append(faults, f)
		runners = append(runners, r.service(t, f, opts))
	}
	// Lost checkpoints: a runner's write of the batch record fails after
	// its page was sent, now and then - on both runners, so that faults are
	// injected whichever of them holds the lease most.
	var ckpts []*storetest.Faulty
	for i := range runners {
		ckpt := storetest.NewFaulty(faults[i], uint64(99+i))
		ckpt.Only(func(op string, k store.Key) bool {
			return op == "put" && strings.HasPrefix(k.Partition, "bat|") && (k.Sort == "m" || strings.HasPrefix(k.Sort, "s|"))
		})
		ckpt.SetRate(0.3, 0, 0)
		ckpts = append(ckpts, ckpt)
		runners[i] = r.service(t, ckpt, opts)
	}

	var wg sync.WaitGroup
	var ticks, tickErrs sync.Map
	deadline := time.Now().Add(90 * time.Second)
	for i, svc := range runners {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(deadline) {
				cur, err := setup.Batch(context.Background(), b.ID)
				if err == nil && cur.Status == notify.BatchDone {
					return
				}
				// A tick whose invocation ends soon: mid-page, often.
				tickDeadline := time.Now().Add(opts.Margin + time.Duration(rng.IntN(120))*time.Millisecond)
				err = svc.RunBatches(context.Background(), tickDeadline)
				c, _ := ticks.LoadOrStore(i, new(int))
				*c.(*int)++
				if err != nil {
					e, _ := tickErrs.LoadOrStore(i, new(int))
					*e.(*int)++
				}
			}
		})
	}
	wg.Wait()
	done, err := setup.Batch(context.Background(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	t0, _ := ticks.Load(0)
	t1, _ := ticks.Load(1)
	lost := ckpts[0].Faults() + ckpts[1].Faults()
	t.Logf("ticks: %d and %d; store faults injected: %d + %d, lost checkpoints: %d",
		*t0.(*int), *t1.(*int), faults[0].Faults(), faults[1].Faults(), lost)
	if lost == 0 || faults[0].Faults()+faults[1].Faults() == 0 {
		t.Fatal("no faults were injected: the test proves nothing")
	}
	checkExactlyOnce(t, r, done, openIDs, withCredit)
}

// TestBatchRateLimit: the measured sends/s never exceeds the configured
// rate by more than 5% over any one-second window.
func TestBatchRateLimit(t *testing.T) {
	r := newRig(t, nil)
	const rate = 40.0
	svc := r.service(t, r.st, notify.BatchOptions{Rate: rate, Workers: 16, PageSize: 20})
	openIDs := r.users(t, svc, 120, 120)
	ctx := context.Background()
	if _, err := svc.CreateBatch(ctx, batchOf(openIDs, "")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var at []time.Time
	for _, m := range r.fake.AllMessages() {
		at = append(at, m.SentAt)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	if len(at) != 120 {
		t.Fatalf("sent %d, want 120", len(at))
	}
	// The limiter lets the k-th send go no sooner than k/rate after the
	// start. WeChat sees each send some delay after that (on a loaded 2-core
	// machine, a tenth of a second now and then), never before, so the k-th
	// message WeChat received, in order of arrival, came no sooner either:
	// delays can bunch arrivals into what looks like a burst in a window,
	// but can never bring one ahead of the schedule.
	for k, got := range at {
		if due := time.Duration(float64(k) / rate * 0.95 * float64(time.Second)); got.Sub(start) < due {
			t.Fatalf("message %d arrived %v after the start, before the %.0f/s schedule allows (%v, -5%%)", k, got.Sub(start), rate, due)
		}
	}
	if elapsed < time.Duration(float64(time.Second)*119/rate) {
		t.Fatalf("120 sends took %v, faster than %v/s allows", elapsed, rate)
	}
	t.Logf("120 sends at %.0f/s configured: %v in all", rate, elapsed)
}
