package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// newSandbox serves the sandbox routes of a fake that remembers keep login codes.
func newSandbox(tb testing.TB, keep wechattest.Retention) *httptest.Server {
	tb.Helper()
	fake, err := wechattest.New(wechattest.Options{Retention: keep})
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, rt := range sandbox.New(fake).Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return ts
}

func post(tb testing.TB, ts *httptest.Server, path, body string) (int, map[string]any) {
	tb.Helper()
	resp, err := ts.Client().Post(ts.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("POST %s: decode: %v", path, err)
	}
	return resp.StatusCode, out
}

// A code identifies its user in /sandbox/subscribe while the fake remembers
// it: the sandbox keeps no codes of its own, so its memory stays within the
// fake's retention.
func TestSubscribeByCodeWhileTheFakeRemembersIt(t *testing.T) {
	ts := newSandbox(t, wechattest.Retention{LoginCodes: 2})
	var codes []string
	for _, user := range []string{"alice", "bob", "carol"} {
		status, body := post(t, ts, "/sandbox/login", `{"user":"`+user+`"}`)
		if status != http.StatusOK {
			t.Fatalf("login %s: got status %d, want 200: %v", user, status, body)
		}
		codes = append(codes, body["code"].(string))
	}
	const choices = `"choices":{"zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE":"accept"}`
	tests := []struct {
		name string
		code string
		want int
	}{
		{"Remembered", codes[2], http.StatusOK},
		{"ForgottenByTheFake", codes[0], http.StatusBadRequest},
		{"Unknown", "nope", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, ts, "/sandbox/subscribe", `{"code":"`+tt.code+`",`+choices+`}`)
			if status != tt.want {
				t.Fatalf("got status %d, want %d: %v", status, tt.want, body)
			}
		})
	}
}

// The sandbox serves the fake's stable_token and getTemplateList under
// /sandbox/wechat, with the credentials GET /sandbox/wechat answers: WeChat's
// own client, with a token source as `wxnotify templates sync` uses, reads
// the templates the fake was given. The send API is not served there.
func TestWeChatTemplateAPIThroughTheSandbox(t *testing.T) {
	catalog := []wechattest.Template{
		{PriTmplID: "tmpl-one", Title: "线索分配通知", Type: wechattest.OneTime,
			Keywords: []wechattest.Keyword{{Name: "thing1", Label: "客户名称"}, {Name: "date2", Label: "分配时间"}}},
		{PriTmplID: "tmpl-two", Title: "服务状态提醒", Type: wechattest.LongTerm,
			Keywords: []wechattest.Keyword{{Name: "enum_string1", Label: "服务状态", Enum: []string{"已中断", "已恢复"}}}},
	}
	fake, err := wechattest.New(wechattest.Options{AppID: "wxsandbox0000000000", Templates: catalog})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, rt := range sandbox.New(fake).Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	resp, err := ts.Client().Get(ts.URL + "/sandbox/wechat")
	if err != nil {
		t.Fatal(err)
	}
	var creds struct{ AppID, Secret, Path string }
	err = json.NewDecoder(resp.Body).Decode(&creds)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || creds.AppID != fake.AppID() || creds.Secret != fake.Secret() || creds.Path != sandbox.WeChatPath {
		t.Fatalf("GET /sandbox/wechat: status %d, %+v, %v; want 200 with the fake's appid, secret and %s", resp.StatusCode, creds, err, sandbox.WeChatPath)
	}

	client := func(secret string) *wechat.Client {
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "token.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		cfg := wechat.Config{AppID: creds.AppID, Secret: secret, BaseURL: ts.URL + creds.Path}
		if cfg.Tokens, err = wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{}); err != nil {
			t.Fatal(err)
		}
		cl, err := wechat.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	got, err := client(creds.Secret).GetTemplates(context.Background())
	if err != nil {
		t.Fatalf("GetTemplates through the sandbox: %v", err)
	}
	if len(got) != len(catalog) {
		t.Fatalf("GetTemplates: got %d templates, want %d: %+v", len(got), len(catalog), got)
	}
	for i, want := range catalog {
		g := got[i]
		if g.PriTmplID != want.PriTmplID || g.Title != want.Title || g.Type != want.Type || len(g.Keywords) != len(want.Keywords) {
			t.Fatalf("template %d: got %+v, want %+v", i, g, want)
		}
		for j, kw := range want.Keywords {
			if gk := g.Keywords[j]; gk.Name != kw.Name || gk.Label != kw.Label || !slices.Equal(gk.Enum, kw.Enum) {
				t.Fatalf("template %s keyword %d: got %+v, want %+v", want.PriTmplID, j, gk, kw)
			}
		}
	}
	if _, err := client("not-the-secret").GetTemplates(context.Background()); err == nil {
		t.Fatal("GetTemplates with a wrong secret: got no error")
	}
	resp, err = ts.Client().Post(ts.URL+sandbox.WeChatPath+"/cgi-bin/message/subscribe/send", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the send API under %s: got status %d, want 404 (sends go through wxnotify)", sandbox.WeChatPath, resp.StatusCode)
	}
}
