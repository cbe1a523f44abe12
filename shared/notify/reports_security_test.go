package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// testClock is a settable clock shared by the service and the store, so
// that windows and expiries move together.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// hookStore lets a test intercept the Adds (and AddOnces) of pairing
// balances ("p|<tmpl>") and the Puts of consent states ("c|<tmpl>|m", also
// in a Write): fail
// them, or hold them to stage races.
type hookStore struct {
	store.Store
	mu     sync.Mutex
	onAdd  func(k store.Key, delta int64) error
	onPut  func(k store.Key) error
	adding atomic.Int32 // pairing Adds inside the hook right now
}

func (h *hookStore) setOnPut(f func(k store.Key) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onPut = f
}

func (h *hookStore) Put(ctx context.Context, k store.Key, v []byte, opts store.PutOptions) (int64, error) {
	h.mu.Lock()
	f := h.onPut
	h.mu.Unlock()
	if f != nil && strings.HasPrefix(k.Sort, "c|") && strings.HasSuffix(k.Sort, "|m") {
		if err := f(k); err != nil {
			return 0, err
		}
	}
	return h.Store.Put(ctx, k, v, opts)
}

// Write fails as Put does when it puts a consent state (which a Write
// carries with its timeline event and the funnel's counters).
func (h *hookStore) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	h.mu.Lock()
	f := h.onPut
	h.mu.Unlock()
	for _, op := range ops {
		if f != nil && op.Kind == store.PutKind && strings.HasPrefix(op.Key.Sort, "c|") && strings.HasSuffix(op.Key.Sort, "|m") {
			if err := f(op.Key); err != nil {
				return nil, err
			}
		}
	}
	return h.Store.Write(ctx, ops)
}

func (h *hookStore) setOnAdd(f func(k store.Key, delta int64) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onAdd = f
}

func (h *hookStore) Add(ctx context.Context, k store.Key, delta, lo, hi int64) (int64, error) {
	h.mu.Lock()
	f := h.onAdd
	h.mu.Unlock()
	if f != nil && strings.HasPrefix(k.Sort, "p|") {
		h.adding.Add(1)
		err := f(k, delta)
		h.adding.Add(-1)
		if err != nil {
			return 0, err
		}
	}
	return h.Store.Add(ctx, k, delta, lo, hi)
}

func (h *hookStore) AddOnce(ctx context.Context, k store.Key, delta, lo, hi int64, op store.CounterOp) (int64, error) {
	h.mu.Lock()
	f := h.onAdd
	h.mu.Unlock()
	if f != nil && strings.HasPrefix(k.Sort, "p|") {
		h.adding.Add(1)
		err := f(k, delta)
		h.adding.Add(-1)
		if err != nil {
			return 0, err
		}
	}
	return h.Store.AddOnce(ctx, k, delta, lo, hi, op)
}

// secRig is one service on a bolt store, with a test clock and captured logs.
type secRig struct {
	*rig
	clock *testClock
	hooks *hookStore
	svc   *notify.Service
	logs  *lockedbuf.Buffer
	tmpl  notify.Template
}

const pairWindow = 10 * time.Minute

