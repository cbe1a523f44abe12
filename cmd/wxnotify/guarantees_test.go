package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// grant gives openID n credits for the lead template the honest way: n
// accepted popups (WeChat's truth and wxnotify's ledger both change).
func (e *env) grant(token, openID, tmplID string, n int) {
	e.t.Helper()
	for range n {
		res := e.popup(openID, map[string]string{tmplID: "accept"})
		e.want(e.do("POST", "/v1/consents", token, map[string]any{"result": res}), 200)
	}
	if got := e.credits(token, tmplID); got != n {
		e.t.Fatalf("credits after %d accepts: got %d, want %d", n, got, n)
	}
}

// G1: no message is sent without a credit.
func TestG1NoConsentNoSend(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("bob")
	r := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if r.str("status") != "skipped" || r.str("reason") != "no_consent" {
		t.Fatalf("send without consent: got %s", r.raw)
	}
	// A rejected popup grants nothing either.
	res := e.popup(openID, map[string]string{leadID: "reject"})
	e.want(e.do("POST", "/v1/consents", token, map[string]any{"result": res}), 200)
	r = e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if r.str("status") != "skipped" || e.sendCalls() != 0 {
		t.Fatalf("send after reject: got %s and %d WeChat calls, want skipped and 0", r.raw, e.sendCalls())
	}
}

// G2: N credits and M > N concurrent sends -> exactly N WeChat calls.
func TestG2ConcurrentSendsRespectCredits(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("carol")
	e.grant(token, openID, leadID, 3)
	const m = 20
	var wg sync.WaitGroup
	statuses := make([]string, m)
	for i := range m {
		wg.Go(func() {
			r := e.send(sendLead(map[string]string{"openid": openID}, ""))
			statuses[i] = r.str("status")
		})
	}
	wg.Wait()
	count := map[string]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count["sent"] != 3 || count["skipped"] != m-3 {
		t.Fatalf("statuses: got %v, want 3 sent and %d skipped", count, m-3)
	}
	if got := e.sendCalls(); got != 3 {
		t.Fatalf("WeChat send calls: got %d, want exactly 3", got)
	}
	if got := len(e.fake.Messages(openID)); got != 3 {
		t.Fatalf("inbox: got %d messages, want 3", got)
	}
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits left: got %d, want 0", got)
	}
}

// G3: at most one WeChat call per idempotency key.
func TestG3IdempotencyKey(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("dave")
	e.grant(token, openID, leadID, 5)
	const n = 10
	var wg sync.WaitGroup
	bodies := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r := e.send(sendLead(map[string]string{"openid": openID}, "lead-L-1001-assign-1"))
			if r.status != 200 {
				t.Errorf("send %d: status %d: %s", i, r.status, r.raw)
			}
			b, _ := json.Marshal(r.body)
			bodies[i] = string(b)
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if bodies[i] != bodies[0] {
			t.Fatalf("answers differ:\n%s\n%s", bodies[0], bodies[i])
		}
	}
	if !strings.Contains(bodies[0], `"status":"sent"`) {
		t.Fatalf("answer: got %s, want sent", bodies[0])
	}
	if got := e.sendCalls(); got != 1 {
		t.Fatalf("WeChat send calls for one key: got %d, want 1", got)
	}
	if got := e.credits(token, leadID); got != 4 {
		t.Fatalf("credits: got %d, want 4 (one consumed)", got)
	}
	// The same key with another payload is a conflict.
	other := sendLead(map[string]string{"openid": openID}, "lead-L-1001-assign-1")
	other["data"] = leadData("Other Corp")
	r := e.want(e.send(other), 409)
	if r.str("error", "code") != "conflict" || r.str("error", "field") != "idempotencyKey" {
		t.Fatalf("conflict body: got %s", r.raw)
	}
	if got := e.sendCalls(); got != 1 {
		t.Fatalf("WeChat send calls after the conflict: got %d, want 1", got)
	}
}

