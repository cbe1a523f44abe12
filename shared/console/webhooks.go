package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// The Webhooks pages: an app's outcome webhook subscriptions (wxnotify.yaml,
// never their secrets) with their state and recent deliveries, each
// subscription's deliveries page by page, and the replay and enable forms
// (as POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay and
// /v1/webhooks/{id}/enable). The notification page shows the deliveries
// of the notification's events (notificationHooks).

// Page sizes: the recent deliveries of each subscription on the Webhooks
// page, a page of one subscription's deliveries.
const (
	webhooksRecent   = 5
	webhookPageSize  = 20
	deliveryStatuses = "pending delivered failed dead"
)

// hookView is one subscription with its state.
type hookView struct {
	notify.WebhookInfo
	State notify.WebhookState
	// Recent are its newest deliveries (the Webhooks page), or a page of
	// them (the subscription's page); Next links to the following page.
	Recent  []deliveryView
	NextURL string
}

// deliveryView is a delivery with what its row shows.
type deliveryView struct {
	notify.WebhookDelivery
	// Last is the last attempt, nil before any (a pending replay has the
	// earlier ones).
	Last *notify.DeliveryAttempt
	// Notification is the notification whose event it delivers ("" for
	// another event).
	Notification string
	// Replayable: a replay would queue it again (delivered or dead).
	Replayable bool
}

func newDeliveryView(d notify.WebhookDelivery) deliveryView {
	v := deliveryView{WebhookDelivery: d, Replayable: d.Status == notify.DeliveryDelivered || d.Status == notify.DeliveryDead}
	if n := len(d.Attempts); n > 0 {
		v.Last = &d.Attempts[n-1]
	}
	if strings.HasPrefix(d.EventType, "notification.") {
		if id, _, ok := strings.Cut(d.EventID, ":"); ok && validID(id) {
			v.Notification = id
		}
	}
	return v
}

// hookErr answers a domain error of the webhook routes: the webhook codes
// as not_found and conflict.
func (c *Console) hookErr(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := hookStatus(err)
	if status >= 500 {
		c.log.Error("console request failed", "path", r.URL.Path, "err", err.Error())
	}
	c.fail(w, r, status, code, msg)
}

func hookStatus(err error) (int, string, string) {
	var e *notify.Error
	if errors.As(err, &e) {
		switch e.Code {
		case notify.CodeWebhookNotFound, notify.CodeDeliveryNotFound:
			return http.StatusNotFound, codeNotFound, e.Message
		case notify.CodeWebhookDisabled:
			return http.StatusConflict, codeConflict, e.Message
		}
	}
	return domainStatus(err)
}

// hookView reads the state of subscription info and its deliveries (one
// page of limit after cursor, with status if not "").
func (c *Console) hookView(ctx context.Context, a App, info notify.WebhookInfo, status notify.DeliveryStatus, cursor string, limit int) (hookView, string, error) {
	v := hookView{WebhookInfo: info}
	var err error
	if v.State, err = a.Service.WebhookStatus(ctx, info.ID); err != nil {
		return v, "", err
	}
	pg, err := a.Service.ListWebhookDeliveries(ctx, info.ID, status, cursor, limit)
	if err != nil {
		return v, "", err
	}
	for _, d := range pg.Deliveries {
		v.Recent = append(v.Recent, newDeliveryView(d))
	}
	return v, pg.Next, nil
}

type webhooksData struct {
	Hooks  []hookView
	Recent int
}

// GET /console/apps/{app}/webhooks: every subscription with its state and
// its newest deliveries (per subscription a read of its state and one
// Query).
func (c *Console) handleWebhooks(w http.ResponseWriter, r *http.Request, a App) {
	p := &page{Active: "webhooks", App: a.ID}
	d := webhooksData{Recent: webhooksRecent}
	for _, info := range a.Service.Webhooks() {
		v, _, err := c.hookView(r.Context(), a, info, "", "", webhooksRecent)
		if err != nil {
			c.hookErr(w, r, err)
			return
		}
		d.Hooks = append(d.Hooks, v)
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "webhooks", p)
}

type webhookData struct {
	Hook     hookView
	Status   string
	Statuses []string
	Cursor   string
}

// webhookInfo returns the subscription of the request's {id}.
func (c *Console) webhookInfo(w http.ResponseWriter, r *http.Request, a App) (notify.WebhookInfo, bool) {
	id := r.PathValue("id")
	for _, info := range a.Service.Webhooks() {
		if info.ID == id {
			return info, true
		}
	}
	c.fail(w, r, http.StatusNotFound, codeNotFound, "no such webhook")
	return notify.WebhookInfo{}, false
}

// GET /console/apps/{app}/webhooks/{id}?status=&cursor=: the subscription
// and its deliveries, newest first, 20 a page.
func (c *Console) handleWebhook(w http.ResponseWriter, r *http.Request, a App) {
	info, ok := c.webhookInfo(w, r, a)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := &page{Active: "webhooks", App: a.ID}
	d := webhookData{Status: q.Get("status"), Statuses: strings.Fields(deliveryStatuses), Cursor: q.Get("cursor")}
	v, next, err := c.hookView(r.Context(), a, info, notify.DeliveryStatus(d.Status), d.Cursor, webhookPageSize)
	if err != nil {
		c.hookErr(w, r, err)
		return
	}
	if next != "" {
		nq := url.Values{"cursor": {next}}
		for _, k := range []string{"status", "lang"} {
			if s := q.Get(k); s != "" {
				nq.Set(k, s)
			}
		}
		v.NextURL = p.AppURL("webhooks/"+url.PathEscape(info.ID)) + "?" + nq.Encode()
	}
	d.Hook = v
	p.Data = d
	c.render(w, r, http.StatusOK, "webhook", p)
}

