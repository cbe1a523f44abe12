package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// The Users pages: find a user by userId or openid, a user's bindings,
// ledger and timeline, and unbinding a userId with a confirmation. One
// template file (users.html) shows every view, so that the ledger and the
// search form are written once.
//
// A userId and an openid are personal identifiers (docs/observability.md,
// PIPL): no log line of these handlers holds either, only notify.HashID
// of the userId. The audit log, inside the console, holds the userId as
// typed.

// Views of users.html.
const (
	viewSearch = "search" // the search form, a problem or a notice
	viewOpenID = "openid" // the ledger of an openid no userId is bound to
	viewUser   = "user"   // a bound userId: bindings, ledger, timeline
	viewUnbind = "unbind" // the confirmation of an unbind
)

// Codes of the Users pages' refusals beyond console.go's.
const codeUserNotFound = "user_not_found"

// timelinePageSize is the default page of a user's timeline (as GET
// /v1/users/{userId}/timeline's).
const timelinePageSize = 20

// ledgerRow is one template's standing on a page.
type ledgerRow struct {
	Alias, Title, TemplateID string
	Kind                     notify.Kind
	OneTime                  bool
	Credits                  int64
	Accepted                 bool
	Status                   string // "" when never asked
	AlwaysKeep, Prompt       bool
	LastPromptAt             time.Time
	LastAcceptAt             time.Time
	UpdatedAt                time.Time
}

// bindingRow is the userId's openid in one app.
type bindingRow struct {
	App     string
	OpenID  string
	BoundAt time.Time
	Here    bool // the page's app
}

// eventRow is one timeline event on a page.
type eventRow struct {
	notify.TimelineEvent
	Alias, Title string
	Link         bool // Notification is an id the notification page takes
}

type usersData struct {
	View string
	// The search form's values, as typed.
	QueryUserID, QueryOpenID string
	// Notice is a message key of a done action.
	Notice string
	// The user (viewUser, viewUnbind) or the openid (viewOpenID).
	UserID   string
	OpenID   string
	BoundAt  time.Time
	Bindings []bindingRow
	Profile  *notify.User
	Ledger   []ledgerRow
	// LastPromptAt and LastAcceptAt are the latest over every template.
	LastPromptAt, LastAcceptAt time.Time
	Events                     []eventRow
	// TimelineProblem and TimelineCode: the timeline could not be read
	// (a bad cursor or limit).
	TimelineProblem, TimelineCode string
	NextURL, FirstURL             string
}

// UserURL is the path of the page's userId in app, followed by rest
// ("", "/unbind").
func (d *usersData) UserURL(app, rest string) string {
	return "/console/apps/" + url.PathEscape(app) + "/users/" + url.PathEscape(d.UserID) + rest
}

// TIf translates key when it is a message, else answers raw: the words
// of a domain value (a status, a source) the console knows, the value
// itself otherwise.
func (p *page) TIf(key, raw string) string {
	if _, ok := messages[key]; ok {
		return p.T(key)
	}
	return raw
}

// renderUsers answers users.html with d.
func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, a App, status int, d *usersData, problem, code string) {
	c.render(w, r, status, "users", &page{Active: "users", App: a.ID, Data: d, Problem: problem, Code: code})
}

// failUser answers a domain error of a Users page: the search form with a
// problem for user_not_found and bad input, the error page otherwise. A
// 5xx is logged with the userId's hash only.
func (c *Console) failUser(w http.ResponseWriter, r *http.Request, a App, d *usersData, err error) {
	switch notify.CodeOf(err) {
	case notify.CodeUserNotFound, notify.CodeNotFound:
		d.View = viewSearch
		c.renderUsers(w, r, a, http.StatusNotFound, d, "users_not_found", codeUserNotFound)
		return
	case notify.CodeBadRequest:
		d.View = viewSearch
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_bad_user_id", codeBadRequest)
		return
	}
	status, code, msg := domainStatus(err)
	if status >= 500 {
		c.log.Error("console request failed", "page", "users", "userIdHash", notify.HashID(d.UserID),
			"openidHash", notify.HashID(d.OpenID), "code", string(notify.CodeOf(err)))
	}
	c.fail(w, r, status, code, msg)
}

