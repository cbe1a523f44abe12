package wechattest_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// leadData is valid data for leadTmpl.
func leadData() map[string]any {
	return map[string]any{
		"thing4":            map[string]string{"value": "Acme Ltd"},
		"date2":             map[string]string{"value": "2026-11-21"},
		"character_string9": map[string]string{"value": "L-1001"},
	}
}

func sendBody(openid, tmpl string, data map[string]any) map[string]any {
	return map[string]any{"touser": openid, "template_id": tmpl, "data": data}
}

// send posts body to subscribe/send with a fresh stable token.
func send(tb testing.TB, srv *wechattest.Server, body any) answer {
	tb.Helper()
	q := url.Values{"access_token": {stableToken(tb, srv)}}
	return call(tb, srv, http.MethodPost, "/cgi-bin/message/subscribe/send", q, body)
}

// subscribe plays the user answering the popup and fails the test on error.
func subscribe(tb testing.TB, srv *wechattest.Server, openid string, choices map[string]string) map[string]any {
	tb.Helper()
	res, err := srv.Subscribe(openid, choices)
	if err != nil {
		tb.Fatalf("Subscribe(%v): %v", choices, err)
	}
	return res
}

func TestSendConsumesOneTimeCredits(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	subscribe(t, srv, alice, map[string]string{leadTmpl: "acceptWithAudio"})
	if got := srv.Credits(alice, leadTmpl); got != 2 {
		t.Fatalf("Credits after 2 accepts = %d, want 2", got)
	}
	for i := range 2 {
		wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 0)
		if got, want := srv.Credits(alice, leadTmpl), 1-i; got != want {
			t.Fatalf("Credits after send %d = %d, want %d", i+1, got, want)
		}
	}
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 43101)
	if got := srv.Delivered(); got != 2 {
		t.Fatalf("Delivered() = %d, want 2", got)
	}
	if srv.Accepted(alice, leadTmpl) {
		t.Fatal("Accepted with no credit left, want false")
	}
}

func TestSubscribeStatuses(t *testing.T) {
	tests := []struct {
		status      string
		wantCredits int
	}{
		{"accept", 1},
		{"acceptWithAudio", 1},
		{"acceptWithAlert", 1},
		{"reject", 0},
		{"ban", 0},
		{"filter", 0},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			srv := newServer(t, wechattest.Options{})
			alice := srv.OpenID("alice")
			res := subscribe(t, srv, alice, map[string]string{leadTmpl: tt.status, digestTmpl: "accept"})
			want := map[string]any{"errMsg": "requestSubscribeMessage:ok", leadTmpl: tt.status, digestTmpl: "accept"}
			if len(res) != len(want) {
				t.Fatalf("result = %v, want %v", res, want)
			}
			for k, v := range want {
				if res[k] != v {
					t.Fatalf("result = %v, want %v", res, want)
				}
			}
			if got := srv.Credits(alice, leadTmpl); got != tt.wantCredits {
				t.Fatalf("Credits = %d, want %d", got, tt.wantCredits)
			}
		})
	}
}

func TestSubscribeErrors(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	tests := []struct {
		name    string
		choices map[string]string
		want    int
	}{
		{"ErrEmpty", map[string]string{}, 10001},
		{"ErrUnknownTemplate", map[string]string{"nope": "accept"}, 20001},
		{"ErrMixedTypes", map[string]string{leadTmpl: "accept", statusTmpl: "accept"}, 20002},
		{"ErrTooMany", map[string]string{leadTmpl: "accept", digestTmpl: "accept", "a": "accept", "b": "accept"}, 20003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.Subscribe(alice, tt.choices)
			se, ok := err.(*wechattest.SubscribeError)
			if !ok {
				t.Fatalf("error %v (%T), want *SubscribeError", err, err)
			}
			if se.ErrCode != tt.want || !strings.HasPrefix(se.ErrMsg, "requestSubscribeMessage:fail ") {
				t.Fatalf("got %d %q, want %d requestSubscribeMessage:fail ...", se.ErrCode, se.ErrMsg, tt.want)
			}
			if got := srv.Credits(alice, leadTmpl); got != 0 {
				t.Fatalf("Credits after a failed subscribe = %d, want 0", got)
			}
		})
	}
	t.Run("ErrInvalidStatus", func(t *testing.T) {
		if _, err := srv.Subscribe(alice, map[string]string{leadTmpl: "yes"}); err == nil {
			t.Fatal("got no error for status yes, want one")
		}
	})
	t.Run("ErrMainSwitchOff", func(t *testing.T) {
		subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
		if err := srv.SetMainSwitch(alice, false); err != nil {
			t.Fatal(err)
		}
		_, err := srv.Subscribe(alice, map[string]string{leadTmpl: "accept"})
		if se, ok := err.(*wechattest.SubscribeError); !ok || se.ErrCode != 20004 {
			t.Fatalf("error %v, want errCode 20004", err)
		}
		wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 43101)
		if err := srv.SetMainSwitch(alice, true); err != nil {
			t.Fatal(err)
		}
		wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 0)
	})
}

