package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestBatchChartInBrowser watches a running batch's page in chromium: its
// chart advances while the tick sends (sampled twice), the Pause button
// stops it at a page boundary and the chart stops advancing, Resume goes
// on to the end with every recipient done once, and the audit log has both.
func TestBatchChartInBrowser(t *testing.T) {
	// Slow on purpose: 8 sends a second, pages of 2.
	f := newFixture(t, map[string]string{"WXN_BATCH_RATE": "8", "WXN_BATCH_PAGE_SIZE": "2", "WXN_BATCH_WORKERS": "1"})
	ctx := context.Background()
	const n, withCredit = 90, 10
	var to []notify.BatchRecipient
	for i := range n {
		if i < withCredit {
			res, err := f.svc.Login(ctx, f.fake.Login(fmt.Sprintf("chart-%02d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.fake.Subscribe(res.OpenID, map[string]string{leadID: "accept"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.RecordReport(ctx, res.OpenID, notify.Report{Result: map[string]string{leadID: "accept"}, ID: fmt.Sprintf("r-%d", i)}); err != nil {
				t.Fatal(err)
			}
			to = append(to, notify.BatchRecipient{OpenID: res.OpenID})
			continue
		}
		to = append(to, notify.BatchRecipient{UserID: fmt.Sprintf("nobody-%02d", i)}) // unbound: skipped
	}
	b, err := f.svc.CreateBatch(ctx, notify.BatchRequest{Template: "lead_assigned", Recipients: to,
		Data: map[string]string{"thing1": "Daily", "character_string2": "L-1"}})
	if err != nil {
		t.Fatal(err)
	}

	tab := openTab(t)
	bctx, run := tab.ctx, tab.run
	app := f.url + "/console/apps/default"
	tab.signIn(f.url+"/console/signin", "#today")

	// chart reads the chart as the page shows it now.
	type chartState struct {
		Done, Total int
		Status      string
		Refreshed   string
	}
	chart := func() chartState {
		t.Helper()
		return value(t, bctx, "chart", chromedp.Evaluate[chartState](`(() => {
			const c = document.getElementById("batch-chart");
			return {Done: Number(c.dataset.done), Total: Number(c.dataset.total), Status: c.dataset.status,
				Refreshed: document.getElementById("chart-box").dataset.refreshed || ""};
		})()`))
	}
	// waitChart waits for the page to show a chart for which ok holds.
	waitChart := func(what string, ok func(chartState) bool) chartState {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			c := chart()
			if ok(c) {
				return c
			}
			if time.Now().After(end) {
				t.Fatalf("%s: the chart stayed at %+v", what, c)
			}
		}
	}
	// nextRefresh waits for the script to swap the chart in once more.
	nextRefresh := func(what string) chartState {
		t.Helper()
		before := chart().Refreshed
		return waitChart(what, func(c chartState) bool { return c.Refreshed != "" && c.Refreshed != before })
	}
	tick := func() chan error {
		done := make(chan error, 1)
		go func() { done <- f.svc.RunBatches(ctx, f.now().Add(time.Minute)) }()
		return done
	}

	run("batch page", chromedp.Navigate(app+"/batches/"+b.ID+"?lang=en"), chromedp.WaitVisible(chromedp.CSS("#batch-chart")),
		chromedp.WaitVisible(chromedp.CSS("#pause")))
	if c := chart(); c.Done != 0 || c.Total != n || c.Status != "scheduled" {
		t.Fatalf("before the tick: got %+v, want 0 of %d, scheduled", c, n)
	}
	running := tick()
	first := waitChart("first sample", func(c chartState) bool { return c.Done > 0 })
	second := nextRefresh("second sample")
	if second.Done <= first.Done || second.Status != "running" {
		t.Fatalf("while running: the chart went from %+v to %+v, want it advancing", first, second)
	}

	// Pause: the tick stops at its page boundary; the chart stops there.
	run("pause", chromedp.Click(chromedp.CSS("#pause")), chromedp.WaitVisible(chromedp.CSS("#resume")))
	if err := <-running; err != nil {
		t.Fatal(err)
	}
	paused, err := f.svc.Batch(ctx, b.ID)
	if err != nil || paused.Status != notify.BatchPaused || paused.Pending() == 0 {
		t.Fatalf("after pause: got %+v %v, want paused with recipients left", paused, err)
	}
	done := paused.Sent + paused.Skipped
	if done%2 != 0 || paused.ShardsRunning != 0 {
		t.Errorf("paused with %d done and %d shards running, want a page boundary (2 a page) and none", done, paused.ShardsRunning)
	}
	atPause := waitChart("chart at the pause", func(c chartState) bool { return c.Done == done && c.Status == "paused" })
	nextRefresh("refresh while paused")
	if later := nextRefresh("another refresh while paused"); later.Done != atPause.Done || later.Status != "paused" {
		t.Fatalf("while paused: the chart went from %+v to %+v, want it still", atPause, later)
	}
	if hidden := value(t, bctx, "pause hidden", chromedp.Evaluate[bool](`document.getElementById("pause-form").hidden`)); !hidden {
		t.Error("while paused: got the pause button shown, want resume only")
	}

	// Resume: the next tick goes on from there to the end.
	run("resume", chromedp.Click(chromedp.CSS("#resume")), chromedp.WaitVisible(chromedp.CSS("#pause")))
	if err := <-tick(); err != nil {
		t.Fatal(err)
	}
	final := waitChart("chart at the end", func(c chartState) bool { return c.Status == "done" })
	if final.Done != n {
		t.Errorf("at the end: got %+v, want %d of %d done", final, n, n)
	}
	run("actions gone", chromedp.WaitNotPresent(chromedp.CSS("#actions")))
	end, _ := f.svc.Batch(ctx, b.ID)
	if end.Status != notify.BatchDone || end.Sent != withCredit || end.Skipped != n-withCredit || f.fake.Delivered() != withCredit {
		t.Errorf("the batch: got %+v with %d delivered, want done with %d sent, each once", end, f.fake.Delivered(), withCredit)
	}

	run("audit", chromedp.Navigate(app+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	actions := value(t, bctx, "audit rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.dataset.action + " " + r.cells[5].textContent)`))
	if got := strings.Join(actions, ","); !strings.HasPrefix(got, "batch_resume running,batch_pause paused,signin ") {
		t.Errorf("audit log: got %s, want batch_resume, batch_pause, signin (newest first)", got)
	}
	if alerts := value(t, bctx, "alerts", chromedp.Evaluate[[]string](`window.__alerts`)); len(alerts) > 0 {
		t.Errorf("alerts: %v", alerts)
	}
	tab.noProblems()
}
