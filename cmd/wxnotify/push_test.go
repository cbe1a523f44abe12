package main

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// pushMode is how a test push is posted: as WeChat does in each of the
// console's message encryption modes.
type pushMode int

const (
	plainMode      pushMode = iota // the event, signed with signature only
	safeMode                       // {ToUserName, Encrypt}, with msg_signature
	compatibleMode                 // the event's fields and Encrypt, with msg_signature
)

// push posts a push event to /wechat/push exactly as WeChat's servers do;
// ts gives the timestamp and the nonce, which a redelivery repeats.
func (e *env) push(ev wechat.PushEvent, asJSON, safe bool, ts time.Time) response {
	e.t.Helper()
	mode := plainMode
	if safe {
		mode = safeMode
	}
	return e.pushIn(mode, ev, asJSON, ts)
}

// pushIn is push in any mode.
func (e *env) pushIn(mode pushMode, ev wechat.PushEvent, asJSON bool, ts time.Time) response {
	e.t.Helper()
	q, body := e.signedPush(mode, ev, asJSON, ts)
	return e.do("POST", "/wechat/push?"+q.Encode(), "", string(body))
}

// signedPush returns the query and body of a push as WeChat posts it.
func (e *env) signedPush(mode pushMode, ev wechat.PushEvent, asJSON bool, ts time.Time) (url.Values, []byte) {
	e.t.Helper()
	body, err := wechat.MarshalPushEvent(ev, asJSON)
	if err != nil {
		e.t.Fatal(err)
	}
	timestamp, nonce := strconv.FormatInt(ts.Unix(), 10), strconv.FormatInt(ts.UnixNano()%1e9, 10)
	q := url.Values{"timestamp": {timestamp}, "nonce": {nonce}, "signature": {wechat.Signature(e.token, timestamp, nonce)}}
	if mode == plainMode {
		return q, body
	}
	c, err := wechat.NewCrypter(e.srv.parts.Config.AppID, e.aes)
	if err != nil {
		e.t.Fatal(err)
	}
	enc, err := c.Encrypt(body)
	if err != nil {
		e.t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wechat.Signature(e.token, timestamp, nonce, enc))
	q.Set("openid", ev.FromUserName)
	if mode == safeMode {
		if body, err = wechat.MarshalPushEnvelope(ev.ToUserName, enc, asJSON); err != nil {
			e.t.Fatal(err)
		}
		return q, body
	}
	return q, withEncrypt(e.t, body, enc, asJSON)
}

// withEncrypt adds the Encrypt field to a plaintext event, as compatible
// mode posts it.
func withEncrypt(tb testing.TB, plain []byte, enc string, asJSON bool) []byte {
	tb.Helper()
	plain = []byte(strings.TrimSpace(string(plain)))
	if asJSON {
		return []byte(strings.TrimSuffix(string(plain), "}") + `,"Encrypt":"` + enc + `"}`)
	}
	return []byte(strings.TrimSuffix(string(plain), "</xml>") + "<Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
}

func popupEvent(openID string, created int64, items ...wechat.PushItem) wechat.PushEvent {
	return wechat.PushEvent{ToUserName: "gh_sandbox", FromUserName: openID, CreateTime: created, MsgType: "event",
		Event: wechat.EventSubscribePopup, Items: items}
}

func accept(id string) wechat.PushItem {
	return wechat.PushItem{TemplateID: id, SubscribeStatus: "accept", PopupScene: "0"}
}

// Pushes in safe and compatible mode and both formats, List as object (one
// item) and array (several), each applied once however often WeChat
// redelivers it; with an EncodingAESKey configured, plaintext pushes are
// refused (their signature does not cover the body).
func TestPushModesAndRedelivery(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("mallory")
	created := time.Now().Unix()
	want := 0
	for _, tc := range []struct {
		name         string
		mode         pushMode
		json         bool
		items        int
		redeliveries int
	}{
		{"PlainXMLRefused", plainMode, false, 1, 1},
		{"PlainJSONRefused", plainMode, true, 1, 1},
		{"SafeXMLTwo", safeMode, false, 2, 3},
		{"SafeJSONTwo", safeMode, true, 2, 2},
		{"CompatibleXMLOne", compatibleMode, false, 1, 3},
		{"CompatibleJSONThree", compatibleMode, true, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var items []wechat.PushItem
			for range tc.items {
				items = append(items, accept(leadID))
			}
			created++
			ev := popupEvent(openID, created, items...)
			at := time.Now() // WeChat redelivers with the same parameters
			for i := range tc.redeliveries {
				r := e.pushIn(tc.mode, ev, tc.json, at)
				if tc.mode == plainMode {
					if r.status != 401 || r.str("error", "code") != "unauthorized" {
						t.Fatalf("delivery %d: got %d %q, want 401 unauthorized", i+1, r.status, r.raw)
					}
					continue
				}
				if r.status != 200 || r.raw != "success" {
					t.Fatalf("delivery %d: got %d %q, want 200 success", i+1, r.status, r.raw)
				}
			}
			if tc.mode != plainMode {
				want += tc.items
			}
			if got := e.credits(token, leadID); got != want {
				t.Fatalf("credits: got %d, want %d (each item once)", got, want)
			}
		})
	}
	// A change event turns the template off: the ledger is zeroed.
	created++
	r := e.push(wechat.PushEvent{ToUserName: "gh_sandbox", FromUserName: openID, CreateTime: created, MsgType: "event",
		Event: wechat.EventSubscribeChange, Items: []wechat.PushItem{{TemplateID: leadID, SubscribeStatus: "reject"}}}, true, true, time.Now())
	if r.raw != "success" {
		t.Fatalf("change event: got %d %s", r.status, r.raw)
	}
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits after the change event: got %d, want 0", got)
	}
}

