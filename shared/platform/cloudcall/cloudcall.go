package cloudcall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
)

// API is the cloud call this package mirrors; errMsg starts with it.
const API = "openapi.subscribeMessage.send"

// MaxPayloadBytes is the largest invocation payload accepted, as for HTTP
// bodies.
const MaxPayloadBytes = 64 << 10

// Error codes of Result. WeChat's own codes are used where WeChat has one
// for the condition; CodeBusy means the outcome is not final and the same
// request (with its idempotencyKey) may be retried.
const (
	CodeOK              = 0
	CodeBusy            = -1    // WeChat or the store is unavailable, or the outcome is unknown
	CodeInvalidOpenID   = 40003 // touser is missing or not an openid
	CodeInvalidTemplate = 40037 // templateId is not in the catalog (wxnotify.yaml)
	CodeInvalidPage     = 41030 // page is not a page path
	CodeNoConsent       = 43101 // the user has no consent credit for the template
	CodeInvalidArgument = 47001 // malformed request, bad miniprogramState/lang, idempotencyKey conflict
	CodeInvalidData     = 47003 // a data value breaks its keyword's rule
)

// Request is the argument of cloud.openapi.subscribeMessage.send, with the
// optional idempotencyKey of POST /v1/notifications.
type Request struct {
	ToUser           string           `json:"touser"`
	TemplateID       string           `json:"templateId"` // a template id or an alias of the catalog
	Page             string           `json:"page"`
	Data             map[string]Value `json:"data"`
	MiniprogramState string           `json:"miniprogramState"` // developer|trial|formal, default formal
	Lang             string           `json:"lang"`             // zh_CN|en_US|zh_HK|zh_TW, default zh_CN
	IdempotencyKey   string           `json:"idempotencyKey"`
	// App names the app (its id or AppID) to send for, in a deployment of
	// several mini programs; empty: the default app.
	App string `json:"app,omitempty"`
}

// Value is one data item. WeChat's shape is {"value": "..."}; a bare string
// or number is accepted too, and numbers keep their JSON text.
type Value string

// UnmarshalJSON accepts "text", 12.5, {"value": "text"} and {"value": 12.5}.
func (v *Value) UnmarshalJSON(b []byte) error {
	if s, ok := scalar(b); ok {
		*v = Value(s)
		return nil
	}
	var obj struct {
		Value json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err == nil && obj.Value != nil {
		if s, ok := scalar(obj.Value); ok {
			*v = Value(s)
			return nil
		}
	}
	return errors.New(`a data item must be {"value": string or number}`)
}

func scalar(b []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		return n.String(), true
	}
	return "", false
}

// Result is the cloud call's result object: errCode 0 and errMsg
// "openapi.subscribeMessage.send:ok" on success, else the code and
// "openapi.subscribeMessage.send:fail <code> <reason>".
type Result struct {
	ErrCode int    `json:"errCode"`
	ErrMsg  string `json:"errMsg"`
	// MsgID is WeChat's message id, a string because it can exceed 2^53.
	MsgID string `json:"msgid,omitempty"`
	// NotificationID is the record in wxnotify's ledger
	// (GET /v1/notifications/{id}); empty when the request was refused
	// before it was recorded.
	NotificationID string `json:"notificationId,omitempty"`
}

func ok(n notify.Notification) Result {
	return Result{ErrCode: CodeOK, ErrMsg: API + ":ok", MsgID: n.WeChat.MsgID, NotificationID: n.ID}
}

func fail(code int, reason string) Result {
	return Result{ErrCode: code, ErrMsg: fmt.Sprintf("%s:fail %d %s", API, code, reason)}
}

// Sender sends one notification; *notify.Service is one.
type Sender interface {
	Send(ctx context.Context, req notify.SendRequest) (notify.Notification, error)
}

var _ Sender = (*notify.Service)(nil)

// Options configure a Handler.
type Options struct {
	// Logger receives one line per invocation; default: discard.
	Logger *slog.Logger
	// Function names the function in log lines; leave it empty when
	// Logger already carries a "function" attribute.
	Function string
	// Apps finds the sender of the app a Request names (its id or AppID);
	// nil: a Request that names an app is refused.
	Apps func(name string) (Sender, bool)
}

// Handler answers cloud-call shaped invocations.
type Handler struct {
	svc  Sender
	apps func(name string) (Sender, bool)
	log  *slog.Logger
	fn   string
}

// New returns a Handler sending through svc.
func New(svc Sender, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, apps: o.Apps, log: o.Logger, fn: o.Function}
}

// Invoke is a platform.Handlers.Invoke core: it decodes the payload as a
// Request (strictly: unknown fields are refused) and answers a Result. It
// never returns an error.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	start := time.Now()
	req, err := Decode(payload)
	if err != nil {
		res := fail(CodeInvalidArgument, "data format error: "+err.Error())
		h.logResult(ctx, start, res, notify.Notification{}, err)
		return res, nil
	}
	return h.send(ctx, start, req), nil
}

