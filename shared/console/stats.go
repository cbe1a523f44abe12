package console

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// The overview and the stats page read the consent funnel's counters
// (notify.Service.Stats, the data of GET /v1/stats): one store query per
// day, whatever the number of sends.

// statusCount is the number of outcomes of one status.
type statusCount struct {
	Status notify.Status
	N      int64
}

// statusCounts are the outcomes of ts by status, in the order of statuses:
// sent, skipped (held and wasted), failed (every errcode), unknown.
func statusCounts(ts notify.TemplateStats) map[notify.Status]int64 {
	return map[notify.Status]int64{
		notify.StatusSent:    ts.Sent,
		notify.StatusSkipped: ts.Held + ts.Wasted,
		notify.StatusFailed:  ts.FailedTotal(),
		notify.StatusUnknown: ts.Unknown,
	}
}

// sumStats adds up the counts of ts (every template).
func sumStats(ts []notify.TemplateStats) notify.TemplateStats {
	var s notify.TemplateStats
	for _, t := range ts {
		s.Shown += t.Shown
		s.Accepted += t.Accepted
		s.Rejected += t.Rejected
		s.Granted += t.Granted
		s.Taken += t.Taken
		s.GivenBack += t.GivenBack
		s.Sent += t.Sent
		s.Delivered += t.Delivered
		s.Held += t.Held
		s.Wasted += t.Wasted
		s.Unknown += t.Unknown
		for c, n := range t.Failed {
			if s.Failed == nil {
				s.Failed = map[int]int64{}
			}
			s.Failed[c] += n
		}
	}
	return s
}

// percent formats a rate of 0 to 1 with one decimal ("33.3%").
func percent(r float64) string { return strconv.FormatFloat(r*100, 'f', 1, 64) + "%" }

// errcodeRow is one line of the WeChat errors table.
type errcodeRow struct {
	Errcode int
	N       int64
	Key     string // the message key of the errcode's meaning, "" for none
}

// errcodeRows are the failures of ts by errcode, most first.
func errcodeRows(failed map[int]int64) []errcodeRow {
	var rows []errcodeRow
	for c, n := range failed {
		row := errcodeRow{Errcode: c, N: n}
		if _, ok := messages["errcode_"+strconv.Itoa(c)]; ok {
			row.Key = "errcode_" + strconv.Itoa(c)
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b errcodeRow) int {
		if a.N != b.N {
			if a.N > b.N {
				return -1
			}
			return 1
		}
		return a.Errcode - b.Errcode
	})
	return rows
}

// statsRow is a template's counts as the tables show them.
type statsRow struct {
	Day string // "" in a totals table
	notify.TemplateStats
	FailedTotal int64
	Errcodes    []errcodeRow
	WastedRate  string
	Outstanding int64
}

func newStatsRow(day string, ts notify.TemplateStats) statsRow {
	if ts.Template == "" {
		ts.Template = ts.TemplateID
	}
	return statsRow{Day: day, TemplateStats: ts, FailedTotal: ts.FailedTotal(), Errcodes: errcodeRows(ts.Failed),
		WastedRate: percent(ts.WastedRate()), Outstanding: ts.Outstanding()}
}

// credits are the one-time credits of a range.
type credits struct {
	Granted, Taken, GivenBack, Outstanding int64
}

type overviewData struct {
	Today, Week           []statusCount
	TodayTotal, WeekTotal int64
	Wasted, WastedBase    int64
	WastedRate            string
	Credits               credits
	Errors                []errcodeRow
	Chart                 barChart
	Funnel                funnelChart
	Rows                  []statsRow // each template over the week: the funnel's table
	StatsURL              string
}