// Anyone who sees one real push URL (a proxy or gateway access log) holds
// a valid signature, timestamp and nonce. With an EncodingAESKey
// configured, replaying that query with forged plaintext bodies grants
// nothing; in compatible mode the plaintext fields beside Encrypt are not
// believed either.
func TestCapturedPushURLCannotCarryForgedBodies(t *testing.T) {
	e := newEnv(t)
	token, victim := e.login("victim")
	bystanderToken, bystander := e.login("bystander")
	// The sandbox pushes a real popup event of the victim: capture its URL.
	e.want(e.do("POST", "/sandbox/subscribe", "", map[string]any{"openid": victim, "choices": map[string]string{leadID: "accept"}}), 200)
	e.fake.WaitPushes()
	pushes := e.fake.Pushes()
	if len(pushes) == 0 {
		t.Fatal("the sandbox pushed nothing")
	}
	captured := pushes[len(pushes)-1].Query
	for i := range 20 {
		ev := popupEvent(bystander, time.Now().Unix()+int64(i), accept(leadID))
		for _, asJSON := range []bool{true, false} {
			body, err := wechat.MarshalPushEvent(ev, asJSON)
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{}
			for k, v := range captured {
				if k != "encrypt_type" && k != "msg_signature" {
					q[k] = v
				}
			}
			if r := e.do("POST", "/wechat/push?"+q.Encode(), "", string(body)); r.status != 401 {
				t.Fatalf("forged plaintext body %d under a captured URL: got %d %s, want 401", i, r.status, r.raw)
			}
			// The same with the captured msg_signature: the forged
			// plaintext fields ride beside a real Encrypt of someone else.
			q, real := e.signedPush(safeMode, popupEvent(victim, ev.CreateTime, accept(leadID)), asJSON, time.Now())
			env, err := wechat.ParsePushEnvelope(real)
			if err != nil {
				t.Fatal(err)
			}
			if r := e.do("POST", "/wechat/push?"+q.Encode(), "", string(withEncrypt(t, body, env.Encrypt, asJSON))); r.status != 200 {
				t.Fatalf("compatible-mode body with forged fields: got %d %s, want 200", r.status, r.raw)
			}
		}
	}
	if got := e.credits(bystanderToken, leadID); got != 0 {
		t.Fatalf("bystander's credits after 40 forged bodies: got %d, want 0", got)
	}
	if got := e.credits(token, leadID); got != 41 {
		t.Fatalf("victim's credits: got %d, want 41 (the real popup and the 40 real encrypted events)", got)
	}
}

