package console_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// section is the HTML of the element with id, up to the end of its
// section (or the whole rest of the body when it is no section).
func section(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no element #%s in the page", id)
	}
	rest := body[i:]
	if j := strings.Index(rest, "</section>"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// cells are the numbers of the cells with attr="key" in html, by key
// (the first cell of each key).
func cells(html, attr string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(attr+`="([^"]+)">([^<]*)<`).FindAllStringSubmatch(html, -1) {
		if _, ok := out[m[1]]; !ok {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	return out
}

func wantCells(t *testing.T, where string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s: got %q, want %q", where, k, got[k], v)
		}
	}
}

// rowHTML is the table row of html starting with the tag <tr attrs>.
func rowHTML(t *testing.T, html, attrs string) string {
	t.Helper()
	i := strings.Index(html, "<tr "+attrs+">")
	if i < 0 {
		t.Fatalf("no row <tr %s>", attrs)
	}
	rest := html[i:]
	return rest[:strings.Index(rest, "</tr>")]
}

// The overview shows the seeded outcomes from the funnel's counters:
// today's and the week's by status, the credits, the wasted rate, the
// errcodes, the bars of each day and the funnel of each template.
func TestOverviewFromStats(t *testing.T) {
	f := newFixture(t, nil)
	s := seedOutcomes(t, f)
	session := sessionCookie(t, f)
	a := do(t, "GET", f.url+"/console/apps/default/overview?lang=en", nil, "text/html", nil, session)
	if a.status != http.StatusOK {
		t.Fatalf("overview: got %d: %s", a.status, a.body)
	}
	wantCells(t, "today", cells(section(t, a.body, "today"), "data-status"),
		map[string]string{"sent": "3", "skipped": "4", "failed": "3", "unknown": "0", "total": "10"})
	wantCells(t, "week", cells(section(t, a.body, "week"), "data-status"),
		map[string]string{"sent": "4", "skipped": "4", "failed": "4", "unknown": "0", "total": "12"})
	wantCells(t, "credits", cells(section(t, a.body, "credits"), "data-k"),
		map[string]string{"granted": "6", "taken": "5", "givenBack": "0", "outstanding": "1"})
	wasted := section(t, a.body, "wasted")
	wantCells(t, "wasted", cells(wasted, "data-k"), map[string]string{"wastedRate": "20.0%"})
	if !strings.Contains(wasted, "1 answered 43101 of 5 sends that spent a credit") {
		t.Errorf("wasted: got %s, want 1 of 5", wasted)
	}
	errs := section(t, a.body, "errors")
	if got := regexp.MustCompile(`data-errcode="(\d+)"`).FindAllStringSubmatch(errs, -1); len(got) != 2 || got[0][1] != "45009" || got[1][1] != "40003" {
		t.Errorf("errcodes: got %v, want 45009 then 40003", got)
	}
	wantCells(t, "45009", cells(rowHTML(t, errs, `data-errcode="45009"`), "data-k"), map[string]string{"n": "3"})
	wantCells(t, "40003", cells(rowHTML(t, errs, `data-errcode="40003"`), "data-k"), map[string]string{"n": "1"})
	if !strings.Contains(errs, "daily API quota reached") {
		t.Errorf("errcodes: no meaning of 45009: %s", errs)
	}

	// The bars: 7 days ending today; yesterday 2 (sent, failed), today
	// 10 (sent, skipped, failed).
	bars := regexp.MustCompile(`<g class="bar" data-day="([^"]+)" data-total="(\d+)">\s*((?:<rect[^>]*>.*?</rect>)*)`).FindAllStringSubmatch(a.body, -1)
	if len(bars) != 7 {
		t.Fatalf("chart: got %d bars, want 7", len(bars))
	}
	for i, want := range map[int]struct{ day, total, classes string }{
		5: {s.yesterday[5:], "2", "st-sent st-failed"},
		6: {s.today[5:], "10", "st-sent st-skipped st-failed"},
		0: {time.Now().UTC().AddDate(0, 0, -6).Format("01-02"), "0", ""},
	} {
		var classes []string
		for _, m := range regexp.MustCompile(`class="(st-[a-z]+)"`).FindAllStringSubmatch(bars[i][3], -1) {
			classes = append(classes, m[1])
		}
		if bars[i][1] != want.day || bars[i][2] != want.total || strings.Join(classes, " ") != want.classes {
			t.Errorf("bar %d: got %s %s [%s], want %s %s [%s]", i, bars[i][1], bars[i][2], strings.Join(classes, " "), want.day, want.total, want.classes)
		}
	}

	// The funnel chart: one group, its stages with their counts and
	// widths (scaled to the largest, 6 = 560), with its title and desc.
	funnel := section(t, a.body, "funnel-card")
	stages := regexp.MustCompile(`data-stage="([a-z]+)" data-n="(\d+)">\s*<text[^>]*>[^<]*</text>\s*<rect class="fn-track"[^>]*></rect>\s*<rect class="fn-([a-z]+)" x="120" y="[^"]+" width="([^"]+)"`).FindAllStringSubmatch(funnel, -1)
	var got []string
	for _, m := range stages {
		if m[1] != m[3] {
			t.Errorf("stage %s drawn with class fn-%s", m[1], m[3])
		}
		got = append(got, m[1]+"="+m[2]+"@"+m[4])
	}
	if want := "shown=5@466.7 accepted=6@560 rejected=1@93.3 granted=6@560 sent=4@373.3 delivered=0@0 failed=4@373.3"; strings.Join(got, " ") != want {
		t.Errorf("funnel bars: got %s, want %s", strings.Join(got, " "), want)
	}
	for _, want := range []string{`aria-labelledby="funnel-title funnel-desc"`, `<title id="funnel-title">Consent funnel per template</title>`,
		`<desc id="funnel-desc">lead_assigned: shown 5, accepted 6, rejected 1, granted 6, sent 4, delivered 0, failed 4. </desc>`,
		`<title>lead_assigned sent: 4</title>`} {
		if !strings.Contains(funnel, want) {
			t.Errorf("funnel: no %s", want)
		}
	}
	wantCells(t, "funnel table", cells(rowHTML(t, funnel, `data-template="lead_assigned"`), "data-k"), map[string]string{
		"shown": "5", "accepted": "6", "rejected": "1", "granted": "6", "taken": "5", "sent": "4", "delivered": "0",
		"held": "3", "wasted": "1", "wastedRate": "20.0%", "outstanding": "1", "errcodes": "(45009:3, 40003:1)"})
	if strings.Contains(a.body, " style=") || regexp.MustCompile(`<script>|\son[a-z]+=`).MatchString(a.body) {
		t.Errorf("overview: an inline style, script or handler, which the CSP refuses")
	}

	// In Chinese: the same numbers, the words of the zh column.
	zh := do(t, "GET", f.url+"/console/apps/default/overview?lang=zh", nil, "text/html", nil, session)
	for _, want := range []string{"一次性授权额度（最近 7 天）", "接口调用超过每日限额", "<title id=\"funnel-title\">授权漏斗（按模板）</title>", "弹窗展示 5"} {
		if !strings.Contains(zh.body, want) {
			t.Errorf("overview in zh: no %q", want)
		}
	}
}

// Without any count, the overview shows zeros, no errcode and no funnel.
func TestOverviewEmpty(t *testing.T) {
	f := newFixture(t, nil)
	session := sessionCookie(t, f)
	a := do(t, "GET", f.url+"/console/apps/default/overview?lang=en", nil, "text/html", nil, session)
	if a.status != http.StatusOK {
		t.Fatalf("overview: got %d", a.status)
	}
	wantCells(t, "week", cells(section(t, a.body, "week"), "data-status"), map[string]string{"total": "0"})
	wantCells(t, "wasted", cells(section(t, a.body, "wasted"), "data-k"), map[string]string{"wastedRate": "0.0%"})
	for _, want := range []string{`id="errcodes-none"`, `id="funnel-empty"`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("empty overview: no %s", want)
		}
	}
}