// WeChat busy (-1): the credit is given back, the answer says retry, and a
// retry with the same key sends.
func TestBusyGivesCreditBack(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("erin")
	e.grant(token, openID, leadID, 1)
	if err := e.fake.Inject(wechattest.Fault{API: "send", Errcode: -1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.want(e.send(sendLead(map[string]string{"openid": openID}, "retry-me")), 503)
	if r.str("error", "code") != "wechat_unavailable" || r.str("error", "wechatErrcode") != "-1" {
		t.Fatalf("busy answer: got %s", r.raw)
	}
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after -1: got %d, want 1 (given back)", got)
	}
	r = e.want(e.send(sendLead(map[string]string{"openid": openID}, "retry-me")), 200)
	if r.str("status") != "sent" || r.str("attempts") != "2" {
		t.Fatalf("retry: got %s, want sent on attempt 2", r.raw)
	}
	if got := len(e.fake.Messages(openID)); got != 1 {
		t.Fatalf("inbox: got %d, want 1", got)
	}
}

// A timeout after the request was written: the outcome is unknown, the
// credit stays consumed, and once the window has passed the sweep settles
// it with WeChat's sent event.
func TestAmbiguousSettledBySentEvent(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("frank")
	e.grant(token, openID, leadID, 2)
	if err := e.fake.Inject(wechattest.Fault{API: "send", Count: 1, Drop: wechattest.DropAfterRead}); err != nil {
		t.Fatal(err)
	}
	r := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if r.str("status") != "unknown" || r.str("reason") != "no_answer" {
		t.Fatalf("dropped answer: got %s, want unknown/no_answer", r.raw)
	}
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits: got %d, want 1 (the ambiguous send keeps its credit)", got)
	}
	msgs := e.fake.Messages(openID)
	if len(msgs) != 1 {
		t.Fatalf("WeChat truth: got %d messages, want 1 (delivered before the drop)", len(msgs))
	}
	// Another send to the same user and template, answered: its sent event
	// must not be taken for the unknown one's.
	if r2 := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200); r2.str("status") != "sent" {
		t.Fatalf("second send: got %s", r2.raw)
	}
	e.fake.WaitPushes()
	e.clock.advance(time.Hour)
	if n, err := e.srv.parts.Service.SweepUnknown(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", n, err)
	}
	g := e.want(e.do("GET", "/v1/notifications/"+r.str("id"), e.key, nil), 200)
	if want := strconv.FormatInt(msgs[0].MsgID, 10); g.str("status") != "sent" || g.str("wechat", "msgid") != want {
		t.Fatalf("after the sweep: got %s, want sent with msgid %s", g.raw, want)
	}
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits: got %d, want 0 (both delivered)", got)
	}
}

