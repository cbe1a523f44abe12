package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/console"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const appsConfig = `defaultApp: sales
apps:
  - id: sales
    templates:
      - {alias: lead_assigned, id: muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4, kind: one-time, keywords: [{name: thing1}]}
  - id: customer
    templates:
      - {alias: booked, id: zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE, kind: one-time, keywords: [{name: thing4}]}
`

// newAppsFixture is newFixture's server for a deployment of two apps,
// sales (the default) and customer, each with its own sandbox WeChat.
func newAppsFixture(tb testing.TB) (*fixture, *boot.Parts) {
	tb.Helper()
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "wxnotify.yaml")
	if err := os.WriteFile(cfgPath, []byte(appsConfig), 0o600); err != nil {
		tb.Fatal(err)
	}
	vars := map[string]string{"WXN_CONFIG": cfgPath, "WXN_SESSION_SECRET": "test-session-secret-0123456789abcdef",
		"WXN_API_KEYS": testAPIKey, "WXN_ADMIN_KEYS": testAdminKey, "WXN_PUSH_ENABLED": "false",
		"WXN_APP_SALES_WECHAT_APPID": "wxsales000000000000", "WXN_APP_CUSTOMER_WECHAT_APPID": "wxcustomer000000000"}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] }, false)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newTestClock()
	var fakes []*wechattest.Server
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		fake := wechattest.NewServer(wechattest.Options{AppID: a.AppID, Templates: sandbox.Templates(a.File), Now: clock.now})
		tb.Cleanup(fake.Close)
		a.Secret = fake.Secret()
		fakes = append(fakes, fake)
	}
	multi, err := wechattest.NewMultiServer(fakes...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(multi.Close)
	cfg.APIBase = multi.URL()
	cfg.AppID, cfg.Secret = cfg.Default().AppID, cfg.Default().Secret
	st, err := boltstore.Open(filepath.Join(dir, "wxnotify.db"), boltstore.Options{NoSync: true, Now: clock.now}) // expiry by the test's clock, as the console's
	if err != nil {
		tb.Fatal(err)
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "consoletest", Now: clock.now})
	if err != nil {
		_ = st.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = parts.Close() })
	con, err := console.FromParts(parts, clock.now)
	if err != nil {
		tb.Fatal(err)
	}
	parts.API.SetConsole(con)
	ts := httptest.NewServer(parts.API.NewMux(httpapi.AllGroups...))
	tb.Cleanup(ts.Close)
	return &fixture{url: ts.URL, svc: parts.Service, fake: fakes[0], parts: parts, now: clock.now, clock: clock}, parts
}

// TestConsoleApps: with two apps the console leads to the default app,
// lists both, shows each app's own records only, and writes a sign-in to
// each app's audit log.
func TestConsoleApps(t *testing.T) {
	f, parts := newAppsFixture(t)
	customer := parts.App("customer").Service
	b, err := customer.CreateBatch(context.Background(), notify.BatchRequest{Template: "booked", NotBefore: f.now().Add(3600e9),
		Data: map[string]string{"thing4": "x"}, Recipients: []notify.BatchRecipient{{UserID: "c-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	session := sessionCookie(t, f)
	if a := do(t, "GET", f.url+"/console", nil, "text/html", nil, session); a.status != http.StatusSeeOther ||
		a.header.Get("Location") != "/console/apps/sales/overview" {
		t.Errorf("GET /console: got %d to %q, want the default app's overview", a.status, a.header.Get("Location"))
	}
	a := do(t, "GET", f.url+"/console/apps/customer/batches/"+b.ID, nil, "text/html", nil, session)
	if a.status != 200 || !strings.Contains(a.body, `href="/console/apps/sales/overview"`) ||
		!strings.Contains(a.body, `href="/console/apps/customer/overview" class="on"`) {
		t.Errorf("customer's batch: got %d, want its page with both apps, customer current: %s", a.status, a.body)
	}
	if a := do(t, "GET", f.url+"/console/apps/sales/batches/"+b.ID, nil, "application/json", nil, session); a.status != 404 || a.code() != "not_found" {
		t.Errorf("customer's batch under sales: got %d %s, want 404 not_found", a.status, a.body)
	}
	for _, tc := range []struct{ app, want, other string }{{"sales", "lead_assigned", "booked"}, {"customer", "booked", "lead_assigned"}} {
		app, want, other := tc.app, tc.want, tc.other
		a := do(t, "GET", f.url+"/console/apps/"+app+"/templates", nil, "text/html", nil, session)
		if !strings.Contains(a.body, `data-alias="`+want+`"`) || strings.Contains(a.body, `data-alias="`+other+`"`) {
			t.Errorf("%s templates: want %s only", app, want)
		}
		a = do(t, "GET", f.url+"/console/apps/"+app+"/audit", nil, "text/html", nil, session)
		if strings.Count(a.body, `data-action="signin"`) != 1 {
			t.Errorf("%s audit log: got %d sign-ins, want 1", app, strings.Count(a.body, `data-action="signin"`))
		}
	}
}
