package cloudcall_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform/cloudcall"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// env is a send function wired as in production, on bbolt and the fake
// WeChat.
type env struct {
	fake    *wechattest.Server
	svc     *notify.Service
	h       *cloudcall.Handler
	tmplID  string // a one-time template of the catalog, alias "lead"
	keyword map[string]string
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	fake := wechattest.NewServer(wechattest.Options{})
	tb.Cleanup(fake.Close)
	t := wechattest.DefaultTemplates()[0]
	spec := config.TemplateSpec{Alias: "lead", ID: t.PriTmplID, Title: t.Title, Kind: "one-time", Policy: "reject"}
	data := map[string]string{}
	for _, kw := range t.Keywords {
		spec.Keywords = append(spec.Keywords, config.KeywordSpec{Name: kw.Name})
		data[kw.Name] = kw.Example
	}
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "wxnotify.db"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Config{AppID: fake.AppID(), Secret: fake.Secret(), APIBase: fake.URL(),
		SessionSecret: strings.Repeat("k", notify.MinSecretLen), SessionTTL: time.Hour, File: config.File{Templates: []config.TemplateSpec{spec}}}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "send", HTTPClient: fake.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = parts.Close() })
	return &env{fake: fake, svc: parts.Service, h: cloudcall.New(parts.Service, cloudcall.Options{}), tmplID: t.PriTmplID, keyword: data}
}

// consent plays the user accepting the template n times, on WeChat's side
// and in the ledger, and returns the user's openid.
func (e *env) consent(tb testing.TB, user string, n int) string {
	tb.Helper()
	openid := e.fake.OpenID(user)
	e.fake.Login(user)
	for range n {
		result, err := e.fake.Subscribe(openid, map[string]string{e.tmplID: "accept"})
		if err != nil {
			tb.Fatal(err)
		}
		report := notify.Report{Result: map[string]string{}}
		for k, v := range result {
			if s, ok := v.(string); ok && k != "errMsg" {
				report.Result[k] = s
			}
		}
		if _, err := e.svc.RecordReport(context.Background(), openid, report); err != nil {
			tb.Fatal(err)
		}
	}
	return openid
}

