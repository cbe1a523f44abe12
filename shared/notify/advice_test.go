package notify

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// deliveringWeChat answers every send with a new msgid.
type deliveringWeChat struct {
	mu    sync.Mutex
	calls int64
}

func (w *deliveringWeChat) Code2Session(context.Context, string) (wechat.Session, error) {
	return wechat.Session{}, fmt.Errorf("not used")
}

func (w *deliveringWeChat) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	return wechat.SendResult{MsgID: w.calls}, nil
}

// adviceRig is a service without push (reports grant credits) on a bolt
// store behind a counting store, with one-time templates a to f and a
// long-term one, notice, in that catalog order.
type adviceRig struct {
	svc      *Service
	counting *storetest.Counting
	bolt     *boltstore.Store
	clock    *fakeClock
}

func newAdviceRig(t *testing.T) *adviceRig {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	var templates []Template
	for _, a := range []string{"a", "b", "c", "d", "e", "f"} {
		templates = append(templates, Template{Alias: a, ID: "tmpl-" + a, Keywords: []Keyword{{Name: "thing1"}}})
	}
	templates = append(templates, Template{Alias: "notice", ID: "tmpl-notice", Kind: LongTerm, Keywords: []Keyword{{Name: "thing1"}}})
	catalog, err := NewCatalog(templates)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	counting := storetest.NewCounting(bolt)
	svc, err := New(Options{AppID: "wxadvice", Store: counting, WeChat: &deliveringWeChat{}, Catalog: catalog,
		Sessions: sessions, Now: clock.Now, ReportsPerMinute: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &adviceRig{svc: svc, counting: counting, bolt: bolt, clock: clock}
}

// answer reports a popup's choices for openID.
func (r *adviceRig) answer(t *testing.T, openID string, choices map[string]string) {
	t.Helper()
	if _, err := r.svc.RecordReport(context.Background(), openID, Report{Result: choices}); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Second)
}

// accept reports n popups accepting alias (one credit each).
func (r *adviceRig) accept(t *testing.T, openID, alias string, n int) {
	t.Helper()
	for range n {
		r.answer(t, openID, map[string]string{"tmpl-" + alias: "accept"})
	}
}

// send sends alias to openID n times, wanting each to end as want.
func (r *adviceRig) send(t *testing.T, openID, alias string, n int, want Status) {
	t.Helper()
	for range n {
		got, err := r.svc.Send(context.Background(), SendRequest{To: Recipient{OpenID: openID}, Template: alias,
			Data: map[string]string{"thing1": "x"}})
		if err != nil || got.Status != want {
			t.Fatalf("send %s to %s: %s %s %v, want %s", alias, openID, got.Status, got.Reason, err, want)
		}
		r.clock.Advance(time.Second)
	}
}

func (r *adviceRig) advice(t *testing.T, openID string, opts AdviceOptions) Advice {
	t.Helper()
	a, err := r.svc.Advice(context.Background(), openID, opts)
	if err != nil {
		t.Fatalf("Advice(%s): %v", openID, err)
	}
	return a
}

// ranked is the advice's ranked list in one line: alias:tier:reasons.
func ranked(a Advice) string {
	var parts []string
	for _, at := range a.Templates {
		parts = append(parts, fmt.Sprintf("%s:%d:%s", at.Template.Alias, at.Tier, strings.Join(at.Reasons, "+")))
	}
	return strings.Join(parts, " ")
}

func excluded(a Advice) string {
	var parts []string
	for _, e := range a.Excluded {
		parts = append(parts, e.Template.Alias+":"+e.Reason)
	}
	return strings.Join(parts, " ")
}

func entry(t *testing.T, a Advice, alias string) AdviceTemplate {
	t.Helper()
	for _, at := range a.Templates {
		if at.Template.Alias == alias {
			return at
		}
	}
	t.Fatalf("%s is not ranked in %s", alias, ranked(a))
	return AdviceTemplate{}
}

// Unmet demand ranks first, then sends the next of which would be
// skipped, then credits that fall short; templates the credits cover
// come last and are not suggested; three one-time ids are suggested.
func TestAdviceRanking(t *testing.T) {
	r := newAdviceRig(t)
	const u = "oAdviceRank"
	r.send(t, u, "a", 2, StatusSkipped) // a: two sends skipped, no credit
	r.accept(t, u, "b", 2)              // b: two credits, both used
	r.send(t, u, "b", 2, StatusSent)
	r.accept(t, u, "c", 3) // c: three credits, one used: two left cover it
	r.send(t, u, "c", 1, StatusSent)
	r.accept(t, u, "e", 3) // e: three used, one left: short of the use
	r.send(t, u, "e", 3, StatusSent)
	r.accept(t, u, "e", 1)
	// d, f: nothing known, no credit; notice: long-term, not accepted.

	a := r.advice(t, u, AdviceOptions{})
	// The user's own sends are the app's too (app_demand).
	want := "a:2:unmet_demand+no_credit+app_demand b:3:recent_demand+no_credit+app_demand " +
		"e:4:low_credit+recent_demand+app_demand d:5:no_credit f:5:no_credit notice:5:not_accepted " +
		"c:6:credit_covers_demand+recent_demand+app_demand"
	if got := ranked(a); got != want {
		t.Fatalf("ranking:\n got %s\nwant %s", got, want)
	}
	if !slices.Equal(a.Suggested, []string{"tmpl-a", "tmpl-b", "tmpl-e"}) || a.Limit != AdviceDefaultLimit {
		t.Fatalf("suggested %v (limit %d), want a, b, e (3)", a.Suggested, a.Limit)
	}
	if e := entry(t, a, "e"); e.Credits != 1 || e.Demand != 3 || e.Unmet != 0 || !e.Suggested {
		t.Fatalf("e: %+v, want 1 credit, 3 sends, suggested", e)
	}
	if c := entry(t, a, "c"); c.Credits != 2 || c.Suggested {
		t.Fatalf("c: %+v, want 2 credits, not suggested", c)
	}
	for _, at := range a.Templates {
		if at.Held != 0 {
			t.Fatalf("%s: held %d, want 0 (holding is not built)", at.Template.Alias, at.Held)
		}
	}
	if !a.Since.Equal(r.clock.Now().Add(-AdviceWindow)) || excluded(a) != "" {
		t.Fatalf("since %s, excluded %q; want the window's start and none", a.Since, excluded(a))
	}

	// A send skipped again for a: more unmet demand, still first; a
	// credit for a now moves it below the templates without credit that
	// the app sends (b), as low_credit.
	r.accept(t, u, "a", 1)
	a = r.advice(t, u, AdviceOptions{})
	if got := ranked(a); !strings.HasPrefix(got, "b:3:recent_demand+no_credit+app_demand e:4:") || entry(t, a, "a").Tier != tierLowCredit {
		t.Fatalf("after a credit for a: %s, want b first, a low_credit", got)
	}
}

// With the same use, the template with credits left ranks below the one
// without; among templates short of credits, the larger shortfall first.
func TestAdviceCreditsLeftLowerPriority(t *testing.T) {
	r := newAdviceRig(t)
	const u = "oAdviceCredits"
	for _, alias := range []string{"a", "b", "c"} {
		r.accept(t, u, alias, 4)
		r.send(t, u, alias, 4, StatusSent)
	}
	r.accept(t, u, "a", 1) // a: 4 used, 1 left
	r.accept(t, u, "b", 3) // b: 4 used, 3 left
	a := r.advice(t, u, AdviceOptions{})
	if got := ranked(a); !strings.HasPrefix(got, "c:3:recent_demand+no_credit+app_demand a:4:low_credit+recent_demand+app_demand b:4:low_credit+recent_demand+app_demand ") {
		t.Fatalf("ranking %s, want c (no credit), then a (short by 3), then b (short by 1)", got)
	}
	r.accept(t, u, "b", 1) // b: 4 left cover its 4 sends
	if b := entry(t, r.advice(t, u, AdviceOptions{}), "b"); b.Tier != tierCovered || b.Suggested {
		t.Fatalf("b with credits for its use: %+v, want credit_covers_demand, not suggested", b)
	}
}

// A template rejected with "always keep this choice" (wx.getSetting's
// itemSettings), turned off in the settings (a change event) or banned
// is never ranked nor suggested, whatever its demand; neither is an
// accepted long-term template.
func TestAdviceExclusions(t *testing.T) {
	r := newAdviceRig(t)
	ctx := context.Background()
	const u = "oAdviceExcl"
	for _, alias := range []string{"a", "b", "c", "d"} {
		r.send(t, u, alias, 3, StatusSkipped) // demand everywhere
	}
	// a: rejected and kept.
	if _, err := r.svc.RecordReport(ctx, u, Report{Result: map[string]string{"tmpl-a": "reject"},
		Settings: &Settings{ItemSettings: map[string]string{"tmpl-a": "reject"}}}); err != nil {
		t.Fatal(err)
	}
	// b: accepted once, then turned off in the settings.
	r.accept(t, u, "b", 1)
	if err := r.svc.ApplyPush(ctx, pushOf(u, r.clock.Now(), wechat.EventSubscribeChange,
		wechat.PushItem{TemplateID: "tmpl-b", SubscribeStatus: "reject"})); err != nil {
		t.Fatal(err)
	}
	// c: banned.
	r.answer(t, u, map[string]string{"tmpl-c": "ban"})
	// notice: accepted long-term.
	r.answer(t, u, map[string]string{"tmpl-notice": "accept"})
	// d: a plain reject (no "always"): asking again may work.
	r.answer(t, u, map[string]string{"tmpl-d": "reject"})

	a := r.advice(t, u, AdviceOptions{Limit: AdviceMaxLimit})
	if got, want := excluded(a), "a:always_reject b:always_reject c:banned notice:long_term_accepted"; got != want {
		t.Fatalf("excluded %q, want %q", got, want)
	}
	for _, id := range a.Suggested {
		if id != "tmpl-d" && id != "tmpl-e" && id != "tmpl-f" {
			t.Fatalf("suggested %v: %s must never be", a.Suggested, id)
		}
	}
	if got := ranked(a); got != "d:2:unmet_demand+no_credit+app_demand e:5:no_credit f:5:no_credit" {
		t.Fatalf("ranking %s, want d (unmet demand), then e and f", got)
	}

	// An "always accept" kept choice: asked silently, flagged.
	if _, err := r.svc.RecordReport(ctx, u, Report{Result: map[string]string{"tmpl-e": "accept"},
		Settings: &Settings{ItemSettings: map[string]string{"tmpl-e": "accept"}}}); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, r.advice(t, u, AdviceOptions{}), "e"); !slices.Contains(e.Reasons, AdviceAlwaysAccept) {
		t.Fatalf("e accepted with always keep: reasons %v, want always_accept", e.Reasons)
	}
}