// G7: forged or stale pushes are refused; nothing is applied.
func TestPushRefusesForgeries(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("niaj")
	ev := popupEvent(openID, time.Now().Unix(), accept(leadID))
	other := *e
	other.token = "not-the-token"
	if r := other.push(ev, true, false, time.Now()); r.status != 401 {
		t.Fatalf("wrong token, plaintext: got %d %s, want 401", r.status, r.raw)
	}
	if r := other.push(ev, true, true, time.Now()); r.status != 401 {
		t.Fatalf("wrong token, safe mode: got %d %s, want 401", r.status, r.raw)
	}
	wrongKey := *e
	wrongKey.aes = strings.Repeat("A", 43)
	if r := wrongKey.push(ev, false, true, time.Now()); r.status != 401 {
		t.Fatalf("wrong AES key: got %d %s, want 401", r.status, r.raw)
	}
	if r := e.push(ev, true, false, time.Now().Add(-time.Hour)); r.status != 401 {
		t.Fatalf("replay an hour old: got %d %s, want 401", r.status, r.raw)
	}
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits after forged pushes: got %d, want 0", got)
	}
	// The console's URL check: signed, and inside the timestamp window.
	verify := func(ts, signature string) response {
		q := url.Values{"timestamp": {ts}, "nonce": {"1514711492"}, "echostr": {"hello"}, "signature": {signature}}
		return e.do("GET", "/wechat/push?"+q.Encode(), "", nil)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if r := verify(now, wechat.Signature(testPushToken, now, "1514711492")); r.status != 200 || r.raw != "hello" {
		t.Fatalf("verification: got %d %q, want 200 hello", r.status, r.raw)
	}
	if r := verify(now, strings.Repeat("0", 40)); r.status != 401 {
		t.Fatalf("verification with a bad signature: got %d, want 401", r.status)
	}
	for _, ts := range []string{"1", "1714036504", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), "x"} {
		if r := verify(ts, wechat.Signature(testPushToken, ts, "1514711492")); r.status != 401 {
			t.Fatalf("verification signed at timestamp %s: got %d %q, want 401", ts, r.status, r.raw)
		}
	}
}