// GET /console/apps/{app}/users?userId=|openid=: the search form; a
// userId leads to its page, an openid to its userId's page or, when none
// is bound to it, to the openid's own ledger.
func (c *Console) handleUsers(w http.ResponseWriter, r *http.Request, a App) {
	q := r.URL.Query()
	d := &usersData{View: viewSearch, QueryUserID: q.Get("userId"), QueryOpenID: q.Get("openid")}
	if !q.Has("userId") && !q.Has("openid") {
		c.renderUsers(w, r, a, http.StatusOK, d, "", "")
		return
	}
	userID, openID := strings.TrimSpace(d.QueryUserID), strings.TrimSpace(d.QueryOpenID)
	switch {
	case userID == "" && openID == "":
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_empty", codeBadRequest)
		return
	case userID != "" && openID != "":
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_both", codeBadRequest)
		return
	case userID != "":
		if notify.CheckUserID("userId", userID) != nil {
			c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_bad_user_id", codeBadRequest)
			return
		}
		d.UserID = userID
		if _, err := a.Service.Binding(r.Context(), userID); err != nil {
			c.failUser(w, r, a, d, err)
			return
		}
		http.Redirect(w, r, c.userPath(a, userID, ""), http.StatusSeeOther)
		return
	}
	if !validID(openID) {
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_bad_openid", codeBadRequest)
		return
	}
	d.OpenID = openID
	u, err := a.Service.User(r.Context(), openID)
	switch {
	case err == nil:
		u.SessionKey = ""
		d.Profile = &u
		if u.UserID != "" {
			// The userId's page, if the binding still names this openid.
			b, err := a.Service.Binding(r.Context(), u.UserID)
			if err == nil && b.OpenID == openID {
				http.Redirect(w, r, c.userPath(a, u.UserID, ""), http.StatusSeeOther)
				return
			}
			if err != nil && notify.CodeOf(err) != notify.CodeUserNotFound {
				c.failUser(w, r, a, d, err)
				return
			}
		}
	case notify.CodeOf(err) != notify.CodeNotFound:
		c.failUser(w, r, a, d, err)
		return
	}
	consents, err := a.Service.Consents(r.Context(), openID)
	if err != nil {
		c.failUser(w, r, a, d, err)
		return
	}
	d.View, d.Ledger = viewOpenID, ledgerRows(consents)
	d.LastPromptAt, d.LastAcceptAt = latest(consents)
	c.renderUsers(w, r, a, http.StatusOK, d, "", "")
}

// userPath is the path of a userId's page of app a, with a query.
func (c *Console) userPath(a App, userID, query string) string {
	p := "/console/apps/" + url.PathEscape(a.ID) + "/users/" + url.PathEscape(userID)
	if query != "" {
		p += "?" + query
	}
	return p
}

// GET /console/apps/{app}/users/{userId}?cursor=&limit=&notice=: the
// bindings, the ledger and the timeline of a userId.
func (c *Console) handleUser(w http.ResponseWriter, r *http.Request, a App) {
	q := r.URL.Query()
	userID := r.PathValue("userId")
	d := &usersData{View: viewUser, QueryUserID: userID, UserID: userID}
	if notify.CheckUserID("userId", userID) != nil {
		d.View = viewSearch
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_bad_user_id", codeBadRequest)
		return
	}
	o, err := a.Service.UserOverview(r.Context(), userID)
	if err != nil {
		if notify.CodeOf(err) == notify.CodeUserNotFound && q.Get("notice") == "unbound" {
			// Just unbound here: say so.
			d.View, d.Notice = viewSearch, "users_notice_unbound"
			c.renderUsers(w, r, a, http.StatusOK, d, "", "")
			return
		}
		c.failUser(w, r, a, d, err)
		return
	}
	if err := c.fillUser(r.Context(), a, d, o); err != nil {
		c.failUser(w, r, a, d, err)
		return
	}
	limit := timelinePageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > notify.MaxTimelineLimit {
			d.TimelineProblem, d.TimelineCode = "users_bad_limit", codeBadRequest
			c.renderUsers(w, r, a, http.StatusBadRequest, d, "", "")
			return
		}
		limit = n
	}
	cursor := q.Get("cursor")
	tl, err := a.Service.Timeline(r.Context(), userID, notify.TimelineFilter{}, cursor, limit)
	switch {
	case err == nil:
	case notify.CodeOf(err) == notify.CodeBadRequest:
		d.TimelineProblem, d.TimelineCode = "users_bad_cursor", codeBadRequest
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "", "")
		return
	default:
		c.failUser(w, r, a, d, err)
		return
	}
	for _, ev := range tl.Events {
		row := eventRow{TimelineEvent: ev, Link: ev.Notification != "" && validID(ev.Notification)}
		if t, ok := a.Service.Catalog().Lookup(ev.TemplateID); ok && t.ID == ev.TemplateID {
			row.Alias, row.Title = t.Alias, t.Title
		}
		d.Events = append(d.Events, row)
	}
	keep := url.Values{}
	if v := q.Get("limit"); v != "" {
		keep.Set("limit", v)
	}
	if tl.Next != "" {
		next := url.Values{"cursor": {tl.Next}}
		if v := keep.Get("limit"); v != "" {
			next.Set("limit", v)
		}
		d.NextURL = c.userPath(a, userID, next.Encode())
	}
	if cursor != "" {
		d.FirstURL = c.userPath(a, userID, keep.Encode())
	}
	c.renderUsers(w, r, a, http.StatusOK, d, "", "")
}

