package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// salesAppID is the appId of the app sales in testdata/sync-apps-before.yaml.
const salesAppID = "wx5f2a9c3e1b7d4a60"

// The customer app's templates on its fake WeChat: the file's template
// (same id as the sales app's, with other keywords) and one it lacks.
var customerShipped = wechattest.Template{PriTmplID: leadID, Title: "发货通知", Type: wechattest.OneTime,
	Keywords: []wechattest.Keyword{{Name: "thing1", Label: "商品名称"}, {Name: "time2", Label: "发货时间"}}}

// salesLead is the sales app's template on its fake WeChat.
var salesLead = wechattest.Template{PriTmplID: leadID, Title: "线索分配通知", Type: wechattest.OneTime,
	Keywords: []wechattest.Keyword{{Name: "thing1", Label: "客户名称"}, {Name: "character_string2", Label: "线索编号"}}}

// appsWeChat starts one fake WeChat base URL serving the apps sales
// (templates sales) and customer (templates customer), and returns it.
func appsWeChat(tb testing.TB, sales, customer []wechattest.Template) *wechattest.Multi {
	tb.Helper()
	s, err := wechattest.New(wechattest.Options{AppID: salesAppID, Templates: sales})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := wechattest.New(wechattest.Options{Templates: customer})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := wechattest.NewMultiServer(s, c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m
}

// splitAt cuts text at the first line that is exactly line (the line goes
// to the second part); it fails the test when there is none.
func splitAt(tb testing.TB, text, line string) (before, after string) {
	tb.Helper()
	i := strings.Index(text, "\n"+line+"\n")
	if i < 0 {
		tb.Fatalf("no line %q in:\n%s", line, text)
	}
	return text[:i+1], text[i+1:]
}

// TestTemplatesSyncApp: on a file of two apps, sync --app customer reads
// WeChat with the customer app's own credentials and rewrites only that
// app's templates: the header, the whole sales app (whose template has the
// same id, with a stale label WeChat would change) and the customer's rules
// stay byte for byte, comments included; the result loads.
func TestTemplatesSyncApp(t *testing.T) {
	m := appsWeChat(t, []wechattest.Template{salesLead}, []wechattest.Template{customerShipped, syncStatus})
	customer := m.Apps()[1]
	path := copyTestdata(t, "sync-apps-before.yaml")
	before := readFile(t, path)
	env := map[string]string{
		// The plain names are the default app's (sales): they must not be used.
		"WXN_WECHAT_APPID": salesAppID, "WXN_WECHAT_SECRET": m.App(salesAppID).Secret(),
		"WXN_APP_CUSTOMER_WECHAT_APPID": customer.AppID(), "WXN_APP_CUSTOMER_WECHAT_SECRET": customer.Secret(),
		"WXN_WECHAT_API_BASE": m.URL(),
	}
	got := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "customer")
	if got.code != exitOK || !strings.Contains(got.stdout, "wrote "+path) {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want the file written", got.code, got.stdout, got.stderr)
	}
	if want := "added: service_status\nupdated: order_shipped\n"; !strings.HasPrefix(got.stdout, want) {
		t.Fatalf("report %q, want it to start with %q", got.stdout, want)
	}
	after := readFile(t, path)

	const appLine, rulesLine = "  # The customers' mini program.", "    # Customers hear about their orders."
	headBefore, restBefore := splitAt(t, before, appLine)
	headAfter, restAfter := splitAt(t, after, appLine)
	if headAfter != headBefore {
		t.Fatalf("the header and the sales app changed:\n%s\nwant:\n%s", unifiedDiff("before", "after", headBefore, headAfter), headBefore)
	}
	_, rulesBefore := splitAt(t, restBefore, rulesLine)
	_, rulesAfter := splitAt(t, restAfter, rulesLine)
	if rulesAfter != rulesBefore {
		t.Fatalf("the customer's rules changed:\n%s", unifiedDiff("before", "after", rulesBefore, rulesAfter))
	}
	for _, kept := range []string{"      # Filled in by sync.\n", "      - alias: order_shipped # the shop's name for it\n"} {
		if !strings.Contains(restAfter, kept) {
			t.Errorf("the customer's templates lost %q:\n%s", kept, restAfter)
		}
	}

	f, err := config.ParseFile([]byte(after))
	if err != nil {
		t.Fatalf("the synced file does not load: %v\n%s", err, after)
	}
	if len(f.Apps) != 2 || f.Apps[0].ID != "sales" || f.Apps[1].ID != "customer" {
		t.Fatalf("apps %+v, want sales then customer", f.Apps)
	}
	if s := f.Apps[0].Templates; len(s) != 1 || s[0].Keywords[0].Label != "旧标签" {
		t.Fatalf("the sales templates were synced: %+v", s)
	}
	c := f.Apps[1].Templates
	if len(c) != 2 || c[0].Alias != "order_shipped" || c[0].Title != customerShipped.Title || c[0].Kind != "one-time" ||
		len(c[0].Keywords) != 2 || c[0].Keywords[1].Name != "time2" || c[1].ID != syncStatus.PriTmplID || c[1].Kind != "long-term" {
		t.Fatalf("customer templates %+v, want the customer app's WeChat templates", c)
	}

	again := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "customer")
	if again.code != exitOK || !strings.Contains(again.stdout, "up to date with WeChat's 2 templates of app customer") {
		t.Fatalf("second sync: exit %d, stdout %q, stderr %q; want it up to date", again.code, again.stdout, again.stderr)
	}
}

