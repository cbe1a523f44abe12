package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

type sessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	OpenID    string    `json:"openid"`
	UserID    string    `json:"userId,omitempty"`
}

func toSessionResponse(res notify.LoginResult) sessionResponse {
	return sessionResponse{Token: res.Token, ExpiresAt: res.ExpiresAt.UTC(), OpenID: res.OpenID, UserID: res.UserID}
}

// POST /v1/session {"code"}
func (a *API) handleSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := svc(r).Login(r.Context(), body.Code)
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOpenID(r, res.OpenID)
	writeJSON(w, http.StatusOK, toSessionResponse(res))
}

// POST /v1/bindings {"userId", "code"}
func (a *API) handleBind(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID string `json:"userId"`
		Code   string `json:"code"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := svc(r).Bind(r.Context(), body.UserID, body.Code)
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOpenID(r, res.OpenID)
	writeJSON(w, http.StatusOK, toSessionResponse(res))
}

// DELETE /v1/bindings/{userId}
func (a *API) handleUnbind(w http.ResponseWriter, r *http.Request) {
	if err := svc(r).Unbind(r.Context(), r.PathValue("userId")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type templateJSON struct {
	Alias      string            `json:"alias"`
	TemplateID string            `json:"templateId"`
	Kind       notify.Kind       `json:"kind"`
	Title      string            `json:"title"`
	Keywords   map[string]string `json:"keywords"`
}

// GET /v1/templates
func (a *API) handleTemplates(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Templates []templateJSON `json:"templates"`
	}{Templates: []templateJSON{}}
	for _, t := range svc(r).Catalog().Templates() {
		kws := map[string]string{}
		for _, kw := range t.Keywords {
			kws[kw.Name] = kw.Type
		}
		out.Templates = append(out.Templates, templateJSON{Alias: t.Alias, TemplateID: t.ID, Kind: t.Kind, Title: t.Title, Keywords: kws})
	}
	writeJSON(w, http.StatusOK, out)
}

type consentJSON struct {
	Alias      string      `json:"alias"`
	TemplateID string      `json:"templateId"`
	Kind       notify.Kind `json:"kind"`
	Status     string      `json:"status"`
	Credits    int64       `json:"credits"`
	Accepted   *bool       `json:"accepted,omitempty"` // long-term templates
	AlwaysKeep bool        `json:"alwaysKeep"`
	Prompt     bool        `json:"prompt"`
}

type consentsResponse struct {
	Consents []consentJSON `json:"consents"`
	Ignored  []string      `json:"ignored"`
}

func (a *API) writeConsents(w http.ResponseWriter, r *http.Request, ignored []string) {
	sess := sessionFrom(r.Context())
	cs, err := svc(r).Consents(r.Context(), sess.OpenID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := consentsResponse{Consents: []consentJSON{}, Ignored: ignored}
	if out.Ignored == nil {
		out.Ignored = []string{}
	}
	for _, c := range cs {
		cj := consentJSON{Alias: c.Template.Alias, TemplateID: c.Template.ID, Kind: c.Template.Kind, Status: c.Status,
			Credits: c.Credits, AlwaysKeep: c.AlwaysKeep, Prompt: c.Prompt}
		if c.Template.Kind == notify.LongTerm {
			accepted := c.LongTerm
			cj.Accepted = &accepted
		}
		out.Consents = append(out.Consents, cj)
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /v1/consents
func (a *API) handleGetConsents(w http.ResponseWriter, r *http.Request) {
	a.writeConsents(w, r, nil)
}

// maxReportEntries bounds the template ids of one report: a popup shows at
// most 3 (5 in newer clients), settings list what the user kept.
const maxReportEntries = 50

// POST /v1/consents: {"result": {...}, "settings": {...}} or a bare result,
// with an optional Idempotency-Key header.
func (a *API) handlePostConsents(w http.ResponseWriter, r *http.Request) {
	body, err := requestBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	report, err := parseConsentReport(body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// A retry with the same key after a lost answer is not counted again.
	report.ID = r.Header.Get("Idempotency-Key")
	sess := sessionFrom(r.Context())
	ignored, err := svc(r).RecordReport(r.Context(), sess.OpenID, report)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.writeConsents(w, r, ignored)
}

// parseConsentReport reads the success object of wx.requestSubscribeMessage
// as the client got it, wrapped ({"result", "settings"}) or bare.
func parseConsentReport(body []byte) (notify.Report, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return notify.Report{}, notify.Errorf(notify.CodeBadRequest, "the body is empty, a JSON object is expected")
	}
	if err := CheckJSON(body); err != nil {
		return notify.Report{}, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return notify.Report{}, jsonError(err)
	}
	if top == nil {
		return notify.Report{}, notify.Errorf(notify.CodeBadRequest, "the body is null, a JSON object is expected")
	}
	resultRaw, wrapped := top["result"]
	var report notify.Report
	if wrapped {
		for k := range top {
			if k != "result" && k != "settings" {
				return report, &notify.Error{Code: notify.CodeBadRequest, Field: k, Message: "unknown field"}
			}
		}
		top = nil // a fresh map: Unmarshal into a non-nil map would merge
		if err := json.Unmarshal(resultRaw, &top); err != nil {
			return report, &notify.Error{Code: notify.CodeBadRequest, Field: "result", Message: "must be an object"}
		}
		if raw, ok := topSettings(body); ok {
			s, err := parseSettings(raw)
			if err != nil {
				return report, err
			}
			report.Settings = s
		}
	}
	field := func(k string) string {
		if wrapped {
			return "result." + k
		}
		return k
	}
	report.Result = map[string]string{}
	for k, raw := range top {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return report, &notify.Error{Code: notify.CodeBadRequest, Field: field(k), Message: "must be a string"}
		}
		if k == "errMsg" {
			if v != "requestSubscribeMessage:ok" {
				return report, &notify.Error{Code: notify.CodeBadRequest, Field: field(k),
					Message: "report only successful results (errMsg requestSubscribeMessage:ok)"}
			}
			continue
		}
		report.Result[k] = v
	}
	if len(report.Result) > maxReportEntries {
		return report, &notify.Error{Code: notify.CodeBadRequest, Field: field(""), Message: fmt.Sprintf("more than %d template ids", maxReportEntries)}
	}
	return report, nil
}

func topSettings(body []byte) (json.RawMessage, bool) {
	var top struct {
		Settings json.RawMessage `json:"settings"`
	}
	if json.Unmarshal(body, &top) != nil || len(top.Settings) == 0 || string(top.Settings) == "null" {
		return nil, false
	}
	return top.Settings, true
}

func parseSettings(raw json.RawMessage) (*notify.Settings, error) {
	var s struct {
		MainSwitch   *bool             `json:"mainSwitch"`
		ItemSettings map[string]string `json:"itemSettings"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		e := jsonError(err)
		if ne, ok := e.(*notify.Error); ok {
			ne.Field = "settings." + ne.Field
		}
		return nil, e
	}
	if len(s.ItemSettings) > maxReportEntries {
		return nil, &notify.Error{Code: notify.CodeBadRequest, Field: "settings.itemSettings", Message: fmt.Sprintf("more than %d template ids", maxReportEntries)}
	}
	return &notify.Settings{MainSwitch: s.MainSwitch, ItemSettings: s.ItemSettings}, nil
}