// G7: unauthenticated, forged, malformed and oversized requests get a clear
// 4xx with the error body.
func TestBadRequestsAreRefusedCleanly(t *testing.T) {
	e := newEnv(t, "WXN_SESSION_TTL", "1m")
	token, openID := e.login("oscar")
	forged := token[:len(token)-2] + "xx"
	resigned := func() string {
		// A token signed with another secret.
		o := newEnv(t)
		tk, _ := o.login("oscar")
		return tk
	}()
	huge := `{"code":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, auth string
		body                     any
		status                   int
		code, field              string
	}{
		{"NoSession", "GET", "/v1/consents", "", nil, 401, "unauthorized", ""},
		{"ForgedSession", "GET", "/v1/consents", forged, nil, 401, "unauthorized", ""},
		{"ResignedSession", "GET", "/v1/consents", resigned, nil, 401, "unauthorized", ""},
		{"APIKeyAsSession", "GET", "/v1/consents", e.key, nil, 401, "unauthorized", ""},
		{"SessionAsAPIKey", "POST", "/v1/notifications", token, sendLead(map[string]string{"openid": openID}, ""), 401, "unauthorized", ""},
		{"WrongAPIKey", "POST", "/v1/notifications", "wxn_dev_wrong", sendLead(map[string]string{"openid": openID}, ""), 401, "unauthorized", ""},
		{"Oversize", "POST", "/v1/session", "", huge, 413, "payload_too_large", ""},
		{"Malformed", "POST", "/v1/session", "", `{"code":`, 400, "bad_request", ""},
		{"NotJSON", "POST", "/v1/notifications", e.key, `hello`, 400, "bad_request", ""},
		{"UnknownField", "POST", "/v1/notifications", e.key, `{"to":{"openid":"o1"},"template":"lead_assigned","data":{},"idempotency_key":"x"}`, 400, "bad_request", "idempotency_key"},
		{"DuplicateKey", "POST", "/v1/session", "", `{"code":"a","code":"b"}`, 400, "bad_request", "code"},
		{"DeepNesting", "POST", "/v1/consents", token, strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), 400, "bad_request", ""},
		{"HugeNumber", "POST", "/v1/notifications", e.key, `{"to":{"openid":"o1"},"template":"lead_assigned","data":{"thing1":1` + strings.Repeat("0", 400) + `}}`, 400, "bad_request", ""},
		{"UnknownTemplate", "POST", "/v1/notifications", e.key, map[string]any{"to": map[string]string{"openid": openID}, "template": "nope", "data": map[string]string{}}, 400, "bad_request", "template"},
		{"NoRecipient", "POST", "/v1/notifications", e.key, map[string]any{"template": "lead_assigned", "data": leadData("x")}, 400, "bad_request", "to"},
		{"BadPage", "POST", "/v1/notifications", e.key, map[string]any{"to": map[string]string{"openid": openID}, "template": "lead_assigned", "data": leadData("x"), "page": "https://evil.example/x"}, 400, "bad_request", "page"},
		{"MissingKeyword", "POST", "/v1/notifications", e.key, map[string]any{"to": map[string]string{"openid": openID}, "template": "lead_assigned", "data": map[string]string{"thing1": "x"}}, 400, "bad_request", "data.character_string2"},
		{"BadLang", "POST", "/v1/notifications", e.key, map[string]any{"to": map[string]string{"openid": openID}, "template": "lead_assigned", "data": leadData("x"), "lang": "fr_FR"}, 400, "bad_request", "lang"},
		{"EmptyCode", "POST", "/v1/session", "", `{"code":""}`, 400, "bad_request", "code"},
		{"UnknownCode", "POST", "/v1/session", "", `{"code":"081notacode"}`, 400, "invalid_code", "code"},
		{"ConsentErrMsgFail", "POST", "/v1/consents", token, `{"errMsg":"requestSubscribeMessage:fail"}`, 400, "bad_request", "errMsg"},
		{"ConsentNotString", "POST", "/v1/consents", token, `{"result":{"tmpl":1}}`, 400, "bad_request", "result.tmpl"},
		{"UnknownNotification", "GET", "/v1/notifications/ntf_nope", e.key, nil, 404, "not_found", ""},
		{"UnknownRoute", "GET", "/v2/nothing", "", nil, 404, "not_found", ""},
		{"WrongMethod", "PUT", "/v1/session", "", nil, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.str("error", "code") != tc.code || r.str("error", "field") != tc.field ||
				r.str("error", "requestId") == "" || r.str("error", "message") == "" {
				t.Fatalf("got %d %s, want %d with code %q field %q, a message and a request id", r.status, r.raw, tc.status, tc.code, tc.field)
			}
		})
	}
	if calls := e.sendCalls(); calls != 0 {
		t.Fatalf("WeChat send calls: got %d, want 0", calls)
	}
}

// An expired session token is refused.
func TestExpiredSession(t *testing.T) {
	e := newEnv(t, "WXN_SESSION_TTL", "1m")
	token, _ := e.login("peggy")
	e.want(e.do("GET", "/v1/consents", token, nil), 200)
	e.clock.advance(61 * time.Second)
	r := e.want(e.do("GET", "/v1/consents", token, nil), 401)
	if r.str("error", "code") != "unauthorized" {
		t.Fatalf("expired token: got %s", r.raw)
	}
}

// The mini program's report and WeChat's popup event for the same popup
// count once in either order, and a second popup counts again.
func TestReportAndPopupEventPairInEitherOrder(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("quinn")
	result := map[string]string{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}
	created := time.Now().Unix()
	// Report first, event second.
	e.want(e.do("POST", "/v1/consents", token, result), 200)
	if r := e.push(popupEvent(openID, created, accept(leadID)), true, true, time.Now()); r.raw != "success" {
		t.Fatalf("push: got %d %s", r.status, r.raw)
	}
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("report then event: got %d credits, want 1", got)
	}
	// Event first, report second.
	if r := e.push(popupEvent(openID, created+1, accept(leadID)), false, true, time.Now()); r.raw != "success" {
		t.Fatalf("push: got %d %s", r.status, r.raw)
	}
	e.want(e.do("POST", "/v1/consents", token, result), 200)
	if got := e.credits(token, leadID); got != 2 {
		t.Fatalf("event then report: got %d credits, want 2", got)
	}
	// Two popups whose reports come before their events.
	e.want(e.do("POST", "/v1/consents", token, result), 200)
	e.want(e.do("POST", "/v1/consents", token, result), 200)
	for i := range 2 {
		if r := e.push(popupEvent(openID, created+2+int64(i), accept(leadID)), true, true, time.Now()); r.raw != "success" {
			t.Fatalf("push: got %d %s", r.status, r.raw)
		}
	}
	if got := e.credits(token, leadID); got != 4 {
		t.Fatalf("two more popups: got %d credits, want 4", got)
	}
}

// Log lines carry no secret, token or full openid.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("rupert")
	e.grant(token, openID, leadID, 1)
	e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	e.do("GET", "/v1/consents", "forged-token", nil)
	e.push(popupEvent(openID, time.Now().Unix(), accept(leadID)), true, true, time.Now())
	logs := e.logs.String()
	if strings.Count(logs, `"msg":"request"`) < 6 {
		t.Fatalf("expected one log line per request, got:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"openid": openID, "session token": token, "API key": e.key, "push token": e.token, "AES key": e.aes,
		"app secret": e.fake.Secret(), "session secret": e.srv.parts.Config.SessionSecret,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}
