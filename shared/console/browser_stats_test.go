package console_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestStatsInBrowser drives the overview and the stats page in chromium,
// seeded with sends of known outcomes: the numbers shown, the SVG charts
// drawn and coloured by console.css (no inline style under the CSP), the
// funnel's accessible name and description, a bad date's 400 page, both
// pages at phone width, and no script error or CSP report.
func TestStatsInBrowser(t *testing.T) {
	f := newFixture(t, nil)
	s := seedOutcomes(t, f)
	var mu sync.Mutex
	var problems []string
	ctx, cancel := browser(t, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			problems = append(problems, "dialog: "+e.Message)
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			// The bad date's page is a 400 on purpose; a browser asks
			// for /favicon.ico, which the console does not have.
			if e.Entry.Level == log.EntryLevelError && !strings.HasSuffix(e.Entry.URL, "/favicon.ico") &&
				!strings.Contains(e.Entry.URL, "from=2026-02-30") {
				problems = append(problems, "console error: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	// chromedp enables the Log domain itself: CSP refusals are error
	// entries of it.
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
	texts := func(what, js string) map[string]string {
		t.Helper()
		return value(t, ctx, what, chromedp.Evaluate[map[string]string](js))
	}
	want := func(where string, got, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s %s: got %q, want %q", where, k, got[k], v)
			}
		}
	}

	run("sign in", chromedp.Navigate(app+"/overview?lang=en"), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), testAdminKey), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#funnel")))

	// The overview's numbers as the browser shows them.
	cellsJS := func(sel, attr string) string {
		return fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll(%q)].map(e => [e.getAttribute(%q), e.innerText.trim()]))`, sel, attr)
	}
	want("today", texts("today", cellsJS("#today td", "data-status")), map[string]string{"sent": "3", "skipped": "4", "failed": "3", "total": "10"})
	want("week", texts("week", cellsJS("#week td", "data-status")), map[string]string{"sent": "4", "skipped": "4", "failed": "4", "total": "12"})
	want("credits", texts("credits", cellsJS("#credits td", "data-k")), map[string]string{"granted": "6", "taken": "5", "outstanding": "1"})
	want("wasted", texts("wasted", cellsJS("#wasted [data-k]", "data-k")), map[string]string{"wastedRate": "20.0%"})
	want("errcodes", texts("errcodes", cellsJS("#errcodes tbody tr", "data-errcode")), map[string]string{
		"45009": "45009\tdaily API quota reached\t3", "40003": "40003\ttouser is not an openid of this app\t1"})

	// The SVG charts, laid out and coloured: today's bar of 10 in 3 parts,
	// each funnel stage a bar of its width with the class's fill.
	bar := texts("today's bar", fmt.Sprintf(`(() => { const g = document.querySelector('#chart g.bar[data-day=%q]');
		return {total: g.dataset.total, parts: String(g.querySelectorAll("rect").length), height: String(Math.round(g.getBBox().height))}; })()`, s.today[5:]))
	if bar["total"] != "10" || bar["parts"] != "3" || bar["height"] == "0" {
		t.Errorf("chart: today's bar %v, want 10 sends in 3 drawn parts", bar)
	}
	stages := texts("funnel", `Object.fromEntries([...document.querySelectorAll("#funnel g.fn-row")].map(g => {
		const r = g.querySelector("rect:not(.fn-track)");
		return [g.dataset.stage, g.dataset.n + " " + Math.round(r.getBBox().width) + " " + getComputedStyle(r).fill];
	}))`)
	want("funnel", stages, map[string]string{
		"shown": "5 467 rgb(175, 184, 193)", "accepted": "6 560 rgb(9, 105, 218)", "rejected": "1 93 rgb(154, 103, 0)",
		"granted": "6 560 rgb(9, 105, 218)", "sent": "4 373 rgb(26, 127, 55)", "delivered": "0 0 rgb(26, 127, 55)",
		"failed": "4 373 rgb(207, 34, 46)"})
	desc := value(t, ctx, "desc", chromedp.Evaluate[string](`document.getElementById("funnel-desc").textContent`))
	if !strings.Contains(desc, "lead_assigned: shown 5, accepted 6, rejected 1, granted 6, sent 4, delivered 0, failed 4.") {
		t.Errorf("funnel desc: got %q", desc)
	}
	labelled := value(t, ctx, "labelledby", chromedp.Evaluate[string](`document.getElementById("funnel").getAttribute("aria-labelledby")
		.split(" ").map(id => document.getElementById(id).textContent).join(" | ")`))
	if !strings.HasPrefix(labelled, "Consent funnel per template | lead_assigned: shown 5") {
		t.Errorf("funnel's accessible name and description: got %q", labelled)
	}

	// The stats page, reached by its nav entry: the totals and the rows of
	// each day.
	run("stats", chromedp.Click(chromedp.CSS(`nav.pages a[href$="/stats"]`)), chromedp.WaitVisible(chromedp.CSS("#daily")))
	want("totals", texts("totals", cellsJS(`#totals tr[data-template="lead_assigned"] td[data-k]`, "data-k")), map[string]string{
		"shown": "5", "granted": "6", "taken": "5", "sent": "4", "failed": "4 (45009:3, 40003:1)", "wastedRate": "20.0%", "outstanding": "1"})
	want("today", texts("today's row", cellsJS(fmt.Sprintf(`#daily tr[data-day=%q] td[data-k]`, s.today), "data-k")), map[string]string{
		"sent": "3", "failed": "3 (45009:2, 40003:1)", "wasted": "1", "wastedRate": "25.0%"})
	if n := value(t, ctx, "funnel rows", chromedp.Evaluate[int](`document.querySelectorAll("#funnel g.fn-row").length`)); n != 7 {
		t.Errorf("stats funnel: got %d stages, want 7", n)
	}

	// The form with a bad date: the page again with the problem.
	run("bad date", chromedp.SetValue(chromedp.CSS("#from"), "2026-02-30"), chromedp.Submit(chromedp.CSS("#from")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := value(t, ctx, "problem", chromedp.Evaluate[string](`document.getElementById("problem").innerText`)); got != `from must be a date YYYY-MM-DD, not "2026-02-30". (bad_request)` {
		t.Errorf("bad date: got %q", got)
	}

	for _, path := range []string{"/overview", "/stats"} {
		run("phone "+path, chromedp.EmulateViewport(375, 800), chromedp.Navigate(app+path), chromedp.WaitVisible(chromedp.CSS("#funnel")))
		if value(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
			t.Errorf("%s at 375 px: the page scrolls sideways", path)
		}
	}
	if alerts := value(t, ctx, "alerts", chromedp.Evaluate[[]string](`window.__alerts`)); len(alerts) > 0 {
		t.Errorf("alerts: %v", alerts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the browser reported: %v", problems)
	}
}
