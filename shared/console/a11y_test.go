package console_test

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// consolePage is one page of the console as the accessibility check and
// the screenshots visit it, on the seeded fixture.
type consolePage struct {
	name      string                // the screenshot's file: docs/console/<name>.png
	path      func(s seeded) string // under /console
	ready     string                // a CSS selector visible once the page is drawn
	signedOut bool                  // shown to a browser without a session
}

// appPage is the path of a page of the default app.
func appPage(rest string) func(seeded) string {
	return func(seeded) string { return "/apps/default/" + rest }
}

// consolePages is every page of the console: a new page is one more line
// (and its seed in fixture_test.go).
var consolePages = []consolePage{
	{"signin", func(seeded) string { return "/signin" }, "#key", true},
	{"overview", appPage("overview"), "#chart", false},
	{"notifications", appPage("notifications"), "#notifications", false},
	{"notification", func(s seeded) string { return "/apps/default/notifications/" + s.sentID }, "#settlement", false},
	{"batches", appPage("batches"), "#batches", false},
	{"batch", func(s seeded) string { return "/apps/default/batches/" + s.later.ID }, "#cancel", false},
	{"templates", appPage("templates"), `section[data-alias="lead_assigned"]`, false},
	{"audit", appPage("audit"), "#audit", false},
	{"stats", appPage("stats"), "#totals", false},
	{"users", appPage("users"), "#user-search", false},
	{"user", func(seeded) string { return "/apps/default/users/" + url.PathEscape(hostileScript) }, "#binding", false},
	{"unbind", func(seeded) string { return "/apps/default/users/" + url.PathEscape(hostileScript) + "/unbind" }, "#unbind-form", false},
	{"webhooks", appPage("webhooks"), "#no-webhooks", false},
	{"tsend", appPage("templates/lead_assigned/test"), "#policy", false},
	{"error", appPage("notifications/no-such-notification"), "#error-code", false},
}

// a11yWidths are the viewport widths every page is checked at: a laptop's
// and a phone's.
var a11yWidths = []int64{1280, 390}

// a11yHeight is the viewport's height.
const a11yHeight = 900

// axeViolation is one failed rule of axe-core, with the nodes that fail it.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeResult is what axeRun returns.
type axeResult struct {
	Violations []axeViolation `json:"violations"`
	Others     []string       `json:"others"`
	Passes     int            `json:"passes"`
	Inline     bool           `json:"inline"`
}

// axeRun runs axe-core on the page, once axe.min.js is evaluated in it:
// the serious and critical violations, the number of rules passed, and
// whether an inline script ran (it must not, under the console's CSP).
const axeRun = `(() => {
  const s = document.createElement("script");
  s.textContent = "window.__inlineRan = true";
  document.head.append(s);
  return axe.run(document, {resultTypes: ["violations"]}).then(r => ({
    violations: r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => n.target.join(" ") + (n.failureSummary ? " - " + n.failureSummary.replace(/\s+/g, " ") : "")),
    })),
    others: r.violations.filter(v => v.impact !== "serious" && v.impact !== "critical").map(v => v.id + " (" + v.impact + ")"),
    passes: r.passes.length,
    inline: window.__inlineRan === true,
  }));
})()`

