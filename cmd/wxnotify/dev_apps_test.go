package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Template ids of the bundled example with apps.
const appointmentID = "Qm3v8TfXkL2pRz7Yc1NaWd5HsJ9bGe4uKo6iVy0AtEw"

// newAppsEnv is `wxnotify dev --example apps --push push`: the sales and
// customer apps, each with its own sandbox WeChat. Every push of every
// app's fake must have been delivered (as newEnvWith checks for the
// default app's).
func newAppsEnv(t *testing.T, push string) *env {
	t.Helper()
	e := newEnvWith(t, envOptions{example: "apps", push: push})
	if e.srv.multi == nil || len(e.srv.fakes) != 2 || e.srv.fake != e.srv.fakes["sales"] {
		t.Fatalf("dev --example apps: multi %v, fakes %v; want one Multi with sales (the default) and customer", e.srv.multi, e.srv.fakes)
	}
	t.Cleanup(func() {
		for id, fake := range e.srv.fakes {
			fake.WaitPushes()
			if ended, delivered := fake.PushCounts(); delivered != ended {
				t.Errorf("pushes of app %s: %d of %d not delivered", id, ended-delivered, ended)
			}
		}
	})
	return e
}

// appRoutes are the routes of one app of the dev server with apps.
type appRoutes struct {
	id   string
	v1   string // /v1/apps/<id>
	box  string // /sandbox/apps/<id>
	fake *wechattest.Server
}

func (e *env) app(id string) appRoutes {
	return appRoutes{id: id, v1: "/v1/apps/" + id, box: "/sandbox/apps/" + id, fake: e.srv.fakes[id]}
}

// appLogin is a sandbox login on the app's own route: the code and openid.
func (e *env) appLogin(a appRoutes, user string) (code, openID string) {
	e.t.Helper()
	r := e.want(e.do("POST", a.box+"/login", "", map[string]string{"user": user}), 200)
	return r.str("code"), r.str("openid")
}

// appSession is the mini program's session for user on the app's routes.
func (e *env) appSession(a appRoutes, user string) string {
	e.t.Helper()
	code, _ := e.appLogin(a, user)
	return e.want(e.do("POST", a.v1+"/session", "", map[string]string{"code": code}), 200).str("token")
}

// appCredits are the credits of tmplID of the session's user, on the app's routes.
func (e *env) appCredits(a appRoutes, token, tmplID string) int {
	e.t.Helper()
	r := e.want(e.do("GET", a.v1+"/consents", token, nil), 200)
	list, _ := r.get("consents").([]any)
	for _, c := range list {
		if m := c.(map[string]any); m["templateId"] == tmplID {
			return int(m["credits"].(float64))
		}
	}
	e.t.Fatalf("%s: no consent for %s in %s", a.id, tmplID, r.raw)
	return 0
}

