package wechattest_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const pushToken = "AAAAA"

// received is a push as the mini program's server got it.
type received struct {
	query url.Values
	body  []byte
}

// receiver is the mini program's push endpoint: it records every request and answers with the next
// scripted reply, then with 200 "success".
type receiver struct {
	ts      *httptest.Server
	mu      sync.Mutex
	got     []received
	replies []func(http.ResponseWriter, *http.Request)
}

func newReceiver(tb testing.TB, replies ...func(http.ResponseWriter, *http.Request)) *receiver {
	tb.Helper()
	rc := &receiver{replies: replies}
	rc.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{query: r.URL.Query(), body: body})
		var reply func(http.ResponseWriter, *http.Request)
		if len(rc.replies) > 0 {
			reply, rc.replies = rc.replies[0], rc.replies[1:]
		}
		rc.mu.Unlock()
		if reply == nil {
			_, _ = io.WriteString(w, "success")
			return
		}
		reply(w, r)
	}))
	tb.Cleanup(rc.ts.Close)
	return rc
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// newAESKey is a random EncodingAESKey: 43 characters of base64.
func newAESKey(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)[:43]
}

// openPush checks a received push the way the mini program's server must and returns its event.
func openPush(tb testing.TB, srv *wechattest.Server, mode wechattest.PushMode, key string, r received) wechat.PushEvent {
	tb.Helper()
	q := r.query
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if got, want := q.Get("signature"), wechat.Signature(pushToken, ts, nonce); got != want {
		tb.Fatalf("signature = %q, want %q", got, want)
	}
	if got, want := ts, fmt.Sprint(srv.Now().Unix()); got != want {
		tb.Fatalf("timestamp = %s, want the fake's clock %s", got, want)
	}
	if mode == wechattest.Plaintext {
		if q.Has("encrypt_type") || q.Has("msg_signature") {
			tb.Fatalf("plaintext push with query %v, want no encryption fields", q)
		}
		ev, err := wechat.ParsePushEvent(r.body)
		if err != nil {
			tb.Fatalf("parse %s: %v", r.body, err)
		}
		return ev
	}
	if q.Get("encrypt_type") != "aes" {
		tb.Fatalf("encrypt_type = %q, want aes", q.Get("encrypt_type"))
	}
	env, err := wechat.ParsePushEnvelope(r.body)
	if err != nil {
		tb.Fatalf("parse envelope %s: %v", r.body, err)
	}
	if env.ToUserName != srv.OriginalID() {
		tb.Fatalf("envelope ToUserName = %q, want %q", env.ToUserName, srv.OriginalID())
	}
	if got, want := q.Get("msg_signature"), wechat.Signature(pushToken, ts, nonce, env.Encrypt); got != want {
		tb.Fatalf("msg_signature = %q, want %q", got, want)
	}
	c, err := wechat.NewCrypter(srv.AppID(), key)
	if err != nil {
		tb.Fatal(err)
	}
	plain, err := c.Decrypt(env.Encrypt)
	if err != nil {
		tb.Fatalf("decrypt: %v", err)
	}
	ev, err := wechat.ParsePushEvent(plain)
	if err != nil {
		tb.Fatalf("parse decrypted %s: %v", plain, err)
	}
	if q.Get("openid") != ev.FromUserName {
		tb.Fatalf("openid = %q, want the event's FromUserName %q", q.Get("openid"), ev.FromUserName)
	}
	if mode == wechattest.Compatible {
		clear, err := wechat.ParsePushEvent(r.body)
		if err != nil {
			tb.Fatalf("parse compatible body %s: %v", r.body, err)
		}
		if clear.Event != ev.Event || clear.FromUserName != ev.FromUserName || len(clear.Items) != len(ev.Items) {
			tb.Fatalf("compatible plaintext %+v differs from its encryption %+v", clear, ev)
		}
	}
	return ev
}

