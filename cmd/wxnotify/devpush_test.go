package main

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// noPushVars unset the push Token and key newEnv gives by default: the
// server as `make dev` starts it in a fresh shell.
var noPushVars = []string{"WXN_WECHAT_PUSH_TOKEN", "", "WXN_WECHAT_PUSH_AES_KEY", ""}

// --push and WXN_PUSH_ENABLED decide once whether the dev server runs with
// WeChat's message push: the service's mode, /wechat/push, and whether the
// sandbox pushes.
func TestDevPushSwitch(t *testing.T) {
	for _, tc := range []struct {
		name, push string
		vars       []string
		want       bool
	}{
		{"DefaultIsOn", "", noPushVars, true},
		{"DefaultWithPushToken", "", nil, true},
		{"EnvOff", "", append([]string{"WXN_PUSH_ENABLED", "false"}, noPushVars...), false},
		{"EnvOn", "", append([]string{"WXN_PUSH_ENABLED", "true"}, noPushVars...), true},
		{"FlagOff", "off", nil, false},
		{"FlagOffOverEnv", "off", []string{"WXN_PUSH_ENABLED", "true"}, false},
		{"FlagOnOverEnv", "on", append([]string{"WXN_PUSH_ENABLED", "false"}, noPushVars...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvPush(t, tc.push, tc.vars...)
			cfg := e.srv.parts.Config
			if cfg.PushEnabled != tc.want {
				t.Fatalf("PushEnabled: got %v, want %v", cfg.PushEnabled, tc.want)
			}
			ts, nonce := strconv.FormatInt(e.clock.Now().Unix(), 10), "42"
			q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "echostr": {"hi"}, "signature": {wechat.Signature(cfg.PushToken, ts, nonce)}}
			r := e.do("GET", "/wechat/push?"+q.Encode(), "", nil)
			switch {
			case tc.want && (r.status != 200 || r.raw != "hi"):
				t.Fatalf("URL verification with push on: got %d %s, want 200 hi", r.status, r.raw)
			case !tc.want && (r.status != 404 || r.str("error", "code") != "not_found"):
				t.Fatalf("URL verification with push off: got %d %s, want 404 not_found", r.status, r.raw)
			}
			var banner strings.Builder
			e.srv.printBanner(&banner)
			if got := strings.Contains(banner.String(), "push on,"); got != tc.want {
				t.Fatalf("banner: got %q, want push on %v", banner.String(), tc.want)
			}
		})
	}
	t.Run("BadValue", func(t *testing.T) {
		var stderr strings.Builder
		if code := runDev([]string{"--push", "maybe"}, &strings.Builder{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "want on or off") {
			t.Fatalf("--push maybe: got exit %d %q, want 2 and the reason", code, stderr.String())
		}
	})
	t.Run("OnWithRealWeChatNeedsAToken", func(t *testing.T) {
		vars := map[string]string{"WXN_WECHAT_APPID": "wx0123456789abcdef", "WXN_WECHAT_SECRET": "0123456789abcdef0123456789abcdef"}
		srv, err := startDev(context.Background(), devOptions{addr: "127.0.0.1:0", dataDir: t.TempDir(),
			getenv: func(k string) string { return vars[k] }, push: "on"})
		if err == nil {
			srv.close()
			t.Fatal("--push on with real WeChat and no WXN_WECHAT_PUSH_TOKEN: got no error")
		}
		if !strings.Contains(err.Error(), "WXN_WECHAT_PUSH_TOKEN") {
			t.Fatalf("got %v, want the missing WXN_WECHAT_PUSH_TOKEN named", err)
		}
	})
}

// report posts what wx.requestSubscribeMessage returned, as the mini
// program's kit does.
func (e *env) report(token string, result map[string]any) response {
	e.t.Helper()
	return e.do("POST", "/v1/consents", token, map[string]any{"result": result})
}