// TestDevAppsFlow runs the seeds' flow on both apps of `wxnotify dev
// --example apps` over HTTP: each app's sandbox login, binding, popup
// (pushed to the app's own /wechat/push/<id>, which grants the credit),
// and send reach that app's fake only; a userId bound in sales is unknown
// to customer, a template of one app is unknown to the other, and no call
// ever reached another app's fake (WrongApp).
func TestDevAppsFlow(t *testing.T) {
	e := newAppsEnv(t, "")
	cfg := e.srv.parts.Config
	if cfg.DefaultApp != "sales" || len(cfg.Apps) != 2 {
		t.Fatalf("config: default %q, %d apps; want sales of 2", cfg.DefaultApp, len(cfg.Apps))
	}
	sales, customer := cfg.Apps[0], cfg.Apps[1]
	for _, a := range cfg.Apps {
		if !a.PushEnabled || a.PushToken == "" || len(a.PushAESKey) != 43 || a.AppID != appSandboxAppID(a.ID) || e.srv.fakes[a.ID].AppID() != a.AppID {
			t.Fatalf("app %s: push %v token %q aes %q, AppID %q; want push on with its own token and key and the sandbox AppID %s",
				a.ID, a.PushEnabled, a.PushToken, a.PushAESKey, a.AppID, appSandboxAppID(a.ID))
		}
	}
	if sales.PushToken == customer.PushToken || sales.PushAESKey == customer.PushAESKey || sales.AppID == customer.AppID {
		t.Fatal("the apps share a push Token, an EncodingAESKey or an AppID")
	}
	if cfg.AppID != sales.AppID || cfg.PushToken != sales.PushToken || cfg.APIBase != e.srv.multi.URL() {
		t.Fatalf("plain fields: AppID %q token %q base %q; want the default app's and the Multi's URL", cfg.AppID, cfg.PushToken, cfg.APIBase)
	}

	flows := []struct {
		app    appRoutes
		user   string
		userID string
		tmplID string
		body   map[string]any
	}{
		{e.app("sales"), "alice", "sales-42", leadID, sendLead(map[string]string{"userId": "sales-42"}, "")},
		{e.app("customer"), "alice", "customer-7", appointmentID, map[string]any{"to": map[string]string{"userId": "customer-7"},
			"template": "appointment_booked", "data": map[string]string{"thing1": "产品演示", "time2": "2026年11月25日 14:00", "name3": "王芳", "phrase4": "已确认"}}},
	}
	for _, f := range flows {
		code, openID := e.appLogin(f.app, f.user)
		if openID != f.app.fake.OpenID(f.user) {
			t.Fatalf("%s: sandbox login: openid %s, want the app's %s", f.app.id, openID, f.app.fake.OpenID(f.user))
		}
		b := e.want(e.do("POST", f.app.v1+"/bindings", e.key, map[string]string{"userId": f.userID, "code": code}), 200)
		if b.str("userId") != f.userID {
			t.Fatalf("%s: bind: got %s", f.app.id, b.raw)
		}
		token := e.appSession(f.app, f.user)
		pushesBefore, _ := f.app.fake.PushCounts()
		r := e.want(e.do("POST", f.app.box+"/subscribe", "", map[string]any{"openid": openID, "choices": map[string]string{f.tmplID: "accept"}}), 200)
		if r.str(f.tmplID) != "accept" {
			t.Fatalf("%s: popup: got %s", f.app.id, r.raw)
		}
		f.app.fake.WaitPushes()
		if ended, delivered := f.app.fake.PushCounts(); ended != pushesBefore+1 || delivered != ended {
			t.Fatalf("%s: popup pushes: %d ended, %d delivered; want one more, delivered to /wechat/push/%s", f.app.id, ended, delivered, f.app.id)
		}
		// No report: the pushed popup event alone granted the credit.
		if got := e.appCredits(f.app, token, f.tmplID); got != 1 {
			t.Fatalf("%s: credits after the pushed popup: got %d, want 1", f.app.id, got)
		}
		s := e.want(e.do("POST", f.app.v1+"/notifications", e.key, f.body), 200)
		if s.str("status") != "sent" {
			t.Fatalf("%s: send: got %s, want sent", f.app.id, s.raw)
		}
		if msgs := f.app.fake.Messages(openID); len(msgs) != 1 || msgs[0].TemplateID != f.tmplID {
			t.Fatalf("%s: inbox: got %+v, want the one message", f.app.id, msgs)
		}
		inbox := e.want(e.do("GET", f.app.box+"/messages?openid="+openID, "", nil), 200)
		if list, _ := inbox.get("messages").([]any); len(list) != 1 {
			t.Fatalf("%s: %s/messages: got %s, want one message", f.app.id, f.app.box, inbox.raw)
		}
	}
	salesFake, customerFake := e.srv.fakes["sales"], e.srv.fakes["customer"]
	if salesFake.OpenID("alice") == customerFake.OpenID("alice") {
		t.Fatal("alice has the same openid in both apps")
	}
	// Each fake got its own app's message only.
	if n := len(salesFake.Messages(customerFake.OpenID("alice"))); n != 0 {
		t.Fatalf("the sales fake holds %d messages for customer's alice", n)
	}
	if n := len(customerFake.Messages(salesFake.OpenID("alice"))); n != 0 {
		t.Fatalf("the customer fake holds %d messages for sales' alice", n)
	}
	// The short routes are the default app's: sales' alice, its messages.
	if r := e.want(e.do("GET", "/sandbox/messages?openid="+salesFake.OpenID("alice"), "", nil), 200); !strings.Contains(r.raw, leadID) {
		t.Fatalf("/sandbox/messages: got %s, want sales' message", r.raw)
	}
	if r := e.want(e.do("POST", "/sandbox/login", "", map[string]string{"user": "carol"}), 200); r.str("openid") != salesFake.OpenID("carol") {
		t.Fatalf("/sandbox/login: openid %s, want sales' %s", r.str("openid"), salesFake.OpenID("carol"))
	}

	// Isolation: sales-42 is bound in sales only.
	sendCalls := customerFake.Calls("send")
	r := e.do("POST", "/v1/apps/customer/notifications", e.key, map[string]any{"to": map[string]string{"userId": "sales-42"},
		"template": "registration", "data": map[string]string{"date2": "2026年11月21日", "thing4": "Acme Ltd", "character_string9": "R-1"}})
	if r.status != 404 && !(r.status == 200 && r.str("status") == "skipped" && r.str("reason") == "unbound_user") {
		t.Fatalf("customer send to sales' sales-42: got %d %s, want not found or skipped unbound_user", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/apps/customer/notifications", e.key, sendLead(map[string]string{"userId": "customer-7"}, "")); r.status != 400 {
		t.Fatalf("customer send of sales' lead_assigned: got %d %s, want 400", r.status, r.raw)
	}
	if customerFake.Calls("send") != sendCalls {
		t.Fatal("the refused sends called the customer fake")
	}
	// The customer app's own rule, from an event posted to its route.
	token := e.appSession(e.app("customer"), "alice")
	e.want(e.do("POST", "/sandbox/apps/customer/subscribe", "", map[string]any{"openid": customerFake.OpenID("alice"),
		"choices": map[string]string{appointmentID: "accept"}}), 200)
	customerFake.WaitPushes()
	if got := e.appCredits(e.app("customer"), token, appointmentID); got != 1 {
		t.Fatalf("customer credits before the event: got %d, want 1", got)
	}
	ev := map[string]any{"id": "evt-a7d0", "type": "appointment.booked", "occurredAt": "2026-11-21T09:30:00Z",
		"data": map[string]any{"appointment": map[string]any{"id": "A-77", "service": "产品演示", "at": "2026-11-25T14:00:00+08:00", "advisor": "王芳"},
			"customer": map[string]any{"userId": "customer-7"}}}
	if r := e.want(e.do("POST", "/v1/apps/customer/events", e.key, ev), 202); !strings.Contains(r.raw, `"notifications"`) {
		t.Fatalf("customer event: got %s", r.raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(customerFake.Messages(customerFake.OpenID("alice"))) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	msgs := customerFake.Messages(customerFake.OpenID("alice"))
	if len(msgs) != 2 || msgs[1].Data["time2"] != "2026年11月25日 14:00" || msgs[1].Page != "pages/appointment/appointment?id=A-77" {
		t.Fatalf("customer inbox after the event: got %+v, want the appointment", msgs)
	}
	if n := e.srv.multi.WrongApp(); n != 0 {
		t.Fatalf("Multi.WrongApp: %d sends reached another app's fake", n)
	}
}

// TestDevAppsSandboxRoutes: /sandbox/apps/{app} takes the app's id or its
// AppID; an unknown app is 404 app_not_found; each app's GET .../wechat
// names its own fake.
func TestDevAppsSandboxRoutes(t *testing.T) {
	e := newAppsEnv(t, "")
	customer := e.srv.fakes["customer"]
	r := e.want(e.do("POST", "/sandbox/apps/"+customer.AppID()+"/login", "", map[string]string{"user": "bob"}), 200)
	if r.str("openid") != customer.OpenID("bob") {
		t.Fatalf("login by AppID: got %s, want customer's bob", r.raw)
	}
	if r := e.want(e.do("POST", "/sandbox/apps/nope/login", "", map[string]string{"user": "bob"}), 404); r.str("error", "code") != "app_not_found" {
		t.Fatalf("unknown app: got %s, want app_not_found", r.raw)
	}
	w := e.want(e.do("GET", "/sandbox/apps/customer/wechat", "", nil), 200)
	if w.str("appid") != customer.AppID() || w.str("secret") != customer.Secret() || w.str("path") != "/sandbox/apps/customer/wechat" {
		t.Fatalf("GET /sandbox/apps/customer/wechat: got %s", w.raw)
	}
	if w := e.want(e.do("GET", "/sandbox/wechat", "", nil), 200); w.str("appid") != e.srv.fakes["sales"].AppID() {
		t.Fatalf("GET /sandbox/wechat: got %s, want the default app's", w.raw)
	}
}

// TestDevAppsPushOff: with --push off no app has a push Token, every
// /wechat/push/<id> answers 404 and nothing is pushed; the mini program's
// report on the app's route grants the credit.
func TestDevAppsPushOff(t *testing.T) {
	e := newAppsEnv(t, "off")
	for _, a := range e.srv.parts.Config.Apps {
		if a.PushEnabled || a.PushToken != "" || a.PushAESKey != "" {
			t.Fatalf("app %s with --push off: push %v token %q aes %q", a.ID, a.PushEnabled, a.PushToken, a.PushAESKey)
		}
		if r := e.do("POST", "/wechat/push/"+a.ID, "", "{}"); r.status != 404 {
			t.Fatalf("/wechat/push/%s with push off: got %d %s, want 404", a.ID, r.status, r.raw)
		}
	}
	c := e.app("customer")
	token := e.appSession(c, "bob")
	res := e.want(e.do("POST", c.box+"/subscribe", "", map[string]any{"openid": c.fake.OpenID("bob"), "choices": map[string]string{registrationID: "accept"}}), 200)
	e.want(e.do("POST", c.v1+"/consents", token, map[string]any{"result": res.body}), 200)
	if got := e.appCredits(c, token, registrationID); got != 1 {
		t.Fatalf("customer credits after the report: got %d, want 1", got)
	}
	for id, fake := range e.srv.fakes {
		if ended, _ := fake.PushCounts(); ended != 0 {
			t.Fatalf("app %s pushed %d events with push off", id, ended)
		}
	}
}

// TestPrintedDemoApps runs both "try it"s the banner of `wxnotify dev
// --example apps` prints, as pasted, with push on and off: the default
// app's on the short routes and the customer app's on its own, each
// message arriving in its app's fake. The banner lists each app with its
// AppID and push URL.
func TestPrintedDemoApps(t *testing.T) {
	needDemoTools(t)
	for _, push := range []string{"on", "off"} {
		t.Run("Push"+strings.ToUpper(push[:1])+push[1:], func(t *testing.T) {
			e := newAppsEnv(t, push)
			var banner bytes.Buffer
			e.srv.printBanner(&banner)
			for _, a := range e.srv.parts.Config.Apps {
				line := "- " + a.ID + ": AppID " + a.AppID + ", push "
				if push == "on" {
					line += "to " + e.url + "/wechat/push/" + a.ID
				} else {
					line += "off"
				}
				if !strings.Contains(banner.String(), line+"\n") {
					t.Fatalf("banner: no line %q:\n%s", line, banner.String())
				}
			}
			var script []string
			for line := range strings.SplitSeq(banner.String(), "\n") {
				if strings.HasPrefix(line, "  ") {
					script = append(script, strings.TrimSpace(line))
				}
			}
			if len(script) != 10 {
				t.Fatalf("demo: got %d command lines, want 5 per app:\n%s", len(script), banner.String())
			}
			out, err := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n")).CombinedOutput()
			if err != nil {
				t.Fatalf("demo failed: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := []string{`"userId":"sales-42"`, `"accept"`, `"status":"sent"`, `"msgid":"`,
				`"userId":"customer-7"`, `"accept"`, `"status":"sent"`, `"msgid":"`}
			if len(lines) != len(want) {
				t.Fatalf("demo output: got %d lines, want %d answers:\n%s", len(lines), len(want), out)
			}
			for i, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Fatalf("demo answer %d: got %s, want it to contain %s", i+1, lines[i], w)
				}
			}
			sales, customer := e.srv.fakes["sales"], e.srv.fakes["customer"]
			if n := len(sales.Messages(sales.OpenID("alice"))); n != 1 {
				t.Fatalf("sales' alice after the demo: %d messages, want 1", n)
			}
			if n := len(customer.Messages(customer.OpenID("bob"))); n != 1 {
				t.Fatalf("customer's bob after the demo: %d messages, want 1", n)
			}
			if n := e.srv.multi.WrongApp(); n != 0 {
				t.Fatalf("Multi.WrongApp: %d", n)
			}
		})
	}
}

// TestDevExampleFlag: --example apps writes the example it runs to the
// data directory, refuses WXN_CONFIG alongside, and the flag takes single
// or apps only.
func TestDevExampleFlag(t *testing.T) {
	dir := t.TempDir()
	_, err := exampleEnv(devOptions{example: "apps", dataDir: dir, getenv: func(k string) string {
		if k == "WXN_CONFIG" {
			return "/some/wxnotify.yaml"
		}
		return ""
	}})
	if err == nil || !strings.Contains(err.Error(), "WXN_CONFIG") {
		t.Fatalf("--example apps with WXN_CONFIG: got %v, want an error naming WXN_CONFIG", err)
	}
	getenv, err := exampleEnv(devOptions{example: "apps", dataDir: dir, getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, exampleAppsFile)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, config.ExampleApps) || getenv("WXN_CONFIG") != path {
		t.Fatalf("--example apps: WXN_CONFIG %q, file %v; want %s holding the bundled example", getenv("WXN_CONFIG"), err, path)
	}
	var stderr bytes.Buffer
	if code := runDev([]string{"--example", "many"}, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "want single or apps") {
		t.Fatalf("--example many: exit %d, %s; want 2 and the valid values", code, stderr.String())
	}
	if !strings.Contains(devUsage, "--example single|apps") {
		t.Fatal("devUsage does not document --example")
	}
}

// TestAppSandboxAppID: each app's generated AppID is fixed, of the single
// sandbox AppID's shape, and differs per app.
func TestAppSandboxAppID(t *testing.T) {
	a, b := appSandboxAppID("sales"), appSandboxAppID("customer")
	if a == b || a != appSandboxAppID("sales") || len(a) != len(sandboxAppID) || !strings.HasPrefix(a, "wxsandbox") {
		t.Fatalf("got %q and %q", a, b)
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			t.Fatalf("%q: character %q", a, c)
		}
	}
}

// TestDevSingleAppSandboxAppRoute: the single-app shape keeps its AppID and
// short routes, and its one app "default" is also under /sandbox/apps/default,
// as its API is under /v1/apps/default.
func TestDevSingleAppSandboxAppRoute(t *testing.T) {
	e := newEnv(t)
	if e.srv.multi != nil || e.fake.AppID() != sandboxAppID {
		t.Fatalf("single-app dev: multi %v, AppID %s; want no Multi and %s", e.srv.multi, e.fake.AppID(), sandboxAppID)
	}
	code := e.want(e.do("POST", "/sandbox/apps/default/login", "", map[string]string{"user": "alice"}), 200).str("code")
	if r := e.want(e.do("POST", "/v1/apps/default/session", "", map[string]string{"code": code}), 200); r.str("openid") != e.fake.OpenID("alice") {
		t.Fatalf("session from /sandbox/apps/default/login: got %s", r.raw)
	}
}