// 43101 while the ledger said 1 credit: the ledger is zeroed, the status
// is skipped.
func TestConsentGoneZeroesLedger(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("grace")
	// The client reports an accept WeChat never saw (no popup happened).
	e.want(e.do("POST", "/v1/consents", token, map[string]any{"result": map[string]string{
		"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}}), 200)
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("ledger: got %d, want 1", got)
	}
	r := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if r.str("status") != "skipped" || r.str("reason") != "no_consent" || r.str("wechat", "errcode") != "43101" {
		t.Fatalf("send: got %s, want skipped/no_consent with errcode 43101", r.raw)
	}
	c := e.consent(token, leadID)
	if c["credits"].(float64) != 0 || c["status"] != "reject" {
		t.Fatalf("ledger after 43101: got %v, want 0 credits, status reject", c)
	}
}

// A userId bound through /v1/bindings is notified by userId; re-binding
// moves it.
func TestBindingThenNotifyByUserID(t *testing.T) {
	e := newEnv(t)
	b := e.bind("sales-42", "henry")
	if b.str("userId") != "sales-42" || b.str("token") == "" {
		t.Fatalf("bind: got %s", b.raw)
	}
	openID := b.str("openid")
	e.grant(b.str("token"), openID, leadID, 1)
	r := e.want(e.send(sendLead(map[string]string{"userId": "sales-42"}, "")), 200)
	if r.str("status") != "sent" {
		t.Fatalf("send by userId: got %s", r.raw)
	}
	if got := len(e.fake.Messages(openID)); got != 1 {
		t.Fatalf("inbox: got %d, want 1", got)
	}
	unbound := e.want(e.send(sendLead(map[string]string{"userId": "sales-99"}, "")), 200)
	if unbound.str("status") != "skipped" || unbound.str("reason") != "unbound_user" {
		t.Fatalf("send to an unbound userId: got %s", unbound.raw)
	}
	// Re-binding sales-42 to another WeChat user moves it.
	b2 := e.bind("sales-42", "ivy")
	if b2.str("openid") == openID {
		t.Fatal("re-bind: same openid, want ivy's")
	}
	e.grant(b2.str("token"), b2.str("openid"), leadID, 1)
	e.want(e.send(sendLead(map[string]string{"userId": "sales-42"}, "")), 200)
	if got := len(e.fake.Messages(b2.str("openid"))); got != 1 {
		t.Fatalf("ivy's inbox: got %d, want 1", got)
	}
	e.want(e.do("DELETE", "/v1/bindings/sales-42", e.key, nil), 204)
	e.want(e.do("DELETE", "/v1/bindings/sales-42", e.key, nil), 404)
	r = e.want(e.send(sendLead(map[string]string{"userId": "sales-42"}, "")), 200)
	if r.str("reason") != "unbound_user" {
		t.Fatalf("send after unbind: got %s", r.raw)
	}
}

// Reject, ban and filter grant nothing; "always keep" settings are kept.
func TestRejectBanFilterAndSettings(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("judy")
	res := e.popup(openID, map[string]string{leadID: "reject", registrationID: "accept"})
	e.want(e.do("POST", "/v1/consents", token, map[string]any{"result": res}), 200)
	for _, tc := range []struct {
		id, status string
		credits    float64
		prompt     bool
	}{{leadID, "reject", 0, true}, {registrationID, "accept", 1, false}} {
		c := e.consent(token, tc.id)
		if c["status"] != tc.status || c["credits"].(float64) != tc.credits || c["prompt"] != tc.prompt {
			t.Fatalf("%s: got %v, want status %s credits %v prompt %v", tc.id, c, tc.status, tc.credits, tc.prompt)
		}
	}
	// ban and filter come from the client only (WeChat pushes no event).
	r := e.want(e.do("POST", "/v1/consents", token, map[string]any{
		"errMsg": "requestSubscribeMessage:ok", leadID: "ban", "unknown-template": "accept"}), 200)
	if ig, _ := r.get("ignored").([]any); len(ig) != 1 || ig[0] != "unknown-template" {
		t.Fatalf("ignored: got %s", r.raw)
	}
	if c := e.consent(token, leadID); c["status"] != "ban" || c["prompt"] != false {
		t.Fatalf("after ban: got %v, want status ban, prompt false", c)
	}
	e.want(e.do("POST", "/v1/consents", token, map[string]any{
		"errMsg": "requestSubscribeMessage:ok", leadID: "filter"}), 200)
	if c := e.consent(token, leadID); c["status"] != "filter" || c["credits"].(float64) != 0 {
		t.Fatalf("after filter: got %v", c)
	}
	// "Always keep: reject" from wx.getSetting: no prompt, no credits.
	e.want(e.do("POST", "/v1/consents", token, map[string]any{
		"result":   map[string]string{"errMsg": "requestSubscribeMessage:ok"},
		"settings": map[string]any{"mainSwitch": true, "itemSettings": map[string]string{registrationID: "reject"}},
	}), 200)
	c := e.consent(token, registrationID)
	if c["alwaysKeep"] != true || c["status"] != "reject" || c["credits"].(float64) != 0 || c["prompt"] != false {
		t.Fatalf("after always-keep reject: got %v", c)
	}
}

// A thing over 20 runes: refused naming the field (reject policy), or
// truncated to a value WeChat accepts (truncate policy).
func TestKeywordPolicies(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("kate")
	long := strings.Repeat("长", 25)
	r := e.want(e.send(map[string]any{"to": map[string]string{"openid": openID}, "template": "registration",
		"data": map[string]string{"date2": "2019年10月1日 15:01", "thing4": long, "character_string9": "123456789"}}), 400)
	if r.str("error", "code") != "bad_request" || r.str("error", "field") != "data.thing4" {
		t.Fatalf("reject policy: got %s", r.raw)
	}
	e.grant(token, openID, leadID, 1)
	s := e.want(e.send(map[string]any{"to": map[string]string{"openid": openID}, "template": "lead_assigned",
		"data": leadData(long)}), 200)
	if s.str("status") != "sent" {
		t.Fatalf("truncate policy: got %s", s.raw)
	}
	got := []rune(e.fake.Messages(openID)[0].Data["thing1"])
	if len(got) != 20 || got[19] != '…' {
		t.Fatalf("truncated value: got %q (%d runes), want 20 runes ending in …", string(got), len(got))
	}
	if e.sendCalls() != 1 {
		t.Fatalf("WeChat calls: got %d, want 1 (the refused send never reached WeChat)", e.sendCalls())
	}
}

func TestTemplatesRoute(t *testing.T) {
	e := newEnv(t)
	token, _ := e.login("leo")
	r := e.want(e.do("GET", "/v1/templates", token, nil), 200)
	list, _ := r.get("templates").([]any)
	if len(list) != 2 {
		t.Fatalf("templates: got %s", r.raw)
	}
	first := list[0].(map[string]any)
	kws := first["keywords"].(map[string]any)
	if first["alias"] != "registration" || first["templateId"] != registrationID || first["kind"] != "one-time" || kws["thing4"] != "thing" {
		t.Fatalf("registration template: got %v", first)
	}
	if got := fmt.Sprint(e.want(e.do("GET", "/healthz", "", nil), 200).body); got != "map[ok:true]" {
		t.Fatalf("healthz: got %s", got)
	}
}

// The other order: the send gives up first, WeChat's sent event comes
// later and settles it.
func TestAmbiguousThenSentEventLater(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("frankie")
	e.grant(token, openID, leadID, 1)
	if err := e.fake.SetPush(wechattest.PushConfig{}); err != nil { // WeChat's pushes are late
		t.Fatal(err)
	}
	if err := e.fake.Inject(wechattest.Fault{API: "send", Count: 1, Drop: wechattest.DropAfterRead}); err != nil {
		t.Fatal(err)
	}
	r := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if r.str("status") != "unknown" || r.str("reason") != "no_answer" {
		t.Fatalf("dropped answer: got %s, want unknown/no_answer", r.raw)
	}
	msgs := e.fake.Messages(openID)
	if len(msgs) != 1 {
		t.Fatalf("WeChat truth: got %d messages, want 1", len(msgs))
	}
	msgID := strconv.FormatInt(msgs[0].MsgID, 10)
	ev := wechat.PushEvent{ToUserName: "gh_sandbox", FromUserName: openID, CreateTime: time.Now().Unix(), MsgType: "event",
		Event: wechat.EventSubscribeSent, Items: []wechat.PushItem{{TemplateID: leadID, MsgID: msgID, ErrorStatus: "success"}}}
	at := time.Now()
	for range 2 { // redelivered: applied once
		if p := e.push(ev, true, true, at); p.raw != "success" {
			t.Fatalf("sent event: got %d %s", p.status, p.raw)
		}
	}
	e.clock.advance(time.Hour)
	if n, err := e.srv.parts.Service.SweepUnknown(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", n, err)
	}
	g := e.want(e.do("GET", "/v1/notifications/"+r.str("id"), e.key, nil), 200)
	if g.str("status") != "sent" || g.str("wechat", "msgid") != msgID {
		t.Fatalf("after the sent event: got %s, want sent with msgid %s", g.raw, msgID)
	}
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits: got %d, want 0 (the message was delivered)", got)
	}
}
