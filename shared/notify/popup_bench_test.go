package notify

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// The store cost of one consent change: a popup event, a change event, a
// client report (issue 19). popupCosts runs each case on fresh users and
// returns its round trips per case; BenchmarkPopupEvent reports them and
// TestPopupEventRoundTrips checks them against popupLimits exactly.

// popupTemplates are the one-time templates of the popup cases (WeChat's
// popup asks for at most three at once) and a long-term one.
var popupTemplates = []string{"tmpl-popup-a", "tmpl-popup-b", "tmpl-popup-c"}

const popupLongTerm = "tmpl-popup-lt"

// popupService is a service with push configured on bbolt without fsync,
// behind a round-trip counter.
func popupService(tb testing.TB, edit func(*Options)) (*Service, *storetest.Counting) {
	tb.Helper()
	bolt, err := boltstore.Open(filepath.Join(tb.TempDir(), "popup.db"), boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = bolt.Close() })
	var ts []Template
	for i, id := range popupTemplates {
		ts = append(ts, Template{Alias: fmt.Sprintf("popup_%d", i), ID: id, Keywords: []Keyword{{Name: "thing1"}}})
	}
	ts = append(ts, Template{Alias: "popup_lt", ID: popupLongTerm, Kind: LongTerm, Keywords: []Keyword{{Name: "thing1"}}})
	catalog, err := NewCatalog(ts)
	if err != nil {
		tb.Fatal(err)
	}
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, nil)
	counting := storetest.NewCounting(bolt)
	opts := Options{AppID: "wxpopup", Store: counting, WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions,
		PushConfigured: true}
	if edit != nil {
		edit(&opts)
	}
	svc, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return svc, counting
}

// popupEvent is a push event of openID answering tmpls with status.
func popupEvent(event, openID string, seq int, status string, tmpls ...string) wechat.PushEvent {
	ev := wechat.PushEvent{FromUserName: openID, CreateTime: 1_700_000_000 + int64(seq), Event: event}
	for _, t := range tmpls {
		ev.Items = append(ev.Items, wechat.PushItem{TemplateID: t, SubscribeStatus: status})
	}
	return ev
}

// popupCase is one measured consent change: prepare brings the user to
// the state before it (not counted), run makes it.
type popupCase struct {
	name    string
	prepare func(ctx context.Context, svc *Service, openID string) error
	run     func(ctx context.Context, svc *Service, openID string, i int) error
	// check verifies the ledger after run.
	check func(ctx context.Context, svc *Service, openID string) error
}

func popupPush(ev func(openID string, i int) wechat.PushEvent) func(context.Context, *Service, string, int) error {
	return func(ctx context.Context, svc *Service, openID string, i int) error {
		return svc.ApplyPush(ctx, ev(openID, i))
	}
}

func reportOf(tmpls ...string) func(context.Context, *Service, string, int) error {
	return func(ctx context.Context, svc *Service, openID string, i int) error {
		r := Report{Result: map[string]string{}, ID: fmt.Sprintf("report-%s-%d", openID, i)}
		for _, t := range tmpls {
			r.Result[t] = StatusAccept
		}
		_, err := svc.RecordReport(ctx, openID, r)
		return err
	}
}

// wantCredits checks the credits of each template.
func wantCredits(want int64, tmpls ...string) func(context.Context, *Service, string) error {
	return func(ctx context.Context, svc *Service, openID string) error {
		cs, err := svc.Consents(ctx, openID)
		if err != nil {
			return err
		}
		for _, c := range cs {
			for _, t := range tmpls {
				if c.Template.ID == t && c.Credits != want {
					return fmt.Errorf("%s: %d credits, want %d", t, c.Credits, want)
				}
			}
		}
		for _, t := range tmpls {
			holders, err := svc.audienceEntries(ctx, openID, t)
			if err != nil {
				return err
			}
			if (len(holders) > 0) != (want > 0) {
				return fmt.Errorf("%s: %d audience entries with %d credits", t, len(holders), want)
			}
		}
		return nil
	}
}

var (
	popupA   = popupTemplates[:1]
	popupAll = popupTemplates
)

