package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// sessionKeyRe matches what a WeChat session_key looks like: 16 random
// bytes in standard base64.
var sessionKeyRe = regexp.MustCompile(`[A-Za-z0-9+/]{22}==`)

// The whole flow - logins, bindings, popups and reports, sends that
// succeed, fail and stay ambiguous, lead events, a batch, pushes in every
// mode, forged and stale pushes, bad requests, rate limits, the report
// sweep - writes no secret, token, session_key, login code or full openid
// to any log line, and every line is one JSON object.
func TestWholeRunLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	secrets := map[string]string{
		"API key": e.key, "push token": e.token, "AES key": e.aes, "app secret": e.fake.Secret(),
		"session secret": e.srv.parts.Config.SessionSecret,
	}
	var openIDs, tokens []string
	login := func(user string) (token, openID string) {
		code := e.want(e.do("POST", "/sandbox/login", "", map[string]string{"user": user}), 200).str("code")
		secrets["login code of "+user] = code
		r := e.want(e.do("POST", "/v1/session", "", map[string]string{"code": code}), 200)
		token, openID = r.str("token"), r.str("openid")
		openIDs, tokens = append(openIDs, openID), append(tokens, token)
		return token, openID
	}

	// Logins, a binding, popups with and without reports.
	alice, aliceID := login("log-alice")
	bob, bobID := login("log-bob")
	b := e.bind("sales-42", "log-carol")
	openIDs, tokens = append(openIDs, b.str("openid")), append(tokens, b.str("token"))
	e.grant(alice, aliceID, leadID, 4)
	e.grant(b.str("token"), b.str("openid"), leadID, 2)
	e.popup(bobID, map[string]string{leadID: "accept", registrationID: "reject"}) // the client never reports it

	// Sends: sent, replayed by key, busy, ambiguous then settled, by userId, 43101.
	e.want(e.send(sendLead(map[string]string{"openid": aliceID}, "log-key-1")), 200)
	e.want(e.send(sendLead(map[string]string{"openid": aliceID}, "log-key-1")), 200)
	if err := e.fake.Inject(wechattest.Fault{API: "send", Errcode: -1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	e.want(e.send(sendLead(map[string]string{"openid": aliceID}, "")), 503)
	if err := e.fake.Inject(wechattest.Fault{API: "send", Count: 1, Drop: wechattest.DropAfterRead}); err != nil {
		t.Fatal(err)
	}
	e.want(e.send(sendLead(map[string]string{"openid": aliceID}, "")), 200)
	e.want(e.send(sendLead(map[string]string{"userId": "sales-42"}, "")), 200)
	dave, daveID := login("log-dave")
	e.want(e.do("POST", "/v1/consents", dave, map[string]any{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}), 200)
	e.want(e.send(sendLead(map[string]string{"openid": daveID}, "")), 200) // WeChat answers 43101

	// A lead event and a batch, run by the dev server's tick.
	event := map[string]any{"id": "evt-log-1", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
		"data": map[string]any{"lead": map[string]any{"id": "L-1", "name": "Acme"}, "assignee": map[string]any{"userId": "sales-42"}}}
	e.want(e.do("POST", "/v1/events", e.key, event), 202)
	batch := map[string]any{"template": "lead_assigned", "data": leadData("Digest"),
		"recipients": []map[string]string{{"openid": aliceID}, {"openid": bobID}, {"userId": "sales-42"}}}
	id := e.want(e.do("POST", "/v1/batches", e.key, batch), 202).str("id")
	deadline := time.Now().Add(15 * time.Second)
	for e.want(e.do("GET", "/v1/batches/"+id, e.key, nil), 200).str("status") != "done" {
		if time.Now().After(deadline) {
			t.Fatal("batch not done in 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Pushes: every mode, a redelivery, a change event; forged and stale ones.
	created := time.Now().Unix()
	for i, mode := range []struct{ json, safe bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		ev := popupEvent(bobID, created+int64(i), accept(leadID))
		at := time.Now()
		e.push(ev, mode.json, mode.safe, at)
		e.push(ev, mode.json, mode.safe, at) // redelivered
	}
	e.push(wechat.PushEvent{ToUserName: "gh_sandbox", FromUserName: bobID, CreateTime: created + 9, MsgType: "event",
		Event: wechat.EventSubscribeChange, Items: []wechat.PushItem{{TemplateID: leadID, SubscribeStatus: "reject"}}}, true, true, time.Now())
	forged := *e
	forged.token = "not-the-push-token"
	forged.push(popupEvent(bobID, created+10, accept(leadID)), true, false, time.Now())
	e.push(popupEvent(bobID, created+11, accept(leadID)), true, true, time.Now().Add(-time.Hour))

	// Bad requests of every kind.
	e.do("GET", "/v1/consents", "wxn1.forged.token", nil)
	e.do("GET", "/v1/consents", alice+"x", nil)
	e.do("POST", "/v1/session", "", `{"code":"a","code":"b"}`)
	e.do("POST", "/v1/session", "", map[string]string{"code": "081notacode"})
	e.do("POST", "/v1/consents", bob, strings.Repeat(`{"a":`, 50)+"1"+strings.Repeat("}", 50))
	e.do("POST", "/v1/notifications", e.key, map[string]any{"to": map[string]string{"openid": aliceID}, "template": "lead_assigned",
		"data": leadData("x"), "page": "javascript:alert(1)"})
	for range 11 { // the 11th report of the minute is refused
		e.do("POST", "/v1/consents", bob, map[string]any{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"})
	}
	for i := range 12 { // unknown API keys, then rate limited
		e.do("POST", "/v1/notifications", fmt.Sprintf("wxn_guess_%02d_0123456789", i), sendLead(map[string]string{"openid": aliceID}, ""))
	}
	e.clock.advance(time.Hour)
	if _, err := e.srv.parts.Service.SweepReports(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/v1/consents", alice, nil) // still valid an hour later
	e.fake.WaitPushes()

	it, err := e.srv.parts.Store.Get(context.Background(), store.Key{Partition: wechat.TokenPartition, Sort: e.srv.parts.Config.AppID})
	if err != nil {
		t.Fatalf("the access token record: %v", err)
	}
	var rec struct{ Token string }
	if err := json.Unmarshal(it.Value, &rec); err != nil || rec.Token == "" {
		t.Fatalf("the access token record: %s %v", it.Value, err)
	}
	secrets["access token"] = rec.Token
	for i, o := range openIDs {
		secrets[fmt.Sprintf("openid %d", i)] = o
	}
	for i, tk := range tokens {
		secrets[fmt.Sprintf("session token %d", i)] = tk
	}

	logs := e.logs.String()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) < 80 {
		t.Fatalf("got %d log lines, want one per request at least:\n%s", len(lines), logs)
	}
	statuses := map[float64]bool{}
	for _, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("a log line is not one JSON object: %q", line)
		}
		if s, ok := v["status"].(float64); ok {
			statuses[s] = true
		}
	}
	for _, s := range []float64{200, 202, 400, 401, 413, 429, 503} {
		if s == 413 {
			continue // not provoked here; TestBadRequestsAreRefusedCleanly has it
		}
		if !statuses[s] {
			t.Errorf("no request line with status %v: the run missed a path", s)
		}
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Fatalf("%s: empty, the test lost it", name)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	if strings.Contains(logs, "session_key") || sessionKeyRe.MatchString(logs) {
		t.Errorf("the logs contain a session_key: %s", sessionKeyRe.FindString(logs))
	}
}