// GET /console/apps/{app}/overview: today's and the last 7 days' outcomes
// by status, the wasted-send rate, the credits granted and taken, WeChat's
// errors by errcode, a bar chart of each day and the funnel of each
// template, from the consent funnel's counters of the last 7 UTC days.
func (c *Console) handleOverview(w http.ResponseWriter, r *http.Request, a App) {
	today := c.now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -6)
	rep, err := a.Service.Stats(r.Context(), notify.StatsQuery{From: start.Format(time.DateOnly), To: today.Format(time.DateOnly)})
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	days := make([]map[notify.Status]int, 7)
	labels := make([]string, 7)
	for i := range days {
		days[i] = map[notify.Status]int{}
		labels[i] = start.AddDate(0, 0, i).Format("01-02")
	}
	var todayStats notify.TemplateStats
	for _, ds := range rep.Days {
		t, err := time.Parse(time.DateOnly, ds.Day)
		if err != nil {
			continue
		}
		i := int(t.Sub(start) / (24 * time.Hour))
		if i < 0 || i >= len(days) {
			continue
		}
		sum := sumStats(ds.Templates)
		for st, n := range statusCounts(sum) {
			days[i][st] += int(n)
		}
		if i == len(days)-1 {
			todayStats = sum
		}
	}
	week := sumStats(rep.Totals)
	d := overviewData{Credits: credits{week.Granted, week.Taken, week.GivenBack, week.Outstanding()},
		Wasted: week.Wasted, WastedBase: week.Sent + week.Unknown + week.Wasted, WastedRate: percent(week.WastedRate()),
		Errors: errcodeRows(week.Failed), Chart: newBarChart(labels, days)}
	tc, wc := statusCounts(todayStats), statusCounts(week)
	for _, st := range statuses {
		d.Today = append(d.Today, statusCount{st, tc[st]})
		d.Week = append(d.Week, statusCount{st, wc[st]})
		d.TodayTotal += tc[st]
		d.WeekTotal += wc[st]
	}
	for _, ts := range rep.Totals {
		d.Rows = append(d.Rows, newStatsRow("", ts))
	}
	p := &page{Active: "overview", App: a.ID}
	d.Funnel = newFunnelChart(rep.Totals)
	d.StatsURL = p.AppURL("stats")
	p.Data = &d
	c.render(w, r, http.StatusOK, "overview", p)
}

type statsData struct {
	From, To, Template string
	Aliases            []string
	Totals             []statsRow
	Days               []statsRow
	Funnel             funnelChart
	MaxDays            int
}

// GET /console/apps/{app}/stats?from=&to=&template=: the funnel of each
// template per UTC day and over the range (default: the last 7 days), as
// GET /v1/stats answers it. A bad date, range or template is answered
// with the page and the problem (400 bad_request).
func (c *Console) handleStats(w http.ResponseWriter, r *http.Request, a App) {
	q := r.URL.Query()
	today := c.now().UTC().Truncate(24 * time.Hour)
	d := statsData{From: q.Get("from"), To: q.Get("to"), Template: q.Get("template"), MaxDays: notify.MaxStatsDays}
	for _, t := range a.Service.Catalog().Templates() {
		d.Aliases = append(d.Aliases, t.Alias)
	}
	p := &page{Active: "stats", App: a.ID, Data: &d}
	lang := langOf(r)
	problem := func(msg string) {
		if !wantsHTML(r) {
			c.fail(w, r, http.StatusBadRequest, codeBadRequest, msg)
			return
		}
		p.Problem, p.Code = msg, codeBadRequest
		c.render(w, r, http.StatusBadRequest, "stats", p)
	}
	to, from := today, today.AddDate(0, 0, -6)
	var err error
	if d.To != "" {
		if to, err = time.Parse(time.DateOnly, d.To); err != nil {
			problem(fmt.Sprintf(tr(lang, "stats_bad_date"), "to", d.To))
			return
		}
		from = to.AddDate(0, 0, -6)
	}
	if d.From != "" {
		if from, err = time.Parse(time.DateOnly, d.From); err != nil {
			problem(fmt.Sprintf(tr(lang, "stats_bad_date"), "from", d.From))
			return
		}
	}
	switch n := int(to.Sub(from)/(24*time.Hour)) + 1; {
	case n < 1:
		problem(tr(lang, "stats_bad_order"))
		return
	case n > notify.MaxStatsDays:
		problem(fmt.Sprintf(tr(lang, "stats_bad_range"), n, notify.MaxStatsDays))
		return
	}
	if d.Template != "" {
		if _, ok := a.Service.Catalog().Lookup(d.Template); !ok {
			problem(fmt.Sprintf(tr(lang, "stats_bad_template"), d.Template))
			return
		}
	}
	d.From, d.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	rep, err := a.Service.Stats(r.Context(), notify.StatsQuery{From: d.From, To: d.To, Template: d.Template})
	if err != nil {
		status, code, msg := domainStatus(err)
		if status >= 500 || !wantsHTML(r) {
			c.failErr(w, r, err)
			return
		}
		p.Problem, p.Code = msg, code
		c.render(w, r, status, "stats", p)
		return
	}
	for _, ts := range rep.Totals {
		d.Totals = append(d.Totals, newStatsRow("", ts))
	}
	for _, ds := range rep.Days {
		for _, ts := range ds.Templates {
			d.Days = append(d.Days, newStatsRow(ds.Day, ts))
		}
	}
	d.Funnel = newFunnelChart(rep.Totals)
	c.render(w, r, http.StatusOK, "stats", p)
}

