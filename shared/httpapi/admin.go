package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// adminRoutes are the Admin group's routes, under server auth: read-only
// views of the domain for operators and the CLI (`wxnotify consents
// show`), and the outcome webhooks' deliveries (list, replay, enable).
func (a *API) adminRoutes() []route {
	return []route{
		{"GET /v1/users/{userId}/consents", a.server, a.handleUserConsents, 0},
		{"GET /v1/openids/{openid}/consents", a.server, a.handleOpenIDConsents, 0},
		{"GET /v1/users/{userId}", a.server, a.handleUser, 0},
		{"GET /v1/users/{userId}/timeline", a.server, a.handleUserTimeline, 0},
		{"GET /v1/webhooks/{id}/deliveries", a.server, a.handleListDeliveries, 0},
		{"POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay", a.server, a.handleReplayDelivery, 0},
		{"POST /v1/webhooks/{id}/enable", a.server, a.handleEnableWebhook, 0},
	}
}

// ledgerJSON is a user's consent ledger as an operator sees it.
type ledgerJSON struct {
	OpenID   string              `json:"openid"`
	UserID   string              `json:"userId,omitempty"`
	Consents []ledgerConsentJSON `json:"consents"`
}

// ledgerConsentJSON is the mini program's consentJSON plus when the
// standing last changed.
type ledgerConsentJSON struct {
	consentJSON
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// GET /v1/users/{userId}/consents: the ledger of the WeChat user bound to
// userId; not_found when none is. (userId is checked by pathParams.)
func (a *API) handleUserConsents(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userId")
	openID, err := svc(r).ResolveUserID(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.writeLedger(w, r, openID, userID)
}

// GET /v1/openids/{openid}/consents: the ledger of an openid. A user who
// never logged in still has one (WeChat's pushes record consents), so an
// unknown openid answers an empty ledger, not not_found. (openid is checked
// by pathParams.)
func (a *API) handleOpenIDConsents(w http.ResponseWriter, r *http.Request) {
	openID := r.PathValue("openid")
	var userID string
	u, err := svc(r).User(r.Context(), openID)
	switch {
	case err == nil:
		userID = u.UserID
	case notify.CodeOf(err) != notify.CodeNotFound:
		writeError(w, r, err)
		return
	}
	a.writeLedger(w, r, openID, userID)
}

func (a *API) writeLedger(w http.ResponseWriter, r *http.Request, openID, userID string) {
	noteOpenID(r, openID)
	cs, err := svc(r).Consents(r.Context(), openID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := ledgerJSON{OpenID: openID, UserID: userID, Consents: make([]ledgerConsentJSON, 0, len(cs))}
	for _, c := range cs {
		out.Consents = append(out.Consents, ledgerConsent(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// ledgerConsent is the JSON of one template's standing for operators.
func ledgerConsent(c notify.Consent) ledgerConsentJSON {
	cj := consentJSON{Alias: c.Template.Alias, TemplateID: c.Template.ID, Kind: c.Template.Kind, Status: c.Status,
		Credits: c.Credits, AlwaysKeep: c.AlwaysKeep, Prompt: c.Prompt}
	if c.Template.Kind == notify.LongTerm {
		accepted := c.LongTerm
		cj.Accepted = &accepted
	}
	return ledgerConsentJSON{consentJSON: cj, UpdatedAt: c.UpdatedAt}
}

// IsOpenID accepts what WeChat issues as openids: at most 64 ASCII
// letters, digits, '-' and '_'. The push route and the sandbox hold
// openids to it too.
func IsOpenID(s string) bool { return s != "" && len(s) <= 64 && isIDChars(s) }

// userJSON is GET /v1/users/{userId}: what is known of a userId in the
// route's app.
type userJSON struct {
	UserID       string            `json:"userId"`
	App          string            `json:"app"`
	AppID        string            `json:"appId"`
	Bindings     []bindingJSON     `json:"bindings"`
	FirstLogin   time.Time         `json:"firstLogin,omitzero"`
	LastLogin    time.Time         `json:"lastLogin,omitzero"`
	LastPromptAt time.Time         `json:"lastPromptAt,omitzero"`
	LastAcceptAt time.Time         `json:"lastAcceptAt,omitzero"`
	Consents     []userConsentJSON `json:"consents"`
}

// bindingJSON is the openid bound to a userId in one app.
type bindingJSON struct {
	App     string    `json:"app"`
	AppID   string    `json:"appId"`
	OpenID  string    `json:"openid"`
	BoundAt time.Time `json:"boundAt,omitzero"`
}

// userConsentJSON is ledgerConsentJSON with the template's last prompt
// and accept.
type userConsentJSON struct {
	ledgerConsentJSON
	LastPromptAt time.Time `json:"lastPromptAt,omitzero"`
	LastAcceptAt time.Time `json:"lastAcceptAt,omitzero"`
}

// GET /v1/users/{userId}: the userId's binding, logins, ledger and last
// prompt and accept, per template and overall, in the route's app; 404
// user_not_found when no WeChat user of the app is bound to it. The
// bindings also list the userId's openids in the deployment's other apps
// that the API key may act for (one read each): each app's stored keys
// are read through that app's service.
func (a *API) handleUser(w http.ResponseWriter, r *http.Request) {
	ap := appOf(r)
	userID := r.PathValue("userId")
	o, err := ap.svc.UserOverview(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := userJSON{UserID: o.UserID, App: ap.id, AppID: ap.svc.AppID(), Bindings: make([]bindingJSON, 0, len(o.Bindings)),
		LastPromptAt: o.LastPromptAt, LastAcceptAt: o.LastAcceptAt, Consents: make([]userConsentJSON, 0, len(o.Consents))}
	for _, b := range o.Bindings {
		out.Bindings = append(out.Bindings, bindingJSON{App: ap.id, AppID: ap.svc.AppID(), OpenID: b.OpenID, BoundAt: b.BoundAt})
	}
	key, _ := bearer(r)
	for _, other := range a.order {
		if other == ap || a.scope(other, key) != keyValid {
			continue
		}
		b, err := other.svc.Binding(r.Context(), userID)
		switch {
		case err == nil:
			out.Bindings = append(out.Bindings, bindingJSON{App: other.id, AppID: other.svc.AppID(), OpenID: b.OpenID, BoundAt: b.BoundAt})
		case notify.CodeOf(err) != notify.CodeUserNotFound:
			writeError(w, r, err)
			return
		}
	}
	if len(o.Bindings) > 0 {
		noteOpenID(r, o.Bindings[0].OpenID)
	}
	if o.Profile != nil {
		out.FirstLogin, out.LastLogin = o.Profile.FirstLogin, o.Profile.LastLogin
	}
	for _, c := range o.Consents {
		out.Consents = append(out.Consents, userConsentJSON{ledgerConsentJSON: ledgerConsent(c),
			LastPromptAt: c.LastPromptAt, LastAcceptAt: c.LastAcceptAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// timelineEventJSON is one event of GET /v1/users/{userId}/timeline.
type timelineEventJSON struct {
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	Template       string    `json:"template,omitempty"` // the alias, when the catalog still has it
	TemplateID     string    `json:"templateId"`
	Status         string    `json:"status,omitempty"`
	Source         string    `json:"source,omitempty"`
	NotificationID string    `json:"notificationId,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Errcode        int       `json:"errcode,omitempty"`
	MsgID          string    `json:"msgid,omitempty"`
}

// GET /v1/users/{userId}/timeline?since=&until=&limit=&cursor=: the
// events of the userId's WeChat user, newest first.
func (a *API) handleUserTimeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f notify.TimelineFilter
	if err := parseTimes(q.Get, &f.Since, &f.Until); err != nil {
		writeError(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"), notify.MaxTimelineLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s := svc(r)
	page, err := s.Timeline(r.Context(), r.PathValue("userId"), f, q.Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOpenID(r, page.OpenID)
	out := struct {
		Events []timelineEventJSON `json:"events"`
		Next   string              `json:"next,omitempty"`
	}{Events: make([]timelineEventJSON, 0, len(page.Events)), Next: page.Next}
	for _, ev := range page.Events {
		j := timelineEventJSON{Type: ev.Type, At: ev.At, TemplateID: ev.TemplateID, Status: ev.Status, Source: string(ev.Source),
			NotificationID: ev.Notification, Reason: ev.Reason, Errcode: ev.Errcode, MsgID: ev.MsgID}
		if t, ok := s.Catalog().Lookup(ev.TemplateID); ok && t.ID == ev.TemplateID {
			j.Template = t.Alias
		}
		out.Events = append(out.Events, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// parseTimes reads the since and until parameters (RFC 3339).
func parseTimes(get func(string) string, since, until *time.Time) error {
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", since}, {"until", until}} {
		v := get(t.name)
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return notify.FieldError(t.name, "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		*t.to = at
	}
	return nil
}

// parseLimit reads a page size, defaultNotificationListLimit when v is
// empty; the domain checks its range.
func parseLimit(v string, maxLimit int) (int, error) {
	if v == "" {
		return defaultNotificationListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 4 {
		return 0, notify.FieldError("limit", "must be a number from 1 to %d", maxLimit)
	}
	return n, nil
}
