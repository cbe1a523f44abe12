package httpapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// wantBadRequest fails unless err is nil or a bad_request *notify.Error.
func wantBadRequest(t *testing.T, what string, body []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *notify.Error
	if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Message == "" {
		t.Fatalf("%s(%q): got %v, want a bad_request *notify.Error", what, body, err)
	}
}

// wantRefusedUnlessUTF8 fails if a body that is not UTF-8 was accepted:
// outside strings JSON is ASCII, so the bytes were in a string that
// encoding/json would have changed.
func wantRefusedUnlessUTF8(t *testing.T, what string, body []byte, err error) {
	t.Helper()
	if err == nil && !utf8.Valid(body) {
		t.Fatalf("%s(%q): accepted a body that is not UTF-8", what, body)
	}
}

// FuzzParseBatchBody: any body gives a batch request or a bad_request.
func FuzzParseBatchBody(f *testing.F) {
	for _, seed := range []string{
		`{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o1","data":{"number2":7}},{"userId":"u-1"}],"idempotencyKey":"k"}`,
		`{"template":"lead","audience":"consenting","notBefore":"2026-11-21T09:30:00Z","page":"pages/a/a?x=1"}`,
		`{"recipients":[{"data":{"a":{"value":"v"}}}]}`,
		`{"notBefore":"yesterday"}`, `{"recipients":{}}`, `{"Data":{"a":1},"data":{"a":2}}`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := httpapi.ParseBatchBody(body)
		wantBadRequest(t, "ParseBatchBody", body, err)
		wantRefusedUnlessUTF8(t, "ParseBatchBody", body, err)
		if err == nil && len(req.Recipients) > 0 && len(body) < 2*len(req.Recipients) {
			t.Fatalf("ParseBatchBody(%q): %d recipients from %d bytes", body, len(req.Recipients), len(body))
		}
	})
}

// FuzzParseEvents: any body gives 1..100 events, each with an id and a
// type, or a bad_request naming the event.
func FuzzParseEvents(f *testing.F) {
	for _, seed := range []string{
		`{"id":"evt-1","type":"lead.assigned","occurredAt":"2026-11-21T09:30:00Z","data":{"lead":{"id":"L-1"}}}`,
		`[{"id":"a","type":"t","data":{}},{"id":"b","type":"t","data":{"n":1e3}}]`,
		`[]`, `[{}]`, `[1]`, `{"id":"","type":"t"}`, `{"id":"x","type":"t","data":{"a":{"a":{"a":1}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := httpapi.ParseEvents(body)
		wantBadRequest(t, "ParseEvents", body, err)
		wantRefusedUnlessUTF8(t, "ParseEvents", body, err)
		if err != nil {
			return
		}
		if len(evs) == 0 || len(evs) > 100 {
			t.Fatalf("ParseEvents(%q): %d events, want 1..100", body, len(evs))
		}
		for i, ev := range evs {
			if ev.ID == "" || ev.Type == "" {
				t.Fatalf("ParseEvents(%q): event %d has no id or type: %+v", body, i, ev)
			}
		}
	})
}

// FuzzJSONRoutes posts any body to every JSON route of the real API: the
// answer is never a 5xx, a refusal is a 4xx with the JSON error body, and
// a body that is not UTF-8 is refused.
// (It reaches the store but not WeChat with what passes validation: the
// fake WeChat answers it.)
func FuzzJSONRoutes(f *testing.F) {
	r := newAPIRig(f)
	session, _ := r.sessions.Issue(testAppID, "o-fuzz")
	routes := []struct{ target, auth string }{
		{"/v1/session", ""},
		{"/v1/bindings", testAPIKey},
		{"/v1/consents", session},
		{"/v1/notifications", testAPIKey},
		{"/v1/batches", testAPIKey},
		{"/v1/events", testAPIKey},
	}
	for i, seed := range []string{
		`{"code":"081xyz"}`,
		`{"userId":"sales-42","code":"081xyz"}`,
		`{"result":{"errMsg":"requestSubscribeMessage:ok","sec-tmpl-id":"accept"},"settings":{"mainSwitch":true,"itemSettings":{"sec-tmpl-id":"reject"}}}`,
		`{"to":{"openid":"o-fuzz"},"template":"lead","data":{"thing1":"Acme"},"page":"pages/a/a?id=1","idempotencyKey":"k1"}`,
		`{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o1"}]}`,
		`[{"id":"evt-1","type":"lead.assigned","data":{}}]`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	// Valid requests but for one string that is not UTF-8.
	for i, seed := range []string{
		"{\"code\":\"081\xff\"}",
		"{\"userId\":\"sales-\xff\",\"code\":\"081xyz\"}",
		`{"result":{"errMsg":"requestSubscribeMessage:ok","sec-tmpl-id":"accept\udc00"}}`,
		"{\"to\":{\"openid\":\"o-fuzz\"},\"template\":\"lead\",\"data\":{\"thing1\":\"Acme\xed\xa0\x80\"}}",
		"{\"template\":\"lead\",\"data\":{\"thing1\":\"x\"},\"recipients\":[{\"openid\":\"o1\",\"data\":{\"thing1\":\"\xc0\xaf\"}}]}",
		`[{"id":"evt-1","type":"lead.assigned","data":{"lead":"\ud800"}}]`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		a := r.do(t, "192.0.2.77", "POST", rt.target, rt.auth, body)
		if a.status >= 500 {
			t.Fatalf("POST %s %q: got %d %s, want no server error", rt.target, body, a.status, a.raw)
		}
		if a.status >= 400 && (a.body.Error.Code == "" || a.body.Error.Message == "" || a.body.Error.RequestID == "") {
			t.Fatalf("POST %s %q: got %d %s, want the JSON error body", rt.target, body, a.status, a.raw)
		}
		if a.status < 400 && !utf8.Valid(body) {
			t.Fatalf("POST %s %q: got %d %s for a body that is not UTF-8, want a refusal", rt.target, body, a.status, a.raw)
		}
	})
}

// FuzzPushRoute posts any body and query to /wechat/push, signed with the
// right token or not: a refusal is a 4xx with the error body, an accepted
// push is answered "success", and nothing is a 5xx.
func FuzzPushRoute(f *testing.F) {
	r := newAPIRig(f)
	ts := strconv.FormatInt(r.clock.Now().Unix(), 10)
	_, body := pushRequest(f, "o-fuzz", 1, r.clock.Now())
	f.Add(true, ts, "42", "", body)
	f.Add(true, ts, "7", "", []byte(`<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>`+
		`<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId>sec-tmpl-id</TemplateId>`+
		`<SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>`))
	f.Add(false, ts, "1", "aes", []byte(`{"ToUserName":"gh","Encrypt":"AAAA"}`))
	f.Add(true, "0", "1", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, sign bool, timestamp, nonce, encType string, body []byte) {
		q := url.Values{"timestamp": {timestamp}, "nonce": {nonce}, "encrypt_type": {encType}}
		if sign {
			q.Set("signature", wechat.Signature(testPushTok, timestamp, nonce))
		}
		a := r.do(t, "192.0.2.78", "POST", "/wechat/push?"+q.Encode(), "", body)
		switch {
		case a.status >= 500 && a.body.Error.Code != string(notify.CodeWeChatUnavailable):
			t.Fatalf("push %q: got %d %s, want no server error", body, a.status, a.raw)
		case a.status == http.StatusOK && a.raw != "success":
			t.Fatalf("push %q: got 200 %q, want success", body, a.raw)
		case a.status >= 400 && a.body.Error.Code == "":
			t.Fatalf("push %q: got %d %s, want the JSON error body", body, a.status, a.raw)
		}
		if !sign && a.status == http.StatusOK {
			t.Fatalf("unsigned push %q accepted", body)
		}
	})
}

