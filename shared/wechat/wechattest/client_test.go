package wechattest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// stableSource is a TokenSource that asks the fake's stable_token in normal mode, as the production
// source does, without a store.
type stableSource struct {
	srv     *wechattest.Server
	mu      sync.Mutex
	current string
}

func (s *stableSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == "" {
		tok, err := s.fetch(ctx)
		if err != nil {
			return "", err
		}
		s.current = tok
	}
	return s.current, nil
}

func (s *stableSource) Invalidate(ctx context.Context, bad string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != bad {
		return nil
	}
	tok, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	if tok == bad {
		return errors.New("stable_token returned the rejected token")
	}
	s.current = tok
	return nil
}

func (s *stableSource) fetch(ctx context.Context) (string, error) {
	body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": s.srv.AppID(), "secret": s.srv.Secret()})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.srv.URL()+"/cgi-bin/stable_token", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Errcode     int    `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if out.Errcode != 0 || out.AccessToken == "" {
		return "", errors.New("stable_token failed")
	}
	return out.AccessToken, nil
}

// newClient is the real WeChat client pointed at the fake.
func newClient(tb testing.TB, srv *wechattest.Server) (*wechat.Client, *stableSource) {
	tb.Helper()
	src := &stableSource{srv: srv}
	c, err := wechat.New(wechat.Config{AppID: srv.AppID(), Secret: srv.Secret(), BaseURL: srv.URL(), HTTPClient: srv.Client(), Tokens: src})
	if err != nil {
		tb.Fatal(err)
	}
	return c, src
}

func TestClientCode2Session(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	c, _ := newClient(t, srv)
	code := srv.Login("alice")
	sess, err := c.Code2Session(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	if sess.OpenID != srv.OpenID("alice") || sess.SessionKey == "" {
		t.Fatalf("session %v, want alice's openid and a session key", sess)
	}
	if _, err := c.Code2Session(t.Context(), code); !wechat.IsInvalidCode(err) {
		t.Fatalf("reused code: error %v, want IsInvalidCode", err)
	}
}

func TestClientSend(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	c, _ := newClient(t, srv)
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	req := wechat.SendRequest{ToUser: alice, TemplateID: leadTmpl, Data: map[string]string{"thing4": "Acme Ltd", "date2": "2026-11-21", "character_string9": "L-1001"}}

	bad := req
	bad.Data = map[string]string{"thing4": strings.Repeat("字", 21), "date2": "2026-11-21", "character_string9": "L-1001"}
	_, err := c.SendSubscribeMessage(t.Context(), bad)
	if got := wechat.InvalidField(err); got != "data.thing4" {
		t.Fatalf("21-character thing: InvalidField = %q (error %v), want data.thing4", got, err)
	}

	res, err := c.SendSubscribeMessage(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages(alice)
	if len(msgs) != 1 || msgs[0].MsgID != res.MsgID || res.MsgID <= 1<<53 {
		t.Fatalf("msgid %d, messages %+v, want the recorded msgid above 2^53", res.MsgID, msgs)
	}

	_, err = c.SendSubscribeMessage(t.Context(), req)
	if !wechat.IsConsentGone(err) {
		t.Fatalf("send without credit: error %v, want IsConsentGone", err)
	}
	other := req
	other.TemplateID = "nope"
	if _, err := c.SendSubscribeMessage(t.Context(), other); wechat.ErrCode(err) != 40037 || !wechat.IsBadRequest(err) {
		t.Fatalf("unknown template: error %v, want 40037 IsBadRequest", err)
	}
}

func TestClientSendAmbiguous(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	c, _ := newClient(t, srv)
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{leadTmpl: "accept"})
	inject(t, srv, wechattest.Fault{API: wechattest.APISend, Drop: wechattest.DropAfterRead, Count: 1})
	req := wechat.SendRequest{ToUser: alice, TemplateID: leadTmpl, Data: map[string]string{"thing4": "Acme Ltd", "date2": "2026-11-21", "character_string9": "L-1001"}}
	_, err := c.SendSubscribeMessage(t.Context(), req)
	if !wechat.IsAmbiguous(err) {
		t.Fatalf("answer dropped after delivery: error %v, want IsAmbiguous", err)
	}
	if got := srv.Delivered(); got != 1 {
		t.Fatalf("Delivered() = %d, want 1: the message went out", got)
	}
}

func TestClientRetriesInvalidatedToken(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	c, src := newClient(t, srv)
	if _, err := c.GetTemplates(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := src.current
	srv.InvalidateTokens()
	if _, err := c.GetTemplates(t.Context()); err != nil {
		t.Fatalf("after InvalidateTokens: %v, want a retry with a new token", err)
	}
	if src.current == old {
		t.Fatal("the client kept the invalidated token, want a new one")
	}
	if got := srv.Calls(wechattest.APIGetTemplate); got != 3 {
		t.Fatalf("Calls(gettemplate) = %d, want 3 (one 40001, then the retry)", got)
	}
}

func TestClientGetTemplates(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	c, _ := newClient(t, srv)
	got, err := c.GetTemplates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := srv.Templates()
	if len(got) != len(want) {
		t.Fatalf("%d templates, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.PriTmplID != w.PriTmplID || g.Type != w.Type || len(g.Keywords) != len(w.Keywords) {
			t.Fatalf("template %d = %+v, want %+v", i, g, w)
		}
		for j, k := range w.Keywords {
			gk := g.Keywords[j]
			if gk.Name != k.Name || gk.Label != k.Label || strings.Join(gk.Enum, ",") != strings.Join(k.Enum, ",") {
				t.Fatalf("template %s keyword %d = %+v, want %+v", w.PriTmplID, j, gk, k)
			}
		}
	}
}
