package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// navItem is one entry of an app's navigation: the pages of users
// and webhook deliveries join this list.
type navItem struct {
	Key  string // message key and page name
	Path string // under /console/apps/{app}/
}

var nav = []navItem{
	{"overview", "overview"},
	{"stats", "stats"},
	{"notifications", "notifications"},
	{"batches", "batches"},
	{"templates", "templates"},
	{"users", "users"},
	{"webhooks", "webhooks"},
	{"audit", "audit"},
}

// page is what every template gets.
type page struct {
	Lang    string
	Active  string // the nav key of the page
	App     string // the app's id; "" outside an app
	Apps    []string
	Nav     []navItem
	CSRF    string
	Actor   string
	Problem string // a message key, or a message
	Code    string // an error's code
	LangURL string // this page in the other language
	Data    any
}

// T translates key into the page's language.
func (p *page) T(key string) string { return tr(p.Lang, key) }

// AppURL is the path of an app page.
func (p *page) AppURL(rest string) string {
	return "/console/apps/" + url.PathEscape(p.App) + "/" + rest
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"pathEscape": url.PathEscape,
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin", "error", "overview", "notifications", "notification", "batches", "batch", "templates", "tsend", "audit", "stats", "users", "webhooks", "webhook", "oidc"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/stats_parts.html", "templates/hooks.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// wantsHTML reports whether the request is a browser's for a page.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// render answers the page name with p.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.Lang = requestLang(w, r)
	q := r.URL.Query()
	other := "en"
	if p.Lang == "en" {
		other = "zh"
	}
	q.Set("lang", other)
	p.LangURL = r.URL.Path + "?" + q.Encode()
	if s := sessionOf(r.Context()); s != nil {
		p.CSRF, p.Actor = s.CSRF, s.actor()
		p.Nav = nav
		for _, a := range c.apps {
			p.Apps = append(p.Apps, a.ID)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console render failed", "page", name, "err", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers an error: a page for a browser, else the JSON error body
// {"error": {"code", "message"}}.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if wantsHTML(r) {
		p := &page{Problem: msg, Code: code}
		if a, ok := c.app(r.PathValue("app")); ok && sessionOf(r.Context()) != nil {
			p.App = a.ID
		}
		c.render(w, r, status, "error", p)
		return
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// failErr answers a domain error.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := domainStatus(err)
	if status >= 500 {
		c.log.Error("console request failed", "path", r.URL.Path, "err", err.Error())
	}
	c.fail(w, r, status, code, msg)
}

// inApp binds {app} to one of the apps; another is not_found.
func (c *Console) inApp(h func(http.ResponseWriter, *http.Request, App)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := c.app(r.PathValue("app"))
		if !ok {
			c.fail(w, r, http.StatusNotFound, codeNotFound, "no such app")
			return
		}
		h(w, r, a)
	}
}

func (c *Console) handleAppRoot(w http.ResponseWriter, r *http.Request, a App) {
	http.Redirect(w, r, "/console/apps/"+url.PathEscape(a.ID)+"/overview", http.StatusSeeOther)
}

// statuses are the notification outcomes the overview counts, in the
// chart's order.
var statuses = []notify.Status{notify.StatusSent, notify.StatusSkipped, notify.StatusFailed, notify.StatusUnknown}

// barChart is an SVG bar chart of stacked statuses, laid out here so the
// page has no script and no style attribute.
type barChart struct {
	Width, Height int
	Bars          []bar
	Legend        []legendItem
	BaseY         float64
}

type bar struct {
	X, W, LabelX float64
	Label        string
	Total        int
	TotalY       float64
	Segs         []seg
}

type seg struct {
	X, Y, W, H float64
	Class      string
	Title      string
	Key        string
}

type legendItem struct {
	X     float64
	Class string
	Key   string
}

const (
	chartBarW   = 56.0
	chartGap    = 24.0
	chartTop    = 24.0
	chartPlot   = 160.0
	chartBottom = 28.0
	chartLegend = 24.0
)

func newBarChart(labels []string, days []map[notify.Status]int) barChart {
	ch := barChart{Width: int(float64(len(days))*(chartBarW+chartGap) + chartGap),
		Height: int(chartLegend + chartTop + chartPlot + chartBottom), BaseY: chartLegend + chartTop + chartPlot}
	peak := 1
	for _, day := range days {
		t := 0
		for _, st := range statuses {
			t += day[st]
		}
		peak = max(peak, t)
	}
	for i, st := range statuses {
		ch.Legend = append(ch.Legend, legendItem{X: chartGap + float64(i)*110, Class: "st-" + string(st), Key: string(st)})
	}
	for i, day := range days {
		x := chartGap + float64(i)*(chartBarW+chartGap)
		b := bar{X: x, W: chartBarW, LabelX: x + chartBarW/2, Label: labels[i]}
		y := ch.BaseY
		for _, st := range statuses {
			n := day[st]
			if n == 0 {
				continue
			}
			h := chartPlot * float64(n) / float64(peak)
			y -= h
			b.Segs = append(b.Segs, seg{X: x, Y: y, W: chartBarW, H: h, Class: "st-" + string(st), Title: fmt.Sprintf("%s %s: %d", labels[i], st, n)})
			b.Total += n
		}
		b.TotalY = y - 6
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}

// notificationsPageSize is the page size of the notifications list.
const notificationsPageSize = 50

type notificationsData struct {
	Filter   notify.NotificationFilter
	Status   string
	Items    []notify.Notification
	Next     string
	NextURL  string
	Statuses []notify.Status
	Aliases  []string
	Filtered bool
}

// GET /console/apps/{app}/notifications?userId=&openid=&template=&status=&batch=&cursor=
func (c *Console) handleNotifications(w http.ResponseWriter, r *http.Request, a App) {
	q := r.URL.Query()
	f := notify.NotificationFilter{UserID: q.Get("userId"), OpenID: q.Get("openid"), Template: q.Get("template"),
		Status: notify.Status(q.Get("status")), Batch: q.Get("batch")}
	d := notificationsData{Filter: f, Status: string(f.Status), Statuses: statuses,
		Filtered: f.UserID != "" || f.OpenID != "" || f.Template != "" || f.Status != "" || f.Batch != ""}
	for _, t := range a.Service.Catalog().Templates() {
		d.Aliases = append(d.Aliases, t.Alias)
	}
	p := &page{Active: "notifications", App: a.ID, Data: &d}
	pg, err := a.Service.ListNotifications(r.Context(), f, q.Get("cursor"), notificationsPageSize)
	if err != nil {
		status, code, msg := domainStatus(err)
		if status >= 500 {
			c.failErr(w, r, err)
			return
		}
		p.Problem, p.Code = msg, code
		c.render(w, r, status, "notifications", p)
		return
	}
	d.Items, d.Next = pg.Notifications, pg.Next
	if pg.Next != "" {
		nq := url.Values{}
		for _, k := range []string{"userId", "openid", "template", "status", "batch", "lang"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("cursor", pg.Next)
		d.NextURL = p.AppURL("notifications") + "?" + nq.Encode()
	}
	c.render(w, r, http.StatusOK, "notifications", p)
}

// validID reports whether v can be a record id (as httpapi's path checks).
func validID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch == '_' || ch == '-' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			return false
		}
	}
	return true
}