// repoRoot is the module's root, where node_modules and docs are.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// axeSource is axe-core's script from node_modules (npm ci installs it,
// pinned by package-lock.json): skipped when it is missing, failed under
// CI=true.
func axeSource(t *testing.T) string {
	t.Helper()
	path := filepath.Join(repoRoot(t), "node_modules", "axe-core", "axe.min.js")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no %s: under CI=true the accessibility check must run (npm ci installs axe-core)", path)
		}
		t.Skipf("no %s (npm ci)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConsoleAccessibility runs axe-core on every page of consolePages, in
// Chinese and English, at each of a11yWidths, and fails on any violation
// of impact serious or critical. With WXN_CONSOLE_SCREENSHOTS=<dir> (make
// console-screenshots) it also writes a full-page PNG of each page, in
// English at 1280 px, and one of the overview at phone width, to <dir>
// (relative to the repository's root).
func TestConsoleAccessibility(t *testing.T) {
	axe := axeSource(t)
	shotDir := os.Getenv("WXN_CONSOLE_SCREENSHOTS")
	if shotDir != "" && !filepath.IsAbs(shotDir) {
		shotDir = filepath.Join(repoRoot(t), shotDir)
	}
	f := newFixture(t, nil)
	s := seed(t, f)
	ctx, cancel := browser(t, func(any) {})
	defer cancel()
	base := f.url + "/console"
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("sign in", chromedp.Navigate(base+"/signin"), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), testAdminKey), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#today")))
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var sess *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "wxn_console" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatalf("no session cookie after sign-in: %v", res.Cookies)
	}
	signOut := func() {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: sess.Name, URL: base + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func() {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: sess.Name, Value: sess.Value, URL: base + "/",
			Path: sess.Path, HTTPOnly: &sess.HTTPOnly, Secure: &sess.Secure, SameSite: sess.SameSite}); err != nil {
			t.Fatal(err)
		}
	}
	// shoot writes a PNG of the whole page: the viewport is made as tall
	// as the page for it (a capture beyond the viewport keeps the
	// emulated height), then set back.
	shoot := func(name string, width int64) {
		t.Helper()
		height := value(t, ctx, name+": height", chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
		run(name+": full height", chromedp.EmulateViewport(width, max(height, a11yHeight)))
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		run(name+": viewport", chromedp.EmulateViewport(width, a11yHeight))
		if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil {
			t.Fatalf("screenshot %s: not a PNG: %v", name, err)
		}
		if err := os.MkdirAll(shotDir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(shotDir, name+".png")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KB)", path, len(b)/1024)
	}
	htmlLang := map[string]string{"zh": "zh-CN", "en": "en"}
	start := time.Now()
	checked := 0
	for _, lang := range []string{"zh", "en"} {
		for _, width := range a11yWidths {
			run(fmt.Sprintf("width %d", width), chromedp.EmulateViewport(width, a11yHeight))
			for _, pg := range consolePages {
				where := fmt.Sprintf("%s (%s, %d px)", pg.name, lang, width)
				if pg.signedOut {
					signOut()
				}
				run(where, chromedp.Navigate(base+pg.path(s)+"?lang="+lang), chromedp.WaitVisible(chromedp.CSS(pg.ready)))
				if got := value(t, ctx, where+": lang", chromedp.Evaluate[string](`document.documentElement.lang`)); got != htmlLang[lang] {
					t.Errorf("%s: got <html lang=%q>, want %q", where, got, htmlLang[lang])
				}
				run(where+": axe-core", chromedp.Evaluate[chromedp.Void](axe))
				r := value(t, ctx, where+": axe.run", chromedp.Evaluate[axeResult](axeRun, chromedp.EvalAwaitPromise))
				if r.Inline {
					t.Errorf("%s: an inline script ran: the page is not under the console's CSP", where)
				}
				if r.Passes == 0 {
					t.Errorf("%s: axe-core passed no rule, want it to have checked the page", where)
				}
				for _, v := range r.Violations {
					t.Errorf("%s: %s (%s): %s\n\t%s", where, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
				}
				if len(r.Others) > 0 {
					t.Logf("%s: moderate or minor: %s", where, strings.Join(r.Others, ", "))
				}
				checked++
				if shotDir != "" && lang == "en" && (width == 1280 || pg.name == "overview") {
					name := pg.name
					if width != 1280 {
						name += "-phone"
					}
					shoot(name, width)
				}
				if pg.signedOut {
					signIn()
				}
			}
		}
	}
	t.Logf("axe-core checked %d pages in %s", checked, time.Since(start).Round(time.Millisecond))
}