func newSecRig(tb testing.TB, edit func(*notify.Options)) *secRig {
	tb.Helper()
	clock := newTestClock()
	bolt, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = bolt.Close() })
	hooks := &hookStore{Store: bolt}
	r := newRig(tb, hooks)
	cfg := wechat.Config{AppID: appID, Secret: r.fake.Secret(), BaseURL: r.fake.URL()}
	tokens, err := wechat.NewStoreTokenSource(hooks, cfg, wechat.TokenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Tokens = tokens
	wx, err := wechat.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	sessions, err := notify.NewSessions(bytes.Repeat([]byte("k"), 32), time.Hour, clock.Now)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &lockedbuf.Buffer{}
	opts := notify.Options{AppID: appID, Store: hooks, WeChat: wx, Catalog: r.catalog, Sessions: sessions,
		Now: clock.Now, PairWindow: pairWindow, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if edit != nil {
		edit(&opts)
	}
	svc, err := notify.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, _ := r.catalog.Lookup("lead_digest")
	return &secRig{rig: r, clock: clock, hooks: hooks, svc: svc, logs: logs, tmpl: tmpl}
}

func withPush(o *notify.Options) { o.PushConfigured = true }

func (s *secRig) credits(tb testing.TB, openID string) int64 {
	tb.Helper()
	c, err := s.svc.Consent(context.Background(), openID, s.tmpl)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Credits
}

func (s *secRig) wantCredits(tb testing.TB, openID string, want int64, when string) {
	tb.Helper()
	if got := s.credits(tb, openID); got != want {
		tb.Fatalf("credits %s: got %d, want %d", when, got, want)
	}
}

// report is the mini program's POST /v1/consents of one accepted popup.
func (s *secRig) report(tb testing.TB, openID string) {
	tb.Helper()
	if _, err := s.svc.RecordReport(context.Background(), openID, notify.Report{Result: map[string]string{leadTID: "accept"}}); err != nil {
		tb.Fatalf("report: %v", err)
	}
}

// popupEvent is WeChat's subscribe_msg_popup_event of one accepted popup.
func popupEvent(openID string, created int64) wechat.PushEvent {
	return wechat.PushEvent{ToUserName: "gh_test", FromUserName: openID, CreateTime: created, MsgType: "event",
		Event: wechat.EventSubscribePopup, Items: []wechat.PushItem{{TemplateID: leadTID, SubscribeStatus: "accept", PopupScene: "0"}}}
}

func (s *secRig) event(tb testing.TB, openID string, created int64) {
	tb.Helper()
	if err := s.svc.ApplyPush(context.Background(), popupEvent(openID, created)); err != nil {
		tb.Fatalf("popup event: %v", err)
	}
}

func (s *secRig) sweep(tb testing.TB, want int) {
	tb.Helper()
	got, err := s.svc.SweepReports(context.Background())
	if err != nil {
		tb.Fatalf("SweepReports: %v", err)
	}
	if got != want {
		tb.Fatalf("SweepReports withdrew %d credits, want %d", got, want)
	}
}

// With push configured, a client's accept that no popup event confirms in
// the window is withdrawn; confirmed ones are kept in either order; a
// real popup whose event comes late still counts once.
func TestReportWithoutPopupEventIsWithdrawn(t *testing.T) {
	s := newSecRig(t, withPush)
	const o = "o-liar"
	s.report(t, o)
	s.wantCredits(t, o, 1, "after the report")
	s.sweep(t, 0)
	s.clock.advance(pairWindow - time.Second)
	s.sweep(t, 0)
	s.wantCredits(t, o, 1, "within the window")
	s.clock.advance(2 * time.Second)
	s.sweep(t, 1)
	s.wantCredits(t, o, 0, "after the window")
	s.sweep(t, 0)

	// The popup was real after all and its event is late: it counts once.
	s.event(t, o, 1)
	s.wantCredits(t, o, 1, "after a late popup event")
	s.clock.advance(2 * pairWindow)
	s.sweep(t, 0)
	s.wantCredits(t, o, 1, "after a later sweep")

	// Confirmed within the window, report first or event first: kept.
	s.report(t, o)
	s.event(t, o, 2)
	s.event(t, o, 3)
	s.report(t, o)
	s.wantCredits(t, o, 3, "after two confirmed popups")
	s.clock.advance(pairWindow + time.Second)
	s.sweep(t, 0)
	s.wantCredits(t, o, 3, "after sweeping confirmed popups")
	if logs := s.logs.String(); strings.Contains(logs, o) || !strings.Contains(logs, notify.HashID(o)) {
		t.Fatalf("logs: want the withdrawal logged with the hashed openid only, got:\n%s", logs)
	}
}

// Three reports, two events: one credit is withdrawn, whichever report it
// was; a report for another template or user is independent.
func TestSweepWithdrawsOnlyTheUnmatched(t *testing.T) {
	s := newSecRig(t, withPush)
	for range 3 {
		s.report(t, "o-a")
	}
	s.report(t, "o-b")
	s.event(t, "o-a", 1)
	s.clock.advance(pairWindow / 2)
	s.event(t, "o-a", 2)
	s.event(t, "o-b", 1)
	s.clock.advance(pairWindow)
	s.sweep(t, 1)
	s.wantCredits(t, "o-a", 2, "of o-a")
	s.wantCredits(t, "o-b", 1, "of o-b")
}

// A credit already spent cannot be taken back: the ledger never goes
// negative, and WeChat's own ledger judged the send.
func TestSweepAfterTheCreditWasSpent(t *testing.T) {
	s := newSecRig(t, withPush)
	o := s.fake.OpenID("spender")
	if _, err := s.fake.Subscribe(o, map[string]string{leadTID: "accept"}); err != nil {
		t.Fatal(err)
	}
	s.report(t, o) // the push of this popup is lost
	n, err := s.svc.Send(context.Background(), notify.SendRequest{To: notify.Recipient{OpenID: o}, Template: "lead_digest",
		Data: map[string]string{"thing1": "Acme", "number2": "1"}})
	if err != nil || n.Status != notify.StatusSent {
		t.Fatalf("send: got %v %v, want sent", n.Status, err)
	}
	s.clock.advance(pairWindow + time.Second)
	s.sweep(t, 1)
	s.wantCredits(t, o, 0, "after sweeping a spent credit")
	if !strings.Contains(s.logs.String(), "already used") {
		t.Fatalf("logs: want the spent credit noted, got:\n%s", s.logs.String())
	}
}

// Sweeps racing with each other and with late popup events: whatever the
// interleaving, every popup WeChat confirmed counts once and nothing else.
func TestSweepRacesWithEventsAndSweeps(t *testing.T) {
	s := newSecRig(t, func(o *notify.Options) { o.PushConfigured, o.ReportsPerMinute = true, -1 })
	const o, reports, events = "o-race", 20, 10
	for range reports {
		s.report(t, o)
	}
	s.clock.advance(pairWindow + time.Second)
	var wg sync.WaitGroup
	var withdrawn atomic.Int64
	for i := range events {
		wg.Go(func() { s.event(t, o, int64(i+1)) })
	}
	for range 3 {
		wg.Go(func() {
			n, err := s.svc.SweepReports(context.Background())
			if err != nil {
				t.Errorf("SweepReports: %v", err)
			}
			withdrawn.Add(int64(n))
		})
	}
	wg.Wait()
	s.wantCredits(t, o, events, "after racing sweeps and events")
	if w := withdrawn.Load(); w < reports-events || w > reports {
		t.Fatalf("withdrawn: got %d, want between %d and %d", w, reports-events, reports)
	}
	s.sweep(t, 0)
}

// Without push nothing can confirm a report: a user's reports are
// rate-limited per minute and their credits capped per template.
func TestReportsWithoutPushAreLimited(t *testing.T) {
	t.Run("RateLimited", func(t *testing.T) {
		s := newSecRig(t, nil)
		for range 10 {
			s.report(t, "o-fast")
		}
		_, err := s.svc.RecordReport(context.Background(), "o-fast", notify.Report{Result: map[string]string{leadTID: "accept"}})
		if notify.CodeOf(err) != notify.CodeRateLimited {
			t.Fatalf("11th report in a minute: got %v, want rate_limited", err)
		}
		s.wantCredits(t, "o-fast", 10, "after a refused report")
		s.report(t, "o-other") // per user
		s.clock.advance(time.Minute)
		s.report(t, "o-fast")
		s.wantCredits(t, "o-fast", 11, "a minute later")
	})
	t.Run("CappedPerTemplate", func(t *testing.T) {
		s := newSecRig(t, func(o *notify.Options) { o.ReportsPerMinute = -1 })
		for range 60 {
			s.report(t, "o-greedy")
		}
		s.wantCredits(t, "o-greedy", 50, "after 60 reports")
	})
	t.Run("CapConfigurable", func(t *testing.T) {
		s := newSecRig(t, func(o *notify.Options) { o.ReportsPerMinute, o.MaxReportCredits = -1, 3 })
		for range 5 {
			s.report(t, "o-greedy")
		}
		s.wantCredits(t, "o-greedy", 3, "after 5 reports with a cap of 3")
	})
	t.Run("PushGrantsBeyondTheReportCap", func(t *testing.T) {
		s := newSecRig(t, func(o *notify.Options) { o.PushConfigured, o.MaxReportCredits = true, 2 })
		for i := range 5 {
			s.event(t, "o-real", int64(i+1))
		}
		s.wantCredits(t, "o-real", 5, "after 5 popup events")
	})
}

// WeChat redelivers an unanswered push up to three times with the same
// parameters: each copy is answered success only once the event is
// applied, and the event is applied exactly once - also when a copy comes
// while the first is still being applied, after the first failed, or while
// the first hangs for good (its instance died): the copy then finishes the
// event itself.
func TestPushRedeliveryAppliedOnce(t *testing.T) {
	errBoom := errors.New("injected store failure")
	t.Run("CopiesAfterSuccess", func(t *testing.T) {
		s := newSecRig(t, withPush)
		for range 4 {
			s.event(t, "o-1", 100)
		}
		s.wantCredits(t, "o-1", 1, "after 4 copies")
	})
	t.Run("FirstFailsCopyApplies", func(t *testing.T) {
		s := newSecRig(t, withPush)
		// The store keeps failing while the first copy is applied (a
		// single failure is tried again inside).
		s.hooks.setOnAdd(func(store.Key, int64) error { return errBoom })
		if err := s.svc.ApplyPush(context.Background(), popupEvent("o-1", 100)); err == nil {
			t.Fatal("first copy: got success, want an error (WeChat must deliver it again)")
		}
		s.hooks.setOnAdd(nil)
		s.wantCredits(t, "o-1", 0, "after the failed first copy")
		s.event(t, "o-1", 100)
		s.event(t, "o-1", 100)
		s.wantCredits(t, "o-1", 1, "after the copies")
	})
	for _, tc := range []struct {
		name     string
		firstErr error // what the first copy's held write finally answers
	}{
		{"CopyWhileFirstApplying", nil},
		{"CopyWhileFirstApplyingThenFirstFails", errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSecRig(t, withPush)
			release := make(chan struct{})
			var held atomic.Bool
			s.hooks.setOnAdd(func(store.Key, int64) error {
				if held.CompareAndSwap(false, true) {
					<-release
					return tc.firstErr
				}
				return nil
			})
			first := make(chan error, 1)
			go func() { first <- s.svc.ApplyPush(context.Background(), popupEvent("o-1", 100)) }()
			waitFor(t, func() bool { return s.hooks.adding.Load() == 1 })
			// The copy does not wait for the first: it applies the event.
			if err := s.svc.ApplyPush(context.Background(), popupEvent("o-1", 100)); err != nil {
				t.Fatalf("copy while the first is held: got %v, want success", err)
			}
			s.wantCredits(t, "o-1", 1, "after the copy")
			close(release)
			// A single store failure is tried again inside: the first copy
			// ends well too, and changes nothing more.
			if err := <-first; err != nil {
				t.Fatalf("first copy: got %v, want success", err)
			}
			s.wantCredits(t, "o-1", 1, "after both copies")
			s.event(t, "o-1", 100)
			s.wantCredits(t, "o-1", 1, "after a third copy")
		})
	}
	t.Run("CopyWhileFirstHangs", func(t *testing.T) {
		s := newSecRig(t, withPush)
		release := make(chan struct{})
		defer close(release)
		var held atomic.Bool
		s.hooks.setOnAdd(func(store.Key, int64) error {
			if held.CompareAndSwap(false, true) {
				<-release
			}
			return nil
		})
		go func() { _ = s.svc.ApplyPush(context.Background(), popupEvent("o-1", 100)) }()
		waitFor(t, func() bool { return s.hooks.adding.Load() == 1 })
		for range 2 {
			if err := s.svc.ApplyPush(context.Background(), popupEvent("o-1", 100)); err != nil {
				t.Fatalf("copy while the first hangs: got %v, want success (the copy finishes the event)", err)
			}
		}
		s.wantCredits(t, "o-1", 1, "after two copies, the first still hanging")
	})
}