// With push off, the sandbox pushes nothing and /wechat/push is 404: a
// popup counts by the mini program's report alone, which a sweep does not
// withdraw, and reports are rate-limited and capped per user.
func TestPushOffEndToEnd(t *testing.T) {
	e := newEnvPush(t, "off")
	token, openID := e.login("alice")
	e.bind("sales-42", "alice")
	result := e.popup(openID, map[string]string{leadID: "accept"})
	if got := e.credits(token, leadID); got != 0 {
		t.Fatalf("credits after the popup, before the report: got %d, want 0 (nothing pushed)", got)
	}
	e.want(e.report(token, result), 200)
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after the report: got %d, want 1", got)
	}
	s := e.want(e.send(sendLead(map[string]string{"userId": "sales-42"}, "")), 200)
	if s.str("status") != "sent" || s.str("wechat", "msgid") == "" {
		t.Fatalf("send: got %s, want sent with a msgid", s.raw)
	}
	if msgs := e.fake.Messages(openID); len(msgs) != 1 {
		t.Fatalf("inbox: got %d messages, want 1", len(msgs))
	}
	// A report stands without any popup event: a sweep long after the
	// pairing window leaves it.
	e.want(e.report(token, result), 200)
	e.clock.advance(time.Hour)
	if n, err := e.srv.parts.Service.SweepReports(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep: got %d withdrawn, %v; want none", n, err)
	}
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after the sweep: got %d, want 1", got)
	}
	// Rate-limited: the 11th report of a minute is refused.
	for range 10 {
		e.want(e.report(token, result), 200)
	}
	if r := e.report(token, result); r.status != 429 || r.str("error", "code") != "rate_limited" {
		t.Fatalf("the 11th report of a minute: got %d %s, want 429 rate_limited", r.status, r.raw)
	}
	// Capped: reports alone never give more than 50 credits.
	for range 6 {
		e.clock.advance(time.Minute)
		for range 10 {
			e.want(e.report(token, result), 200)
		}
	}
	if got := e.credits(token, leadID); got != 50 {
		t.Fatalf("credits after 72 reports: got %d, want the cap of 50", got)
	}
	e.fake.WaitPushes()
	if p := e.fake.Pushes(); len(p) != 0 {
		t.Fatalf("pushes: got %d, want none", len(p))
	}
	if logs := e.logs.String(); strings.Contains(logs, `"route":"POST /wechat/push"`) {
		t.Fatalf("a request reached POST /wechat/push:\n%s", logs)
	}
}

// With push on, as `make dev` starts by default (no push Token set): the
// sandbox pushes the popup and sent events to /wechat/push, a report and
// the popup event count once, and a report that no popup event confirms
// is withdrawn after the pairing window.
func TestPushOnEndToEnd(t *testing.T) {
	e := newEnvPush(t, "", noPushVars...)
	token, openID := e.login("alice")
	result := e.popup(openID, map[string]string{leadID: "accept"})
	e.fake.WaitPushes()
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after the pushed popup event: got %d, want 1", got)
	}
	e.want(e.report(token, result), 200)
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after the report of the same popup: got %d, want 1", got)
	}
	s := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if s.str("status") != "sent" {
		t.Fatalf("send: got %s, want sent", s.raw)
	}
	e.fake.WaitPushes()
	var events []string
	for _, p := range e.fake.Pushes() {
		if !p.Delivered {
			t.Fatalf("push %s not delivered: %+v", p.Event.Event, p.Attempts)
		}
		events = append(events, p.Event.Event)
	}
	if want := []string{wechat.EventSubscribePopup, wechat.EventSubscribeSent}; strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("pushes: got %v, want %v", events, want)
	}
	// A report of a popup that never happened is withdrawn.
	mallory, _ := e.login("mallory")
	e.want(e.report(mallory, map[string]any{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}), 200)
	if got := e.credits(mallory, leadID); got != 1 {
		t.Fatalf("credits after an unconfirmed report: got %d, want 1 until the sweep", got)
	}
	e.clock.advance(time.Hour)
	if _, err := e.srv.parts.Service.SweepReports(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.credits(mallory, leadID); got != 0 {
		t.Fatalf("credits after the sweep: got %d, want 0 (withdrawn)", got)
	}
}

// The sandbox refuses what WeChat would never take from a user, with 400
// naming the field, instead of pushing an event /wechat/push must refuse
// (an openid that is not one) or playing text it altered (not UTF-8).
func TestSandboxRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"SubscribeOpenIDPipe", "/sandbox/subscribe", `{"openid":"o|x","choices":{"` + leadID + `":"accept"}}`, "openid"},
		{"SubscribeOpenIDSpace", "/sandbox/subscribe", `{"openid":"o x","choices":{"` + leadID + `":"accept"}}`, "openid"},
		{"UnsubscribeOpenIDPipe", "/sandbox/unsubscribe", `{"openid":"o|x","templateId":"` + leadID + `"}`, "openid"},
		{"LoginNotUTF8", "/sandbox/login", "{\"user\":\"al\xffice\"}", "user"},
		{"SubscribeChoiceNotUTF8", "/sandbox/subscribe", `{"openid":"o-x","choices":{"` + leadID + `":"accept\ud800"}}`, "choices." + leadID},
		{"DuplicateKey", "/sandbox/login", `{"user":"a","user":"b"}`, "user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, "", tc.body)
			if r.status != 400 || r.str("error", "code") != "bad_request" || r.str("error", "field") != tc.field {
				t.Fatalf("POST %s %q: got %d %s, want 400 bad_request naming %q", tc.path, tc.body, r.status, r.raw, tc.field)
			}
		})
	}
}
