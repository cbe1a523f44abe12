package wechattest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// newMulti starts a Multi of n apps on a stopped clock and closes it at the end of the test.
func newMulti(tb testing.TB, n int) (*wechattest.Multi, []*wechattest.Server) {
	tb.Helper()
	apps := make([]*wechattest.Server, n)
	for i := range apps {
		apps[i] = newServer(tb, wechattest.Options{AppID: fmt.Sprintf("wxapp%d", i+1)})
	}
	m, err := wechattest.NewMultiServer(apps...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m, apps
}

// tokenStore is one store for every app's token, as a deployment serving several apps has.
func tokenStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "tokens.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// multiClient is the production client of app (its stable_token source over st) pointed at m.
func multiClient(tb testing.TB, m *wechattest.Multi, st store.Store, app *wechattest.Server) (*wechat.Client, *wechat.StoreTokenSource) {
	tb.Helper()
	cfg := wechat.Config{AppID: app.AppID(), Secret: app.Secret(), BaseURL: m.URL(), HTTPClient: m.Client()}
	src, err := wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Tokens = src
	c, err := wechat.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c, src
}

func leadRequest(openid string) wechat.SendRequest {
	return wechat.SendRequest{ToUser: openid, TemplateID: leadTmpl, Data: map[string]string{"thing4": "Acme Ltd", "date2": "2026-11-21", "character_string9": "L-1001"}}
}

func TestMultiTokenPerApp(t *testing.T) {
	m, apps := newMulti(t, 3)
	st := tokenStore(t)
	seen := map[string]string{}
	for _, app := range apps {
		c, src := multiClient(t, m, st, app)
		if _, err := c.GetTemplates(t.Context()); err != nil {
			t.Fatalf("app %s: GetTemplates: %v", app.AppID(), err)
		}
		tok, err := src.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[tok]; dup {
			t.Fatalf("apps %s and %s got the same token", other, app.AppID())
		}
		seen[tok] = app.AppID()
		if got := app.Calls(wechattest.APIStableToken); got != 1 {
			t.Fatalf("app %s: Calls(stable_token) = %d, want 1", app.AppID(), got)
		}
		if got := app.Calls(wechattest.APIGetTemplate); got != 1 {
			t.Fatalf("app %s: Calls(gettemplate) = %d, want 1: each call reaches its own app only", app.AppID(), got)
		}
	}
	// /cgi-bin/token routes by its appid query too.
	for _, app := range apps {
		a := callAt(t, m.URL(), m.Client(), http.MethodGet, "/cgi-bin/token", tokenQuery(app), nil)
		wantErrcode(t, a, 0)
		if app.Calls(wechattest.APIToken) != 1 {
			t.Fatalf("app %s: Calls(token) = %d, want 1", app.AppID(), app.Calls(wechattest.APIToken))
		}
		q := url.Values{"access_token": {a.str("access_token")}}
		wantErrcode(t, callAt(t, m.URL(), m.Client(), http.MethodGet, "/wxaapi/newtmpl/getcategory", q, nil), 0)
		if app.Calls(wechattest.APIGetCategory) != 1 {
			t.Fatalf("app %s: Calls(getcategory) = %d, want 1", app.AppID(), app.Calls(wechattest.APIGetCategory))
		}
	}
	if m.App("wxapp2") != apps[1] || m.App("wxnope") != nil {
		t.Fatal("App does not find each app's Server, or finds one for an unknown appid")
	}
	if got := m.Apps(); len(got) != 3 || got[0] != apps[0] || got[2] != apps[2] {
		t.Fatalf("Apps() = %v, want the three Servers in order", got)
	}
}

func TestMultiCode2SessionRoutesByAppID(t *testing.T) {
	m, apps := newMulti(t, 2)
	a, b := apps[0], apps[1]
	st := tokenStore(t)
	ca, _ := multiClient(t, m, st, a)
	cb, _ := multiClient(t, m, st, b)
	code := a.Login("alice")
	if _, err := cb.Code2Session(t.Context(), code); wechat.ErrCode(err) != 40029 {
		t.Fatalf("A's code with B's appid: error %v, want 40029", err)
	}
	sess, err := ca.Code2Session(t.Context(), code)
	if err != nil {
		t.Fatalf("A's code with A's appid: %v", err)
	}
	if sess.OpenID != a.OpenID("alice") || sess.OpenID == b.OpenID("alice") {
		t.Fatalf("openid %s, want A's alice %s, distinct from B's %s", sess.OpenID, a.OpenID("alice"), b.OpenID("alice"))
	}
	if a.Calls(wechattest.APICode2Session) != 1 || b.Calls(wechattest.APICode2Session) != 1 {
		t.Fatalf("Calls(jscode2session) = %d and %d, want 1 each", a.Calls(wechattest.APICode2Session), b.Calls(wechattest.APICode2Session))
	}
}

func TestMultiSendStaysInItsApp(t *testing.T) {
	m, apps := newMulti(t, 2)
	a, b := apps[0], apps[1]
	st := tokenStore(t)
	ca, _ := multiClient(t, m, st, a)
	cb, _ := multiClient(t, m, st, b)
	alice, bob := a.OpenID("alice"), b.OpenID("bob")
	subscribe(t, a, alice, map[string]string{leadTmpl: "accept"})
	subscribe(t, b, bob, map[string]string{leadTmpl: "accept"})

	res, err := ca.SendSubscribeMessage(t.Context(), leadRequest(alice))
	if err != nil {
		t.Fatalf("A's token to A's user: %v", err)
	}
	if msgs := a.Messages(alice); len(msgs) != 1 || msgs[0].MsgID != res.MsgID {
		t.Fatalf("A's messages to alice %+v, want the one sent (msgid %d)", msgs, res.MsgID)
	}
	if b.Delivered() != 0 || b.Calls(wechattest.APISend) != 0 {
		t.Fatalf("B: Delivered %d, Calls(send) %d, want 0 and 0", b.Delivered(), b.Calls(wechattest.APISend))
	}

	_, err = ca.SendSubscribeMessage(t.Context(), leadRequest(bob))
	if wechat.ErrCode(err) != 40003 {
		t.Fatalf("A's token to B's user: error %v, want 40003", err)
	}
	if got := m.WrongApp(); got != 1 {
		t.Fatalf("WrongApp() = %d, want 1", got)
	}
	if b.Credits(bob, leadTmpl) != 1 || b.Delivered() != 0 || a.Delivered() != 1 {
		t.Fatalf("after the refused send: bob's credits %d, B delivered %d, A delivered %d; want 1, 0, 1",
			b.Credits(bob, leadTmpl), b.Delivered(), a.Delivered())
	}

	// An openid no app has is 40003 too, but not another app's.
	if _, err := ca.SendSubscribeMessage(t.Context(), leadRequest("o-nobody")); wechat.ErrCode(err) != 40003 {
		t.Fatalf("unknown openid: error %v, want 40003", err)
	}
	if got := m.WrongApp(); got != 1 {
		t.Fatalf("WrongApp() = %d after an unknown openid, want still 1", got)
	}

	// B's own send to bob goes through, with B's token.
	if _, err := cb.SendSubscribeMessage(t.Context(), leadRequest(bob)); err != nil {
		t.Fatalf("B's token to B's user: %v", err)
	}
	if b.Delivered() != 1 || len(b.Messages(bob)) != 1 || len(a.Messages(bob)) != 0 {
		t.Fatalf("B delivered %d, bob's messages in B %d, in A %d; want 1, 1, 0", b.Delivered(), len(b.Messages(bob)), len(a.Messages(bob)))
	}

	// The same person in both apps has two openids, each good in its own app only.
	carolA, carolB := a.OpenID("carol"), b.OpenID("carol")
	subscribe(t, a, carolA, map[string]string{leadTmpl: "accept"})
	subscribe(t, b, carolB, map[string]string{leadTmpl: "accept"})
	if _, err := cb.SendSubscribeMessage(t.Context(), leadRequest(carolA)); wechat.ErrCode(err) != 40003 {
		t.Fatalf("B's token to carol's openid in A: error %v, want 40003", err)
	}
	if _, err := cb.SendSubscribeMessage(t.Context(), leadRequest(carolB)); err != nil {
		t.Fatalf("B's token to carol's openid in B: %v", err)
	}
	if got := m.WrongApp(); got != 2 {
		t.Fatalf("WrongApp() = %d, want 2", got)
	}
}

func TestMultiTokenErrors(t *testing.T) {
	m, apps := newMulti(t, 2)
	a := apps[0]
	at := func(method, path string, q url.Values, body any) answer {
		return callAt(t, m.URL(), m.Client(), method, path, q, body)
	}
	for _, path := range []string{"/wxaapi/newtmpl/gettemplate", "/wxaapi/newtmpl/getcategory"} {
		wantErrcode(t, at(http.MethodGet, path, url.Values{"access_token": {"nope"}}, nil), 40001)
		wantErrcode(t, at(http.MethodGet, path, nil, nil), 41001)
	}
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/message/subscribe/send", url.Values{"access_token": {"nope"}}, sendBody(a.OpenID("alice"), leadTmpl, leadData())), 40001)
	for _, app := range apps {
		if n := app.Calls(wechattest.APIGetTemplate) + app.Calls(wechattest.APISend); n != 0 {
			t.Fatalf("app %s counted %d calls carrying no token of its own, want 0", app.AppID(), n)
		}
	}

	// A token A issued and then invalidated is A's to refuse: 40001, counted by A.
	tok := stableToken(t, a)
	a.InvalidateTokens()
	wantErrcode(t, at(http.MethodGet, "/wxaapi/newtmpl/gettemplate", url.Values{"access_token": {tok}}, nil), 40001)
	if a.Calls(wechattest.APIGetTemplate) != 1 {
		t.Fatalf("A: Calls(gettemplate) = %d, want 1", a.Calls(wechattest.APIGetTemplate))
	}

	// The production client with a static unknown token sees 40001.
	c, err := wechat.New(wechat.Config{AppID: a.AppID(), BaseURL: m.URL(), HTTPClient: m.Client(), Tokens: wechat.StaticToken("nope")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTemplates(t.Context()); wechat.ErrCode(err) != 40001 {
		t.Fatalf("unknown token: error %v, want 40001", err)
	}
}

func TestMultiAppIDErrors(t *testing.T) {
	m, apps := newMulti(t, 2)
	at := func(method, path string, q url.Values, body any) answer {
		return callAt(t, m.URL(), m.Client(), method, path, q, body)
	}
	unknown := url.Values{"grant_type": {"client_credential"}, "appid": {"wxnope"}, "secret": {apps[0].Secret()}}
	wantErrcode(t, at(http.MethodGet, "/cgi-bin/token", unknown, nil), 40013)
	wantErrcode(t, at(http.MethodGet, "/cgi-bin/token", url.Values{"grant_type": {"client_credential"}}, nil), 41002)
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/stable_token", nil, map[string]any{"grant_type": "client_credential", "appid": "wxnope", "secret": "x"}), 40013)
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/stable_token", nil, map[string]any{"grant_type": "client_credential", "secret": "x"}), 41002)
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/stable_token", nil, map[string]any{"appid": 7}), 47001)
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/stable_token", nil, "[1]"), 47001)
	wantErrcode(t, at(http.MethodGet, "/cgi-bin/stable_token", nil, nil), 43002)
	wantErrcode(t, at(http.MethodGet, "/sns/jscode2session", url.Values{"appid": {"wxnope"}, "secret": {"x"}, "js_code": {"c"}, "grant_type": {"authorization_code"}}, nil), 40013)
	// A known appid with a wrong secret is its Server's to refuse.
	wantErrcode(t, at(http.MethodPost, "/cgi-bin/stable_token", nil, map[string]any{"grant_type": "client_credential", "appid": apps[1].AppID(), "secret": apps[0].Secret()}), 40125)
	if apps[1].Calls(wechattest.APIStableToken) != 1 || apps[0].Calls(wechattest.APIStableToken) != 0 {
		t.Fatalf("Calls(stable_token) = %d (A) and %d (B), want 0 and 1", apps[0].Calls(wechattest.APIStableToken), apps[1].Calls(wechattest.APIStableToken))
	}

	// The production client of an app the host does not serve.
	c, err := wechat.New(wechat.Config{AppID: "wxnope", Secret: "x", BaseURL: m.URL(), HTTPClient: m.Client(), Tokens: wechat.StaticToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Code2Session(t.Context(), "code"); wechat.ErrCode(err) != 40013 {
		t.Fatalf("unknown appid: error %v, want 40013", err)
	}

	resp, err := m.Client().Get(m.URL() + "/cgi-bin/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: status %d, want 404", resp.StatusCode)
	}
}

func TestMultiHandlerUnderPrefix(t *testing.T) {
	a := newServer(t, wechattest.Options{AppID: "wxprefa"})
	b := newServer(t, wechattest.Options{AppID: "wxprefb"})
	m, err := wechattest.NewMulti(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.URL() != "" || m.Client() != nil {
		t.Fatalf("NewMulti: URL %q, Client %v, want none", m.URL(), m.Client())
	}
	ts := httptest.NewServer(http.StripPrefix("/wx", m.Handler()))
	t.Cleanup(ts.Close)
	a1 := callAt(t, ts.URL+"/wx", ts.Client(), http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(b, false))
	wantErrcode(t, a1, 0)
	wantErrcode(t, callAt(t, ts.URL+"/wx", ts.Client(), http.MethodGet, "/wxaapi/newtmpl/gettemplate", url.Values{"access_token": {a1.str("access_token")}}, nil), 0)
	if b.Calls(wechattest.APIGetTemplate) != 1 || a.Calls(wechattest.APIGetTemplate) != 0 {
		t.Fatal("gettemplate with B's token did not reach B only")
	}
}

func TestNewMultiRefuses(t *testing.T) {
	a := newServer(t, wechattest.Options{AppID: "wxdup"})
	b := newServer(t, wechattest.Options{AppID: "wxdup"})
	c := newServer(t, wechattest.Options{AppID: "wxother"})
	for name, servers := range map[string][]*wechattest.Server{
		"none":      nil,
		"nil":       {a, nil},
		"duplicate": {a, c, b},
	} {
		if m, err := wechattest.NewMulti(servers...); err == nil || m != nil {
			t.Fatalf("%s: NewMulti = %v, %v; want an error", name, m, err)
		}
	}
	if _, err := wechattest.NewMultiServer(a, b); err == nil || !strings.Contains(err.Error(), "wxdup") {
		t.Fatalf("NewMultiServer with a duplicate appid: error %v, want one naming wxdup", err)
	}
	if _, err := wechattest.NewMulti(c); err != nil {
		t.Fatal(err)
	}
	// c belongs to m: a second Multi cannot take it, and its refusal leaves a free for later.
	if _, err := wechattest.NewMulti(a, c); err == nil {
		t.Fatal("NewMulti took a Server of another Multi")
	}
	if _, err := wechattest.NewMulti(a); err != nil {
		t.Fatalf("a after the refused Multi: %v, want it free", err)
	}
}

func TestMultiPushesPerApp(t *testing.T) {
	m, apps := newMulti(t, 2)
	a, b := apps[0], apps[1]
	rcA, rcB := newReceiver(t), newReceiver(t)
	if err := a.SetPush(wechattest.PushConfig{URL: rcA.ts.URL, Token: pushToken}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPush(wechattest.PushConfig{URL: rcB.ts.URL, Token: pushToken}); err != nil {
		t.Fatal(err)
	}
	alice := a.OpenID("alice")
	subscribe(t, a, alice, map[string]string{leadTmpl: "accept"})
	ca, _ := multiClient(t, m, tokenStore(t), a)
	if _, err := ca.SendSubscribeMessage(t.Context(), leadRequest(alice)); err != nil {
		t.Fatal(err)
	}
	a.WaitPushes()
	pa := a.Pushes()
	if len(pa) != 2 || pa[1].Event.Event != wechat.EventSubscribeSent || pa[1].Event.ToUserName != a.OriginalID() || !pa[1].Delivered {
		t.Fatalf("A's pushes %+v, want the popup then a delivered sent event to A's original id", pa)
	}
	if len(b.Pushes()) != 0 {
		t.Fatalf("B pushed %+v, want nothing", b.Pushes())
	}
	rcA.mu.Lock()
	gotA := len(rcA.got)
	rcA.mu.Unlock()
	rcB.mu.Lock()
	gotB := len(rcB.got)
	rcB.mu.Unlock()
	if gotA != 2 || gotB != 0 {
		t.Fatalf("receivers got %d (A) and %d (B) posts, want 2 and 0", gotA, gotB)
	}
}

// Three apps used at once, each sending to its own users and to the others': every send lands in its own
// app, every cross send is refused and counted, under the race detector.
func TestMultiConcurrent(t *testing.T) {
	const apps, users, rounds = 3, 4, 5
	m, srvs := newMulti(t, apps)
	st := tokenStore(t)
	clients := make([]*wechat.Client, apps)
	for i, s := range srvs {
		clients[i], _ = multiClient(t, m, st, s)
		for u := range users {
			openid := s.OpenID(fmt.Sprintf("user%d", u))
			for range rounds {
				subscribe(t, s, openid, map[string]string{leadTmpl: "accept"})
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, apps*apps*users*rounds)
	for i := range apps {
		for j := range apps {
			for u := range users {
				wg.Go(func() {
					to := srvs[j].OpenID(fmt.Sprintf("user%d", u))
					for range rounds {
						_, err := clients[i].SendSubscribeMessage(t.Context(), leadRequest(to))
						switch {
						case i == j && err != nil:
							errs <- fmt.Errorf("app %d to its own user: %w", i, err)
						case i != j && wechat.ErrCode(err) != 40003:
							errs <- fmt.Errorf("app %d to app %d's user: error %v, want 40003", i, j, err)
						}
					}
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, s := range srvs {
		if got := s.Delivered(); got != users*rounds {
			t.Errorf("app %d delivered %d, want %d", i, got, users*rounds)
		}
		for u := range users {
			if c := s.Credits(s.OpenID(fmt.Sprintf("user%d", u)), leadTmpl); c != 0 {
				t.Errorf("app %d user%d has %d credits left, want 0", i, u, c)
			}
		}
	}
	if want := apps * (apps - 1) * users * rounds; m.WrongApp() != want {
		t.Errorf("WrongApp() = %d, want %d", m.WrongApp(), want)
	}
}
