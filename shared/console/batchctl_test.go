package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestBatchPauseResumeForms drives the batch page's pause and resume forms
// over HTTP: the forms shown by status, each change audited with its
// result, forged posts refused, a finished batch refused with
// batch_finished, and the chart (on the page and alone) drawn from the
// batch's counts in both languages.
func TestBatchPauseResumeForms(t *testing.T) {
	f := newFixture(t, nil)
	s := seed(t, f)
	session := sessionCookie(t, f)
	app := f.url + "/console/apps/default"
	page := func(id string) string {
		t.Helper()
		a := do(t, "GET", app+"/batches/"+id+"?lang=en", nil, "text/html", nil, session)
		if a.status != http.StatusOK {
			t.Fatalf("batch page %s: got %d", id, a.status)
		}
		return a.body
	}
	shown := func(body, form string) bool {
		m := regexp.MustCompile(`<form [^>]*id="` + form + `"[^>]*>`).FindString(body)
		if m == "" {
			t.Fatalf("no form %s on the page", form)
		}
		return !strings.Contains(m, " hidden")
	}
	post := func(id, verb, token string) answer {
		t.Helper()
		return do(t, "POST", app+"/batches/"+id+"/"+verb, url.Values{"csrf": {token}}, "application/json",
			map[string]string{"Origin": f.url}, session)
	}
	status := func(id string) notify.BatchStatus {
		t.Helper()
		b, err := f.svc.Batch(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return b.Status
	}

	body := page(s.waiting.ID)
	token := csrfInput.FindStringSubmatch(body)[1]
	if !shown(body, "pause-form") || shown(body, "resume-form") || !shown(body, "cancel-form") {
		t.Errorf("scheduled batch: want the pause and cancel forms shown, resume hidden")
	}
	for _, want := range []string{`id="batch-chart"`, `data-done="0"`, `data-total="2"`, `0 of 2 done (0%)`, `data-status="scheduled"`} {
		if !strings.Contains(body, want) {
			t.Errorf("scheduled batch page: got no %s in the chart", want)
		}
	}

	// Forged posts change nothing.
	postForged(t, app+"/batches/"+s.waiting.ID+"/pause", session.Value)
	postForged(t, app+"/batches/"+s.waiting.ID+"/resume", session.Value)
	if got := status(s.waiting.ID); got != notify.BatchScheduled {
		t.Fatalf("after forged posts: got %s, want scheduled", got)
	}

	if a := post(s.waiting.ID, "pause", token); a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/batches/"+s.waiting.ID {
		t.Fatalf("pause: got %d %s, want 303 to the batch page", a.status, a.body)
	}
	if got := status(s.waiting.ID); got != notify.BatchPaused {
		t.Fatalf("after pause: got %s, want paused", got)
	}
	body = page(s.waiting.ID)
	if shown(body, "pause-form") || !shown(body, "resume-form") || !strings.Contains(body, `data-live="1"`) {
		t.Errorf("paused batch: want resume shown, pause hidden, the page still live")
	}
	// A tick passes the paused batch over.
	if err := f.svc.RunBatches(context.Background(), f.now().Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	chart := do(t, "GET", app+"/batches/"+s.waiting.ID+"/chart?lang=en", nil, "image/svg+xml", nil, session)
	if chart.status != http.StatusOK || !strings.HasPrefix(chart.header.Get("Content-Type"), "image/svg+xml") ||
		chart.header.Get("Content-Security-Policy") == "" || !strings.HasPrefix(chart.body, `<svg xmlns="http://www.w3.org/2000/svg"`) ||
		!strings.Contains(chart.body, `data-status="paused"`) || !strings.Contains(chart.body, `data-done="0"`) {
		t.Fatalf("chart of the paused batch: got %d %v %s", chart.status, chart.header, chart.body)
	}
	if n := strings.Count(chart.body, `<g class="row"`); n != 4 || strings.Contains(chart.body, "<script") || strings.Contains(chart.body, "style=") {
		t.Errorf("chart: got %d rows (want sent, skipped, failed, unknown), or a script or style in it: %s", n, chart.body)
	}

	if a := post(s.waiting.ID, "resume", token); a.status != http.StatusSeeOther {
		t.Fatalf("resume: got %d %s, want 303", a.status, a.body)
	}
	if got := status(s.waiting.ID); got != notify.BatchScheduled {
		t.Fatalf("after resume: got %s, want scheduled", got)
	}
	if err := f.svc.RunBatches(context.Background(), f.now().Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	chart = do(t, "GET", app+"/batches/"+s.waiting.ID+"/chart?lang=zh", nil, "image/svg+xml", nil, session)
	for _, want := range []string{`data-status="done"`, `data-done="2"`, `data-pct="100"`, `已完成 2 / 2（100%）`,
		`<g class="row" data-k="sent" data-n="1">`, `<g class="row" data-k="skipped" data-n="1">`, `width="420"`} {
		if !strings.Contains(chart.body, want) {
			t.Errorf("chart of the done batch: got no %s in %s", want, chart.body)
		}
	}
	if strings.Contains(page(s.waiting.ID), `id="pause-form"`) {
		t.Error("done batch: got the pause form, want no actions")
	}

	// A finished batch is refused with its code; an unknown one is not found.
	if a := post(s.done.ID, "pause", token); a.status != http.StatusConflict || a.code() != "batch_finished" {
		t.Errorf("pause a done batch: got %d %s, want 409 batch_finished", a.status, a.body)
	}
	if a := do(t, "POST", app+"/batches/"+s.done.ID+"/resume", url.Values{"csrf": {token}}, "text/html",
		map[string]string{"Origin": f.url}, session); a.status != http.StatusConflict || !strings.Contains(a.body, `<code id="error-code">batch_finished</code>`) {
		t.Errorf("resume a done batch from a browser: got %d, want 409 with batch_finished on the page", a.status)
	}
	for _, path := range []string{"/batches/bat_nope/pause", "/batches/bat_nope/resume", "/batches/a%7Cb/pause"} {
		if a := do(t, "POST", app+path, url.Values{"csrf": {token}}, "application/json", map[string]string{"Origin": f.url}, session); a.status != http.StatusNotFound || a.code() != "not_found" {
			t.Errorf("POST %s: got %d %s, want 404 not_found", path, a.status, a.body)
		}
	}
	for _, path := range []string{"/batches/bat_nope/chart", "/batches/%ff%fe/chart"} {
		if a := do(t, "GET", app+path, nil, "application/json", nil, session); a.status != http.StatusNotFound || a.code() != "not_found" {
			t.Errorf("GET %s: got %d %s, want 404 not_found", path, a.status, a.body)
		}
	}
	if a := do(t, "GET", app+"/batches/"+s.done.ID+"/chart", nil, "application/json", nil); a.status != http.StatusUnauthorized {
		t.Errorf("chart signed out: got %d, want 401", a.status)
	}

	a := do(t, "GET", app+"/audit", nil, "text/html", nil, session)
	rows := regexp.MustCompile(`<tr data-action="(batch_[a-z]+)"><td>[^<]*</td><td>[^<]*</td><td><code>[^<]*</code></td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>`).FindAllStringSubmatch(a.body, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1]+" "+r[2]+" "+r[3])
	}
	// An id that cannot be one (a|b) is refused before anything, unaudited.
	want := []string{"batch_resume bat_nope not_found", "batch_pause bat_nope not_found",
		"batch_resume " + s.done.ID + " batch_finished", "batch_pause " + s.done.ID + " batch_finished",
		"batch_resume " + s.waiting.ID + " scheduled", "batch_pause " + s.waiting.ID + " paused"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log, newest first:\n got %q\nwant %q", got, want)
	}
}
