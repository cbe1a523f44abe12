package wechattest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// rawSend posts a send and returns the HTTP outcome, for calls that may get no answer.
func rawSend(tb testing.TB, srv *wechattest.Server, token string, body any) (*http.Response, error) {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	u := srv.URL() + "/cgi-bin/message/subscribe/send?" + url.Values{"access_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err == nil {
		tb.Cleanup(func() { _ = resp.Body.Close() })
	}
	return resp, err
}

func inject(tb testing.TB, srv *wechattest.Server, f wechattest.Fault) {
	tb.Helper()
	if err := srv.Inject(f); err != nil {
		tb.Fatal(err)
	}
}

func TestFaultErrcodeThenNormal(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	inject(t, srv, wechattest.Fault{API: wechattest.APISend, Errcode: -1, Count: 2})
	for i := range 2 {
		a := send(t, srv, sendBody(alice, leadTmpl, leadData()))
		wantErrcode(t, a, -1)
		if a.str("errmsg") == "" {
			t.Fatalf("faulty call %d: empty errmsg, want WeChat's", i)
		}
	}
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 0)
	if got := srv.Calls(wechattest.APISend); got != 3 {
		t.Fatalf("Calls(send) = %d, want 3", got)
	}
	if got := srv.Delivered(); got != 1 {
		t.Fatalf("Delivered() = %d, want 1", got)
	}
}

func TestFaultsApplyInOrder(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	inject(t, srv, wechattest.Fault{API: wechattest.APIStableToken, Errcode: -1, Count: 1})
	inject(t, srv, wechattest.Fault{API: wechattest.APIStableToken, Errcode: 45009, Count: 1})
	inject(t, srv, wechattest.Fault{API: wechattest.APIToken, Errcode: 40164, Count: 1})
	for _, want := range []int{-1, 45009, 0} {
		wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false)), want)
	}
	wantErrcode(t, call(t, srv, http.MethodGet, "/cgi-bin/token", tokenQuery(srv), nil), 40164)
}

func TestFaultUnlimitedUntilCleared(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	inject(t, srv, wechattest.Fault{API: wechattest.APICode2Session, Errcode: 40226})
	for range 3 {
		wantErrcode(t, code2Session(t, srv, srv.Login("alice")), 40226)
	}
	srv.ClearFaults()
	wantErrcode(t, code2Session(t, srv, srv.Login("alice")), 0)
	if got := srv.Calls(wechattest.APICode2Session); got != 4 {
		t.Fatalf("Calls(jscode2session) = %d, want 4", got)
	}
}

func TestFaultHTTPStatus(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	inject(t, srv, wechattest.Fault{API: wechattest.APISend, HTTPStatus: http.StatusBadGateway, Count: 1})
	resp, err := rawSend(t, srv, stableToken(t, srv), sendBody(alice, leadTmpl, leadData()))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if srv.Delivered() != 0 || srv.Credits(alice, leadTmpl) != 1 {
		t.Fatalf("Delivered %d, Credits %d after a 502, want 0 and 1", srv.Delivered(), srv.Credits(alice, leadTmpl))
	}
}

func TestFaultLatency(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	const latency = 100 * time.Millisecond
	inject(t, srv, wechattest.Fault{API: wechattest.APIStableToken, Latency: latency, Count: 1})
	start := time.Now()
	stableToken(t, srv)
	if got := time.Since(start); got < latency {
		t.Fatalf("slowed call took %v, want >= %v", got, latency)
	}
}

func TestFaultDrop(t *testing.T) {
	tests := []struct {
		name          string
		drop          wechattest.Drop
		wantDelivered int
		wantCredits   int
		wantPushes    int
	}{
		{"DropBeforeRead", wechattest.DropBeforeRead, 0, 1, 0},
		{"DropAfterRead", wechattest.DropAfterRead, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, wechattest.Options{})
			rc := newReceiver(t)
			if err := srv.SetPush(wechattest.PushConfig{URL: rc.ts.URL, Token: pushToken}); err != nil {
				t.Fatal(err)
			}
			alice := srv.OpenID("alice")
			subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
			tok := stableToken(t, srv)
			inject(t, srv, wechattest.Fault{API: wechattest.APISend, Drop: tt.drop, Count: 1})
			if resp, err := rawSend(t, srv, tok, sendBody(alice, leadTmpl, leadData())); err == nil {
				t.Fatalf("got status %d, want a transport error", resp.StatusCode)
			}
			srv.WaitPushes()
			if got := srv.Delivered(); got != tt.wantDelivered {
				t.Fatalf("Delivered() = %d, want %d", got, tt.wantDelivered)
			}
			if got := srv.Credits(alice, leadTmpl); got != tt.wantCredits {
				t.Fatalf("Credits = %d, want %d", got, tt.wantCredits)
			}
			// The popup event, plus the sent event of a message that was delivered.
			if got := len(srv.Pushes()); got != 1+tt.wantPushes {
				t.Fatalf("%d pushes, want %d", got, 1+tt.wantPushes)
			}
		})
	}
}

func TestInjectRejectsInvalidFaults(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tests := []struct {
		name  string
		fault wechattest.Fault
	}{
		{"UnknownAPI", wechattest.Fault{API: "sendall", Errcode: -1}},
		{"NegativeCount", wechattest.Fault{API: wechattest.APISend, Errcode: -1, Count: -1}},
		{"NegativeLatency", wechattest.Fault{API: wechattest.APISend, Latency: -time.Second}},
		{"BadStatus", wechattest.Fault{API: wechattest.APISend, HTTPStatus: 999}},
		{"BadDrop", wechattest.Fault{API: wechattest.APISend, Drop: 9}},
		{"NoEffect", wechattest.Fault{API: wechattest.APISend, Count: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.Inject(tt.fault); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}