var popupCases = []popupCase{
	{name: "popup-accept-1", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "accept", popupA...)
	}), check: wantCredits(1, popupA...)},
	{name: "popup-accept-3", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "accept", popupAll...)
	}), check: wantCredits(1, popupAll...)},
	{name: "popup-accept-1-holder", prepare: func(ctx context.Context, svc *Service, o string) error {
		return svc.ApplyPush(ctx, popupEvent(wechat.EventSubscribePopup, o, -1, "accept", popupA...))
	}, run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "accept", popupA...)
	}), check: wantCredits(2, popupA...)},
	{name: "popup-accept-1-after-report", prepare: func(ctx context.Context, svc *Service, o string) error {
		return reportOf(popupA...)(ctx, svc, o, -1)
	}, run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "accept", popupA...)
	}), check: wantCredits(1, popupA...)},
	{name: "popup-reject-1", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "reject", popupA...)
	}), check: wantCredits(0, popupA...)},
	{name: "popup-accept-longterm", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, i, "accept", popupLongTerm)
	})},
	{name: "popup-redelivered", prepare: func(ctx context.Context, svc *Service, o string) error {
		return svc.ApplyPush(ctx, popupEvent(wechat.EventSubscribePopup, o, 0, "accept", popupA...))
	}, run: popupPush(func(o string, _ int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribePopup, o, 0, "accept", popupA...)
	}), check: wantCredits(1, popupA...)},
	{name: "change-accept-1", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribeChange, o, i, "accept", popupA...)
	}), check: wantCredits(0, popupA...)},
	{name: "change-reject-1-holder", prepare: func(ctx context.Context, svc *Service, o string) error {
		return svc.ApplyPush(ctx, popupEvent(wechat.EventSubscribePopup, o, -1, "accept", popupA...))
	}, run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribeChange, o, i, "reject", popupA...)
	}), check: wantCredits(0, popupA...)},
	{name: "change-reject-1-none", run: popupPush(func(o string, i int) wechat.PushEvent {
		return popupEvent(wechat.EventSubscribeChange, o, i, "reject", popupA...)
	}), check: wantCredits(0, popupA...)},
	{name: "report-accept-1", run: reportOf(popupA...), check: wantCredits(1, popupA...)},
	{name: "report-accept-3", run: reportOf(popupAll...), check: wantCredits(1, popupAll...)},
	{name: "report-accept-1-after-event", prepare: func(ctx context.Context, svc *Service, o string) error {
		return svc.ApplyPush(ctx, popupEvent(wechat.EventSubscribePopup, o, -1, "accept", popupA...))
	}, run: reportOf(popupA...), check: wantCredits(1, popupA...)},
}

// popupCosts runs every case n times, each time for a new user, and
// returns the store round trips of one run of each case.
func popupCosts(ctx context.Context, tb testing.TB, svc *Service, counting *storetest.Counting, n int) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	for _, c := range popupCases {
		var total int64
		for i := range n {
			openID := fmt.Sprintf("o-%s-%d", c.name, i)
			if c.prepare != nil {
				if err := c.prepare(ctx, svc, openID); err != nil {
					tb.Fatalf("%s: prepare: %v", c.name, err)
				}
			}
			before := counting.Total()
			if err := c.run(ctx, svc, openID, i); err != nil {
				tb.Fatalf("%s: %v", c.name, err)
			}
			total += counting.Total() - before
			if c.check != nil {
				if err := c.check(ctx, svc, openID); err != nil {
					tb.Fatalf("%s: %v", c.name, err)
				}
			}
		}
		out[c.name] = float64(total) / float64(n)
	}
	return out
}

// BenchmarkPopupEvent reports the store round trips of each consent change
// (push configured, bbolt without fsync), per event or report.
func BenchmarkPopupEvent(b *testing.B) {
	for _, hooks := range []bool{false, true} {
		name := "push"
		if hooks {
			name = "push-webhooks"
		}
		b.Run(name, func(b *testing.B) {
			svc, counting := popupService(b, func(o *Options) {
				if hooks {
					observeAll(o)
				}
			})
			b.ResetTimer()
			costs := popupCosts(context.Background(), b, svc, counting, b.N)
			b.StopTimer()
			for _, c := range popupCases {
				b.ReportMetric(costs[c.name], c.name+"-ops")
			}
		})
	}
}

// popupLimits are the round trips of each case (docs/performance.md, "One
// popup event"), without webhooks; a subscription to consent.changed adds
// one read (the user's profile, for the userId) to a change that changes
// the consent.
var popupLimits = map[string]float64{
	// One Query of the record and credits, the pairing, the credit, one
	// conditional Write (record and done mark, timeline, funnel, index).
	"popup-accept-1": 4, "popup-accept-3": 12, "popup-accept-1-holder": 4,
	"popup-accept-1-after-report": 3, // paired with the report: no credit
	"popup-reject-1":              2,
	"popup-accept-longterm":       2,
	"popup-redelivered":           1, // the Query finds the item applied
	"change-accept-1":             2,
	// The zeroing is in the record's Write; a holder is then pruned from
	// the index (a query of the entries, a read of the ledger, a delete).
	"change-reject-1-holder": 5, "change-reject-1-none": 2,
	// The rate limit's count, the Query, the pairing, the pending entry
	// (before the credit: the sweep must see every report-granted credit),
	// the credit, the Write.
	"report-accept-1": 6, "report-accept-3": 16, "report-accept-1-after-event": 4,
}

// popupHookReads are the cases whose change reads the profile for
// consent.changed.
var popupHookReads = map[string]float64{
	"popup-accept-1": 1, "popup-accept-3": 3, "popup-accept-1-holder": 1, "popup-reject-1": 1,
	"popup-accept-longterm": 1, "change-accept-1": 1, "change-reject-1-holder": 1, "change-reject-1-none": 1,
	"report-accept-1": 1, "report-accept-3": 3,
}