// Decode parses an invocation payload into a Request.
func Decode(payload []byte) (Request, error) {
	var req Request
	if len(payload) > MaxPayloadBytes {
		return req, fmt.Errorf("the payload is larger than %d bytes", MaxPayloadBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return req, errors.New("unexpected data after the JSON object")
	}
	return req, nil
}

// Send sends req and returns the cloud call's result.
func (h *Handler) Send(ctx context.Context, req Request) Result {
	return h.send(ctx, time.Now(), req)
}

func (h *Handler) send(ctx context.Context, start time.Time, req Request) Result {
	data := make(map[string]string, len(req.Data))
	for k, v := range req.Data {
		data[k] = string(v)
	}
	sender := h.svc
	if req.App != "" {
		var ok bool
		if h.apps != nil {
			sender, ok = h.apps(req.App)
		}
		if !ok {
			res := fail(CodeInvalidArgument, "data format error: app: no such app in this deployment")
			h.logResult(ctx, start, res, notify.Notification{}, nil)
			return res
		}
	}
	n, err := sender.Send(ctx, notify.SendRequest{
		To:       notify.Recipient{OpenID: req.ToUser},
		Template: req.TemplateID, Data: data, Page: req.Page,
		MiniprogramState: req.MiniprogramState, Lang: req.Lang,
		IdempotencyKey: req.IdempotencyKey, Source: notify.FromAPI,
	})
	res := Outcome(n, err)
	h.logResult(ctx, start, res, n, err)
	return res
}

// Outcome maps what notify.Service.Send returned to the cloud call's
// result:
//
//   - sent: 0, with the msgid.
//   - skipped for lack of consent: 43101.
//   - failed or unknown with a WeChat errcode: that errcode and errmsg.
//   - failed for lack of WeChat or of the store, or unknown without an
//     errcode: CodeBusy (retry with the same idempotencyKey).
//   - refused before sending: the WeChat code of the offending field
//     (40003 touser, 40037 templateId, 41030 page, 47003 data) or 47001.
func Outcome(n notify.Notification, err error) Result {
	if n.ID == "" {
		return refusal(err)
	}
	var res Result
	switch {
	case n.Status == notify.StatusSent:
		return ok(n)
	case n.Status == notify.StatusSkipped && n.Reason == notify.ReasonNoConsent:
		msg := "user refuse to accept the msg"
		if n.WeChat.Errcode == CodeNoConsent && n.WeChat.Errmsg != "" {
			msg = n.WeChat.Errmsg
		} else {
			msg += " (no consent credit: the user has not accepted this template, or used every accept)"
		}
		res = fail(CodeNoConsent, msg)
	case n.Status == notify.StatusSkipped:
		res = fail(CodeInvalidOpenID, "the recipient is not a known user ("+n.Reason+")")
	case n.WeChat.Errcode != 0 && n.Status != notify.StatusPending:
		res = fail(n.WeChat.Errcode, n.WeChat.Errmsg)
	case n.Status == notify.StatusUnknown:
		res = fail(CodeBusy, "outcome unknown: WeChat did not answer ("+n.Reason+"); it is not sent again for the same idempotencyKey")
	default:
		res = fail(CodeBusy, "system busy ("+reasonOf(n)+"), retry with the same idempotencyKey")
	}
	res.NotificationID = n.ID
	return res
}

func reasonOf(n notify.Notification) string {
	if n.Reason != "" {
		return n.Reason
	}
	return string(n.Status)
}

// refusal maps an error returned before a notification was recorded.
func refusal(err error) Result {
	var e *notify.Error
	if !errors.As(err, &e) {
		return fail(CodeBusy, "system error")
	}
	switch e.Code {
	case notify.CodeBadRequest, notify.CodeConflict:
		code, field := fieldCode(e.Field)
		reason := e.Message
		if field != "" {
			reason = field + ": " + reason
		}
		return fail(code, reason)
	case notify.CodeWeChatUnavailable:
		if e.WeChatErrcode != 0 {
			return fail(e.WeChatErrcode, e.Message)
		}
		return fail(CodeBusy, e.Message)
	case notify.CodeStoreUnavailable:
		return fail(CodeBusy, "system busy, retry")
	case notify.CodeInternal:
		return fail(CodeBusy, "system error")
	}
	return fail(CodeBusy, string(e.Code)+": "+e.Message)
}

// fieldCode is the WeChat code for a refused field and the field's name in
// the cloud call.
func fieldCode(field string) (int, string) {
	switch {
	case field == "data" || strings.HasPrefix(field, "data."):
		return CodeInvalidData, field
	case field == "template":
		return CodeInvalidTemplate, "templateId"
	case field == "to" || strings.HasPrefix(field, "to."):
		return CodeInvalidOpenID, "touser"
	case field == "page":
		return CodeInvalidPage, field
	}
	return CodeInvalidArgument, field
}

// logResult writes the invocation's line: no openid, only its hash.
func (h *Handler) logResult(ctx context.Context, start time.Time, res Result, n notify.Notification, err error) {
	level := slog.LevelInfo
	if res.ErrCode == CodeBusy {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("requestId", platform.RequestID(ctx))}
	if h.fn != "" {
		attrs = append(attrs, slog.String("function", h.fn))
	}
	attrs = append(attrs,
		slog.String("route", "invoke "+API),
		slog.Int("errCode", res.ErrCode),
		slog.Float64("latencyMs", float64(time.Since(start).Microseconds())/1000),
	)
	if n.ID != "" {
		attrs = append(attrs, slog.String("notification", n.ID), slog.String("status", string(n.Status)))
	}
	if n.OpenID != "" {
		attrs = append(attrs, slog.String("openid", notify.HashID(n.OpenID)))
	}
	if n.WeChat.Errcode != 0 {
		attrs = append(attrs, slog.Int("wechatErrcode", n.WeChat.Errcode))
	}
	if err != nil && level == slog.LevelError {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "invocation", attrs...)
}