func TestPushEvents(t *testing.T) {
	for _, mode := range []wechattest.PushMode{wechattest.Plaintext, wechattest.Compatible, wechattest.Safe} {
		for _, asJSON := range []bool{false, true} {
			format := "XML"
			if asJSON {
				format = "JSON"
			}
			t.Run(mode.String()+"/"+format, func(t *testing.T) {
				srv := newServer(t, wechattest.Options{})
				rc := newReceiver(t)
				key := newAESKey(t)
				if err := srv.SetPush(wechattest.PushConfig{URL: rc.ts.URL + "/wechat/push", Token: pushToken, EncodingAESKey: key, JSON: asJSON, Mode: mode}); err != nil {
					t.Fatal(err)
				}
				alice := srv.OpenID("alice")
				subscribe(t, srv, alice, map[string]string{leadTmpl: "accept", digestTmpl: "reject"})
				sent := send(t, srv, sendBody(alice, leadTmpl, leadData()))
				wantErrcode(t, sent, 0)
				srv.WaitPushes()
				if err := srv.Unsubscribe(alice, digestTmpl); err != nil {
					t.Fatal(err)
				}
				subscribe(t, srv, alice, map[string]string{leadTmpl: "ban"}) // not pushed

				got := rc.received()
				if len(got) != 3 {
					t.Fatalf("%d pushes, want 3 (popup, sent, change)", len(got))
				}
				popup := openPush(t, srv, mode, key, got[0])
				if popup.Event != wechat.EventSubscribePopup || popup.FromUserName != alice || popup.ToUserName != srv.OriginalID() ||
					popup.MsgType != "event" || popup.CreateTime != t0.Unix() {
					t.Fatalf("popup event %+v, want %s from alice at t0", popup, wechat.EventSubscribePopup)
				}
				wantItems := []wechat.PushItem{
					{TemplateID: digestTmpl, SubscribeStatus: "reject", PopupScene: "0"},
					{TemplateID: leadTmpl, SubscribeStatus: "accept", PopupScene: "0"},
				}
				if fmt.Sprint(popup.Items) != fmt.Sprint(wantItems) {
					t.Fatalf("popup items %+v, want %+v", popup.Items, wantItems)
				}
				sentEv := openPush(t, srv, mode, key, got[1])
				wantSent := []wechat.PushItem{{TemplateID: leadTmpl, MsgID: fmt.Sprint(sent.int(t, "msgid")), ErrorStatus: "success"}}
				if sentEv.Event != wechat.EventSubscribeSent || fmt.Sprint(sentEv.Items) != fmt.Sprint(wantSent) {
					t.Fatalf("sent event %+v, want %s with %+v", sentEv, wechat.EventSubscribeSent, wantSent)
				}
				change := openPush(t, srv, mode, key, got[2])
				wantChange := []wechat.PushItem{{TemplateID: digestTmpl, SubscribeStatus: "reject"}}
				if change.Event != wechat.EventSubscribeChange || fmt.Sprint(change.Items) != fmt.Sprint(wantChange) {
					t.Fatalf("change event %+v, want %s with %+v", change, wechat.EventSubscribeChange, wantChange)
				}

				recs := srv.Pushes()
				if len(recs) != 3 {
					t.Fatalf("Pushes() = %d records, want 3", len(recs))
				}
				for _, r := range recs {
					if !r.Delivered || len(r.Attempts) != 1 || r.Attempts[0].StatusCode != http.StatusOK {
						t.Fatalf("push record %+v, want delivered at the first attempt", r)
					}
				}
			})
		}
	}
}

