package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// timelineRig is a service with push on a bolt store sharing its clock,
// with a one-time template (lead) and a long-term one (notice).
type timelineRig struct {
	svc   *Service
	bolt  *boltstore.Store
	clock *fakeClock
	wx    *silentWeChat
}

func newTimelineRig(t *testing.T, appID string, retention time.Duration) *timelineRig {
	t.Helper()
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	r := &timelineRig{bolt: bolt, clock: clock, wx: &silentWeChat{answers: map[int]int64{}}}
	r.svc = timelineService(t, appID, bolt, r.wx, clock, retention)
	return r
}

func timelineService(t *testing.T, appID string, st store.Store, wx WeChat, clock *fakeClock, retention time.Duration) *Service {
	t.Helper()
	catalog, err := NewCatalog([]Template{
		{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}},
		{Alias: "notice", ID: "tmpl-notice", Kind: LongTerm, Keywords: []Keyword{{Name: "thing1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: appID, Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, Now: clock.Now,
		PushConfigured: true, Retention: retention, ReportsPerMinute: -1})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// bind writes userID's binding to openID as Bind does.
func (r *timelineRig) bind(t *testing.T, svc *Service, userID, openID string) {
	t.Helper()
	b, _ := json.Marshal(binding{OpenID: openID, BoundAt: r.clock.Now()})
	if _, err := r.bolt.Put(context.Background(), svc.bindingKey(userID), b, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func pushOf(openID string, at time.Time, event string, items ...wechat.PushItem) wechat.PushEvent {
	return wechat.PushEvent{ToUserName: "gh_test", FromUserName: openID, CreateTime: at.Unix(), MsgType: "event", Event: event, Items: items}
}

// describe is an event in one line: type, status, source, notification,
// errcode, msgid.
func describe(ev TimelineEvent) string {
	return fmt.Sprintf("%s %s %s %s %s %d %s", ev.Type, ev.TemplateID, ev.Status, ev.Source, ev.Notification, ev.Errcode, ev.MsgID)
}

func timeline(t *testing.T, svc *Service, userID string, f TimelineFilter, cursor string, limit int) TimelinePage {
	t.Helper()
	p, err := svc.Timeline(context.Background(), userID, f, cursor, limit)
	if err != nil {
		t.Fatalf("Timeline(%s, %q, %d): %v", userID, cursor, limit, err)
	}
	return p
}

// A report, its popup event, a send, its sent event and a change event
// are the user's timeline, newest first, each with what it tells.
func TestTimelineRecordsEveryKindNewestFirst(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	ctx := context.Background()
	const openID = "oTimeline1"
	r.bind(t, r.svc, "crm-1", openID)
	step := func() { r.clock.Advance(time.Second) }
	if _, err := r.svc.RecordReport(ctx, openID, Report{Result: map[string]string{"tmpl-lead": "accept"}}); err != nil {
		t.Fatal(err)
	}
	step()
	if err := r.svc.ApplyPush(ctx, pushOf(openID, r.clock.Now(), wechat.EventSubscribePopup,
		wechat.PushItem{TemplateID: "tmpl-lead", SubscribeStatus: "accept", PopupScene: "0"})); err != nil {
		t.Fatal(err)
	}
	step()
	r.wx.answers[1] = 501
	n, err := r.svc.Send(ctx, SendRequest{To: Recipient{UserID: "crm-1"}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	if err != nil || n.Status != StatusSent {
		t.Fatalf("send: %s %v, want sent", n.Status, err)
	}
	step()
	sent := pushOf(openID, r.clock.Now(), wechat.EventSubscribeSent, wechat.PushItem{TemplateID: "tmpl-lead", MsgID: "501", ErrorStatus: "success"})
	for range 2 { // a redelivery is applied once
		if err := r.svc.ApplyPush(ctx, sent); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if err := r.svc.ApplyPush(ctx, pushOf(openID, r.clock.Now(), wechat.EventSubscribeChange,
		wechat.PushItem{TemplateID: "tmpl-lead", SubscribeStatus: "reject"})); err != nil {
		t.Fatal(err)
	}
	p := timeline(t, r.svc, "crm-1", TimelineFilter{}, "", 100)
	var got []string
	for _, ev := range p.Events {
		got = append(got, describe(ev))
	}
	want := []string{
		"consent tmpl-lead reject change  0 ",
		"sent_event tmpl-lead success  " + n.ID + " 0 501",
		"notification tmpl-lead sent  " + n.ID + " 0 501",
		"consent tmpl-lead accept popup  0 ",
		"consent tmpl-lead accept report  0 ",
	}
	if !slices.Equal(got, want) || p.Next != "" || p.OpenID != openID {
		t.Fatalf("timeline:\n got %q (next %q, openid %s)\nwant %q", got, p.Next, p.OpenID, want)
	}
	start := r.clock.Now().Add(-4 * time.Second)
	for i, ev := range p.Events {
		if at := start.Add(time.Duration(4-i) * time.Second); !ev.At.Equal(at) {
			t.Errorf("event %d (%s): at %s, want %s", i, ev.Type, ev.At, at)
		}
	}
}

// updateConsents writes count consent changes one second apart, from the
// rig's clock on.
func (r *timelineRig) updateConsents(t *testing.T, svc *Service, openID string, count int) (first time.Time) {
	t.Helper()
	first = r.clock.Now()
	for i := range count {
		status := StatusAccept
		if i%2 == 1 {
			status = StatusReject
		}
		if err := svc.updateConsent(context.Background(), openID, "tmpl-lead", func(m *consentMeta) {
			m.Status, m.Source = status, SourceSettings
		}); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(time.Second)
	}
	return first
}

// Pages of 7 walk the 25 events newest first, each once, the last with
// no cursor; since and until bound the events by time.
func TestTimelinePagesAndFilters(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	const openID = "oTimeline2"
	r.bind(t, r.svc, "crm-2", openID)
	t0 := r.updateConsents(t, r.svc, openID, 25)
	all := timeline(t, r.svc, "crm-2", TimelineFilter{}, "", 100).Events
	if len(all) != 25 {
		t.Fatalf("one page of 100: %d events, want 25", len(all))
	}
	for i, ev := range all {
		if want := t0.Add(time.Duration(24-i) * time.Second); !ev.At.Equal(want) {
			t.Fatalf("event %d at %s, want %s (newest first)", i, ev.At, want)
		}
	}
	var walked []TimelineEvent
	var sizes []int
	cursor := ""
	for range 10 {
		p := timeline(t, r.svc, "crm-2", TimelineFilter{}, cursor, 7)
		walked = append(walked, p.Events...)
		sizes = append(sizes, len(p.Events))
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(sizes, []int{7, 7, 7, 4}) || !slices.EqualFunc(walked, all, func(a, b TimelineEvent) bool { return a.At.Equal(b.At) }) {
		t.Fatalf("pages of 7: sizes %v, %d events; want 7,7,7,4 and the 25 in order", sizes, len(walked))
	}
	// since (inclusive) and until (exclusive): seconds 5 to 9.
	f := TimelineFilter{Since: t0.Add(5 * time.Second), Until: t0.Add(10 * time.Second)}
	var got []time.Time
	cursor = ""
	for range 10 {
		p := timeline(t, r.svc, "crm-2", f, cursor, 2)
		for _, ev := range p.Events {
			got = append(got, ev.At)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	var want []time.Time
	for i := 9; i >= 5; i-- {
		want = append(want, t0.Add(time.Duration(i)*time.Second))
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("since %s until %s: got %v, want %v", f.Since, f.Until, got, want)
	}
	if p := timeline(t, r.svc, "crm-2", TimelineFilter{Since: t0.Add(time.Hour)}, "", 10); len(p.Events) != 0 || p.Next != "" {
		t.Fatalf("since after every event: got %d events, next %q; want none", len(p.Events), p.Next)
	}
}

// Two apps on one store, the same userId bound to the same openid in
// both: each app's timeline and overview have only its own events.
func TestTimelinePerApp(t *testing.T) {
	r := newTimelineRig(t, "wxAppA", 0)
	b := timelineService(t, "wxAppB", r.bolt, &silentWeChat{}, r.clock, 0)
	const openID = "oShared"
	r.bind(t, r.svc, "crm-3", openID)
	r.bind(t, b, "crm-3", openID)
	r.updateConsents(t, r.svc, openID, 3)
	r.updateConsents(t, b, openID, 1)
	if got := len(timeline(t, r.svc, "crm-3", TimelineFilter{}, "", 100).Events); got != 3 {
		t.Errorf("app A: %d events, want its 3", got)
	}
	if got := len(timeline(t, b, "crm-3", TimelineFilter{}, "", 100).Events); got != 1 {
		t.Errorf("app B: %d events, want its 1", got)
	}
	c := timelineService(t, "wxAppC", r.bolt, &silentWeChat{}, r.clock, 0)
	if _, err := c.Timeline(context.Background(), "crm-3", TimelineFilter{}, "", 10); CodeOf(err) != CodeUserNotFound {
		t.Errorf("app C, where crm-3 is not bound: got %v, want user_not_found", err)
	}
	if _, err := c.UserOverview(context.Background(), "crm-3"); CodeOf(err) != CodeUserNotFound {
		t.Errorf("app C overview: got %v, want user_not_found", err)
	}
}

// An event expires the retention after it happened (the item carries
// the expiry; bbolt's Sweep removes it).
func TestTimelineEventsExpireWithRetention(t *testing.T) {
	const retention = 48 * time.Hour
	r := newTimelineRig(t, "wxtl", retention)
	const openID = "oTimeline4"
	r.bind(t, r.svc, "crm-4", openID)
	t0 := r.updateConsents(t, r.svc, openID, 1)
	r.clock.Advance(24 * time.Hour)
	t1 := r.updateConsents(t, r.svc, openID, 1)
	page, err := r.bolt.Query(context.Background(), store.Query{Partition: r.svc.userPartition(openID), Prefix: timelinePrefix, Limit: 10})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("timeline items: %d, %v; want 2", len(page.Items), err)
	}
	for i, at := range []time.Time{t1, t0} {
		if exp := page.Items[i].ExpiresAt; !exp.Equal(at.Add(retention)) {
			t.Errorf("item %d expires at %s, want %s (its time plus the retention)", i, exp, at.Add(retention))
		}
	}
	r.clock.Advance(retention - 24*time.Hour) // t0 + retention + 2s: the first is gone
	p := timeline(t, r.svc, "crm-4", TimelineFilter{}, "", 10)
	if len(p.Events) != 1 || !p.Events[0].At.Equal(t1) {
		t.Fatalf("after the first's retention: %d events, want the second only", len(p.Events))
	}
	if removed, err := r.bolt.Sweep(context.Background()); err != nil || removed != 1 {
		t.Fatalf("sweep: removed %d, %v; want the expired event", removed, err)
	}
	if p := timeline(t, r.svc, "crm-4", TimelineFilter{}, "", 10); len(p.Events) != 1 {
		t.Fatalf("after the sweep: %d events, want 1", len(p.Events))
	}
}

func TestTimelineBadInput(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	r.bind(t, r.svc, "crm-5", "oTimeline5")
	now := r.clock.Now()
	for _, c := range []struct {
		user, cursor string
		limit        int
		f            TimelineFilter
		code         Code
		field        string
	}{
		{"crm-5", "", 0, TimelineFilter{}, CodeBadRequest, "limit"},
		{"crm-5", "", 101, TimelineFilter{}, CodeBadRequest, "limit"},
		{"crm-5", "nonsense", 10, TimelineFilter{}, CodeBadRequest, "cursor"},
		{"crm-5", "0000000000000001|a|b", 10, TimelineFilter{}, CodeBadRequest, "cursor"},
		{"crm-5", "", 10, TimelineFilter{Since: now, Until: now}, CodeBadRequest, "since"},
		{"crm-5", "", 10, TimelineFilter{Since: time.Unix(-1, 0)}, CodeBadRequest, "since"},
		{"a b", "", 10, TimelineFilter{}, CodeBadRequest, "userId"},
		{"", "", 10, TimelineFilter{}, CodeBadRequest, "userId"},
		{"nobody", "", 10, TimelineFilter{}, CodeUserNotFound, "userId"},
	} {
		_, err := r.svc.Timeline(context.Background(), c.user, c.f, c.cursor, c.limit)
		if e := asError(err); e == nil || e.Code != c.code || e.Field != c.field {
			t.Errorf("Timeline(%q, %q, %d, %+v): got %v, want %s on %s", c.user, c.cursor, c.limit, c.f, err, c.code, c.field)
		}
	}
}

func asError(err error) *Error {
	e, _ := err.(*Error)
	return e
}

// The overview: the binding, the logins, the ledger, and the last prompt
// and accept per template and overall.
func TestUserOverview(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	ctx := context.Background()
	const openID = "oTimeline6"
	bound := r.clock.Now()
	r.bind(t, r.svc, "crm-6", openID)
	if _, err := r.svc.touchUser(ctx, wechat.Session{OpenID: openID}, func(u *User) { u.UserID = "crm-6" }); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	prompted := r.clock.Now()
	if _, err := r.svc.RecordReport(ctx, openID, Report{Result: map[string]string{"tmpl-lead": "accept"}}); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	accepted := r.clock.Now()
	if err := r.svc.ApplyPush(ctx, pushOf(openID, accepted, wechat.EventSubscribeChange,
		wechat.PushItem{TemplateID: "tmpl-notice", SubscribeStatus: "accept"})); err != nil {
		t.Fatal(err)
	}
	o, err := r.svc.UserOverview(ctx, "crm-6")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Bindings) != 1 || o.Bindings[0].OpenID != openID || !o.Bindings[0].BoundAt.Equal(bound) {
		t.Errorf("bindings: %+v, want %s bound at %s", o.Bindings, openID, bound)
	}
	if o.Profile == nil || !o.Profile.FirstLogin.Equal(bound) {
		t.Errorf("profile: %+v, want the login at %s", o.Profile, bound)
	}
	if !o.LastPromptAt.Equal(prompted) || !o.LastAcceptAt.Equal(accepted) {
		t.Errorf("overall: last prompt %s, last accept %s; want %s, %s", o.LastPromptAt, o.LastAcceptAt, prompted, accepted)
	}
	var got []string
	for _, c := range o.Consents {
		got = append(got, fmt.Sprintf("%s %s %d %v prompt=%s accept=%s", c.Template.Alias, c.Status, c.Credits, c.LongTerm,
			c.LastPromptAt.Sub(bound), c.LastAcceptAt.Sub(bound)))
	}
	zero := time.Time{}.Sub(bound)
	want := []string{
		"lead accept 1 false prompt=1m0s accept=1m0s",
		fmt.Sprintf("notice accept 0 true prompt=%s accept=2m0s", zero),
	}
	if !slices.Equal(got, want) {
		t.Errorf("consents:\n got %q\nwant %q", got, want)
	}
	if _, err := r.svc.UserOverview(ctx, "nobody"); CodeOf(err) != CodeUserNotFound {
		t.Errorf("an unbound userId: got %v, want user_not_found", err)
	}
}

// seedTimeline writes count consent events of openID directly, in the
// layout updateConsent uses, 25 a Write.
func seedTimeline(tb testing.TB, svc *Service, st store.Store, openID string, count int) time.Time {
	tb.Helper()
	base := time.Now().UTC().Add(-time.Hour)
	var ops []store.WriteOp
	for i := range count {
		op, err := svc.timelineOp(openID, fmt.Sprintf("evt_seed%018d", i), TimelineEvent{Type: TimelineConsent,
			At: base.Add(time.Duration(i) * time.Millisecond), TemplateID: "tmpl-lead", Status: StatusAccept, Source: SourceReport})
		if err != nil {
			tb.Fatal(err)
		}
		if ops = append(ops, op); len(ops) == store.MaxWriteOps || i == count-1 {
			if _, err := st.Write(context.Background(), ops); err != nil {
				tb.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	return base
}

// A page of 20 costs the binding's read and one query, with 100 events in
// the user's timeline as with 100,000.
func TestTimelinePageCost(t *testing.T) {
	for _, count := range []int{100, 100_000} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			if count > 1000 && testing.Short() {
				t.Skip("the 100,000-event timeline is skipped in -short mode")
			}
			bolt := historyBolt(t)
			counting := storetest.NewCounting(bolt)
			clock := &fakeClock{t: time.Now()}
			svc := timelineService(t, "wxcost", counting, &silentWeChat{}, clock, 0)
			const openID = "oCost"
			b, _ := json.Marshal(binding{OpenID: openID, BoundAt: clock.Now()})
			if _, err := bolt.Put(context.Background(), svc.bindingKey("crm-cost"), b, store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			base := seedTimeline(t, svc, bolt, openID, count)
			cursor := ""
			for page := range 3 {
				before := counting.Counts()
				p, err := svc.Timeline(context.Background(), "crm-cost", TimelineFilter{}, cursor, 20)
				if err != nil {
					t.Fatal(err)
				}
				after := counting.Counts()
				if q, g, total := after["query"]-before["query"], after["get"]-before["get"], counting.Total()-sum(before); q != 1 || g != 1 || total != 2 {
					t.Fatalf("page %d: %d queries, %d gets, %d calls; want 1, 1, 2", page, q, g, total)
				}
				if len(p.Events) != 20 || p.Next == "" {
					t.Fatalf("page %d: %d events, next %q; want 20 and a cursor", page, len(p.Events), p.Next)
				}
				if want := base.Add(time.Duration(count-1-20*page) * time.Millisecond); !p.Events[0].At.Equal(want) {
					t.Fatalf("page %d starts at %s, want %s (newest first)", page, p.Events[0].At, want)
				}
				cursor = p.Next
			}
		})
	}
}

// The reply of an outcome Write is lost: the timeline has the outcome
// once.
func TestTimelineLostReplyOfOutcomeWrite(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	lost := storetest.NewLostReplies(r.bolt)
	r.wx.answers[1] = 7
	svc := timelineService(t, "wxtl", lost, r.wx, r.clock, 0)
	r.bind(t, svc, "crm-7", "oLost")
	grantCredit(t, lost, svc, "oLost")
	lost.Reset(1, func(op string, k store.Key) bool { return op == "write" && strings.HasPrefix(k.Partition, "n|") })
	n, err := svc.Send(context.Background(), SendRequest{To: Recipient{UserID: "crm-7"}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	if len(lost.Lost()) != 1 || err != nil || n.Status != StatusSent {
		t.Fatalf("send: %s %v, lost %v; want sent after the outcome write's lost reply", n.Status, err, lost.Lost())
	}
	p := timeline(t, svc, "crm-7", TimelineFilter{}, "", 10)
	if len(p.Events) != 1 || describe(p.Events[0]) != "notification tmpl-lead sent  "+n.ID+" 0 7" {
		t.Fatalf("timeline: %+v, want the sent outcome once", p.Events)
	}
}

// onePartitionWrites refuses a Write that spans partitions, as
// redisstore does on Redis Cluster.
type onePartitionWrites struct{ store.Store }

func (s onePartitionWrites) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	for _, op := range ops {
		if op.Key.Partition != ops[0].Key.Partition {
			return nil, store.ErrInvalidWrite
		}
	}
	return s.Store.Write(ctx, ops)
}

// A store that cannot write across partitions still gets every event:
// the consent write is within the user's partition, the outcome and the
// sent event's done mark are written apart.
func TestTimelineWithoutCrossPartitionWrites(t *testing.T) {
	r := newTimelineRig(t, "wxtl", 0)
	r.wx.answers[1] = 9
	svc := timelineService(t, "wxtl", onePartitionWrites{r.bolt}, r.wx, r.clock, 0)
	ctx := context.Background()
	const openID = "oCluster"
	r.bind(t, svc, "crm-8", openID)
	if _, err := svc.RecordReport(ctx, openID, Report{Result: map[string]string{"tmpl-lead": "accept"}}); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Second)
	n, err := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	if err != nil || n.Status != StatusSent {
		t.Fatalf("send: %s %v", n.Status, err)
	}
	r.clock.Advance(time.Second)
	sent := pushOf(openID, r.clock.Now(), wechat.EventSubscribeSent, wechat.PushItem{TemplateID: "tmpl-lead", MsgID: "9", ErrorStatus: "success"})
	for range 2 {
		if err := svc.ApplyPush(ctx, sent); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, ev := range timeline(t, svc, "crm-8", TimelineFilter{}, "", 10).Events {
		got = append(got, ev.Type)
	}
	if want := []string{TimelineSentEvent, TimelineNotification, TimelineConsent}; !slices.Equal(got, want) {
		t.Fatalf("timeline: %v, want %v", got, want)
	}
}

// shortPages answers Queries as a store that skips expired items within
// a page's limit does (Redis, DynamoDB): the items whose sort key has
// "drop" are left out of the page, whose Next stays where the store
// stopped.
type shortPages struct{ store.Store }

func (s shortPages) Query(ctx context.Context, q store.Query) (store.Page, error) {
	p, err := s.Store.Query(ctx, q)
	kept := p.Items[:0]
	for _, it := range p.Items {
		if !strings.Contains(it.Key.Sort, "drop") {
			kept = append(kept, it)
		}
	}
	p.Items = kept
	return p, err
}

// Pages that the store answers short (expired events skipped) go on from
// where the store stopped: a run of skipped events longer than a page is
// crossed, and every live event is listed once, in order.
func TestTimelineShortStorePages(t *testing.T) {
	bolt := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	svc := timelineService(t, "wxshort", shortPages{bolt}, &silentWeChat{}, clock, 0)
	const openID = "oShort"
	b, _ := json.Marshal(binding{OpenID: openID, BoundAt: clock.Now()})
	if _, err := bolt.Put(context.Background(), svc.bindingKey("crm-short"), b, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour)
	var ops []store.WriteOp
	var want []time.Time
	for i := range 14 {
		ref, at := fmt.Sprintf("evt_keep%02d", i), base.Add(time.Duration(i)*time.Second)
		if i >= 3 && i < 11 {
			ref = fmt.Sprintf("evt_drop%02d", i)
		} else {
			want = append([]time.Time{at}, want...)
		}
		op, err := svc.timelineOp(openID, ref, TimelineEvent{Type: TimelineConsent, At: at, TemplateID: "tmpl-lead"})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	if _, err := bolt.Write(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	cursor := ""
	for page := 0; ; page++ {
		if page == 20 {
			t.Fatalf("20 pages of 2 and still a cursor (%q): want the 6 live events in a few", cursor)
		}
		p := timeline(t, svc, "crm-short", TimelineFilter{}, cursor, 2)
		for _, ev := range p.Events {
			got = append(got, ev.At)
		}
		if p.Next == "" {
			break
		}
		if p.Next == cursor {
			t.Fatalf("page %d answers its own cursor %q: a client would never get past it", page, cursor)
		}
		cursor = p.Next
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("live events: got %v, want %v", got, want)
	}
}