func TestSendLongTerm(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	data := map[string]any{
		"enum_string1": map[string]string{"value": "已恢复"},
		"time2":        map[string]string{"value": "2026-11-21 09:30"},
		"thing3":       map[string]string{"value": "线索同步已恢复"},
	}
	subscribe(t, srv, alice, map[string]string{statusTmpl: "accept"})
	for i := range 5 {
		if got := send(t, srv, sendBody(alice, statusTmpl, data)).errcode(t); got != 0 {
			t.Fatalf("long-term send %d: errcode %d, want 0", i, got)
		}
	}
	if err := srv.Unsubscribe(alice, statusTmpl); err != nil {
		t.Fatal(err)
	}
	if srv.Accepted(alice, statusTmpl) {
		t.Fatal("Accepted after Unsubscribe, want false")
	}
	wantErrcode(t, send(t, srv, sendBody(alice, statusTmpl, data)), 43101)
	subscribe(t, srv, alice, map[string]string{statusTmpl: "accept"})
	wantErrcode(t, send(t, srv, sendBody(alice, statusTmpl, data)), 0)
	subscribe(t, srv, alice, map[string]string{statusTmpl: "reject"})
	wantErrcode(t, send(t, srv, sendBody(alice, statusTmpl, data)), 43101)
}

func TestUnsubscribeDropsCredits(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	if err := srv.Unsubscribe(alice, leadTmpl); err != nil {
		t.Fatal(err)
	}
	if got := srv.Credits(alice, leadTmpl); got != 0 {
		t.Fatalf("Credits after Unsubscribe = %d, want 0", got)
	}
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 43101)
	if err := srv.Unsubscribe(srv.OpenID("nobody"), leadTmpl); err == nil {
		t.Fatal("Unsubscribe of an unknown user: got no error, want one")
	}
}

func TestSendErrors(t *testing.T) {
	srv := newServer(t, wechattest.Options{Pages: []string{"pages/index/index", "pages/clue/clue"}})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	srv.Login("bob") // known, but never subscribed

	with := func(key string, value any) map[string]any {
		b := sendBody(alice, leadTmpl, leadData())
		b[key] = value
		return b
	}
	withData := func(key string, value any) map[string]any {
		d := leadData()
		if value == nil {
			delete(d, key)
		} else {
			d[key] = value
		}
		return sendBody(alice, leadTmpl, d)
	}
	tests := []struct {
		name    string
		body    any
		want    int
		wantMsg string // the errmsg up to the rid
	}{
		{"ErrNotJSON", "touser=x", 47001, ""},
		{"ErrFieldNotString", with("page", 1), 47001, ""},
		{"ErrUnknownOpenID", with("touser", "o"+strings.Repeat("A", 27)), 40003, ""},
		{"ErrNoOpenID", with("touser", ""), 40003, ""},
		{"ErrUnknownTemplate", with("template_id", "nope"), 40037, ""},
		{"ErrPage", with("page", "pages/other/other"), 41030, ""},
		{"ErrPageWithSlash", with("page", "/pages/index/index"), 41030, ""},
		{"ErrMiniprogramState", with("miniprogram_state", "release"), 47003, "argument invalid! miniprogram_state invalid"},
		{"ErrLang", with("lang", "fr_FR"), 47003, "argument invalid! lang invalid"},
		{"ErrThingTooLong", withData("thing4", map[string]string{"value": strings.Repeat("字", 21)}), 47003, "argument invalid! data.thing4.value invalid"},
		{"ErrEmptyValue", withData("date2", map[string]string{"value": ""}), 47003, "argument invalid! data.date2.value invalid"},
		{"ErrBadDate", withData("date2", map[string]string{"value": "tomorrow"}), 47003, "argument invalid! data.date2.value invalid"},
		{"ErrMissingKeyword", withData("character_string9", nil), 47003, "argument invalid! data.character_string9.value invalid"},
		{"ErrExtraKey", withData("thing5", map[string]string{"value": "x"}), 47003, "argument invalid! data.thing5.value invalid"},
		{"ErrValueNotObject", withData("thing4", "Acme Ltd"), 47003, "argument invalid! data.thing4.value invalid"},
		{"ErrNoSubscription", sendBody(srv.OpenID("bob"), leadTmpl, leadData()), 43101, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, srv, tt.body)
			wantErrcode(t, a, tt.want)
			if tt.wantMsg != "" {
				pattern := "^" + regexp.QuoteMeta(tt.wantMsg) + ` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`
				if !regexp.MustCompile(pattern).MatchString(a.str("errmsg")) {
					t.Fatalf("errmsg = %q, want %q rid: ...", a.str("errmsg"), tt.wantMsg)
				}
			}
			if got := srv.Credits(alice, leadTmpl); got != 1 {
				t.Fatalf("Credits after a failed send = %d, want 1 (not consumed)", got)
			}
		})
	}
	if got := srv.Delivered(); got != 0 {
		t.Fatalf("Delivered() = %d, want 0", got)
	}
	t.Run("ErrMethod", func(t *testing.T) {
		a := call(t, srv, http.MethodGet, "/cgi-bin/message/subscribe/send", url.Values{"access_token": {stableToken(t, srv)}}, nil)
		wantErrcode(t, a, 43002)
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/message/subscribe/send", nil, sendBody(alice, leadTmpl, leadData())), 41001)
	})
}