type keyValue struct{ Key, Value string }

type notificationData struct {
	N    notify.Notification
	Data []keyValue
	notificationHooks
}

// GET /console/apps/{app}/notifications/{id}: the request, WeChat's answer,
// the settlement, the push event that settled it and the deliveries of its
// webhook events (webhooks.go).
func (c *Console) handleNotification(w http.ResponseWriter, r *http.Request, a App) {
	id := r.PathValue("id")
	if !validID(id) {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such notification")
		return
	}
	n, err := a.Service.Notification(r.Context(), id)
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	d := notificationData{N: n, notificationHooks: c.notificationHooks(r.Context(), a, n)}
	for k, v := range n.Data {
		d.Data = append(d.Data, keyValue{k, v})
	}
	slices.SortFunc(d.Data, func(x, y keyValue) int { return strings.Compare(x.Key, y.Key) })
	c.render(w, r, http.StatusOK, "notification", &page{Active: "notifications", App: a.ID, Data: d})
}

const batchesPageSize = 20

type batchesData struct {
	Items   []notify.Batch
	NextURL string
}

// GET /console/apps/{app}/batches?cursor=
func (c *Console) handleBatches(w http.ResponseWriter, r *http.Request, a App) {
	p := &page{Active: "batches", App: a.ID}
	pg, err := a.Service.ListBatches(r.Context(), r.URL.Query().Get("cursor"), batchesPageSize)
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	d := batchesData{Items: pg.Batches}
	if pg.Next != "" {
		d.NextURL = p.AppURL("batches") + "?" + url.Values{"cursor": {pg.Next}}.Encode()
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "batches", p)
}

// progress is a batch's counts and the geometry of its progress bar, the
// page's and the JSON's that its script polls.
type progress struct {
	Status  notify.BatchStatus `json:"status"`
	Final   bool               `json:"final"`
	Total   int                `json:"total"`
	Sent    int                `json:"sent"`
	Skipped int                `json:"skipped"`
	Failed  int                `json:"failed"`
	Unknown int                `json:"unknown"`
	Pending int                `json:"pending"`
	Width   float64            `json:"width"`
	Segs    []seg              `json:"segs"`
}

