package main

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// scrape GETs the dev server's /metrics over HTTP and parses the text.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp, err := e.http.Get(e.url + "/metrics")
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		e.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns the counter value, or the histogram's sample count, of
// the series of name whose labels include want; ok false when none has.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, w := range want {
			match = match && labels[k] == w
		}
		if !match {
			continue
		}
		ok = true
		if c := m.GetCounter(); c != nil {
			v += c.GetValue()
		} else if h := m.GetHistogram(); h != nil {
			v += float64(h.GetSampleCount())
		}
	}
	return v, ok
}

// The dev server's Prometheus sink counts exactly what it is told: the
// observer's methods called N times give counters of N, scraped over HTTP.
func TestDevMetricsCountObserverCalls(t *testing.T) {
	e := newEnv(t)
	ob := observe.New(e.srv.parts.Metrics, observe.Options{App: "default"})
	for range 5 {
		ob.NotificationDone(notify.Outcome{Template: "lead_assigned", Status: notify.StatusSent, Duration: time.Millisecond})
	}
	for range 2 {
		ob.NotificationDone(notify.Outcome{Template: "lead_assigned", Status: notify.StatusSkipped, Errcode: 43101, Wasted: true})
	}
	ob.CreditsChanged(notify.CreditChange{TemplateID: leadID, Kind: notify.CreditGranted, N: 4})
	ob.CreditsChanged(notify.CreditChange{TemplateID: leadID, Kind: notify.CreditTaken, N: 1})
	for range 3 {
		ob.PushApplied(notify.PushEvent{Event: "subscribe_msg_sent_event", Changed: true})
	}
	ob.BatchProgress(notify.BatchStep{BatchID: "bat_1", Sent: 9, Failed: 1, Done: true})
	for range 4 {
		ob.WeChatCall("send", 0, nil, 20*time.Millisecond)
	}
	ob.WeChatCall(wechat.APIStableToken, 0, nil, 20*time.Millisecond)

	fams := e.scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{observe.Notifications, map[string]string{"app": "default", "template": "lead_assigned", "status": "sent", "errcode": "0"}, 5},
		{observe.Notifications, map[string]string{"status": "skipped", "errcode": "43101"}, 2},
		{observe.WastedSends, map[string]string{"app": "default", "template": "lead_assigned"}, 2},
		{observe.Credits, map[string]string{"template": leadID, "kind": "granted"}, 4},
		{observe.Credits, map[string]string{"kind": "taken"}, 1},
		{observe.PushEvents, map[string]string{"event": "subscribe_msg_sent_event", "changed": "true"}, 3},
		{observe.BatchRecipients, map[string]string{"status": "sent"}, 9},
		{observe.BatchRecipients, map[string]string{"status": "failed"}, 1},
		{observe.BatchesFinished, map[string]string{"app": "default"}, 1},
		{observe.WeChatCallSeconds, map[string]string{"api": "send", "errcode": "0"}, 4},
		{observe.TokenFetches, map[string]string{"app": "default"}, 1},
	} {
		if got, _ := series(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := series(fams, observe.Notifications, map[string]string{"status": "failed"}); ok {
		t.Errorf("a failed series nobody reported")
	}
}

// A send through the sandbox shows in /metrics: the store operations it
// made (boot wraps dev's bbolt store), and its outcome once the domain
// reports outcomes to its Observer.
func TestDevMetricsOfASend(t *testing.T) {
	const user = "metrics-user-77"
	e := newEnv(t)
	token, openID := e.login("alice")
	e.bind(user, "alice")
	e.grant(token, openID, leadID, 1)
	before, _ := series(e.scrape(), observe.StoreOpSeconds, map[string]string{"backend": "bolt", "op": "put", "result": "ok"})
	if r := e.want(e.send(sendLead(map[string]string{"userId": user}, "metrics-1")), 200); r.str("status") != "sent" {
		t.Fatalf("send: %s", r.raw)
	}
	fams := e.scrape()
	after, _ := series(fams, observe.StoreOpSeconds, map[string]string{"backend": "bolt", "op": "put", "result": "ok"})
	if after <= before {
		t.Errorf("store puts: %v before the send, %v after: the send's writes were not observed", before, after)
	}
	if raw := e.logs.String(); strings.Contains(raw, openID) || strings.Contains(raw, user) {
		t.Errorf("a raw openid or userId is in the logs")
	}
	got, ok := series(fams, observe.Notifications, map[string]string{"status": "sent"})
	if !ok {
		t.Fatalf("no %s series with status sent after a sent notification", observe.Notifications)
	}
	want := map[string]string{"app": "default", "template": "lead_assigned", "status": "sent", "errcode": "0"}
	if v, _ := series(fams, observe.Notifications, want); got != 1 || v != 1 {
		t.Errorf("notifications sent: got %v (%v with labels %v), want 1", got, v, want)
	}
}
