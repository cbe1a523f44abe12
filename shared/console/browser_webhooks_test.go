package console_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestWebhooksInBrowser drives the Webhooks page in chromium: the
// subscriptions with the hostile URL as text, the replay form of a
// delivered delivery (queued again), its audit entry, and no script run
// from the page's data.
func TestWebhooksInBrowser(t *testing.T) {
	f := newHookFixture(t)
	s := seedHooks(t, f, 1)
	ok := only(t, f, "ok", notify.DeliveryDelivered)
	var mu sync.Mutex
	var dialogs, exceptions []string
	ctx, cancel := browser(t, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
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
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: alertHook}); err != nil {
		t.Fatal(err)
	}
	app := f.url + "/console/apps/default"
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(value(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel))))
	}
	noScriptRan := func(where string) {
		t.Helper()
		alerts := value(t, ctx, where+": alerts", chromedp.Evaluate[[]string](`window.__alerts`))
		injected := value(t, ctx, where+": elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img, main [onerror], main [onclick]").length`))
		if len(alerts) > 0 || injected > 0 {
			t.Errorf("%s: got alerts %v and %d elements made of hostile text, want none", where, alerts, injected)
		}
	}

	run("sign in", chromedp.Navigate(app+"/webhooks?lang=en"), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), testAdminKey), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#today")))
	run("webhooks", chromedp.Navigate(app+"/webhooks?lang=en"), chromedp.WaitVisible(chromedp.CSS("#hook-evil")))
	if got := text("#hook-evil code.hook-url"); got != hostileHookURL {
		t.Errorf("hostile URL: got %q, want it as text", got)
	}
	if got := text(`nav.pages a[aria-current="page"]`); got != "Webhooks" {
		t.Errorf("nav: got %q current, want Webhooks", got)
	}
	if got := text(`#hook-gone .hook-state`); got != "disabled" {
		t.Errorf("gone: got state %q, want disabled", got)
	}
	noScriptRan("webhooks")

	row := `#hook-ok tr.delivery[data-id="` + ok.ID + `"]`
	run("replay", chromedp.Click(chromedp.CSS(row+" button.replay")),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="pending"]`)))
	if loc := value(t, ctx, "location", chromedp.Location()); loc != app+"/webhooks" {
		t.Errorf("after the replay: at %s, want the Webhooks page", loc)
	}
	if d := only(t, f, "ok", ""); d.Status != notify.DeliveryPending || d.Replays != 1 {
		t.Errorf("after the replay: %s with %d replays, want pending, 1", d.Status, d.Replays)
	}
	noScriptRan("after the replay")

	run("audit", chromedp.Navigate(app+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	entries := value(t, ctx, "audit rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.dataset.action + " " + r.cells[4].textContent + " " + r.cells[5].textContent)`))
	if len(entries) == 0 || entries[0] != "webhook_replay ok/"+ok.ID+" pending" {
		t.Errorf("audit log: got %v, want the replay first", entries)
	}
	if got := text(`#audit tr[data-action="webhook_replay"] td:nth-child(2)`); got != "webhook replay" {
		t.Errorf("audit action: got %q, want its words", got)
	}

	// The notification page: its deliveries and the links to them.
	run("notification", chromedp.Navigate(app+"/notifications/"+s.sent.ID), chromedp.WaitVisible(chromedp.CSS("#notification-hooks")))
	if n := value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#notification-hooks tr.delivery").length`)); n != 2 {
		t.Errorf("notification page: %d deliveries, want 2", n)
	}
	noScriptRan("notification")

	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 || len(exceptions) > 0 {
		t.Errorf("dialogs %v, exceptions %v; want none", dialogs, exceptions)
	}
}