// Suggested holds at most the limit (3 by default, WeChat's popup limit
// on every client), all of one kind: a long-term template that ranks
// first makes a popup of long-term templates only.
func TestAdvicePopupLimit(t *testing.T) {
	r := newAdviceRig(t)
	const u = "oAdviceLimit"
	for _, alias := range []string{"a", "b", "c", "d", "e", "f"} {
		r.send(t, u, alias, 1, StatusSkipped)
	}
	if a := r.advice(t, u, AdviceOptions{}); len(a.Suggested) != 3 || len(a.Templates) != 7 {
		t.Fatalf("suggested %v of %d ranked, want 3 of 7", a.Suggested, len(a.Templates))
	}
	if a := r.advice(t, u, AdviceOptions{Limit: 5}); !slices.Equal(a.Suggested, []string{"tmpl-a", "tmpl-b", "tmpl-c", "tmpl-d", "tmpl-e"}) {
		t.Fatalf("limit 5: suggested %v, want a to e", a.Suggested)
	}
	if a := r.advice(t, u, AdviceOptions{Limit: 1}); !slices.Equal(a.Suggested, []string{"tmpl-a"}) {
		t.Fatalf("limit 1: suggested %v, want a", a.Suggested)
	}
	for _, bad := range []int{-1, AdviceMaxLimit + 1} {
		if _, err := r.svc.Advice(context.Background(), u, AdviceOptions{Limit: bad}); CodeOf(err) != CodeBadRequest {
			t.Fatalf("limit %d: %v, want bad_request", bad, err)
		}
	}
	r.send(t, u, "notice", 4, StatusSkipped) // the long-term template's unmet demand is the largest
	a := r.advice(t, u, AdviceOptions{})
	if !slices.Equal(a.Suggested, []string{"tmpl-notice"}) || a.Templates[0].Template.Alias != "notice" {
		t.Fatalf("long-term first: suggested %v (%s), want only tmpl-notice: kinds are not mixed", a.Suggested, ranked(a))
	}
}