// TestTemplatesSyncDefaultApp: the default app (defaultApp: sales) falls
// back to WXN_WECHAT_SECRET, its AppID coming from the file's appId; only
// its templates change. A non-default app has no such fallback, and an
// AppID variable unlike the file's appId is refused.
func TestTemplatesSyncDefaultApp(t *testing.T) {
	m := appsWeChat(t, []wechattest.Template{salesLead}, []wechattest.Template{customerShipped})
	customer := m.Apps()[1]
	path := copyTestdata(t, "sync-apps-before.yaml")
	env := map[string]string{"WXN_WECHAT_SECRET": m.App(salesAppID).Secret(), "WXN_WECHAT_API_BASE": m.URL()}
	// The customer app's rules need its synced template for the file to load.
	withCustomer := map[string]string{"WXN_APP_CUSTOMER_WECHAT_APPID": customer.AppID(), "WXN_APP_CUSTOMER_WECHAT_SECRET": customer.Secret()}
	for k, v := range env {
		withCustomer[k] = v
	}
	if got := cliRun(t, withCustomer, "", "templates", "sync", "--config", path, "--app", "customer"); got.code != exitOK {
		t.Fatalf("sync --app customer: exit %d, stderr %q", got.code, got.stderr)
	}
	before := readFile(t, path)
	got := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "sales", "--dry-run")
	if got.code != exitOK || !strings.Contains(got.stdout, "+            label: 客户名称") || !strings.Contains(got.stdout, "would be updated: lead_assigned") {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want the sales label updated", got.code, got.stdout, got.stderr)
	}
	if readFile(t, path) != before {
		t.Fatal("--dry-run wrote the file")
	}
	_, customerBefore := splitAt(t, before, "  # The customers' mini program.")
	if got := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "sales"); got.code != exitOK {
		t.Fatalf("sync --app sales: exit %d, stderr %q", got.code, got.stderr)
	}
	if _, customerAfter := splitAt(t, readFile(t, path), "  # The customers' mini program."); customerAfter != customerBefore {
		t.Fatalf("syncing sales changed the customer app:\n%s", unifiedDiff("before", "after", customerBefore, customerAfter))
	}

	noCreds := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "customer")
	if noCreds.code != exitUsage || !strings.Contains(noCreds.stderr, "WXN_APP_CUSTOMER_WECHAT_APPID and WXN_APP_CUSTOMER_WECHAT_SECRET are required") {
		t.Fatalf("customer without its credentials: exit %d, stderr %q; want its variables named", noCreds.code, noCreds.stderr)
	}
	env["WXN_APP_SALES_WECHAT_APPID"] = "wx0000000000000001"
	mismatch := cliRun(t, env, "", "templates", "sync", "--config", path, "--app", "sales")
	if mismatch.code != exitUsage || !strings.Contains(mismatch.stderr, `gives app "sales" the AppID "wx5f2a9c3e1b7d4a60"`) {
		t.Fatalf("AppID unlike the file's: exit %d, stderr %q", mismatch.code, mismatch.stderr)
	}
}