// FuzzRoutePaths requests every registered route with arbitrary bytes in
// its path parameters (percent-encoded, or given as already-encoded text:
// invalid UTF-8, NUL, '|', '/', very long, bad escapes), and in the query
// of the routes without one, authenticated as the route requires. The
// answer is never a 5xx; a refusal is a 4xx with the JSON error body; a
// value that is not UTF-8 never names anything (no 2xx).
func FuzzRoutePaths(f *testing.F) {
	r := newAPIRig(f)
	session, _ := r.sessions.Issue(testAppID, "o-fuzz")
	ntf := r.created(f, "/v1/notifications", `{"to":{"openid":"o-fuzz"},"template":"lead","data":{"thing1":"x"}}`, http.StatusOK)
	bat := r.created(f, "/v1/batches", `{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o-fuzz"}]}`, http.StatusAccepted)
	routes := httpapi.Routes(httpapi.AllGroups...)
	auth := func(pattern string) string {
		switch pattern {
		case "POST /v1/session", "GET /wechat/push", "POST /wechat/push":
			return ""
		case "GET /v1/templates", "GET /v1/consents", "POST /v1/consents":
			return session
		}
		return testAPIKey
	}
	for i := range routes {
		for _, v := range []string{"\xff\xfe", "\x00", "a|b", "a/b", "..", "", "é", "\xed\xa0\x80", strings.Repeat("x", 300),
			ntf, bat, "sales-42", "o-fuzz"} {
			f.Add(uint8(i), false, v)
		}
		for _, v := range []string{"%ff%fe", "%00", "%7C", "%2F", "%", "%zz", "a%2Fb?c#d", "%e5%ae%98"} {
			f.Add(uint8(i), true, v)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, encoded bool, value string) {
		pattern := routes[int(route)%len(routes)]
		method, path, _ := strings.Cut(pattern, " ")
		seg := value
		if !encoded {
			seg = url.PathEscape(value)
		}
		var hasParam bool
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "{") {
				segs[i], hasParam = seg, true
			}
		}
		target := strings.Join(segs, "/")
		if !hasParam {
			if encoded {
				target += "?" + value
			} else {
				target += "?q=" + url.QueryEscape(value)
			}
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http answers 400 before any handler
		}
		req := httptest.NewRequest(method, "/", strings.NewReader("{}"))
		req.URL, req.RequestURI = u, u.RequestURI()
		req.RemoteAddr = "192.0.2.79:40000"
		if a := auth(pattern); a != "" {
			req.Header.Set("Authorization", "Bearer "+a)
		}
		a := r.serve(req)
		switch {
		case a.status >= 500:
			t.Fatalf("%s %s: got %d %s, want no server error", method, target, a.status, a.raw)
		case a.status >= 400 && (a.body.Error.Code == "" || a.body.Error.Message == "" || a.body.Error.RequestID == ""):
			t.Fatalf("%s %s: got %d %s, want the JSON error body", method, target, a.status, a.raw)
		case hasParam && a.status < 300 && !utf8.ValidString(u.Path):
			t.Fatalf("%s %s: got %d %s for a path that is not UTF-8, want a refusal", method, target, a.status, a.raw)
		}
	})
}
