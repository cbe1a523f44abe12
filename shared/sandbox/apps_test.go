package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Each app's sandbox routes reach that app's fake only, named by the app's
// id or its AppID; the short routes stay the default app's; an unknown app
// is 404 app_not_found. The WeChat API of an app's route is its own fake's,
// with the path GET .../wechat answers.
func TestAppRoutesReachTheirAppsFake(t *testing.T) {
	tmpl := func(id string) []wechattest.Template {
		return []wechattest.Template{{PriTmplID: id, Title: id, Type: wechattest.OneTime,
			Keywords: []wechattest.Keyword{{Name: "thing1", Label: "名称"}}}}
	}
	sales, err := wechattest.New(wechattest.Options{AppID: "wxsandboxaaaaaaaaaa", Templates: tmpl("tmpl-sales")})
	if err != nil {
		t.Fatal(err)
	}
	customer, err := wechattest.New(wechattest.Options{AppID: "wxsandboxbbbbbbbbbb", Templates: tmpl("tmpl-customer")})
	if err != nil {
		t.Fatal(err)
	}
	boxes := map[string]*sandbox.Sandbox{"sales": sandbox.New(sales), "customer": sandbox.New(customer)}
	boxes[sales.AppID()], boxes[customer.AppID()] = boxes["sales"], boxes["customer"]
	mux := http.NewServeMux()
	for _, rt := range append(sandbox.New(sales).Routes(), sandbox.AppRoutes(func(app string) *sandbox.Sandbox { return boxes[app] })...) {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	for _, tt := range []struct {
		path string
		fake *wechattest.Server
	}{
		{"/sandbox", sales},
		{"/sandbox/apps/sales", sales},
		{"/sandbox/apps/customer", customer},
		{"/sandbox/apps/" + customer.AppID(), customer},
	} {
		status, body := post(t, ts, tt.path+"/login", `{"user":"alice"}`)
		if status != http.StatusOK || body["openid"] != tt.fake.OpenID("alice") {
			t.Fatalf("POST %s/login: got %d %v, want 200 with the openid of %s", tt.path, status, body, tt.fake.AppID())
		}
		if id, ok := tt.fake.CodeOpenID(body["code"].(string)); !ok || id != tt.fake.OpenID("alice") {
			t.Fatalf("POST %s/login: the code is not one of %s", tt.path, tt.fake.AppID())
		}
	}
	if sales.OpenID("alice") == customer.OpenID("alice") {
		t.Fatal("alice has one openid in both apps")
	}
	// A template of the customer app is refused by the sales app's subscribe.
	if status, body := post(t, ts, "/sandbox/apps/sales/subscribe", `{"openid":"`+sales.OpenID("alice")+`","choices":{"tmpl-customer":"accept"}}`); status != http.StatusBadRequest {
		t.Fatalf("sales subscribe to a customer template: got %d %v, want 400", status, body)
	}
	if status, body := post(t, ts, "/sandbox/apps/customer/subscribe", `{"openid":"`+customer.OpenID("alice")+`","choices":{"tmpl-customer":"accept"}}`); status != http.StatusOK || body["tmpl-customer"] != "accept" {
		t.Fatalf("customer subscribe: got %d %v, want 200 accept", status, body)
	}

	status, body := post(t, ts, "/sandbox/apps/nope/login", `{"user":"alice"}`)
	if errBody, _ := body["error"].(map[string]any); status != http.StatusNotFound || errBody["code"] != "app_not_found" {
		t.Fatalf("unknown app: got %d %v, want 404 app_not_found", status, body)
	}

	resp, err := ts.Client().Get(ts.URL + "/sandbox/apps/customer/wechat")
	if err != nil {
		t.Fatal(err)
	}
	var creds struct{ AppID, Secret, Path string }
	err = json.NewDecoder(resp.Body).Decode(&creds)
	resp.Body.Close()
	if err != nil || creds.AppID != customer.AppID() || creds.Secret != customer.Secret() || creds.Path != "/sandbox/apps/customer/wechat" {
		t.Fatalf("GET /sandbox/apps/customer/wechat: %+v %v, want the customer fake's credentials and path", creds, err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "token.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := wechat.Config{AppID: creds.AppID, Secret: creds.Secret, BaseURL: ts.URL + creds.Path}
	if cfg.Tokens, err = wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	cl, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.GetTemplates(context.Background())
	if err != nil || len(got) != 1 || got[0].PriTmplID != "tmpl-customer" {
		t.Fatalf("GetTemplates through /sandbox/apps/customer/wechat: got %+v, %v; want the customer's one template", got, err)
	}
}