// langOf is the language requestLang picks for r, without keeping a
// ?lang= choice (render does).
func langOf(r *http.Request) string {
	if q := r.URL.Query().Get("lang"); q == "zh" || q == "en" {
		return q
	}
	if ck, err := r.Cookie(langCookie); err == nil && (ck.Value == "zh" || ck.Value == "en") {
		return ck.Value
	}
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

// funnelChart is an SVG chart of horizontal bars: for each template, its
// stages from the popups shown to the messages delivered, laid out here
// (no script, no style attribute; console.css colours the classes). The
// template writes the words: the stage names, each bar's <title> and the
// chart's <desc>.
type funnelChart struct {
	Width, Height int
	BarX, RowH    float64
	Groups        []funnelGroup
}

type funnelGroup struct {
	Template string
	Y        float64 // the baseline of the template's name
	Rows     []funnelRow
}

type funnelRow struct {
	Stage       string // the stage: "fn_" + Stage is its message key, "fn-" + Stage its class
	N           int64
	Y, W        float64
	TextY, ValX float64
}

// funnelStages are the bars of a template, in the funnel's order.
var funnelStages = []string{"shown", "accepted", "rejected", "granted", "sent", "delivered", "failed"}

func stageCount(ts notify.TemplateStats, stage string) int64 {
	switch stage {
	case "shown":
		return ts.Shown
	case "accepted":
		return ts.Accepted
	case "rejected":
		return ts.Rejected
	case "granted":
		return ts.Granted
	case "sent":
		return ts.Sent
	case "delivered":
		return ts.Delivered
	case "failed":
		return ts.FailedTotal()
	}
	return 0
}

const (
	funnelLabelW = 120.0 // the stage names' column
	funnelBarMax = 560.0 // the longest bar of a template
	funnelRowH   = 18.0
	funnelRowGap = 4.0
	funnelHeadH  = 24.0
	funnelGroupG = 12.0
)

// newFunnelChart lays out the funnel of each template of totals; each
// template's bars are scaled to its largest stage.
func newFunnelChart(totals []notify.TemplateStats) funnelChart {
	ch := funnelChart{Width: int(funnelLabelW + funnelBarMax + 80), BarX: funnelLabelW, RowH: funnelRowH}
	y := 0.0
	for gi, ts := range totals {
		name := ts.Template
		if name == "" {
			name = ts.TemplateID
		}
		if gi > 0 {
			y += funnelGroupG
		}
		g := funnelGroup{Template: name, Y: y + 16}
		y += funnelHeadH
		peak := int64(1)
		for _, st := range funnelStages {
			peak = max(peak, stageCount(ts, st))
		}
		for _, st := range funnelStages {
			n := stageCount(ts, st)
			w := math.Round(funnelBarMax*float64(n)/float64(peak)*10) / 10
			g.Rows = append(g.Rows, funnelRow{Stage: st, N: n, Y: y, W: w, TextY: y + funnelRowH - 5, ValX: funnelLabelW + w + 6})
			y += funnelRowH + funnelRowGap
		}
		ch.Groups = append(ch.Groups, g)
	}
	ch.Height = int(y + 4)
	return ch
}
