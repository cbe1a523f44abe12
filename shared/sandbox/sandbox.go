// Package sandbox serves the /sandbox/* routes of `wxnotify dev`: a person
// or a script plays the WeChat user (log in, accept or turn off templates,
// read the messages received) against the in-process fake WeChat of
// wechattest. It exists only in sandbox mode.
package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Sandbox holds the fake WeChat. It keeps no state of its own: what it
// remembers, the fake does, within the fake's Retention.
type Sandbox struct {
	fake *wechattest.Server
}

// New returns the sandbox routes for fake.
func New(fake *wechattest.Server) *Sandbox {
	return &Sandbox{fake: fake}
}

// Route is one sandbox route.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes lists the sandbox routes for mounting on the dev server's mux.
func (s *Sandbox) Routes() []Route {
	out := make([]Route, 0, len(routes))
	for _, rt := range routes {
		out = append(out, Route{rt.method + " " + Prefix + rt.path, s.bind(rt.handle)})
	}
	return out
}

// route is one sandbox route: its method and its path under the prefix
// of its app ("/sandbox" or "/sandbox/apps/{app}").
type route struct {
	method, path string
	handle       func(*Sandbox, http.ResponseWriter, *http.Request)
}

var routes = []route{
	{"POST", "/login", (*Sandbox).login},
	{"POST", "/subscribe", (*Sandbox).subscribe},
	{"POST", "/unsubscribe", (*Sandbox).unsubscribe},
	{"GET", "/messages", (*Sandbox).messages},
	{"POST", "/faults", (*Sandbox).faults},
	{"GET", wechatSub, (*Sandbox).wechat},
	// The access token and template list of WeChat's API, answered by the
	// fake with the templates it was given (the dev server's catalog), so
	// that `wxnotify templates sync --sandbox` makes the calls it makes
	// to WeChat. Sends go through wxnotify, not through here.
	{"POST", wechatSub + "/cgi-bin/stable_token", (*Sandbox).wechatAPI},
	{"GET", wechatSub + "/wxaapi/newtmpl/gettemplate", (*Sandbox).wechatAPI},
}

// bind is h as a handler of s.
func (s *Sandbox) bind(h func(*Sandbox, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }
}

// Prefix is where the sandbox routes of the default app are; those of
// every app are also under AppsPrefix + "/<app>".
const Prefix = "/sandbox"

// AppsPrefix is the parent of each app's sandbox routes (AppRoutes):
// /sandbox/apps/customer/login is the login of the app customer.
const AppsPrefix = Prefix + "/apps"

// wechatSub is the path of the fake's WeChat API under an app's prefix.
const wechatSub = "/wechat"

// AppRoutes lists the sandbox routes of several apps, each app's under
// AppsPrefix/{app} (POST /sandbox/apps/{app}/login, ...): lookup returns
// the Sandbox of the app named in the path (its id or its AppID, as the
// dev server's /v1/apps/{app} takes them), nil for an unknown app, which is
// answered 404 app_not_found.
func AppRoutes(lookup func(app string) *Sandbox) []Route {
	out := make([]Route, 0, len(routes))
	for _, rt := range routes {
		h := rt.handle
		out = append(out, Route{rt.method + " " + AppsPrefix + "/{app}" + rt.path, func(w http.ResponseWriter, r *http.Request) {
			s := lookup(r.PathValue("app"))
			if s == nil {
				writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{
					"code": "app_not_found", "message": "no such app: " + strconv.Quote(r.PathValue("app"))}})
				return
			}
			h(s, w, r)
		}})
	}
	return out
}

// prefix is the prefix of the app whose route r came by: Prefix, or
// AppsPrefix/<app> as the request named the app.
func prefix(r *http.Request) string {
	if app := r.PathValue("app"); app != "" {
		return AppsPrefix + "/" + app
	}
	return Prefix
}

// WeChatPath is where the sandbox serves the default app's fake WeChat API:
// the base URL of a WeChat client that talks to the sandbox is the dev
// server's URL followed by WeChatPath (AppsPrefix/<app>/wechat for another
// app).
const WeChatPath = Prefix + wechatSub

// GET /sandbox/wechat -> {"appid", "secret", "path"}: the fake's credentials
// and where its API is (under /sandbox/apps/<app>/wechat for an app route). They are the sandbox's own, made up at each start;
// anyone who reaches the dev server may play its users anyway.
//
// On an app route the answer also names the app as the path did ("app"), so
// that a caller can tell it from the default app's answer.
func (s *Sandbox) wechat(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{"appid": s.fake.AppID(), "secret": s.fake.Secret(), "path": prefix(r) + wechatSub}
	if app := r.PathValue("app"); app != "" {
		out["app"] = app
	}
	writeJSON(w, http.StatusOK, out)
}