func TestSendRecordsMessage(t *testing.T) {
	srv := newServer(t, wechattest.Options{Pages: []string{"pages/clue/clue"}})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept", digestTmpl: "accept"})
	body := sendBody(alice, leadTmpl, leadData())
	body["page"] = "pages/clue/clue?id=L-1001"
	body["lang"] = "en_US"
	a := send(t, srv, body)
	wantErrcode(t, a, 0)
	if a.str("errmsg") != "ok" {
		t.Fatalf("errmsg = %q, want ok", a.str("errmsg"))
	}
	msgs := srv.Messages(alice)
	if len(msgs) != 1 {
		t.Fatalf("Messages = %d, want 1", len(msgs))
	}
	m := msgs[0]
	switch {
	case m.OpenID != alice, m.TemplateID != leadTmpl, m.Page != "pages/clue/clue?id=L-1001":
		t.Fatalf("message %+v, want alice, lead template, the page", m)
	case m.Data["thing4"] != "Acme Ltd", m.Data["date2"] != "2026-11-21", m.Data["character_string9"] != "L-1001":
		t.Fatalf("message data %v, want the values sent", m.Data)
	case m.MiniprogramState != "formal", m.Lang != "en_US":
		t.Fatalf("state %q lang %q, want formal en_US", m.MiniprogramState, m.Lang)
	case m.MsgID != a.int(t, "msgid"), !m.SentAt.Equal(t0):
		t.Fatalf("msgid %d sent at %v, want %d at %v", m.MsgID, m.SentAt, a.int(t, "msgid"), t0)
	}
	if got := srv.Messages(srv.OpenID("bob")); len(got) != 0 {
		t.Fatalf("Messages(bob) = %v, want none", got)
	}
	if got := len(srv.AllMessages()); got != 1 {
		t.Fatalf("AllMessages = %d, want 1", got)
	}
}

func TestMsgIDAbove2To53(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	seen := make(map[int64]bool)
	for range 20 {
		subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
		a := send(t, srv, sendBody(alice, leadTmpl, leadData()))
		wantErrcode(t, a, 0)
		id := a.int(t, "msgid") // fails unless msgid is a JSON number
		if id <= 1<<53 {
			t.Fatalf("msgid %d, want above 2^53", id)
		}
		if seen[id] {
			t.Fatalf("msgid %d returned twice, want unique ids", id)
		}
		seen[id] = true
	}
}

func TestSendConcurrentNeverExceedsCredits(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	const credits, senders = 5, 20
	for range credits {
		subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	}
	tok := stableToken(t, srv)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := make(map[int]int)
	for range senders {
		wg.Go(func() {
			a := call(t, srv, http.MethodPost, "/cgi-bin/message/subscribe/send", url.Values{"access_token": {tok}}, sendBody(alice, leadTmpl, leadData()))
			mu.Lock()
			codes[a.errcode(t)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[0] != credits || codes[43101] != senders-credits {
		t.Fatalf("errcodes %v, want %d successes and %d 43101", codes, credits, senders-credits)
	}
	if got := srv.Delivered(); got != credits {
		t.Fatalf("Delivered() = %d, want %d", got, credits)
	}
}

func TestSendDailyQuota(t *testing.T) {
	srv := newServer(t, wechattest.Options{SendDailyQuota: 2})
	alice := srv.OpenID("alice")
	for range 3 {
		subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	}
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 0)
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 0)
	wantErrcode(t, send(t, srv, sendBody(alice, leadTmpl, leadData())), 45009)
	if got := srv.Credits(alice, leadTmpl); got != 1 {
		t.Fatalf("Credits after 45009 = %d, want 1", got)
	}
}