// TestPopupEventRoundTrips checks the round trips of each consent change
// exactly.
func TestPopupEventRoundTrips(t *testing.T) {
	for _, hooks := range []bool{false, true} {
		t.Run(fmt.Sprintf("webhooks=%v", hooks), func(t *testing.T) {
			svc, counting := popupService(t, func(o *Options) {
				if hooks {
					observeAll(o)
				}
			})
			costs := popupCosts(context.Background(), t, svc, counting, 3)
			for _, c := range popupCases {
				want := popupLimits[c.name]
				if hooks {
					want += popupHookReads[c.name]
				}
				t.Logf("%-28s %.2f", c.name, costs[c.name])
				if costs[c.name] != want {
					t.Errorf("%s: %.2f store round trips, want %.0f", c.name, costs[c.name], want)
				}
			}
		})
	}
}

// A client report and WeChat's popup event of the same accept, applied
// at the same time (and a redelivered copy of the event with them), grant
// one credit and leave the user in the audience index once.
func TestConcurrentReportAndEventGrantOnce(t *testing.T) {
	svc, _ := popupService(t, nil)
	ctx := context.Background()
	const users = 30
	var wg sync.WaitGroup
	errs := make(chan error, 3*users)
	for u := range users {
		o := fmt.Sprintf("o-pair-%d", u)
		ev := popupEvent(wechat.EventSubscribePopup, o, u, "accept", popupA...)
		wg.Go(func() { errs <- reportOf(popupA...)(ctx, svc, o, u) })
		wg.Go(func() { errs <- svc.ApplyPush(ctx, ev) })
		wg.Go(func() { errs <- svc.ApplyPush(ctx, ev) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for u := range users {
		o := fmt.Sprintf("o-pair-%d", u)
		if err := wantCredits(1, popupA...)(ctx, svc, o); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		if es, _ := svc.audienceEntries(ctx, o, popupA[0]); len(es) != 1 {
			t.Fatalf("%s: %d audience entries, want 1", o, len(es))
		}
	}
	// The reports' credits were confirmed: the sweep withdraws none.
	svc.now = func() time.Time { return time.Now().Add(2 * svc.pairWindow) }
	if n, err := svc.SweepReports(ctx); err != nil || n != 0 {
		t.Fatalf("sweep withdrew %d (%v), want 0", n, err)
	}
}

// A popup event redelivered after a change event zeroed its credit grants
// nothing: the zeroing's Put forgot the grant's operation, but the consent
// record still marks the item applied.
func TestPopupRedeliveredAfterZeroing(t *testing.T) {
	svc, _ := popupService(t, nil)
	ctx := context.Background()
	accept := popupEvent(wechat.EventSubscribePopup, "o-z", 1, "accept", popupA...)
	for _, ev := range []wechat.PushEvent{accept, popupEvent(wechat.EventSubscribeChange, "o-z", 2, "reject", popupA...), accept} {
		if err := svc.ApplyPush(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := wantCredits(0, popupA...)(ctx, svc, "o-z"); err != nil {
		t.Fatal(err)
	}
}

// On a store that writes one partition at a time (Redis Cluster) every
// consent change still applies once and notes the holders: the index
// entry and the funnel's counters are written apart from the record.
func TestConsentChangesWithoutCrossPartitionWrites(t *testing.T) {
	svc, counting := popupService(t, nil)
	svc.st = noCrossPartition{counting}
	ctx := context.Background()
	for _, c := range popupCases {
		o := "o-nx-" + c.name
		if c.prepare != nil {
			if err := c.prepare(ctx, svc, o); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // the second time a repeat of the same change
			if err := c.run(ctx, svc, o, 7); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if c.check != nil {
			if err := c.check(ctx, svc, o); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	es, err := svc.audienceEntries(ctx, "o-nx-popup-accept-longterm", popupLongTerm)
	if err != nil || len(es) != 1 {
		t.Fatalf("long-term acceptance: %d audience entries (%v), want 1", len(es), err)
	}
	rep, err := svc.Stats(ctx, StatsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// Each change counted once, the repeats not at all: on the first
	// template, 10 credits granted (one per case that grants, two for the
	// holder's), 8 popup accepts (reports are not counted with push), 1
	// reject.
	i := slices.IndexFunc(rep.Totals, func(ts TemplateStats) bool { return ts.TemplateID == popupA[0] })
	if i < 0 {
		t.Fatalf("no funnel counters of %s: %+v", popupA[0], rep.Totals)
	}
	if ts := rep.Totals[i]; ts.Granted != 10 || ts.Accepted != 8 || ts.Rejected != 1 {
		t.Fatalf("funnel of %s: %+v, want 10 granted, 8 accepted, 1 rejected", ts.TemplateID, ts)
	}
}