// fillUser puts o's bindings (also the userId's openids in the other
// apps, one read each), profile and ledger in d.
func (c *Console) fillUser(ctx context.Context, a App, d *usersData, o notify.UserOverview) error {
	for _, b := range o.Bindings {
		d.Bindings = append(d.Bindings, bindingRow{App: a.ID, OpenID: b.OpenID, BoundAt: b.BoundAt, Here: true})
	}
	if len(o.Bindings) > 0 {
		d.OpenID, d.BoundAt = o.Bindings[0].OpenID, o.Bindings[0].BoundAt
	}
	for _, other := range c.apps {
		if other.ID == a.ID {
			continue
		}
		b, err := other.Service.Binding(ctx, o.UserID)
		switch {
		case err == nil:
			d.Bindings = append(d.Bindings, bindingRow{App: other.ID, OpenID: b.OpenID, BoundAt: b.BoundAt})
		case notify.CodeOf(err) != notify.CodeUserNotFound:
			return err
		}
	}
	d.Profile = o.Profile
	d.Ledger = ledgerRows(o.Consents)
	d.LastPromptAt, d.LastAcceptAt = o.LastPromptAt, o.LastAcceptAt
	return nil
}

func ledgerRows(cs []notify.Consent) []ledgerRow {
	out := make([]ledgerRow, 0, len(cs))
	for _, c := range cs {
		out = append(out, ledgerRow{Alias: c.Template.Alias, Title: c.Template.Title, TemplateID: c.Template.ID,
			Kind: c.Template.Kind, OneTime: c.Template.Kind != notify.LongTerm, Credits: c.Credits, Accepted: c.LongTerm,
			Status: c.Status, AlwaysKeep: c.AlwaysKeep, Prompt: c.Prompt, LastPromptAt: c.LastPromptAt,
			LastAcceptAt: c.LastAcceptAt, UpdatedAt: c.UpdatedAt})
	}
	return out
}

// latest is the latest prompt and accept over a ledger.
func latest(cs []notify.Consent) (prompt, accept time.Time) {
	for _, c := range cs {
		if c.LastPromptAt.After(prompt) {
			prompt = c.LastPromptAt
		}
		if c.LastAcceptAt.After(accept) {
			accept = c.LastAcceptAt
		}
	}
	return prompt, accept
}

// GET /console/apps/{app}/users/{userId}/unbind: what unbinding does, and
// the form that does it.
func (c *Console) handleUnbindPage(w http.ResponseWriter, r *http.Request, a App) {
	userID := r.PathValue("userId")
	d := &usersData{View: viewUnbind, QueryUserID: userID, UserID: userID}
	if notify.CheckUserID("userId", userID) != nil {
		d.View = viewSearch
		c.renderUsers(w, r, a, http.StatusBadRequest, d, "users_bad_user_id", codeBadRequest)
		return
	}
	b, err := a.Service.Binding(r.Context(), userID)
	if err != nil {
		c.failUser(w, r, a, d, err)
		return
	}
	d.OpenID, d.BoundAt = b.OpenID, b.BoundAt
	c.renderUsers(w, r, a, http.StatusOK, d, "", "")
}

// POST /console/apps/{app}/users/{userId}/unbind (CSRF-checked by
// signedIn): unbind the userId, as DELETE /v1/bindings/{userId}; audited
// as user_unbind with the userId and the result ("unbound" or the error's
// code).
func (c *Console) handleUnbind(w http.ResponseWriter, r *http.Request, a App) {
	userID := r.PathValue("userId")
	if err := notify.CheckUserID("userId", userID); err != nil {
		c.fail(w, r, http.StatusBadRequest, codeBadRequest, "userId: is not a userId")
		return
	}
	err := a.Service.Unbind(r.Context(), userID)
	result := "unbound"
	if err != nil {
		_, result = unbindStatus(err)
	}
	c.audit(r.Context(), a.Service.AppID(), auditEntry{Action: "user_unbind", Actor: sessionOf(r.Context()).Key,
		IP: clientAddr(r), Target: userID, Result: result})
	if err != nil {
		status, code := unbindStatus(err)
		if status >= 500 {
			c.log.Error("console unbind failed", "userIdHash", notify.HashID(userID), "code", string(notify.CodeOf(err)))
			c.fail(w, r, status, code, "the store did not answer")
			return
		}
		c.fail(w, r, status, code, "no WeChat user of this app is bound to this userId")
		return
	}
	http.Redirect(w, r, c.userPath(a, userID, "notice=unbound"), http.StatusSeeOther)
}

// unbindStatus is the status and code of Unbind's error.
func unbindStatus(err error) (int, string) {
	if code := notify.CodeOf(err); code == notify.CodeNotFound || code == notify.CodeUserNotFound {
		return http.StatusNotFound, codeUserNotFound
	}
	status, code, _ := domainStatus(err)
	return status, code
}