// A failure of the bookkeeping after a popup was counted in the pairing
// balance fails the report or the push, and their retry (the report's with
// its Idempotency-Key, WeChat's redelivery) completes it without counting
// the popup a second time: every counter operation is named after the
// report or the push item.
func TestPopupCountedOnceWhenBookkeepingFails(t *testing.T) {
	for _, eventFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("EventFirst=%v", eventFirst), func(t *testing.T) {
			s := newSecRig(t, withPush)
			const o = "o-1"
			event := func() error { return s.svc.ApplyPush(context.Background(), popupEvent(o, 100)) }
			report := func() error {
				_, err := s.svc.RecordReport(context.Background(), o, notify.Report{Result: map[string]string{leadTID: "accept"}, ID: "popup-7"})
				return err
			}
			first, second := event, report
			if !eventFirst {
				first, second = report, event
			}
			if err := first(); err != nil {
				t.Fatal(err)
			}
			s.hooks.setOnPut(func(store.Key) error { return errors.New("injected store failure") })
			if err := second(); err == nil {
				t.Fatal("second with the consent state failing to write: got success, want an error")
			}
			s.hooks.setOnPut(nil)
			for range 2 {
				if err := second(); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			s.wantCredits(t, o, 1, "after one popup, its report and its event, retried")
			s.clock.advance(pairWindow + time.Second)
			s.sweep(t, 0)
			s.wantCredits(t, o, 1, "after the sweep")
		})
	}
}

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every page that is not a mini program path is refused before WeChat.
func TestCheckPageRefusesNonPaths(t *testing.T) {
	for _, page := range []string{
		"javascript:alert(1)", "JavaScript:alert(1)", "https://evil.example/x", "http://evil.example",
		"//evil.example/pages/index", "///pages/index", "weixin://dl/business", "data:text/html,x",
		"../pages/index", "pages/../../etc/passwd", "pages/..", "pages/%2e%2e/index", "%2e%2e/pages",
		"pages/index%2Findex", "pages/in dex", "pages/index ", " pages/index", "pages/index\n", "pages/index\r\nX: y",
		"pages/index\t", "pages\\index", "pages/index#frag", "pages//index", "pages/index/", "/",
		"pages/in\x00dex", "pages/index?a=b c", "pages/index?a=<script>", "pages/index?a=\"x\"", "pages/index?a=b\nc",
		"pages/ïndex", "pages/index?" + strings.Repeat("a", 1024), "\xff\xfe", "?a=b", "pages/index?a=b#c",
	} {
		t.Run(fmt.Sprintf("%q", page), func(t *testing.T) {
			err := notify.CheckPage(page)
			var e *notify.Error
			if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Field != "page" {
				t.Fatalf("CheckPage(%q): got %v, want bad_request on page", page, err)
			}
		})
	}
	for _, page := range []string{"", "pages/index/index", "/pages/index/index", "pages/clue/clue?id=L-1001&from=notify",
		"pkg-a/pages/detail.v2/detail?q=%E4%B8%AD&x=1"} {
		if err := notify.CheckPage(page); err != nil {
			t.Errorf("CheckPage(%q): got %v, want nil", page, err)
		}
	}
}