// backTo is where a webhook form leads after it is posted: its field
// "from" names the page it was on (never a URL: no open redirect).
func backTo(a App, sub string, r *http.Request) string {
	base := "/console/apps/" + url.PathEscape(a.ID) + "/"
	from := r.PostFormValue("from")
	if from == "webhooks" {
		return base + "webhooks"
	}
	if id, ok := strings.CutPrefix(from, "notification:"); ok && validID(id) {
		return base + "notifications/" + id
	}
	return base + "webhooks/" + url.PathEscape(sub)
}

// POST /console/apps/{app}/webhooks/{id}/deliveries/{delivery}/replay
// (CSRF-checked by signedIn): queue the delivery again; audited
// webhook_replay with the subscription/delivery and the delivery's status
// after (or the error code).
func (c *Console) handleReplayDelivery(w http.ResponseWriter, r *http.Request, a App) {
	sub, id := r.PathValue("id"), r.PathValue("delivery")
	d, err := a.Service.ReplayWebhookDelivery(r.Context(), sub, id)
	result := string(d.Status)
	if err != nil {
		result = auditCode(err)
	}
	c.audit(r.Context(), a.Service.AppID(), auditEntry{Action: "webhook_replay", Actor: sessionOf(r.Context()).Key,
		IP: clientAddr(r), Target: auditTarget(sub, id), Result: result})
	if err != nil {
		c.hookErr(w, r, err)
		return
	}
	http.Redirect(w, r, backTo(a, sub, r), http.StatusSeeOther)
}

// POST /console/apps/{app}/webhooks/{id}/enable (CSRF-checked by
// signedIn): enable a subscription a 410 Gone disabled; audited
// webhook_enable with the result (enabled, or the error code).
func (c *Console) handleEnableWebhook(w http.ResponseWriter, r *http.Request, a App) {
	sub := r.PathValue("id")
	_, err := a.Service.EnableWebhook(r.Context(), sub)
	result := "enabled"
	if err != nil {
		result = auditCode(err)
	}
	c.audit(r.Context(), a.Service.AppID(), auditEntry{Action: "webhook_enable", Actor: sessionOf(r.Context()).Key,
		IP: clientAddr(r), Target: auditTarget(sub, ""), Result: result})
	if err != nil {
		c.hookErr(w, r, err)
		return
	}
	http.Redirect(w, r, backTo(a, sub, r), http.StatusSeeOther)
}

// auditTarget names a subscription (and delivery) in an audit entry,
// bounded: the path values are the client's.
func auditTarget(sub, delivery string) string {
	t := sub
	if delivery != "" {
		t += "/" + delivery
	}
	if len(t) > 200 {
		t = t[:200]
	}
	return t
}

// notificationHooks is what the notification page shows of push and
// webhooks: WeChat's sent event that settled or confirmed the send, and
// the deliveries of the notification's events.
type notificationHooks struct {
	SentEvent  *notify.TimelineEvent
	Hooks      bool // the app has subscriptions
	Deliveries []deliveryView
	// HooksProblem is set when the deliveries could not be read (the
	// page is shown without them).
	HooksProblem string
}

// notificationHooks reads them for n: the sent event from the user's
// timeline (notify.SentEvent), the deliveries by their derived ids
// (notify.NotificationDeliveries).
func (c *Console) notificationHooks(ctx context.Context, a App, n notify.Notification) notificationHooks {
	var h notificationHooks
	if ev, ok, err := a.Service.SentEvent(ctx, n); err != nil {
		c.log.Warn("console: sent event not read", "notification", n.ID, "err", err.Error())
	} else if ok {
		h.SentEvent = &ev
	}
	h.Hooks = len(a.Service.Webhooks()) > 0
	if !h.Hooks {
		return h
	}
	ds, err := a.Service.NotificationDeliveries(ctx, n.ID)
	if err != nil {
		c.log.Warn("console: notification deliveries not read", "notification", n.ID, "err", err.Error())
		h.HooksProblem = "store_unavailable"
		return h
	}
	for _, d := range ds {
		h.Deliveries = append(h.Deliveries, newDeliveryView(d))
	}
	return h
}

// auditCode is the result of a refused action in an audit entry: the
// domain's error code.
func auditCode(err error) string {
	if code := notify.CodeOf(err); code != "" {
		return string(code)
	}
	return codeInternal
}

// hookCtx is what the hookstate and hookinfo templates (hooks.html) get.
type hookCtx struct {
	P    *page
	H    hookView
	From string
}

// Hook is the context of the hookstate and hookinfo templates: h on the
// page named from (the replay and enable forms' "from").
func (p *page) Hook(h hookView, from string) hookCtx { return hookCtx{P: p, H: h, From: from} }

// deliveryTable is what the deliveries template (hooks.html) gets.
type deliveryTable struct {
	P     *page
	Items []deliveryView
	From  string
	// Disabled: the subscription is disabled, no replay form is shown.
	Disabled bool
	// ShowSub: a column of the subscription (the notification page).
	ShowSub bool
}

// Deliveries is the context of the deliveries template.
func (p *page) Deliveries(items []deliveryView, from string, disabled, showSub bool) deliveryTable {
	return deliveryTable{P: p, Items: items, From: from, Disabled: disabled, ShowSub: showSub}
}
