package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// TestTestSendInBrowser drives the test send in chromium: from the
// templates page to the form, a check with bad keywords that shows the
// rules broken and offers no send, then good values, the confirmation,
// the send (one WeChat call, one credit), the notification's page and
// the audit log, and the layout at phone width. The
// template's hostile title and label, and a hostile value, stay text.
func TestTestSendInBrowser(t *testing.T) {
	f, openID := tsendFixture(t, 1)
	b := openTab(t)
	ctx, run, text, noScriptRan := b.ctx, b.run, b.text, b.noScriptRan
	app := f.url + "/console/apps/default"

	b.signIn(f.url+"/console/signin?lang=en", "#today")
	run("templates", chromedp.Navigate(app+"/templates"), chromedp.WaitVisible(chromedp.CSS(`section[data-alias="visit_booked"] a.tsend`)),
		chromedp.Click(chromedp.CSS(`section[data-alias="visit_booked"] a.tsend`)), chromedp.WaitVisible(chromedp.CSS("#tsend-form")))
	if loc := value(t, ctx, "location", chromedp.Location()); loc != app+"/templates/visit_booked/test" {
		t.Errorf("test send link: got %s", loc)
	}
	if got := text(`tr[data-keyword="thing1"] td:nth-child(3)`); got != hostileScript {
		t.Errorf("hostile label: got %q, want it as text", got)
	}
	if got := text("h1 small"); got != hostileImg {
		t.Errorf("hostile title: got %q, want it as text", got)
	}
	noScriptRan("test send form")

	// Bad keywords: each row says the rule it breaks; no send is offered.
	sends := f.fake.Calls(wechattest.APISend)
	run("bad check", chromedp.SetValue(chromedp.CSS("#in-userId"), tsendUser),
		chromedp.SetValue(chromedp.CSS("#in-thing1"), hostileScript),
		chromedp.SetValue(chromedp.CSS("#in-time2"), "25:00"),
		chromedp.SetValue(chromedp.CSS("#in-phone_number3"), "0766-ABC"),
		chromedp.Click(chromedp.CSS("#check")), chromedp.WaitVisible(chromedp.CSS(`tr[data-keyword="thing1"][data-result]`)))
	for kw, rule := range map[string]string{
		"thing1":        "thing value has 25 characters, limit 20",
		"time2":         "time value is not a time",
		"phone_number3": "phone_number value must not contain letters",
	} {
		sel := `tr[data-keyword="` + kw + `"]`
		if res := value(t, ctx, "result", chromedp.AttributeValue(chromedp.CSS(sel), "data-result")).Value; res != "failed" {
			t.Errorf("%s: got result %q, want failed", kw, res)
		}
		if got := text(sel + " .ruletext"); !strings.HasPrefix(got, rule) {
			t.Errorf("%s: got rule %q, want %q", kw, got, rule)
		}
		if got := text(sel + " code.code"); got != "bad_request" {
			t.Errorf("%s: got code %q, want bad_request", kw, got)
		}
	}
	if got := text("#error-code"); got != "bad_request" {
		t.Errorf("bad check: got code %q, want bad_request", got)
	}
	if n := value(t, ctx, "send form", chromedp.Evaluate[int](`document.querySelectorAll("#send-form").length`)); n != 0 {
		t.Errorf("bad check: a send form, want none")
	}
	if got := value(t, ctx, "thing1 input", chromedp.Evaluate[string](`document.getElementById("in-thing1").value`)); got != hostileScript {
		t.Errorf("bad check: thing1 input holds %q, want the hostile value as typed", got)
	}
	noScriptRan("bad check")

	// Good values: OK, confirmed, sent.
	run("good check", chromedp.SetValue(chromedp.CSS("#in-thing1"), goodThing),
		chromedp.SetValue(chromedp.CSS("#in-time2"), goodTime),
		chromedp.SetValue(chromedp.CSS("#in-phone_number3"), goodPhone),
		chromedp.Click(chromedp.CSS("#check")), chromedp.WaitVisible(chromedp.CSS("#send")))
	oks := value(t, ctx, "ok rows", chromedp.Evaluate[int](`document.querySelectorAll('#fields tr[data-result="ok"]').length`))
	if oks != 3 {
		t.Errorf("good check: %d rows OK, want 3", oks)
	}
	if got := f.fake.Calls(wechattest.APISend); got != sends {
		t.Errorf("the checks sent: %d calls, want %d", got, sends)
	}
	run("send", chromedp.Click(chromedp.CSS("#send")), chromedp.WaitVisible(chromedp.CSS("#outcome-status")))
	if got := text("#outcome-status"); got != "sent" {
		t.Errorf("send: got status %q, want sent", got)
	}
	if got := f.fake.Calls(wechattest.APISend); got != sends+1 {
		t.Errorf("send: %d calls, want %d", got, sends+1)
	}
	if left := credits(t, f, openID); left != 0 {
		t.Errorf("send: %d credits left, want 0", left)
	}
	run("notification", chromedp.Click(chromedp.CSS("#notification-link")), chromedp.WaitVisible(chromedp.CSS("#settlement")))
	if got := text("#status"); got != "sent" {
		t.Errorf("notification page: got status %q, want sent", got)
	}
	if detail := text("#request"); !strings.Contains(detail, "console-test-") || !strings.Contains(detail, goodTime) {
		t.Errorf("notification page: got %q, want the console's key and the values", detail)
	}
	run("audit", chromedp.Navigate(app+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	actions := value(t, ctx, "audit rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.dataset.action)`))
	if got := strings.Join(actions, ","); got != "test_send,signin" {
		t.Errorf("audit log: got %s, want test_send,signin", got)
	}

	// At phone width the form does not widen the page.
	run("phone width", chromedp.EmulateViewport(375, 800), chromedp.Navigate(app+"/templates/visit_booked/test"),
		chromedp.WaitVisible(chromedp.CSS("#tsend-form")))
	if value(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
		t.Errorf("at 375 px: the test send page scrolls sideways")
	}

	b.noProblems()
}