// A user without history gets the templates the app sends most (to
// everyone, today and yesterday) first; the catalog's order breaks the
// remaining ties.
func TestAdviceAppDemandBreaksTies(t *testing.T) {
	r := newAdviceRig(t)
	r.send(t, "oOther1", "e", 3, StatusSkipped)
	r.accept(t, "oOther2", "c", 2)
	r.send(t, "oOther2", "c", 2, StatusSent)
	r.clock.Advance(24 * time.Hour) // yesterday's sends count too
	r.send(t, "oOther3", "c", 2, StatusSkipped)
	a := r.advice(t, "oAdviceNew", AdviceOptions{})
	if !slices.Equal(a.Suggested, []string{"tmpl-c", "tmpl-e", "tmpl-a"}) {
		t.Fatalf("new user: suggested %v (%s), want c (4 sends), e (3), then a", a.Suggested, ranked(a))
	}
	if c := entry(t, a, "c"); c.AppDemand != 4 || !slices.Equal(c.Reasons, []string{AdviceNoCredit, AdviceAppDemand}) {
		t.Fatalf("c: %+v, want app demand 4, reasons no_credit+app_demand", c)
	}
	r.clock.Advance(2 * 24 * time.Hour) // older than AdviceAppDays: forgotten
	if a := r.advice(t, "oAdviceNew", AdviceOptions{}); !slices.Equal(a.Suggested, []string{"tmpl-a", "tmpl-b", "tmpl-c"}) {
		t.Fatalf("three days later: suggested %v, want the catalog's order", a.Suggested)
	}
}