func TestPushRetries(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name          string
		attempts      int
		replies       []func(http.ResponseWriter, *http.Request)
		wantAttempts  int
		wantDelivered bool
	}{
		{"OKEmptyBody", 0, []func(http.ResponseWriter, *http.Request){status(http.StatusOK, "")}, 1, true},
		{"OKAfterFailures", 0, []func(http.ResponseWriter, *http.Request){status(http.StatusInternalServerError, ""), status(http.StatusOK, "fail")}, 3, true},
		{"ErrAlwaysFailing", 0, []func(http.ResponseWriter, *http.Request){status(http.StatusBadGateway, ""), status(http.StatusBadGateway, ""), status(http.StatusBadGateway, ""), status(http.StatusBadGateway, "")}, 3, false},
		{"ErrTimeout", 2, []func(http.ResponseWriter, *http.Request){hang, hang}, 2, false},
		{"ErrOneAttempt", 1, []func(http.ResponseWriter, *http.Request){status(http.StatusUnauthorized, "")}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, wechattest.Options{})
			rc := newReceiver(t, tt.replies...)
			cfg := wechattest.PushConfig{URL: rc.ts.URL, Token: pushToken, Attempts: tt.attempts, Timeout: 200 * time.Millisecond}
			if err := srv.SetPush(cfg); err != nil {
				t.Fatal(err)
			}
			subscribe(t, srv, srv.OpenID("alice"), map[string]string{leadTmpl: "accept"})
			recs := srv.Pushes()
			if len(recs) != 1 {
				t.Fatalf("Pushes() = %d records, want 1", len(recs))
			}
			if got := len(recs[0].Attempts); got != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", got, tt.wantAttempts)
			}
			if recs[0].Delivered != tt.wantDelivered {
				t.Fatalf("Delivered = %v, want %v", recs[0].Delivered, tt.wantDelivered)
			}
			if got := len(rc.received()); got != tt.wantAttempts {
				t.Fatalf("receiver got %d posts, want %d", got, tt.wantAttempts)
			}
			if first, last := rc.received()[0], rc.received()[tt.wantAttempts-1]; first.query.Encode() != last.query.Encode() || string(first.body) != string(last.body) {
				t.Fatal("a retry differs from the first attempt, want the same post")
			}
		})
	}
}

func TestPushAsync(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = io.WriteString(w, "success")
	})
	srv := newServer(t, wechattest.Options{})
	if err := srv.SetPush(wechattest.PushConfig{URL: rc.ts.URL, Token: pushToken, Async: true}); err != nil {
		t.Fatal(err)
	}
	subscribe(t, srv, srv.OpenID("alice"), map[string]string{leadTmpl: "accept"})
	if got := len(srv.Pushes()); got != 0 {
		t.Fatalf("Pushes() = %d records while the receiver blocks, want 0", got)
	}
	close(release)
	srv.WaitPushes()
	if recs := srv.Pushes(); len(recs) != 1 || !recs[0].Delivered {
		t.Fatalf("Pushes() = %+v, want one delivered push", recs)
	}
}

func TestPushOff(t *testing.T) {
	rc := newReceiver(t)
	srv := newServer(t, wechattest.Options{})
	if err := srv.SetPush(wechattest.PushConfig{URL: rc.ts.URL, Token: pushToken}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetPush(wechattest.PushConfig{}); err != nil {
		t.Fatal(err)
	}
	subscribe(t, srv, srv.OpenID("alice"), map[string]string{leadTmpl: "accept"})
	if got := len(rc.received()) + len(srv.Pushes()); got != 0 {
		t.Fatalf("%d pushes with push off, want 0", got)
	}
}

func TestSetPushRejectsInvalidConfig(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tests := []struct {
		name string
		cfg  wechattest.PushConfig
	}{
		{"RelativeURL", wechattest.PushConfig{URL: "/wechat/push", Token: pushToken}},
		{"NoToken", wechattest.PushConfig{URL: "http://127.0.0.1/push"}},
		{"SafeWithoutKey", wechattest.PushConfig{URL: "http://127.0.0.1/push", Token: pushToken, Mode: wechattest.Safe}},
		{"CompatibleWithBadKey", wechattest.PushConfig{URL: "http://127.0.0.1/push", Token: pushToken, Mode: wechattest.Compatible, EncodingAESKey: "short"}},
		{"UnknownMode", wechattest.PushConfig{URL: "http://127.0.0.1/push", Token: pushToken, Mode: 7}},
		{"NegativeAttempts", wechattest.PushConfig{URL: "http://127.0.0.1/push", Token: pushToken, Attempts: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.SetPush(tt.cfg); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}

func TestSignatureKnownAnswer(t *testing.T) {
	// WeChat's known answer (docs/wechat.md#message-push), checking that the receiver's verification in these tests is the real one.
	if got, want := wechat.Signature("AAAAA", "1714036504", "1514711492"), "f464b24fc39322e44b38aa78f5edd27bd1441696"; got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
}