const progressWidth = 600.0

func batchProgress(b notify.Batch) progress {
	p := progress{Status: b.Status, Final: b.Status == notify.BatchDone || b.Status == notify.BatchCancelled,
		Total: b.Total, Sent: b.Sent, Skipped: b.Skipped, Failed: b.Failed, Unknown: b.Unknown, Pending: b.Pending(), Width: progressWidth}
	x := 0.0
	for _, part := range []struct {
		key string
		n   int
	}{{"sent", p.Sent}, {"skipped", p.Skipped}, {"failed", p.Failed}, {"unknown", p.Unknown}, {"pending", p.Pending}} {
		w := 0.0
		if p.Total > 0 {
			w = progressWidth * float64(part.n) / float64(p.Total)
		}
		p.Segs = append(p.Segs, seg{X: x, Y: 0, W: w, H: 24, Class: "st-" + part.key, Key: part.key, Title: fmt.Sprintf("%s: %d", part.key, part.n)})
		x += w
	}
	return p
}

type batchData struct {
	B        notify.Batch
	Progress progress
	Data     []keyValue
}

// GET /console/apps/{app}/batches/{id}
func (c *Console) handleBatch(w http.ResponseWriter, r *http.Request, a App) {
	b, ok := c.batch(w, r, a)
	if !ok {
		return
	}
	d := batchData{B: b, Progress: batchProgress(b)}
	for k, v := range b.Data {
		d.Data = append(d.Data, keyValue{k, v})
	}
	slices.SortFunc(d.Data, func(x, y keyValue) int { return strings.Compare(x.Key, y.Key) })
	c.render(w, r, http.StatusOK, "batch", &page{Active: "batches", App: a.ID, Data: d})
}

func (c *Console) batch(w http.ResponseWriter, r *http.Request, a App) (notify.Batch, bool) {
	id := r.PathValue("id")
	if !validID(id) {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such batch")
		return notify.Batch{}, false
	}
	b, err := a.Service.Batch(r.Context(), id)
	if err != nil {
		c.failErr(w, r, err)
		return notify.Batch{}, false
	}
	return b, true
}

// GET /console/apps/{app}/batches/{id}/progress: the JSON the batch page
// polls.
func (c *Console) handleBatchProgress(w http.ResponseWriter, r *http.Request, a App) {
	b, ok := c.batch(w, r, a)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, batchProgress(b))
}

// POST /console/apps/{app}/batches/{id}/cancel (CSRF-checked by signedIn)
func (c *Console) handleCancelBatch(w http.ResponseWriter, r *http.Request, a App) {
	id := r.PathValue("id")
	if !validID(id) {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such batch")
		return
	}
	b, err := a.Service.CancelBatch(r.Context(), id)
	result := string(b.Status)
	if err != nil {
		_, result, _ = domainStatus(err)
	}
	c.audit(r.Context(), a.Service.AppID(), auditEntry{Action: "batch_cancel", Actor: sessionOf(r.Context()).Key,
		IP: clientAddr(r), Target: id, Result: result})
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/apps/"+url.PathEscape(a.ID)+"/batches/"+id, http.StatusSeeOther)
}

type keywordRow struct {
	notify.Keyword
	Limit, Note, Example string
}

type templateRow struct {
	notify.Template
	Rows []keywordRow
}

// GET /console/apps/{app}/templates: the catalog with each keyword's rule.
func (c *Console) handleTemplates(w http.ResponseWriter, r *http.Request, a App) {
	var rows []templateRow
	for _, t := range a.Service.Catalog().Templates() {
		tr := templateRow{Template: t}
		for _, kw := range t.Keywords {
			limit, note, example, _ := wechat.KeywordRule(kw.Type)
			tr.Rows = append(tr.Rows, keywordRow{Keyword: kw, Limit: limit, Note: note, Example: example})
		}
		rows = append(rows, tr)
	}
	c.render(w, r, http.StatusOK, "templates", &page{Active: "templates", App: a.ID, Data: rows})
}

const auditPageSize = 50

type auditData struct {
	Items   []auditEntry
	NextURL string
}

// GET /console/apps/{app}/audit?cursor=
func (c *Console) handleAudit(w http.ResponseWriter, r *http.Request, a App) {
	p := &page{Active: "audit", App: a.ID}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" && !validAuditCursor(cursor) {
		c.fail(w, r, http.StatusBadRequest, codeBadRequest, "cursor: is not a cursor this list answered")
		return
	}
	items, next, err := c.auditPage(r.Context(), a.Service.AppID(), cursor, auditPageSize)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
		return
	}
	d := auditData{Items: items}
	if next != "" {
		d.NextURL = p.AppURL("audit") + "?" + url.Values{"cursor": {next}}.Encode()
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "audit", p)
}