// A report with an idempotency key is counted once however often it is
// retried; a failure before it was counted releases the key.
func TestReportIdempotencyKey(t *testing.T) {
	s := newSecRig(t, withPush)
	const o = "o-retry"
	report := func(id string) error {
		_, err := s.svc.RecordReport(context.Background(), o, notify.Report{Result: map[string]string{leadTID: "accept"}, ID: id})
		return err
	}
	for range 3 {
		if err := report("popup-1"); err != nil {
			t.Fatal(err)
		}
	}
	s.wantCredits(t, o, 1, "after three copies of one report")
	// The store keeps failing before the report is counted (a single
	// failure is tried again inside): the client's retry counts it.
	s.hooks.setOnAdd(func(store.Key, int64) error { return errors.New("injected store failure") })
	if err := report("popup-2"); err == nil {
		t.Fatal("report with a failing store: got success")
	}
	s.hooks.setOnAdd(nil)
	s.wantCredits(t, o, 1, "after the failed report")
	if err := report("popup-2"); err != nil {
		t.Fatal(err)
	}
	if err := report("popup-2"); err != nil {
		t.Fatal(err)
	}
	s.wantCredits(t, o, 2, "after the retried report")
	for _, bad := range []string{"has space", "\u00e9", strings.Repeat("k", 129)} {
		if err := report(bad); notify.CodeOf(err) != notify.CodeBadRequest {
			t.Fatalf("report id %q: got %v, want bad_request", bad, err)
		}
	}
}

// Two popups of one template answered within the same second make two
// identical events: they come in two deliveries (timestamp and nonce) and
// count twice, while a copy of one delivery counts once.
func TestIdenticalEventsInTwoDeliveries(t *testing.T) {
	s := newSecRig(t, withPush)
	const o = "o-fast"
	ev := popupEvent(o, 100)
	for _, d := range []string{"1700000000.111", "1700000000.111", "1700000000.222"} {
		if err := s.svc.ApplyPushDelivery(context.Background(), ev, notify.Delivery{ID: d}); err != nil {
			t.Fatal(err)
		}
	}
	s.wantCredits(t, o, 2, "after two deliveries, one of them twice")
	s.report(t, o)
	s.report(t, o)
	s.wantCredits(t, o, 2, "after their two reports")
	s.clock.advance(pairWindow + time.Second)
	s.sweep(t, 0)
	s.wantCredits(t, o, 2, "after the sweep")
}