// wechatAPI passes a request under its app's WeChat path to the fake's
// WeChat API.
func (s *Sandbox) wechatAPI(w http.ResponseWriter, r *http.Request) {
	http.StripPrefix(prefix(r)+wechatSub, s.fake.Handler()).ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, field, msg string) {
	body := map[string]any{"code": "bad_request", "message": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": body})
}

// decode reads a JSON body with the API's own check first (httpapi's
// CheckJSON: no duplicate keys, no string that is not UTF-8, ...), then
// strictly.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		badRequest(w, "", "could not read the body (at most 64 KiB)")
		return false
	}
	var e *notify.Error
	if err := httpapi.CheckJSON(body); errors.As(err, &e) {
		badRequest(w, e.Field, e.Message)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		badRequest(w, "", "malformed JSON body: "+strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	return true
}

// checkOpenID answers 400 unless openID is one, as WeChat issues them
// (what /wechat/push accepts in FromUserName).
func checkOpenID(w http.ResponseWriter, openID string) bool {
	if !httpapi.IsOpenID(openID) {
		badRequest(w, "openid", "is not an openid (1 to 64 ASCII letters, digits, '-' and '_')")
		return false
	}
	return true
}

// POST /sandbox/login {"user"} -> {"code", "openid"}
func (s *Sandbox) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User string `json:"user"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.User == "" || len(body.User) > 64 {
		badRequest(w, "user", "a user name of 1 to 64 bytes is required")
		return
	}
	code := s.fake.Login(body.User)
	openID := s.fake.OpenID(body.User)
	writeJSON(w, http.StatusOK, map[string]string{"code": code, "openid": openID})
}

// POST /sandbox/subscribe {"code"|"openid", "choices"} -> the success object
// wx.requestSubscribeMessage returns.
func (s *Sandbox) subscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code    string            `json:"code"`
		OpenID  string            `json:"openid"`
		Choices map[string]string `json:"choices"`
	}
	if !decode(w, r, &body) {
		return
	}
	openID := body.OpenID
	if openID == "" && body.Code != "" {
		var ok bool
		if openID, ok = s.fake.CodeOpenID(body.Code); !ok {
			badRequest(w, "code", "unknown or expired code: get one from /sandbox/login")
			return
		}
	}
	if openID == "" {
		badRequest(w, "openid", "give the user's openid or a code from /sandbox/login")
		return
	}
	if !checkOpenID(w, openID) {
		return
	}
	if len(body.Choices) == 0 {
		badRequest(w, "choices", `give at least one {"<templateId>": "accept"}`)
		return
	}
	res, err := s.fake.Subscribe(openID, body.Choices)
	if err != nil {
		badRequest(w, "choices", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// POST /sandbox/unsubscribe {"openid", "templateId"}
func (s *Sandbox) unsubscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OpenID     string `json:"openid"`
		TemplateID string `json:"templateId"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.OpenID == "" || body.TemplateID == "" {
		badRequest(w, "", "openid and templateId are required")
		return
	}
	if !checkOpenID(w, body.OpenID) {
		return
	}
	if err := s.fake.Unsubscribe(body.OpenID, body.TemplateID); err != nil {
		badRequest(w, "templateId", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type messageJSON struct {
	TemplateID string            `json:"templateId"`
	Data       map[string]string `json:"data"`
	Page       string            `json:"page,omitempty"`
	MsgID      string            `json:"msgid"`
	SentAt     time.Time         `json:"sentAt"`
}

// GET /sandbox/messages?openid=
func (s *Sandbox) messages(w http.ResponseWriter, r *http.Request) {
	openID := r.URL.Query().Get("openid")
	if openID == "" {
		badRequest(w, "openid", "the openid query parameter is required")
		return
	}
	out := []messageJSON{}
	for _, m := range s.fake.Messages(openID) {
		out = append(out, messageJSON{TemplateID: m.TemplateID, Data: m.Data, Page: m.Page, MsgID: strconv.FormatInt(m.MsgID, 10), SentAt: m.SentAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}

// POST /sandbox/faults {"api", "errcode", "count", "latencyMs", "httpStatus", "drop"}
func (s *Sandbox) faults(w http.ResponseWriter, r *http.Request) {
	var body struct {
		API        string `json:"api"`
		Errcode    int    `json:"errcode"`
		Count      int    `json:"count"`
		LatencyMs  int    `json:"latencyMs"`
		HTTPStatus int    `json:"httpStatus"`
		Drop       string `json:"drop"` // "before" | "after": close the connection before or after handling
	}
	if !decode(w, r, &body) {
		return
	}
	f := wechattest.Fault{API: body.API, Errcode: body.Errcode, Count: body.Count,
		Latency: time.Duration(body.LatencyMs) * time.Millisecond, HTTPStatus: body.HTTPStatus}
	switch body.Drop {
	case "":
	case "before":
		f.Drop = wechattest.DropBeforeRead
	case "after":
		f.Drop = wechattest.DropAfterRead
	default:
		badRequest(w, "drop", `must be "before" or "after"`)
		return
	}
	if err := s.fake.Inject(f); err != nil {
		badRequest(w, "api", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
