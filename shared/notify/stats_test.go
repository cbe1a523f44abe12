package notify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// funnel renders a template's stats as one comparable line.
func funnel(ts notify.TemplateStats) string {
	return fmt.Sprintf("shown %d accepted %d rejected %d granted %d taken %d givenBack %d sent %d delivered %d held %d wasted %d unknown %d failed %v outstanding %d",
		ts.Shown, ts.Accepted, ts.Rejected, ts.Granted, ts.Taken, ts.GivenBack, ts.Sent, ts.Delivered, ts.Held, ts.Wasted, ts.Unknown,
		ts.Failed, ts.Outstanding())
}

func statsOf(tb testing.TB, svc *notify.Service, q notify.StatsQuery) notify.StatsReport {
	tb.Helper()
	r, err := svc.Stats(context.Background(), q)
	if err != nil {
		tb.Fatalf("Stats(%+v): %v", q, err)
	}
	return r
}

// todayLine is the funnel of the lead template today, "" when it has none.
func todayLine(tb testing.TB, s *secRig) string {
	tb.Helper()
	r := statsOf(tb, s.svc, notify.StatsQuery{})
	day := s.clock.Now().UTC().Format(time.DateOnly)
	for _, d := range r.Days {
		if d.Day != day {
			continue
		}
		for _, ts := range d.Templates {
			if ts.TemplateID == leadTID {
				if ts.Template != "lead_digest" {
					tb.Fatalf("alias: got %q, want lead_digest", ts.Template)
				}
				return funnel(ts)
			}
		}
	}
	return ""
}

