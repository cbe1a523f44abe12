package console_test

import (
	"testing"

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
	b := openTab(t)
	ctx, run, text, noScriptRan := b.ctx, b.run, b.text, b.noScriptRan
	app := f.url + "/console/apps/default"

	b.signIn(app+"/webhooks?lang=en", "#today")
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

	b.noProblems()
}
