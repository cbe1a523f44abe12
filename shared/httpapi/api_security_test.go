package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const (
	testAppID    = "wxsecuritytest"
	testTmplID   = "sec-tmpl-id"
	testAPIKey   = "wxn_test_0123456789abcdef"
	testAPIKey2  = "wxn_test_fedcba9876543210"
	testPushTok  = "securitypushtoken"
	testSecret32 = "0123456789abcdef0123456789abcdef"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

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

// apiRig is the API of every route group over a bolt store and the fake
// WeChat, served in process so that tests choose the client address.
type apiRig struct {
	mux      *httpapi.Mux
	svc      *notify.Service
	fake     *wechattest.Server
	clock    *testClock
	sessions *notify.Sessions
}

func newAPIRig(tb testing.TB) *apiRig {
	tb.Helper()
	return newAPIRigWith(tb, &httpapi.PushConfig{Token: testPushTok})
}

// newAPIRigWith is newAPIRig with its own push configuration.
func newAPIRigWith(tb testing.TB, push *httpapi.PushConfig) *apiRig {
	tb.Helper()
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	fake := wechattest.NewServer(wechattest.Options{AppID: testAppID, Templates: []wechattest.Template{{
		PriTmplID: testTmplID, Title: "线索分配通知", Type: 2, Keywords: []wechattest.Keyword{{Name: "thing1"}}}}})
	tb.Cleanup(fake.Close)
	wx, err := wechat.New(wechat.Config{AppID: testAppID, Secret: fake.Secret(), BaseURL: fake.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	catalog, err := notify.NewCatalog([]notify.Template{{Alias: "lead", ID: testTmplID, Keywords: []notify.Keyword{{Name: "thing1"}}}})
	if err != nil {
		tb.Fatal(err)
	}
	sessions, err := notify.NewSessions([]byte(testSecret32), time.Hour, clock.Now)
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := notify.New(notify.Options{AppID: testAppID, Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Options{Service: svc, APIKeys: []string{testAPIKey, testAPIKey2}, Now: clock.Now,
		Push: push})
	if err != nil {
		tb.Fatal(err)
	}
	return &apiRig{mux: api.NewMux(httpapi.AllGroups...), svc: svc, fake: fake, clock: clock, sessions: sessions}
}

type answer struct {
	status int
	header http.Header
	raw    string
	body   struct {
		Error struct {
			Code, Message, Field, RequestID string
		}
	}
}

// do serves one request from the client address addr.
func (r *apiRig) do(tb testing.TB, addr, method, target, auth string, body []byte) answer {
	tb.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.RemoteAddr = addr + ":40000"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	return r.serve(req)
}

// serve serves one prepared request.
func (r *apiRig) serve(req *http.Request) answer {
	rec := httptest.NewRecorder()
	r.mux.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

// Hostile JSON (nesting, huge numbers, duplicate keys, several values,
// non-objects) is refused with a clean 400 on every JSON route, before any
// effect: no WeChat call, nothing created.
func TestHostileJSONRefusedOnEveryRoute(t *testing.T) {
	r := newAPIRig(t)
	session, _ := r.sessions.Issue(testAppID, "o-user")
	routes := []struct{ name, target, auth string }{
		{"Session", "/v1/session", ""},
		{"Bindings", "/v1/bindings", testAPIKey},
		{"Consents", "/v1/consents", session},
		{"Notifications", "/v1/notifications", testAPIKey},
		{"Batches", "/v1/batches", testAPIKey},
		{"Events", "/v1/events", testAPIKey},
	}
	bodies := []struct{ name, body string }{
		{"DeepObject", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)},
		{"DeepArray", `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "}"},
		{"DeepUnclosed", strings.Repeat("[", 30000)},
		{"HugeInteger", `{"a":1` + strings.Repeat("0", 400) + `}`},
		{"HugeFraction", `{"a":0.` + strings.Repeat("1", 400) + `}`},
		{"HugeNumberInArray", `[1` + strings.Repeat("9", 100) + `]`},
		{"DuplicateKey", `{"x":1,"x":2}`},
		{"DuplicateNestedKey", `{"a":{"b":1,"b":2}}`},
		{"DuplicateKeyInArray", `[{"id":"e1","id":"e2"}]`},
		{"TwoValues", `{} {}`},
		{"TrailingGarbage", `{}x`},
		{"Empty", ``},
		{"Whitespace", " \n\t "},
		{"Null", `null`},
		{"String", `"x"`},
		{"Number", `7`},
		{"NaN", `{"a":NaN}`},
		{"BOM", "\xef\xbb\xbf{}"},
		{"Truncated", `{"a":"b`},
		{"SingleQuotes", `{'a':'b'}`},
		{"Comment", `{"a":1 /* c */}`},
	}
	for _, rt := range routes {
		for _, b := range bodies {
			t.Run(rt.name+"/"+b.name, func(t *testing.T) {
				a := r.do(t, "192.0.2.1", "POST", rt.target, rt.auth, []byte(b.body))
				if a.status != http.StatusBadRequest || a.body.Error.Code != "bad_request" || a.body.Error.Message == "" ||
					a.body.Error.RequestID == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
					t.Fatalf("got %d %s, want 400 bad_request with a message and a request id", a.status, a.raw)
				}
			})
		}
		t.Run(rt.name+"/Oversized", func(t *testing.T) {
			size := httpapi.MaxBodyBytes + 1
			if rt.name == "Batches" {
				size = httpapi.MaxBatchBodyBytes + 1
			} else if rt.name == "Events" {
				size = notify.MaxEventSize*4 + 1
			}
			a := r.do(t, "192.0.2.1", "POST", rt.target, rt.auth, []byte(`{"a":"`+strings.Repeat("x", size)+`"}`))
			if a.status != http.StatusRequestEntityTooLarge || a.body.Error.Code != "payload_too_large" {
				t.Fatalf("got %d %s, want 413 payload_too_large", a.status, a.raw)
			}
		})
	}
	for _, api := range []string{wechattest.APICode2Session, wechattest.APISend, wechattest.APIToken, wechattest.APIStableToken} {
		if n := r.fake.Calls(api); n != 0 {
			t.Errorf("WeChat %s calls: got %d, want 0", api, n)
		}
	}
	if c, err := r.svc.Consents(context.Background(), "o-user"); err != nil || c[0].Status != "" || c[0].Credits != 0 {
		t.Errorf("consents after hostile reports: got %+v %v, want untouched", c, err)
	}
}

// Unknown API keys from one address are answered 429 with Retry-After
// after a few failures; a valid key from that address still works (behind
// a NAT or a proxy, one scanner must not lock out the real backends), and
// other addresses and later windows are unaffected.
func TestUnknownAPIKeysAreRateLimited(t *testing.T) {
	r := newAPIRig(t)
	get := func(addr, key string) answer { return r.do(t, addr, "GET", "/v1/notifications/ntf_missing", key, nil) }
	if a := get("198.51.100.7", testAPIKey); a.status != http.StatusNotFound {
		t.Fatalf("valid key: got %d %s, want 404", a.status, a.raw)
	}
	for i := range 12 {
		key := "wxn_guess_" + strconv.Itoa(i) + "_0123456789"
		if i%3 == 0 {
			key = testAPIKey[:len(testAPIKey)-1] // one character short
		}
		want, code := http.StatusUnauthorized, "unauthorized"
		if i >= 10 {
			want, code = http.StatusTooManyRequests, "rate_limited"
		}
		if a := get("198.51.100.7", key); a.status != want || a.body.Error.Code != code {
			t.Fatalf("wrong key %d: got %d %s, want %d %s", i, a.status, a.raw, want, code)
		}
	}
	for _, key := range []string{"wxn_guess_again_0123456789", ""} {
		a := get("198.51.100.7", key)
		retry, err := strconv.Atoi(a.header.Get("Retry-After"))
		if a.status != http.StatusTooManyRequests || a.body.Error.Code != "rate_limited" || err != nil || retry < 1 || retry > 60 {
			t.Fatalf("key %q after 10 failures: got %d Retry-After %q %s, want 429 rate_limited with Retry-After 1..60",
				key, a.status, a.header.Get("Retry-After"), a.raw)
		}
	}
	for _, key := range []string{testAPIKey, testAPIKey2} {
		if a := get("198.51.100.7", key); a.status != http.StatusNotFound {
			t.Fatalf("valid key %q from the noisy address: got %d %s, want 404", key[:8], a.status, a.raw)
		}
	}
	if a := get("198.51.100.8", testAPIKey2); a.status != http.StatusNotFound {
		t.Fatalf("another address: got %d %s, want 404", a.status, a.raw)
	}
	r.clock.advance(time.Minute)
	if a := get("198.51.100.7", "wxn_guess_later_0123456789"); a.status != http.StatusUnauthorized {
		t.Fatalf("a wrong key a window later: got %d %s, want 401", a.status, a.raw)
	}
}

// Session tokens that wxnotify did not issue for this app are refused over
// HTTP as in Verify; an API key is no session and a session no API key.
func TestSessionTokensRefusedOverHTTP(t *testing.T) {
	r := newAPIRig(t)
	valid, _ := r.sessions.Issue(testAppID, "o-user")
	otherApp, _ := r.sessions.Issue("wxanotherapp", "o-user")
	body, sig, _ := strings.Cut(strings.TrimPrefix(valid, "wxn1."), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	if a := r.do(t, "192.0.2.9", "GET", "/v1/consents", otherApp, nil); a.status != http.StatusForbidden || a.body.Error.Code != "app_forbidden" {
		t.Fatalf("a token of another app: got %d %s, want 403 app_forbidden", a.status, a.raw)
	}
	for _, tc := range []struct{ name, auth string }{
		{"None", ""},
		{"Forged", "wxn1." + body + "." + strings.Repeat("A", len(sig))},
		{"Truncated", valid[:len(valid)-3]},
		{"Padded", valid + "="},
		{"AlgNone", none},
		{"APIKey", testAPIKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.do(t, "192.0.2.9", "GET", "/v1/consents", tc.auth, nil)
			if a.status != http.StatusUnauthorized || a.body.Error.Code != "unauthorized" {
				t.Fatalf("got %d %s, want 401 unauthorized", a.status, a.raw)
			}
		})
	}
	if a := r.do(t, "192.0.2.9", "GET", "/v1/consents", valid, nil); a.status != http.StatusOK {
		t.Fatalf("valid session: got %d %s, want 200", a.status, a.raw)
	}
	if a := r.do(t, "192.0.2.9", "GET", "/v1/notifications/ntf_x", valid, nil); a.status != http.StatusUnauthorized {
		t.Fatalf("session as API key: got %d %s, want 401", a.status, a.raw)
	}
	r.clock.advance(time.Hour)
	if a := r.do(t, "192.0.2.9", "GET", "/v1/consents", valid, nil); a.status != http.StatusUnauthorized {
		t.Fatalf("expired session: got %d %s, want 401", a.status, a.raw)
	}
}

// pushRequest is a signed plaintext JSON push of one accepted popup, sent
// with the given timestamp.
func pushRequest(tb testing.TB, openID string, created int64, ts time.Time) (string, []byte) {
	tb.Helper()
	ev := wechat.PushEvent{ToUserName: "gh_x", FromUserName: openID, CreateTime: created, MsgType: "event",
		Event: wechat.EventSubscribePopup, Items: []wechat.PushItem{{TemplateID: testTmplID, SubscribeStatus: "accept"}}}
	body, err := wechat.MarshalPushEvent(ev, true)
	if err != nil {
		tb.Fatal(err)
	}
	timestamp, nonce := strconv.FormatInt(ts.Unix(), 10), "42"
	q := url.Values{"timestamp": {timestamp}, "nonce": {nonce}, "signature": {wechat.Signature(testPushTok, timestamp, nonce)}}
	return "/wechat/push?" + q.Encode(), body
}

// A signed push outside the timestamp window is a replay: refused, not
// applied. Inside it, every copy is answered success and applied once.
func TestPushTimestampWindowAndReplays(t *testing.T) {
	r := newAPIRig(t)
	now := r.clock.Now()
	credits := func() int64 {
		c, err := r.svc.Consents(context.Background(), "o-push")
		if err != nil {
			t.Fatal(err)
		}
		return c[0].Credits
	}
	for _, tc := range []struct {
		name string
		ts   time.Time
	}{
		{"TooOld", now.Add(-5*time.Minute - time.Second)},
		{"TooNew", now.Add(5*time.Minute + time.Second)},
		{"Epoch", time.Unix(0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, body := pushRequest(t, "o-push", 1, tc.ts)
			if a := r.do(t, "192.0.2.30", "POST", target, "", body); a.status != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", a.status, a.raw)
			}
		})
	}
	if got := credits(); got != 0 {
		t.Fatalf("credits after replays outside the window: got %d, want 0", got)
	}
	target, body := pushRequest(t, "o-push", 1, now.Add(-5*time.Minute))
	for i := range 4 {
		if a := r.do(t, "192.0.2.30", "POST", target, "", body); a.status != http.StatusOK || a.raw != "success" {
			t.Fatalf("copy %d inside the window: got %d %q, want 200 success", i+1, a.status, a.raw)
		}
	}
	if got := credits(); got != 1 {
		t.Fatalf("credits after 4 copies: got %d, want 1", got)
	}
	r.clock.advance(5*time.Minute + time.Second)
	if a := r.do(t, "192.0.2.30", "POST", target, "", body); a.status != http.StatusUnauthorized {
		t.Fatalf("the same copy once stale: got %d %s, want 401", a.status, a.raw)
	}
}

// In plaintext mode the signature covers the timestamp and nonce, not the
// body: a captured push URL replayed with forged bodies is refused, while
// WeChat's own redeliveries (the same query and body) are answered success
// and applied once. The URL verification GET checks the window too.
func TestPlaintextPushSignatureBoundToBody(t *testing.T) {
	r := newAPIRig(t)
	now := r.clock.Now()
	credits := func(openID string) int64 {
		c, err := r.svc.Consents(context.Background(), openID)
		if err != nil {
			t.Fatal(err)
		}
		return c[0].Credits
	}
	target, body := pushRequest(t, "o-real", 1, now)
	for i := range 3 {
		if a := r.do(t, "192.0.2.31", "POST", target, "", body); a.status != http.StatusOK || a.raw != "success" {
			t.Fatalf("WeChat's delivery %d: got %d %q, want 200 success", i+1, a.status, a.raw)
		}
	}
	for i := range 20 {
		_, forged := pushRequest(t, "o-bystander", int64(i+2), now)
		if a := r.do(t, "192.0.2.66", "POST", target, "", forged); a.status != http.StatusUnauthorized || a.body.Error.Code != "unauthorized" {
			t.Fatalf("forged body %d under the captured URL: got %d %s, want 401 unauthorized", i+1, a.status, a.raw)
		}
	}
	if got := credits("o-bystander"); got != 0 {
		t.Fatalf("bystander's credits after 20 forged bodies: got %d, want 0", got)
	}
	if got := credits("o-real"); got != 1 {
		t.Fatalf("the real user's credits: got %d, want 1", got)
	}
	verify := func(ts time.Time) answer {
		timestamp := strconv.FormatInt(ts.Unix(), 10)
		q := url.Values{"timestamp": {timestamp}, "nonce": {"7"}, "echostr": {"e42"}, "signature": {wechat.Signature(testPushTok, timestamp, "7")}}
		return r.do(t, "192.0.2.31", "GET", "/wechat/push?"+q.Encode(), "", nil)
	}
	if a := verify(now); a.status != http.StatusOK || a.raw != "e42" {
		t.Fatalf("URL verification now: got %d %q, want 200 e42", a.status, a.raw)
	}
	for _, ts := range []time.Time{time.Unix(1, 0), now.Add(-6 * time.Minute), now.Add(6 * time.Minute)} {
		if a := verify(ts); a.status != http.StatusUnauthorized {
			t.Fatalf("URL verification signed at %d: got %d %q, want 401", ts.Unix(), a.status, a.raw)
		}
	}
}

// While the push Token is rotated, WeChat signs with the new Token as soon as
// the console saves it, and instances not yet updated expect the old one:
// with PreviousToken both are accepted, any other is not.
func TestPushTokenRotation(t *testing.T) {
	const newTok = "rotatedPushToken2026"
	r := newAPIRigWith(t, &httpapi.PushConfig{Token: newTok, PreviousToken: testPushTok})
	timestamp := strconv.FormatInt(r.clock.Now().Unix(), 10)
	verify := func(tok string) answer {
		q := url.Values{"timestamp": {timestamp}, "nonce": {"9"}, "echostr": {"e7"}, "signature": {wechat.Signature(tok, timestamp, "9")}}
		return r.do(t, "192.0.2.40", "GET", "/wechat/push?"+q.Encode(), "", nil)
	}
	for _, tok := range []string{newTok, testPushTok} {
		if a := verify(tok); a.status != http.StatusOK || a.raw != "e7" {
			t.Fatalf("URL check signed with %q: got %d %q, want 200 e7", tok, a.status, a.raw)
		}
	}
	if a := verify("someOtherToken"); a.status != http.StatusUnauthorized {
		t.Fatalf("URL check signed with another token: got %d %q, want 401", a.status, a.raw)
	}
	after := newAPIRigWith(t, &httpapi.PushConfig{Token: newTok})
	q := url.Values{"timestamp": {timestamp}, "nonce": {"9"}, "echostr": {"e7"}, "signature": {wechat.Signature(testPushTok, timestamp, "9")}}
	if a := after.do(t, "192.0.2.40", "GET", "/wechat/push?"+q.Encode(), "", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("the old Token after the rotation: got %d %q, want 401", a.status, a.raw)
	}
}
