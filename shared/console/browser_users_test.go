package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestUsersInBrowser drives the Users pages in chromium: sign in, find
// the user of the hostile userId, its credits and timeline (shown as
// text), a timeline entry's link to the notification, the unbind with its
// confirmation, the notice, and the audit log's user_unbind entry; no
// script of the hostile text runs.
func TestUsersInBrowser(t *testing.T) {
	f := newFixture(t, nil)
	s := seedUsers(t, f)
	b := openTab(t)
	ctx, run, text, noScriptRan := b.ctx, b.run, b.text, b.noScriptRan
	app := f.url + "/console/apps/default"

	b.signIn(f.url+"/console/signin?lang=en", "#today")

	// The nav leads to the search; a hostile attribute-breaking input is
	// refused and shown back as typed.
	run("users", chromedp.Click(chromedp.CSS(`nav.pages a[href$="/users"]`)), chromedp.WaitVisible(chromedp.CSS("#user-search")))
	run("bad search", chromedp.SendKeys(chromedp.CSS("#q-user-id"), hostileAttr), chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := text("#error-code"); got != "bad_request" {
		t.Errorf("search with a bad userId: got code %q, want bad_request", got)
	}
	if got := value(t, ctx, "typed value", chromedp.Value(chromedp.CSS("#q-user-id"))); got != hostileAttr {
		t.Errorf("search with a bad userId: the form holds %q, want %q", got, hostileAttr)
	}
	noScriptRan("bad search")

	// Find alice by her (hostile) userId: credits and timeline.
	run("search", chromedp.SetValue(chromedp.CSS("#q-user-id"), hostileScript), chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#ledger")))
	if got := text("#user-id"); got != hostileScript {
		t.Errorf("user page: got userId %q, want it as text", got)
	}
	if got := text(`#ledger tr[data-alias="lead_assigned"] td[data-k="credits"]`); got != "1" {
		t.Errorf("user page: lead_assigned credits %q, want 1", got)
	}
	if got := text(`#bindings code.openid`); got != s.aliceOpenID {
		t.Errorf("user page: bound openid %q, want %s", got, s.aliceOpenID)
	}
	events := value(t, ctx, "timeline", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#timeline tbody tr")].map(r => r.dataset.type + ":" + r.dataset.status)`))
	if got, want := strings.Join(events, ","), "notification:sent,notification:sent,notification:sent,consent:accept,consent:accept,consent:accept,consent:accept"; got != want {
		t.Errorf("timeline: got %s, want %s", got, want)
	}
	noScriptRan("user page")

	// A send of the timeline links to its notification.
	run("notification link", chromedp.Click(chromedp.CSS(`#timeline tr[data-notification="`+s.sentID+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS("#settlement")))
	if loc := value(t, ctx, "location", chromedp.Location()); loc != app+"/notifications/"+s.sentID {
		t.Errorf("timeline link: got %s, want the notification's page", loc)
	}
	run("back", chromedp.Navigate(app+"/users/"+url.PathEscape(hostileScript)), chromedp.WaitVisible(chromedp.CSS("#unbind")))

	// Unbind: the confirmation first, then the form.
	run("confirmation", chromedp.Click(chromedp.CSS("#unbind")), chromedp.WaitVisible(chromedp.CSS("#unbind-confirm")))
	if got := text("#confirm code.openid"); got != s.aliceOpenID {
		t.Errorf("confirmation: openid %q, want %s", got, s.aliceOpenID)
	}
	if b, err := f.svc.Binding(context.Background(), hostileScript); err != nil || b.OpenID != s.aliceOpenID {
		t.Fatalf("the confirmation page unbound already: %+v %v", b, err)
	}
	run("unbind", chromedp.Click(chromedp.CSS("#unbind-confirm")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := text("#notice"); !strings.HasPrefix(got, "Unbound:") || !strings.HasSuffix(got, hostileScript) {
		t.Errorf("after unbind: notice %q, want the unbound notice naming the userId", got)
	}
	if _, err := f.svc.Binding(context.Background(), hostileScript); notify.CodeOf(err) != notify.CodeUserNotFound {
		t.Errorf("after unbind: got %v, want user_not_found", err)
	}
	noScriptRan("after unbind")

	run("audit", chromedp.Navigate(app+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	first := value(t, ctx, "audit", chromedp.Evaluate[[]string](`[...document.querySelector("#audit tbody tr").children].map(td => td.textContent)`))
	if len(first) != 6 || first[1] != "user unbind" || first[4] != hostileScript || first[5] != "unbound" {
		t.Errorf("audit: newest entry %q, want user unbind of %s, unbound", first, hostileScript)
	}
	noScriptRan("audit")

	// At phone width the pages do not scroll sideways (the tables do).
	for _, p := range []string{"/users/bob-42", "/users/bob-42/unbind", "/users?openid=" + s.carolOpenID} {
		run("phone "+p, chromedp.EmulateViewport(375, 800), chromedp.Navigate(app+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if value(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
			t.Errorf("%s at 375 px: the page scrolls sideways", p)
		}
	}

	b.noProblems()
}
