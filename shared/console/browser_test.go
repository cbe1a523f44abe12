package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium with a fresh profile: skipped when
// there is none, failed under CI=true.
func browser(t *testing.T, listen func(ev any)) (context.Context, context.CancelFunc) {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("no browser at %s: under CI=true the console's browser tests must run (.ci/run installs chromium)", chromiumPath)
		} else {
			t.Skipf("no browser at %s (apt-get install chromium)", chromiumPath)
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(listen))
	ctx, cancelTimeout := context.WithTimeout(ctx, 50*time.Second)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

// alertHook replaces window.alert (and confirm, prompt) before any script
// of a page runs: a call is recorded in window.__alerts.
const alertHook = `window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = function (m) { window.__alerts.push(name + ":" + String(m)); };
}`

// TestConsoleInBrowser drives the console in chromium against the dev
// route group, seeded with sends and batches: sign-in, every page with the
// seeded numbers, hostile text shown as text (no alert, no element made of
// it), the live refresh of a running batch, the cancel form with its CSRF
// token, the cookies' flags, forged POSTs refused, the language switch, a
// phone-width layout, and no request to another origin.
func TestConsoleInBrowser(t *testing.T) {
	f := newFixture(t, nil)
	s := seed(t, f)
	// Another site's page that posts the cancel form of the later batch at
	// once (another port of the same host: the same site for SameSite, so
	// the browser sends the session cookie, and only the Origin check
	// stands between it and the batch).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/console/apps/default/batches/%s/cancel">`+
			`<input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, f.url, s.later.ID)
	}))
	defer evil.Close()
	evilURL, err := url.Parse(evil.URL)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := url.Parse(f.url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var foreign, dialogs, exceptions []string
	ctx, cancel := browser(t, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u, err := url.Parse(e.Request.URL)
			if err != nil || (u.Scheme != "data" && u.Host != origin.Host && u.Host != evilURL.Host) {
				foreign = append(foreign, e.Request.URL)
			}
		case *page.EventJavascriptDialogOpening:
			dialogs = append(dialogs, e.Message)
		case *runtime.EventExceptionThrown:
			exceptions = append(exceptions, e.ExceptionDetails.Text)
		}
	})
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: alertHook}); err != nil {
		t.Fatal(err)
	}
	base := f.url + "/console"
	app := base + "/apps/default"
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	noScriptRan := func(where string) {
		t.Helper()
		alerts := value(t, ctx, where+": alerts", chromedp.Evaluate[[]string](`window.__alerts`))
		injected := value(t, ctx, where+": elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img, main [onerror], main [onclick]").length`))
		if len(alerts) > 0 || injected > 0 {
			t.Errorf("%s: got alerts %v and %d elements made of hostile text, want none", where, alerts, injected)
		}
	}

	// Signed out, a page leads to the sign-in form; a wrong key is refused.
	run("sign-in page", chromedp.Navigate(app+"/overview"), chromedp.WaitVisible(chromedp.CSS("#key")))
	loc := value(t, ctx, "location", chromedp.Location())
	if loc != base+"/signin" {
		t.Fatalf("signed out: got %s, want the sign-in page", loc)
	}
	run("wrong key", chromedp.SendKeys(chromedp.CSS("#key"), "not-the-admin-key-0123456789"), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := text("#problem"); got != "密钥不正确。" && got != "That key is not an admin key." {
		t.Errorf("wrong key: got %q, want the wrong-key message", got)
	}
	run("sign in", chromedp.SetValue(chromedp.CSS("#key"), testAdminKey), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#today")))
	loc = value(t, ctx, "location", chromedp.Location())
	if loc != app+"/overview" {
		t.Errorf("after sign-in: got %s, want the default app's overview", loc)
	}

	// Cookies: the session's flags.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{f.url + "/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	var sessionValue string
	for _, c := range cookies {
		if c.Name != "wxn_console" {
			continue
		}
		sessionValue = c.Value
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/console" || c.Session {
			t.Errorf("session cookie: got HttpOnly %v Secure %v SameSite %q Path %q Session %v, want HttpOnly, Secure, Strict, /console, expiring",
				c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Session)
		}
		if exp := time.Unix(int64(c.Expires), 0); exp.Before(time.Now().Add(7*time.Hour)) || exp.After(time.Now().Add(9*time.Hour)) {
			t.Errorf("session cookie: expires %s, want in 8h", exp)
		}
	}
	if sessionValue == "" {
		t.Fatalf("no session cookie after sign-in: %v", cookies)
	}
	jsCookie := value(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(jsCookie, "wxn_console=") {
		t.Errorf("document.cookie: got %q, want the session cookie hidden from scripts", jsCookie)
	}

	// Overview: today's numbers by status (3 sent, 3 skipped), the chart's
	// bar of today.
	run("english", chromedp.Navigate(app+"/overview?lang=en"), chromedp.WaitVisible(chromedp.CSS("#chart")))
	for sel, want := range map[string]string{
		`#today td[data-status="sent"]`: "3", `#today td[data-status="skipped"]`: "3", `#today td[data-status="failed"]`: "0",
		`#today td[data-status="total"]`: "6", `#week td[data-status="total"]`: "6",
	} {
		if got := text(sel); got != want {
			t.Errorf("overview %s: got %q, want %q", sel, got, want)
		}
	}
	bars := value(t, ctx, "chart", chromedp.Evaluate[[]map[string]string](`[...document.querySelectorAll("#chart g.bar")].map(g => ({day: g.dataset.day, total: g.dataset.total, rects: String(g.querySelectorAll("rect").length)}))`))
	today := f.now().UTC().Format("01-02")
	if len(bars) != 7 || bars[6]["day"] != today || bars[6]["total"] != "6" || bars[6]["rects"] != "2" || bars[0]["total"] != "0" {
		t.Errorf("chart: got %v, want 7 days ending with today %s: 6 sends in 2 parts (sent, skipped)", bars, today)
	}
	h1 := text("h1")
	if !strings.HasPrefix(h1, "Overview") {
		t.Errorf("?lang=en: got heading %q, want English", h1)
	}

	// Notifications: the list (6, hostile userId as text), a filter, the
	// detail with request, WeChat's answer and settlement.
	run("notifications", chromedp.Navigate(app+"/notifications"), chromedp.WaitVisible(chromedp.CSS("#notifications")))
	rows := value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#notifications tbody tr").length`))
	if rows != 6 {
		t.Errorf("notifications: got %d rows, want 6", rows)
	}
	if got := text(`#notifications tr[data-id="` + s.sentID + `"] td.recipient`); got != hostileScript {
		t.Errorf("hostile userId: got %q, want it as text", got)
	}
	noScriptRan("notifications")
	run("filter", chromedp.Navigate(app+"/notifications?status=skipped"), chromedp.WaitVisible(chromedp.CSS("#notifications")))
	rows = value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#notifications tbody tr").length`))
	if rows != 3 {
		t.Errorf("status=skipped: got %d rows, want 3", rows)
	}
	run("detail", chromedp.Navigate(app+"/notifications/"+s.sentID), chromedp.WaitVisible(chromedp.CSS("#settlement")))
	detail := text("main")
	for _, want := range []string{hostileScript, hostileImg, "<img src=x>", "sent", leadID} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail: got no %q in the text", want)
		}
	}
	if got := text("#errcode"); got != "0" {
		t.Errorf("detail errcode: got %q, want 0", got)
	}
	noScriptRan("notification detail")

	// Templates: the catalog, hostile title and label as text, the rules.
	run("templates", chromedp.Navigate(app+"/templates"), chromedp.WaitVisible(chromedp.CSS(`section[data-alias="lead_assigned"]`)))
	tmplText := text(`section[data-alias="lead_assigned"]`)
	for _, want := range []string{hostileImg, hostileScript, "20个以内字符", "32位以内数字、字母或符号"} {
		if !strings.Contains(tmplText, want) {
			t.Errorf("templates: got no %q in %q", want, tmplText)
		}
	}
	noScriptRan("templates")

	// Batches: the list; the waiting batch's page refreshes live while the
	// tick runs it.
	run("batches", chromedp.Navigate(app+"/batches"), chromedp.WaitVisible(chromedp.CSS("#batches")))
	rows = value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#batches tbody tr").length`))
	if rows != 3 {
		t.Errorf("batches: got %d rows, want 3", rows)
	}
	run("done batch", chromedp.Navigate(app+"/batches/"+s.done.ID), chromedp.WaitVisible(chromedp.CSS("#progress")))
	if got, want := text(`#progress td[data-k="sent"]`)+"/"+text(`#progress td[data-k="skipped"]`), "1/1"; got != want {
		t.Errorf("done batch: got sent/skipped %s, want %s", got, want)
	}
	if width := value(t, ctx, "bar", chromedp.AttributeValue(chromedp.CSS(`#progress rect[data-k="sent"]`), "width")).Value; width != "300" {
		t.Errorf("done batch: sent bar width %q, want 300 (half of 600)", width)
	}
	noScriptRan("batch")
	run("waiting batch", chromedp.Navigate(app+"/batches/"+s.waiting.ID), chromedp.WaitVisible(chromedp.CSS(`#progress[data-live="1"]`)))
	if got := text(`#progress td[data-k="pending"]`); got != "2" {
		t.Errorf("waiting batch: got pending %q, want 2", got)
	}
	if err := f.svc.RunBatches(context.Background(), f.now().Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	run("live refresh", chromedp.WaitVisible(chromedp.CSS(`#progress[data-refreshed]:not([data-live])`)))
	if got := text(`#progress td[data-k="sent"]`) + "/" + text(`#progress td[data-k="skipped"]`) + "/" + text(`#progress td[data-k="pending"]`) +
		"/" + text(`#progress [data-k="status"]`); got != "1/1/0/done" {
		t.Errorf("after the live refresh: got sent/skipped/pending/status %s, want 1/1/0/done", got)
	}

	// The other site's form: refused for its Origin, the batch untouched.
	run("cross-site form", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS("#error-code")))
	if got := text("#error-code"); got != "origin_refused" {
		t.Errorf("cross-site form: got code %q, want origin_refused", got)
	}
	if b, err := f.svc.Batch(context.Background(), s.later.ID); err != nil || b.Status != "scheduled" {
		t.Errorf("after the cross-site form: got %s %v, want the batch still scheduled", b.Status, err)
	}

	// A forged POST from the page itself without the CSRF token: 403.
	forged := value(t, ctx, "forged fetch", chromedp.Evaluate[map[string]any](fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams({csrf: "wrong"})})
		.then(async r => ({status: r.status, body: await r.json()}))`, app+"/batches/"+s.later.ID+"/cancel"), chromedp.EvalAwaitPromise))
	if fmt.Sprint(forged["status"]) != "403" || !strings.Contains(fmt.Sprint(forged["body"]), "csrf_invalid") {
		t.Errorf("POST without the CSRF token: got %v, want 403 csrf_invalid", forged)
	}
	// The cancel form of the later batch, with its token: cancelled, and
	// the audit log says so.
	run("cancel", chromedp.Navigate(app+"/batches/"+s.later.ID), chromedp.WaitVisible(chromedp.CSS("#cancel")),
		chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitNotPresent(chromedp.CSS("#cancel")))
	if got := text(`#progress [data-k="status"]`); got != "cancelled" {
		t.Errorf("after cancel: got status %q, want cancelled", got)
	}

	// The same session from outside the browser: a foreign Origin or a
	// missing token is refused whatever the cookie.
	postForged(t, f.url+"/console/apps/default/batches/"+s.waiting.ID+"/cancel", sessionValue)

	run("audit", chromedp.Navigate(app+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	actions := value(t, ctx, "audit rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.dataset.action)`))
	if got := strings.Join(actions, ","); got != "batch_cancel,signin,signin_failed" {
		t.Errorf("audit log: got %s, want batch_cancel,signin,signin_failed (newest first)", got)
	}

	// Chinese by the switch; the phone-width layout has no horizontal
	// scroll of the page.
	run("chinese", chromedp.Navigate(app+"/overview?lang=zh"), chromedp.WaitVisible(chromedp.CSS("#chart")))
	if h1 = text("h1"); !strings.HasPrefix(h1, "概览") {
		t.Errorf("?lang=zh: got heading %q, want Chinese", h1)
	}
	for _, width := range []int64{1280, 375} {
		run(fmt.Sprintf("width %d", width), chromedp.EmulateViewport(width, 800), chromedp.Navigate(app+"/notifications"),
			chromedp.WaitVisible(chromedp.CSS("#notifications")))
		if value(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
			t.Errorf("at %d px: the page scrolls sideways", width)
		}
	}

	// Sign out: the session is gone, pages lead to sign-in again.
	run("sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.Navigate(app+"/overview"), chromedp.WaitVisible(chromedp.CSS("#key")))
	resp := get(t, app+"/overview", sessionValue, "application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the signed-out session: got %d, want 401", resp.StatusCode)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(foreign) > 0 {
		t.Errorf("requests to another origin: %v", foreign)
	}
	if len(dialogs) > 0 {
		t.Errorf("dialogs opened: %v", dialogs)
	}
	if len(exceptions) > 0 {
		t.Errorf("script exceptions: %v", exceptions)
	}
}

// postForged posts to a form route with the session cookie: with a foreign
// Origin (and the right token missing), with Sec-Fetch-Site cross-site,
// and from the right origin without a token; each must be refused 403 with
// its code, the batch left as it was.
func postForged(t *testing.T, target, session string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, origin, site, code string
	}{
		{"ForeignOrigin", "http://evil.example", "", "origin_refused"},
		{"NullOrigin", "null", "", "origin_refused"},
		{"CrossSite", "", "cross-site", "origin_refused"},
		{"NoToken", "http://" + u.Host, "same-origin", "csrf_invalid"},
	} {
		req, err := http.NewRequest(http.MethodPost, target, strings.NewReader("csrf="))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.AddCookie(&http.Cookie{Name: "wxn_console", Value: session})
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			req.Header.Set("Sec-Fetch-Site", tc.site)
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusForbidden || e.Error.Code != tc.code {
			t.Errorf("%s: got %d %s, want 403 %s", tc.name, resp.StatusCode, body, tc.code)
		}
	}
}

// value runs a in the browser and returns its result.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// get fetches target with the session cookie.
func get(t *testing.T, target, session, accept string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "wxn_console", Value: session})
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// consoleTab is a chromium tab of a browser test, with what most tests
// need: window.alert hooked (alertHook) before any script of a page runs,
// and the dialogs the pages open and the script exceptions they throw
// recorded for noProblems.
type consoleTab struct {
	t   *testing.T
	ctx context.Context

	mu                  sync.Mutex
	dialogs, exceptions []string
}

// openTab starts a browser with one tab, closed when the test ends.
func openTab(t *testing.T) *consoleTab {
	t.Helper()
	b := &consoleTab{t: t}
	ctx, cancel := browser(t, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, e.Message)
		case *runtime.EventExceptionThrown:
			b.exceptions = append(b.exceptions, e.ExceptionDetails.Text)
		}
	})
	t.Cleanup(cancel)
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: alertHook}); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs actions, failing the test with what when one fails.
func (b *consoleTab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the trimmed text of the element sel.
func (b *consoleTab) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(value(b.t, b.ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// signIn signs in with the test's admin key at target (the sign-in page,
// or a page that leads there) and waits for ready, the page it leads to.
func (b *consoleTab) signIn(target, ready string) {
	b.t.Helper()
	b.run("sign in", chromedp.Navigate(target), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), testAdminKey), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS(ready)))
}

// noScriptRan fails the test when an alert was called or an element was
// made of hostile text on the page shown.
func (b *consoleTab) noScriptRan(where string) {
	b.t.Helper()
	alerts := value(b.t, b.ctx, where+": alerts", chromedp.Evaluate[[]string](`window.__alerts`))
	injected := value(b.t, b.ctx, where+": elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img, main [onerror], main [onclick]").length`))
	if len(alerts) > 0 || injected > 0 {
		b.t.Errorf("%s: got alerts %v and %d elements made of hostile text, want none", where, alerts, injected)
	}
}

// noProblems fails the test when a page opened a dialog or threw.
func (b *consoleTab) noProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 || len(b.exceptions) > 0 {
		b.t.Errorf("dialogs %v, script exceptions %v; want none", b.dialogs, b.exceptions)
	}
}