func wantLine(tb testing.TB, what, got, want string) {
	tb.Helper()
	if got != want {
		tb.Fatalf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func (s *secRig) subscribe(tb testing.TB, openID, status string, id string) {
	tb.Helper()
	res, err := s.fake.Subscribe(openID, map[string]string{leadTID: status})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.svc.RecordReport(context.Background(), openID, notify.Report{Result: map[string]string{leadTID: res[leadTID].(string)}, ID: id}); err != nil {
		tb.Fatalf("report: %v", err)
	}
}

func (s *secRig) send(tb testing.TB, openID, key string) (notify.Notification, error) {
	tb.Helper()
	return s.svc.Send(context.Background(), notify.SendRequest{To: notify.Recipient{OpenID: openID}, Template: "lead_digest",
		Data: map[string]string{"thing1": "x", "number2": "1"}, IdempotencyKey: key})
}

func sentEvent(openID, msgID string, code int, created int64) wechat.PushEvent {
	status := "success"
	if code != 0 {
		status = "fail:user refuse to accept the msg"
	}
	return wechat.PushEvent{ToUserName: "gh_test", FromUserName: openID, CreateTime: created, MsgType: "event",
		Event: wechat.EventSubscribeSent, Items: []wechat.PushItem{{TemplateID: leadTID, MsgID: msgID, ErrorCode: code, ErrorStatus: status}}}
}

// Every stage of the funnel is counted once per event, also when the
// report, the shown popup or the push is retried.
func TestStatsFunnel(t *testing.T) {
	s := newSecRig(t, nil)
	ctx := context.Background()
	o1, o2, o3, o4 := s.fake.OpenID("u1"), s.fake.OpenID("u2"), s.fake.OpenID("u3"), s.fake.OpenID("u4")
	wantLine(t, "before anything", todayLine(t, s), "")

	for range 2 { // retried with its key: one popup
		if ig, err := s.svc.RecordShown(ctx, o1, notify.Shown{Templates: []string{leadTID, "not-ours"}, ID: "sh-1"}); err != nil || fmt.Sprint(ig) != "[not-ours]" {
			t.Fatalf("RecordShown: ignored %v, err %v", ig, err)
		}
	}
	if _, err := s.svc.RecordShown(ctx, o2, notify.Shown{Templates: []string{leadTID, leadTID}}); err != nil {
		t.Fatal(err)
	}
	s.subscribe(t, o1, "accept", "rpt-1")
	s.subscribe(t, o1, "accept", "rpt-1") // the retry of the same report
	s.subscribe(t, o2, "accept", "")
	s.subscribe(t, o3, "reject", "")
	s.subscribe(t, o4, "accept", "")
	wantLine(t, "after the popups", todayLine(t, s),
		"shown 2 accepted 3 rejected 1 granted 3 taken 0 givenBack 0 sent 0 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding 3")

	n1, err := s.send(t, o1, "k1")
	if err != nil || n1.Status != notify.StatusSent {
		t.Fatalf("send to o1: %v %v", n1.Status, err)
	}
	if n, err := s.send(t, o1, "k2"); err != nil || n.Status != notify.StatusSkipped {
		t.Fatalf("second send to o1: %v %v", n.Status, err) // no credit left: held
	}
	if err := s.fake.Inject(wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: 43101}); err != nil {
		t.Fatal(err) // the user turned the template off meanwhile
	}
	if n, err := s.send(t, o2, "k3"); err != nil || n.Status != notify.StatusSkipped {
		t.Fatalf("send to o2: %v %v", n.Status, err) // 43101: wasted
	}
	if err := s.fake.Inject(wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: 45009}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.send(t, o4, "k4"); notify.CodeOf(err) != notify.CodeWeChatUnavailable || n.Status != notify.StatusFailed {
		t.Fatalf("send to o4 with 45009: %v %v", n.Status, err)
	}
	if n, err := s.send(t, o4, "k4"); err != nil || n.Status != notify.StatusSent {
		t.Fatalf("retried send to o4: %v %v", n.Status, err)
	}
	for range 2 { // WeChat redelivers the event: one delivery
		if err := s.svc.ApplyPush(ctx, sentEvent(o1, n1.WeChat.MsgID, 0, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.svc.ApplyPush(ctx, sentEvent(o1, "12345", 20001, 101)); err != nil {
		t.Fatal(err) // not a delivery
	}
	wantLine(t, "after the sends", todayLine(t, s),
		"shown 2 accepted 3 rejected 1 granted 3 taken 3 givenBack 0 sent 2 delivered 1 held 1 wasted 1 unknown 0 failed map[45009:1] outstanding 0")
	r := statsOf(t, s.svc, notify.StatsQuery{Template: "lead_digest"})
	if len(r.Totals) != 1 || r.Totals[0].WastedRate() != 1.0/3 || r.Totals[0].FailedTotal() != 1 {
		t.Fatalf("totals: %+v", r.Totals)
	}
}

// With push, the choices are counted from WeChat's popup events, which
// every popup has, not again from the reports of the same popups.
func TestStatsChoicesFromPopupEvents(t *testing.T) {
	s := newSecRig(t, withPush)
	o := s.fake.OpenID("u1")
	s.report(t, o)
	s.event(t, o, 100)
	s.event(t, o, 100) // redelivered
	s.event(t, o, 200) // a second popup, its report lost
	wantLine(t, "after two popups", todayLine(t, s),
		"shown 0 accepted 2 rejected 0 granted 2 taken 0 givenBack 0 sent 0 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding 2")
}

// A consent state write that fails counts nothing; its retry counts the
// choice once.
func TestStatsCountedOnceWhenTheConsentWriteFails(t *testing.T) {
	s := newSecRig(t, nil)
	o := s.fake.OpenID("u1")
	s.hooks.setOnPut(func(store.Key) error { return errors.New("injected store failure") })
	if _, err := s.svc.RecordReport(context.Background(), o, notify.Report{Result: map[string]string{leadTID: "accept"}, ID: "r1"}); err == nil {
		t.Fatal("report with the consent state failing: got success")
	}
	s.hooks.setOnPut(nil)
	wantLine(t, "after the failed report", todayLine(t, s), "")
	for range 2 {
		if _, err := s.svc.RecordReport(context.Background(), o, notify.Report{Result: map[string]string{leadTID: "accept"}, ID: "r1"}); err != nil {
			t.Fatal(err)
		}
	}
	wantLine(t, "after its retries", todayLine(t, s),
		"shown 0 accepted 1 rejected 0 granted 1 taken 0 givenBack 0 sent 0 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding 1")
}

// The counters are per UTC day; a range and a template select them, and
// bad ranges are refused with the field named.
func TestStatsDaysAndRanges(t *testing.T) {
	s := newSecRig(t, nil)
	o := s.fake.OpenID("u1")
	day1 := s.clock.Now().UTC().Format(time.DateOnly)
	s.subscribe(t, o, "accept", "")
	s.clock.advance(24 * time.Hour)
	day2 := s.clock.Now().UTC().Format(time.DateOnly)
	if n, err := s.send(t, o, "k1"); err != nil || n.Status != notify.StatusSent {
		t.Fatalf("send: %v %v", n.Status, err)
	}
	r := statsOf(t, s.svc, notify.StatsQuery{})
	if len(r.Days) != 2 || r.Days[0].Day != day1 || r.Days[1].Day != day2 || r.To != day2 {
		t.Fatalf("days: %+v", r)
	}
	wantLine(t, "day 1", funnel(r.Days[0].Templates[0]),
		"shown 0 accepted 1 rejected 0 granted 1 taken 0 givenBack 0 sent 0 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding 1")
	wantLine(t, "day 2", funnel(r.Days[1].Templates[0]),
		"shown 0 accepted 0 rejected 0 granted 0 taken 1 givenBack 0 sent 1 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding -1")
	wantLine(t, "totals", funnel(r.Totals[0]),
		"shown 0 accepted 1 rejected 0 granted 1 taken 1 givenBack 0 sent 1 delivered 0 held 0 wasted 0 unknown 0 failed map[] outstanding 0")
	if r := statsOf(t, s.svc, notify.StatsQuery{From: day2, To: day2, Template: leadTID}); len(r.Days) != 1 || r.Days[0].Day != day2 {
		t.Fatalf("day 2 only: %+v", r)
	}
	if r := statsOf(t, s.svc, notify.StatsQuery{From: "2020-01-01", To: "2020-01-31"}); len(r.Days) != 0 || len(r.Totals) != 0 {
		t.Fatalf("a month without counts: %+v", r)
	}
	to, _ := time.Parse(time.DateOnly, day2)
	for _, c := range []struct {
		q     notify.StatsQuery
		field string
	}{
		{notify.StatsQuery{From: day2, To: day1}, "from"},
		{notify.StatsQuery{From: to.AddDate(0, 0, -notify.MaxStatsDays).Format(time.DateOnly), To: day2}, "from"},
		{notify.StatsQuery{From: "2026-13-01"}, "from"},
		{notify.StatsQuery{To: "yesterday"}, "to"},
		{notify.StatsQuery{Template: "nope"}, "template"},
	} {
		_, err := s.svc.Stats(context.Background(), c.q)
		var e *notify.Error
		if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Field != c.field {
			t.Fatalf("Stats(%+v): got %v, want bad_request on %s", c.q, err, c.field)
		}
	}
	// The longest range is accepted.
	statsOf(t, s.svc, notify.StatsQuery{From: to.AddDate(0, 0, 1-notify.MaxStatsDays).Format(time.DateOnly), To: day2})
	// A shown popup without a template of the catalog counts nothing.
	if _, err := s.svc.RecordShown(context.Background(), o, notify.Shown{}); notify.CodeOf(err) != notify.CodeBadRequest {
		t.Fatalf("RecordShown without templates: %v", err)
	}
}

// onePartition refuses, as redisstore does on Redis Cluster, a Write whose
// operations span partitions.
type onePartition struct{ store.Store }

func (o onePartition) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	for _, op := range ops {
		if op.Key.Partition != ops[0].Key.Partition {
			return nil, fmt.Errorf("%w: spans partitions", store.ErrInvalidWrite)
		}
	}
	return o.Store.Write(ctx, ops)
}

// A store that cannot write across partitions at once gets the counters in
// a second write: the funnel still counts every stage, once.
func TestStatsWithoutCrossPartitionWrites(t *testing.T) {
	s := newSecRig(t, func(o *notify.Options) { o.Store = onePartition{o.Store} })
	ctx := context.Background()
	o := s.fake.OpenID("u1")
	for range 2 {
		if _, err := s.svc.RecordShown(ctx, o, notify.Shown{Templates: []string{leadTID}, ID: "sh-1"}); err != nil {
			t.Fatal(err)
		}
	}
	s.subscribe(t, o, "accept", "rpt-1")
	s.subscribe(t, o, "accept", "rpt-1")
	n, err := s.send(t, o, "k1")
	if err != nil || n.Status != notify.StatusSent {
		t.Fatalf("send: %v %v", n.Status, err)
	}
	if n, err := s.send(t, o, "k2"); err != nil || n.Status != notify.StatusSkipped {
		t.Fatalf("second send: %v %v", n.Status, err)
	}
	for range 2 {
		if err := s.svc.ApplyPush(ctx, sentEvent(o, n.WeChat.MsgID, 0, 100)); err != nil {
			t.Fatal(err)
		}
	}
	wantLine(t, "funnel", todayLine(t, s),
		"shown 1 accepted 1 rejected 0 granted 1 taken 1 givenBack 0 sent 1 delivered 1 held 1 wasted 0 unknown 0 failed map[] outstanding 0")
	if got := listAll(t, s.svc, notify.NotificationFilter{}, 10); len(got) != 2 {
		t.Fatalf("history: got %d notifications, want 2", len(got))
	}
}