// The stats page: the totals and the daily rows of each template over the
// range asked for, the funnel chart; bad input is 400 on the page.
func TestStatsPage(t *testing.T) {
	f := newFixture(t, nil)
	s := seedOutcomes(t, f)
	session := sessionCookie(t, f)
	stats := f.url + "/console/apps/default/stats"
	get := func(query string) answer {
		t.Helper()
		return do(t, "GET", stats+query, nil, "text/html", nil, session)
	}

	a := get("?lang=en")
	if a.status != http.StatusOK {
		t.Fatalf("stats: got %d: %s", a.status, a.body)
	}
	if !strings.Contains(a.body, `<a href="/console/apps/default/stats" class="on" aria-current="page">Stats</a>`) {
		t.Errorf("stats: no nav entry marked on")
	}
	week := s.today
	if d, err := time.Parse(time.DateOnly, s.today); err == nil {
		week = d.AddDate(0, 0, -6).Format(time.DateOnly)
	}
	if !strings.Contains(a.body, `<span id="range">`+week+` – `+s.today+`</span>`) {
		t.Errorf("stats: the default range is not the last 7 days %s – %s", week, s.today)
	}
	wantCells(t, "totals", cells(rowHTML(t, a.body, `data-template="lead_assigned"`), "data-k"), map[string]string{
		"shown": "5", "accepted": "6", "rejected": "1", "granted": "6", "taken": "5", "givenBack": "0", "sent": "4",
		"delivered": "0", "failed": "4", "errcodes": "(45009:3, 40003:1)", "held": "3", "wasted": "1", "wastedRate": "20.0%",
		"unknown": "0", "outstanding": "1"})
	daily := section(t, a.body, "daily")
	if n := strings.Count(daily, "<tr data-day="); n != 2 {
		t.Errorf("daily: got %d rows, want 2 (yesterday, today)", n)
	}
	wantCells(t, "yesterday", cells(rowHTML(t, daily, `data-day="`+s.yesterday+`" data-template="lead_assigned"`), "data-k"), map[string]string{
		"accepted": "2", "granted": "2", "taken": "1", "sent": "1", "failed": "1", "errcodes": "(45009:1)", "wastedRate": "0.0%", "outstanding": "1"})
	wantCells(t, "today", cells(rowHTML(t, daily, `data-day="`+s.today+`" data-template="lead_assigned"`), "data-k"), map[string]string{
		"shown": "5", "accepted": "4", "rejected": "1", "granted": "4", "taken": "4", "sent": "3", "failed": "3",
		"errcodes": "(45009:2, 40003:1)", "held": "3", "wasted": "1", "wastedRate": "25.0%", "outstanding": "0"})
	if !strings.Contains(a.body, `<svg id="funnel"`) || !strings.Contains(a.body, `data-stage="sent" data-n="4"`) {
		t.Errorf("stats: no funnel chart with sent 4")
	}

	// One day, one template.
	a = get("?from=" + s.yesterday + "&to=" + s.yesterday + "&template=lead_assigned")
	wantCells(t, "yesterday only", cells(section(t, a.body, "totals"), "data-k"), map[string]string{"sent": "1", "failed": "1", "granted": "2"})
	if strings.Count(a.body, "<tr data-day=") != 1 || !strings.Contains(a.body, `<option value="lead_assigned" selected>`) {
		t.Errorf("yesterday only: want one daily row and the template selected")
	}
	a = get("?template=registration")
	if a.status != http.StatusOK || strings.Contains(a.body, "<tr data-template=") || !strings.Contains(a.body, `id="funnel-empty"`) {
		t.Errorf("registration: got %d, want no counts", a.status)
	}

	// Bad input: 400 with the problem on the page (the form kept), or
	// the JSON error for another client.
	for _, tc := range []struct{ query, want string }{
		{"?from=2026-13-01", "from must be a date YYYY-MM-DD, not &#34;2026-13-01&#34;."},
		{"?to=yesterday", "to must be a date YYYY-MM-DD, not &#34;yesterday&#34;."},
		{"?from=" + s.today + "&to=" + s.yesterday, "from must not be after to."},
		{"?from=2026-01-01&to=2026-12-31", "The range is 365 days, at most 92."},
		{"?template=nope", "The template &#34;nope&#34; is not in wxnotify.yaml."},
	} {
		a := get(tc.query + "&lang=en")
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<p class="problem" id="problem">`+tc.want+` (<code id="error-code">bad_request</code>)`) ||
			!strings.Contains(a.body, `id="stats-filters"`) || strings.Contains(a.body, `id="funnel"`) {
			t.Errorf("GET stats%s: got %d, want 400 with %q on the page: %s", tc.query, a.status, tc.want, section(t, a.body, "stats-filters"))
		}
		j := do(t, "GET", stats+tc.query, nil, "application/json", nil, session)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(j.body), &e); err != nil || j.status != http.StatusBadRequest || e.Error.Code != "bad_request" || e.Error.Message == "" {
			t.Errorf("GET stats%s as JSON: got %d %s, want 400 bad_request", tc.query, j.status, j.body)
		}
	}
	if a := get("?from=2026-13-01&lang=zh"); !strings.Contains(a.body, "from 须为 YYYY-MM-DD 格式的日期") {
		t.Errorf("bad date in zh: no Chinese message")
	}
}