// dataValue is a keyword value: a plain string, WeChat's own {"value": ...},
// or a JSON number (taken as its text).
type dataValue string

func (d *dataValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = dataValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*d = dataValue(n.String())
		return nil
	}
	var obj struct {
		Value *json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err == nil && obj.Value != nil {
		var inner dataValue
		if err := json.Unmarshal(*obj.Value, &s); err == nil {
			inner = dataValue(s)
		} else if err := json.Unmarshal(*obj.Value, &n); err == nil {
			inner = dataValue(n.String())
		} else {
			return &notify.Error{Code: notify.CodeBadRequest, Message: "value must be a string"}
		}
		*d = inner
		return nil
	}
	return &notify.Error{Code: notify.CodeBadRequest, Message: `must be a string or {"value": "..."}`}
}

type sendBody struct {
	To struct {
		UserID string `json:"userId"`
		OpenID string `json:"openid"`
	} `json:"to"`
	Template         string               `json:"template"`
	Data             map[string]dataValue `json:"data"`
	Page             string               `json:"page"`
	MiniprogramState string               `json:"miniprogramState"`
	Lang             string               `json:"lang"`
	IdempotencyKey   string               `json:"idempotencyKey"`
}

// ParseSendBody decodes a POST /v1/notifications body.
func ParseSendBody(body []byte) (notify.SendRequest, error) {
	var b sendBody
	if err := unmarshalStrict(body, &b); err != nil {
		return notify.SendRequest{}, err
	}
	data := make(map[string]string, len(b.Data))
	for k, v := range b.Data {
		data[k] = string(v)
	}
	return notify.SendRequest{
		To:       notify.Recipient{UserID: b.To.UserID, OpenID: b.To.OpenID},
		Template: b.Template, Data: data, Page: b.Page, MiniprogramState: b.MiniprogramState,
		Lang: b.Lang, IdempotencyKey: b.IdempotencyKey, Source: notify.FromAPI,
	}, nil
}

type notificationJSON struct {
	ID        string              `json:"id"`
	Status    notify.Status       `json:"status"`
	Reason    string              `json:"reason"`
	Field     string              `json:"field,omitempty"`
	Template  string              `json:"template"`
	To        notify.Recipient    `json:"to"`
	Source    notify.SourceKind   `json:"source"`
	WeChat    notify.WeChatResult `json:"wechat"`
	Attempts  int                 `json:"attempts"`
	CreatedAt time.Time           `json:"createdAt"`
	UpdatedAt time.Time           `json:"updatedAt"`
}

// NotificationJSON is the API body of a notification record.
func NotificationJSON(n notify.Notification) any {
	return notificationJSON{ID: n.ID, Status: n.Status, Reason: n.Reason, Field: n.Field, Template: n.Template,
		To: n.To, Source: n.Source, WeChat: n.WeChat, Attempts: n.Attempts, CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt}
}

// POST /v1/notifications
func (a *API) handleSend(w http.ResponseWriter, r *http.Request) {
	body, err := requestBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := ParseSendBody(body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	n, err := svc(r).Send(r.Context(), req)
	if n.OpenID != "" {
		noteOpenID(r, n.OpenID)
	}
	if n.WeChat.Errcode != 0 {
		if info := infoFrom(r.Context()); info != nil {
			info.wechatErrcode = n.WeChat.Errcode
		}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NotificationJSON(n))
}

// GET /v1/notifications/{id}
func (a *API) handleGetNotification(w http.ResponseWriter, r *http.Request) {
	n, err := svc(r).Notification(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NotificationJSON(n))
}