// Sends older than the window, and a notification's earlier outcomes,
// count nothing: an unknown send settled as sent counts once.
func TestAdviceHistoryWindow(t *testing.T) {
	r := newAdviceRig(t)
	const u = "oAdviceWindow"
	r.send(t, u, "f", 5, StatusSkipped)
	r.clock.Advance(AdviceWindow + time.Hour)
	r.send(t, u, "e", 1, StatusSkipped)
	a := r.advice(t, u, AdviceOptions{})
	if f, e := entry(t, a, "f"), entry(t, a, "e"); f.Unmet != 0 || e.Unmet != 1 || a.Suggested[0] != "tmpl-e" {
		t.Fatalf("f unmet %d, e unmet %d, suggested %v; want 0, 1, e first", f.Unmet, e.Unmet, a.Suggested)
	}
	// Two outcomes of one notification in the timeline: the latest counts.
	id := "ntf_advicetwice"
	for _, st := range []Status{StatusUnknown, StatusSent} {
		op, err := r.svc.timelineOp(u, id+":"+string(st), TimelineEvent{Type: TimelineNotification, At: r.clock.Now(),
			TemplateID: "tmpl-d", Status: string(st), Notification: id})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.bolt.Write(context.Background(), []store.WriteOp{op}); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(time.Second)
	}
	if d := entry(t, r.advice(t, u, AdviceOptions{}), "d"); d.Demand != 1 {
		t.Fatalf("d: demand %d, want 1 (one notification)", d.Demand)
	}
}

// An openid that cannot be one is bad_request, before any store read.
func TestAdviceBadOpenID(t *testing.T) {
	r := newAdviceRig(t)
	for _, bad := range []string{"", "o|x", strings.Repeat("o", 65)} {
		before := r.counting.Total()
		if _, err := r.svc.Advice(context.Background(), bad, AdviceOptions{}); CodeOf(err) != CodeBadRequest || r.counting.Total() != before {
			t.Fatalf("openid %q: %v after %d store calls, want bad_request and none", bad, err, r.counting.Total()-before)
		}
	}
}

// Advice costs one query of the ledger, one of the timeline and one per
// day of the app's funnel, and nothing else: the same for a user never
// seen as with a timeline of 20 notifications or of 5,000.
func TestAdviceCost(t *testing.T) {
	for _, count := range []int{0, 20, 5000} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			r := newAdviceRig(t)
			const u = "oAdviceCost"
			r.accept(t, u, "b", 2)
			var ops []store.WriteOp
			for i := range count {
				id := fmt.Sprintf("ntf_cost%018d", i)
				op, err := r.svc.timelineOp(u, id+":skipped", TimelineEvent{Type: TimelineNotification,
					At: r.clock.Now().Add(-time.Duration(count-i) * time.Second), TemplateID: "tmpl-a",
					Status: string(StatusSkipped), Reason: ReasonNoConsent, Notification: id})
				if err != nil {
					t.Fatal(err)
				}
				if ops = append(ops, op); len(ops) == store.MaxWriteOps || i == count-1 {
					if _, err := r.bolt.Write(context.Background(), ops); err != nil {
						t.Fatal(err)
					}
					ops = ops[:0]
				}
			}
			before := r.counting.Counts()
			a := r.advice(t, u, AdviceOptions{})
			after := r.counting.Counts()
			if q, total := after["query"]-before["query"], r.counting.Total()-sum(before); q != 2+AdviceAppDays || total != q {
				t.Fatalf("%d store calls (%d queries), want %d queries and nothing else", total, q, 2+AdviceAppDays)
			}
			// The newest events hold the two accepts of b (consent events).
			if want := min(count, AdviceHistoryEvents-2); entry(t, a, "a").Unmet != want {
				t.Fatalf("a: unmet %d, want %d (the newest %d events)", entry(t, a, "a").Unmet, want, AdviceHistoryEvents)
			}
			if b := entry(t, a, "b"); b.Credits != 2 {
				t.Fatalf("b: %d credits, want 2", b.Credits)
			}
		})
	}
}