// payload is the cloud call's argument as the seed's cloud function wrote it.
func (e *env) payload(openid string, edit func(m map[string]any)) json.RawMessage {
	data := map[string]any{}
	for k, v := range e.keyword {
		data[k] = map[string]string{"value": v}
	}
	m := map[string]any{"touser": openid, "templateId": e.tmplID, "lang": "zh_CN", "data": data}
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func (e *env) invoke(tb testing.TB, payload json.RawMessage) cloudcall.Result {
	tb.Helper()
	out, err := e.h.Invoke(context.Background(), payload)
	if err != nil {
		tb.Fatalf("Invoke returned an error: %v", err)
	}
	return out.(cloudcall.Result)
}

func TestInvokeSends(t *testing.T) {
	e := newEnv(t)
	openid := e.consent(t, "alice", 1)
	res := e.invoke(t, e.payload(openid, func(m map[string]any) { m["page"] = "pages/clue/clue?id=L-1001" }))
	if res.ErrCode != 0 || res.ErrMsg != "openapi.subscribeMessage.send:ok" || res.MsgID == "" || res.NotificationID == "" {
		t.Fatalf("got %+v, want errCode 0, errMsg openapi.subscribeMessage.send:ok, a msgid and a notification id", res)
	}
	msgs := e.fake.Messages(openid)
	if len(msgs) != 1 {
		t.Fatalf("WeChat delivered %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.TemplateID != e.tmplID || m.Page != "pages/clue/clue?id=L-1001" || m.Lang != "zh_CN" {
		t.Errorf("delivered %+v, want template %s, the page and zh_CN", m, e.tmplID)
	}
	for k, v := range e.keyword {
		if m.Data[k] != v {
			t.Errorf("data %s: got %q, want %q", k, m.Data[k], v)
		}
	}
	if want := strconv.FormatInt(m.MsgID, 10); res.MsgID != want {
		t.Errorf("msgid: got %q, want %q", res.MsgID, want)
	}
}

func TestInvokeIdempotent(t *testing.T) {
	e := newEnv(t)
	openid := e.consent(t, "bob", 2)
	withKey := func(key, thing string) json.RawMessage {
		return e.payload(openid, func(m map[string]any) {
			m["idempotencyKey"] = key
			if thing != "" {
				m["data"].(map[string]any)["thing4"] = map[string]string{"value": thing}
			}
		})
	}
	first := e.invoke(t, withKey("lead-1-assign", ""))
	again := e.invoke(t, withKey("lead-1-assign", ""))
	if first.ErrCode != 0 || again != first {
		t.Errorf("repeat: got %+v then %+v, want the same success twice", first, again)
	}
	if n := len(e.fake.Messages(openid)); n != 1 {
		t.Errorf("WeChat delivered %d messages, want 1", n)
	}
	conflict := e.invoke(t, withKey("lead-1-assign", "另一家公司"))
	if conflict.ErrCode != cloudcall.CodeInvalidArgument || !strings.Contains(conflict.ErrMsg, "idempotencyKey") {
		t.Errorf("other payload, same key: got %+v, want 47001 naming idempotencyKey", conflict)
	}
}

func TestInvokeRefusals(t *testing.T) {
	e := newEnv(t)
	openid := e.consent(t, "carol", 1)
	tests := []struct {
		name     string
		payload  json.RawMessage
		wantCode int
		wantMsg  string
	}{
		{"NoConsent", e.payload(e.fake.OpenID("dave"), nil), 43101, "user refuse to accept the msg"},
		{"UnknownTemplate", e.payload(openid, func(m map[string]any) { m["templateId"] = "nope" }), 40037, "templateId"},
		{"NoTouser", e.payload("", nil), 40003, "touser"},
		{"BadOpenID", e.payload("not an openid!", nil), 40003, "touser"},
		{"BadData", e.payload(openid, func(m map[string]any) {
			m["data"].(map[string]any)["thing4"] = map[string]string{"value": strings.Repeat("长", 21)}
		}), 47003, "data.thing4"},
		{"MissingData", e.payload(openid, func(m map[string]any) { delete(m, "data") }), 47003, "data."},
		{"BadPage", e.payload(openid, func(m map[string]any) { m["page"] = "https://evil.example/x" }), 41030, "page"},
		{"BadLang", e.payload(openid, func(m map[string]any) { m["lang"] = "fr_FR" }), 47001, "lang"},
		{"BadState", e.payload(openid, func(m map[string]any) { m["miniprogramState"] = "beta" }), 47001, "miniprogramState"},
		{"UnknownField", e.payload(openid, func(m map[string]any) { m["template_id"] = "x" }), 47001, `unknown field "template_id"`},
		{"BadItem", e.payload(openid, func(m map[string]any) { m["data"].(map[string]any)["thing4"] = map[string]any{"value": true} }),
			47001, "data format error"},
		{"NotJSON", json.RawMessage(`{"touser":`), 47001, "data format error"},
		{"TrailingData", json.RawMessage(`{"touser":"x"} {}`), 47001, "unexpected data"},
		{"TooLarge", json.RawMessage(`{"page":"` + strings.Repeat("a", cloudcall.MaxPayloadBytes) + `"}`), 47001, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.invoke(t, tt.payload)
			wantPrefix := "openapi.subscribeMessage.send:fail " + strconv.Itoa(tt.wantCode) + " "
			if res.ErrCode != tt.wantCode || !strings.HasPrefix(res.ErrMsg, wantPrefix) || !strings.Contains(res.ErrMsg, tt.wantMsg) {
				t.Errorf("got %+v, want errCode %d and an errMsg %q... containing %q", res, tt.wantCode, wantPrefix, tt.wantMsg)
			}
			if res.MsgID != "" {
				t.Errorf("msgid: got %q, want none", res.MsgID)
			}
		})
	}
	if n := len(e.fake.Messages(openid)); n != 0 {
		t.Errorf("WeChat delivered %d messages, want 0", n)
	}
}

func TestInvokeDataShapes(t *testing.T) {
	e := newEnv(t)
	openid := e.consent(t, "erin", 1)
	payload := json.RawMessage(`{"touser":"` + openid + `","templateId":"lead",
		"data":{"thing4":"某某科技有限公司","date2":{"value":"2026-11-21"},"character_string9":{"value":1001}}}`)
	res := e.invoke(t, payload)
	if res.ErrCode != 0 {
		t.Fatalf("got %+v, want success", res)
	}
	got := e.fake.Messages(openid)[0].Data
	want := map[string]string{"thing4": "某某科技有限公司", "date2": "2026-11-21", "character_string9": "1001"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("data %s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestInvokeWeChatErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    wechattest.Fault
		wantCode int
	}{
		{"Busy", wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: -1}, -1},
		{"Rejected", wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: 45168}, 45168},
		{"ConsentGone", wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: 43101}, 43101},
		{"NoAnswer", wechattest.Fault{API: wechattest.APISend, Count: 1, Drop: wechattest.DropAfterRead}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			openid := e.consent(t, "frank", 1)
			if err := e.fake.Inject(tt.fault); err != nil {
				t.Fatal(err)
			}
			res := e.invoke(t, e.payload(openid, nil))
			if res.ErrCode != tt.wantCode || res.NotificationID == "" || !strings.HasPrefix(res.ErrMsg, "openapi.subscribeMessage.send:fail ") {
				t.Errorf("got %+v, want errCode %d, a :fail errMsg and the notification id", res, tt.wantCode)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name     string
		n        notify.Notification
		err      error
		wantCode int
		wantMsg  string
	}{
		{"Sent", notify.Notification{ID: "ntf_1", Status: notify.StatusSent, WeChat: notify.WeChatResult{MsgID: "3395159288267931652"}},
			nil, 0, "openapi.subscribeMessage.send:ok"},
		{"Unknown", notify.Notification{ID: "ntf_1", Status: notify.StatusUnknown, Reason: notify.ReasonAmbiguous}, nil, -1, "outcome unknown"},
		{"StoreDown", notify.Notification{ID: "ntf_1", Status: notify.StatusFailed, Reason: notify.ReasonStore, Retryable: true},
			errors.New("redis: connection refused"), -1, "system busy (store_unavailable)"},
		{"Unbound", notify.Notification{ID: "ntf_1", Status: notify.StatusSkipped, Reason: notify.ReasonUnboundUser}, nil, 40003, "unbound_user"},
		{"Internal", notify.Notification{}, errors.New("boom"), -1, "system error"},
		{"Unavailable", notify.Notification{}, &notify.Error{Code: notify.CodeWeChatUnavailable, Message: "WeChat is unavailable"}, -1, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cloudcall.Outcome(tt.n, tt.err)
			if res.ErrCode != tt.wantCode || !strings.Contains(res.ErrMsg, tt.wantMsg) {
				t.Errorf("got %+v, want errCode %d and an errMsg containing %q", res, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(res.ErrMsg, "redis") || strings.Contains(res.ErrMsg, "boom") {
				t.Errorf("errMsg %q shows an internal error", res.ErrMsg)
			}
		})
	}
}
