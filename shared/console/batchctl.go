package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// The batch page's controls beyond cancel - pause and resume - and its
// live progress chart: a server-rendered SVG of the sent, skipped, failed
// and unknown recipients against the total, which the page's script
// fetches again (GET batches/{id}/chart) at each refresh and swaps in.

// codeBatchFinished answers a pause or resume of a done or cancelled batch.
const codeBatchFinished = "batch_finished"

// batchMessages are this file's words, merged into messages.
var batchMessages = map[string][2]string{
	"pause_batch":      {"暂停", "Pause"},
	"resume_batch":     {"继续", "Resume"},
	"pause_note":       {"暂停后，正在发送的这一页发完即停，进度保留；继续时从停下的地方接着发送。", "Pausing stops at the end of the page under way and keeps the batch's place; resuming goes on from there."},
	"act_batch_pause":  {"暂停批量发送", "batch pause"},
	"act_batch_resume": {"继续批量发送", "batch resume"},
	"chart":            {"进度图", "Progress chart"},
	"chart_summary":    {"已完成 %d / %d（%d%%）", "%d of %d done (%d%%)"},
}

func init() { addMessages(batchMessages) }

// POST /console/apps/{app}/batches/{id}/pause (CSRF-checked by signedIn)
func (c *Console) handlePauseBatch(w http.ResponseWriter, r *http.Request, a App) {
	c.batchAction(w, r, a, "batch_pause", a.Service.PauseBatch)
}

// POST /console/apps/{app}/batches/{id}/resume (CSRF-checked by signedIn)
func (c *Console) handleResumeBatch(w http.ResponseWriter, r *http.Request, a App) {
	c.batchAction(w, r, a, "batch_resume", a.Service.ResumeBatch)
}

// batchAction runs a change of a batch, audits it (with the batch's status
// after it, or the error's code) and leads back to the batch's page.
func (c *Console) batchAction(w http.ResponseWriter, r *http.Request, a App, action string,
	do func(context.Context, string) (notify.Batch, error)) {
	id := r.PathValue("id")
	if !validID(id) {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such batch")
		return
	}
	b, err := do(r.Context(), id)
	result := string(b.Status)
	if err != nil {
		_, result, _ = domainStatus(err)
	}
	c.audit(r.Context(), a.Service.AppID(), auditEntry{Action: action, Actor: sessionOf(r.Context()).Key,
		IP: clientAddr(r), Target: id, Result: result})
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/apps/"+url.PathEscape(a.ID)+"/batches/"+id, http.StatusSeeOther)
}

// GET /console/apps/{app}/batches/{id}/chart: the chart alone, an SVG
// document, for the page's script.
func (c *Console) handleBatchChart(w http.ResponseWriter, r *http.Request, a App) {
	b, ok := c.batch(w, r, a)
	if !ok {
		return
	}
	svg, err := renderChart(requestLang(w, r), b)
	if err != nil {
		c.log.Error("console chart failed", "batch", b.ID, "err", err.Error())
		c.fail(w, r, http.StatusInternalServerError, codeInternal, "internal error")
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(svg))
}

// BatchChart is the chart of b in the page's language, for batch.html.
func (p *page) BatchChart(b notify.Batch) (template.HTML, error) {
	return renderChart(p.Lang, b)
}

// The chart's geometry: a label column, bars from bchartX0 bchartW wide
// (the whole width is the total), the counts right-aligned at the end.
const (
	bchartWidth = 600.0
	bchartX0    = 110.0
	bchartW     = 420.0
	bchartTop   = 30.0
	bchartRow   = 26.0
	bchartBar   = 18.0
)

type chartRowData struct {
	Key, Label string
	N          int
	Y, TextY   float64
	BarW       float64
}

type chartTick struct {
	X     float64
	Label string
}

type chartData struct {
	Label, Summary, Status string
	Done, Total, Pct       int
	X0, W, H, GridBottom   float64
	AxisY, CountX          float64
	Rows                   []chartRowData
	Ticks                  []chartTick
}

var chartTemplate = template.Must(template.New("batch_chart.html").ParseFS(templateFiles, "templates/batch_chart.html"))

// chartOf lays out b's chart.
func chartOf(lang string, b notify.Batch) chartData {
	done := b.Sent + b.Skipped + b.Failed + b.Unknown
	d := chartData{Label: tr(lang, "chart"), Status: string(b.Status), Done: done, Total: b.Total,
		X0: bchartX0, W: bchartW, CountX: bchartWidth}
	if b.Total > 0 {
		d.Pct = min(100, done*100/b.Total)
	}
	d.Summary = fmt.Sprintf(tr(lang, "chart_summary"), done, b.Total, d.Pct)
	for i, part := range []struct {
		key string
		n   int
	}{{"sent", b.Sent}, {"skipped", b.Skipped}, {"failed", b.Failed}, {"unknown", b.Unknown}} {
		y := bchartTop + float64(i)*bchartRow
		row := chartRowData{Key: part.key, Label: tr(lang, part.key), N: part.n, Y: y, TextY: y + 13}
		if b.Total > 0 {
			row.BarW = min(bchartW, bchartW*float64(part.n)/float64(b.Total))
		}
		d.Rows = append(d.Rows, row)
	}
	d.GridBottom = bchartTop + 4*bchartRow - (bchartRow - bchartBar)
	d.AxisY = d.GridBottom + 14
	d.H = d.AxisY + 4
	for _, pct := range []int{0, 25, 50, 75, 100} {
		d.Ticks = append(d.Ticks, chartTick{X: bchartX0 + bchartW*float64(pct)/100, Label: fmt.Sprintf("%d%%", pct)})
	}
	return d
}

// renderChart renders b's chart as SVG markup.
func renderChart(lang string, b notify.Batch) (template.HTML, error) {
	var buf bytes.Buffer
	if err := chartTemplate.Execute(&buf, chartOf(lang, b)); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // #nosec G203 -- the output of html/template
}