// TestTemplatesSyncAppRefusals: a file of apps needs --app, one of its
// ids, well formed; a file without apps takes none but "default". Nothing
// is written, and no WeChat is needed to say so.
func TestTemplatesSyncAppRefusals(t *testing.T) {
	path := copyTestdata(t, "sync-apps-before.yaml")
	before := readFile(t, path)
	single := copyTestdata(t, "sync-before.yaml")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"NoApp", nil, []string{"--config", path}, "the file has 2 apps: --app is required, one of sales, customer"},
		{"UnknownApp", nil, []string{"--config", path, "--app", "shop"}, "--app shop: not an app of the file (its apps: sales, customer)"},
		{"UnknownFromEnv", map[string]string{"WXN_APP": "shop"}, []string{"--config", path}, "--app shop: not an app of the file"},
		{"BadID", nil, []string{"--config", path, "--app", "Sales_1"}, `--app: "Sales_1" is not an app id`},
		{"SingleAppFile", nil, []string{"--config", single, "--app", "sales"}, `the file has no apps: (its one app is "default"; drop --app)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cliRun(t, tc.env, "", append([]string{"templates", "sync"}, tc.args...)...)
			if got.code != exitUsage || !strings.Contains(got.stderr, tc.want) {
				t.Fatalf("got exit %d, stderr %q; want 2 and %q", got.code, got.stderr, tc.want)
			}
		})
	}
	if readFile(t, path) != before {
		t.Fatal("a refused sync changed the file")
	}
}

// TestSyncAppTemplatesAddsMissingKey: an app without a templates key gets
// one, inside its own mapping; the other app is kept.
func TestSyncAppTemplatesAddsMissingKey(t *testing.T) {
	in := "apps:\n  - id: a # first\n    rules: []\n  - id: b\n    templates: []\n    rules: []\n"
	out, rep, err := syncAppTemplates([]byte(in), "a", nil)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	want := "apps:\n  - id: a # first\n    rules: []\n    templates: []\n  - id: b\n    templates: []\n    rules: []\n"
	if string(out) != want || rep.changed() {
		t.Fatalf("got %q (changed %v), want %q", out, rep.changed(), want)
	}
}

// appsDev serves the sandbox routes of a wxnotify dev (package sandbox):
// the default app's (sales) under /sandbox, and with answerApp each app
// of ids under /sandbox/apps/<id> as a dev of several apps does; without,
// only the default app's, as a dev of one app.
func appsDev(tb testing.TB, ids map[string]*wechattest.Server, answerApp bool) string {
	tb.Helper()
	mux := http.NewServeMux()
	routes := sandbox.New(ids["sales"]).Routes()
	if answerApp {
		routes = append(routes, sandbox.AppRoutes(func(app string) *sandbox.Sandbox {
			if s := ids[app]; s != nil {
				return sandbox.New(s)
			}
			return nil
		})...)
	}
	for _, rt := range routes {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return ts.URL
}

// TestTemplatesSyncAppSandbox: --sandbox --app asks dev for that app's
// sandbox WeChat and syncs its templates into that app only; a dev that
// does not know the app, or answers for one app only, is refused for
// another app, and nothing is written.
func TestTemplatesSyncAppSandbox(t *testing.T) {
	m := appsWeChat(t, []wechattest.Template{salesLead}, []wechattest.Template{customerShipped, syncStatus})
	ids := map[string]*wechattest.Server{"sales": m.App(salesAppID), "customer": m.Apps()[1]}
	path := copyTestdata(t, "sync-apps-before.yaml")
	before := readFile(t, path)

	single := appsDev(t, ids, false)
	got := cliRun(t, nil, "", "templates", "sync", "--config", path, "--app", "customer", "--sandbox", "--url", single)
	if got.code != exitFailure || !strings.Contains(got.stderr, `has no app "customer"`) {
		t.Fatalf("a one-app dev: exit %d, stderr %q; want it refused", got.code, got.stderr)
	}
	delete(ids, "customer")
	multi := appsDev(t, ids, true)
	got = cliRun(t, nil, "", "templates", "sync", "--config", path, "--app", "customer", "--sandbox", "--url", multi)
	if got.code != exitFailure || !strings.Contains(got.stderr, `has no app "customer"`) {
		t.Fatalf("a dev without the app: exit %d, stderr %q; want it refused", got.code, got.stderr)
	}
	if readFile(t, path) != before {
		t.Fatal("a refused sync wrote the file")
	}

	ids["customer"] = m.Apps()[1]
	got = cliRun(t, nil, "", "templates", "sync", "--config", path, "--app", "customer", "--sandbox", "--url", multi)
	if got.code != exitOK {
		t.Fatalf("sync --sandbox --app customer: exit %d, stderr %q", got.code, got.stderr)
	}
	after := readFile(t, path)
	const appLine = "  # The customers' mini program."
	headBefore, _ := splitAt(t, before, appLine)
	headAfter, _ := splitAt(t, after, appLine)
	if headAfter != headBefore {
		t.Fatalf("the sales app changed:\n%s", unifiedDiff("before", "after", headBefore, headAfter))
	}
	f, err := config.ParseFile([]byte(after))
	if err != nil {
		t.Fatalf("the synced file does not load: %v", err)
	}
	if c := f.Apps[1].Templates; len(c) != 2 || c[0].Title != customerShipped.Title || c[1].ID != syncStatus.PriTmplID {
		t.Fatalf("customer templates %+v, want the customer sandbox's", c)
	}

	// The default app may use a dev of one app: its sandbox is that app's.
	got = cliRun(t, nil, "", "templates", "sync", "--config", path, "--app", "sales", "--sandbox", "--url", single)
	if got.code != exitOK || !strings.Contains(got.stdout, "updated: lead_assigned") {
		t.Fatalf("sync --sandbox --app sales on a one-app dev: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}
