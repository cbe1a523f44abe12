package wechattest_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// deliver sends n messages to openid (numbered from first in character_string9), each with a fresh credit.
func deliver(tb testing.TB, srv *wechattest.Server, openid string, first, n int) {
	tb.Helper()
	for i := first; i < first+n; i++ {
		subscribe(tb, srv, openid, map[string]string{leadTmpl: "accept"})
		data := leadData()
		data["character_string9"] = map[string]string{"value": "L-" + strconv.Itoa(i)}
		wantErrcode(tb, send(tb, srv, sendBody(openid, leadTmpl, data)), 0)
	}
}

// numbers are the character_string9 numbers of msgs.
func numbers(msgs []wechattest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Data["character_string9"][len("L-"):])
	}
	return out
}

func wantNumbers(tb testing.TB, what string, msgs []wechattest.Message, want ...string) {
	tb.Helper()
	got := numbers(msgs)
	if len(got) != len(want) {
		tb.Fatalf("%s: got messages %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("%s: got messages %v, want %v", what, got, want)
		}
	}
}

func TestRetentionInboxMessages(t *testing.T) {
	srv := newServer(t, wechattest.Options{Retention: wechattest.Retention{InboxMessages: 3}})
	alice, bob := srv.OpenID("alice"), srv.OpenID("bob")
	deliver(t, srv, alice, 1, 5)
	deliver(t, srv, bob, 6, 1)
	wantNumbers(t, "Messages(alice)", srv.Messages(alice), "3", "4", "5")
	wantNumbers(t, "Messages(bob)", srv.Messages(bob), "6")
	wantNumbers(t, "AllMessages", srv.AllMessages(), "3", "4", "5", "6")
	if got := srv.Delivered(); got != 6 {
		t.Fatalf("Delivered() = %d, want 6: dropped messages count", got)
	}
}

func TestRetentionMessages(t *testing.T) {
	srv := newServer(t, wechattest.Options{Retention: wechattest.Retention{InboxMessages: 2, Messages: 4}})
	alice, bob, carol := srv.OpenID("alice"), srv.OpenID("bob"), srv.OpenID("carol")
	deliver(t, srv, alice, 1, 3) // alice keeps 2, 3
	deliver(t, srv, bob, 4, 2)   // the last 4: 2 3 4 5
	wantNumbers(t, "AllMessages", srv.AllMessages(), "2", "3", "4", "5")
	deliver(t, srv, carol, 6, 1) // the last 4 delivered: 3 4 5 6
	wantNumbers(t, "AllMessages", srv.AllMessages(), "3", "4", "5", "6")
	deliver(t, srv, carol, 7, 2) // carol keeps 7, 8; the last 4 delivered: 5 6 7 8
	wantNumbers(t, "Messages(alice)", srv.Messages(alice))
	wantNumbers(t, "Messages(bob)", srv.Messages(bob), "5")
	wantNumbers(t, "Messages(carol)", srv.Messages(carol), "7", "8")
	wantNumbers(t, "AllMessages", srv.AllMessages(), "5", "7", "8")
	if got := srv.Delivered(); got != 8 {
		t.Fatalf("Delivered() = %d, want 8", got)
	}
}

func TestRetentionPushes(t *testing.T) {
	srv := newServer(t, wechattest.Options{Retention: wechattest.Retention{Pushes: 2}})
	rc := newReceiver(t, status(500, "busy"), status(500, "busy"), status(500, "busy"))
	if err := srv.SetPush(wechattest.PushConfig{URL: rc.ts.URL, Token: pushToken}); err != nil {
		t.Fatal(err)
	}
	alice := srv.OpenID("alice")
	for range 4 {
		subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	}
	recs := srv.Pushes()
	if len(recs) != 2 || !recs[0].Delivered || !recs[1].Delivered {
		t.Fatalf("Pushes() = %+v, want the last 2, delivered", recs)
	}
	if ended, delivered := srv.PushCounts(); ended != 4 || delivered != 3 {
		t.Fatalf("PushCounts() = %d, %d, want 4, 3: the first push failed 3 times", ended, delivered)
	}
}

func TestRetentionLoginCodes(t *testing.T) {
	srv := newServer(t, wechattest.Options{Retention: wechattest.Retention{LoginCodes: 3}})
	first := srv.Login("alice")
	var later []string
	for _, u := range []string{"bob", "carol", "dave"} {
		later = append(later, srv.Login(u))
	}
	if _, ok := srv.CodeOpenID(first); ok {
		t.Fatal("CodeOpenID of the oldest of 4 codes with 3 kept: ok, want forgotten")
	}
	wantErrcode(t, code2Session(t, srv, first), 40029)
	for _, code := range later {
		wantErrcode(t, code2Session(t, srv, code), 0)
	}
	// Expired codes still go after 10 minutes, within the limit.
	code := srv.Login("erin")
	srv.Advance(11 * time.Minute)
	srv.Login("frank")
	if _, ok := srv.CodeOpenID(code); ok {
		t.Fatal("CodeOpenID of a code issued 11 minutes ago: ok, want forgotten")
	}
}
