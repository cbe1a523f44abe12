package wechat_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

func sendRequest() wechat.SendRequest {
	return wechat.SendRequest{
		ToUser:     "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		TemplateID: "TEMPLATE_ID",
		Data:       map[string]string{"thing1": "会议", "date2": "2019年10月1日 15:01"},
	}
}

func TestSendSubscribeMessage(t *testing.T) {
	var (
		method, path, query, ctype string
		body                       map[string]any
		raw                        []byte
	)
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","msgid":3395159288267931652}`, func(r *http.Request, b []byte) {
		method, path, query, ctype, raw = r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), b
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("request body %q: %v", b, err)
		}
	})
	req := wechat.SendRequest{
		ToUser:           "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		TemplateID:       "TEMPLATE_ID",
		Page:             "pages/index/index?foo=bar&x=<1>",
		Data:             map[string]string{"thing1": "A&B <会议>", "number01": "339208499"},
		MiniprogramState: wechat.StateDeveloper,
		Lang:             wechat.LangEnglish,
	}
	res, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.MsgID != 3395159288267931652 {
		t.Errorf("got msgid %d, want 3395159288267931652", res.MsgID)
	}
	if method != http.MethodPost || path != "/cgi-bin/message/subscribe/send" || query != "access_token="+testToken {
		t.Errorf("got %s %s?%s, want POST /cgi-bin/message/subscribe/send?access_token=%s", method, path, query, testToken)
	}
	if ctype != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", ctype)
	}
	want := map[string]any{
		"touser":      req.ToUser,
		"template_id": req.TemplateID,
		"page":        req.Page,
		"data": map[string]any{
			"thing1":   map[string]any{"value": "A&B <会议>"},
			"number01": map[string]any{"value": "339208499"},
		},
		"miniprogram_state": "developer",
		"lang":              "en_US",
	}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("got body %v, want %v", body, want)
	}
	if !strings.Contains(string(raw), `"A&B <会议>"`) {
		t.Errorf("got body %s, want the value sent without escapes", raw)
	}
}

func TestSendOmitsEmptyOptionalFields(t *testing.T) {
	var body map[string]any
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","msgid":1}`, func(_ *http.Request, b []byte) { json.Unmarshal(b, &body) })
	if _, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), sendRequest()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"page", "miniprogram_state", "lang"} {
		if _, ok := body[k]; ok {
			t.Errorf("got %q in %v, want it omitted", k, body)
		}
	}
}

// TestSendMsgID checks that every 64-bit msgid survives exactly, including
// those a float64 would round.
func TestSendMsgID(t *testing.T) {
	tests := []struct {
		name     string
		msgid    string // as it appears in the JSON answer
		wantID   int64
		wantText string
	}{
		{"Typical", `3395159288267931652`, 3395159288267931652, "3395159288267931652"},
		{"Above2Pow53", `9007199254740993`, 9007199254740993, "9007199254740993"},
		{"MaxInt64", `9223372036854775807`, 9223372036854775807, "9223372036854775807"},
		{"AboveInt64", `18446744073709551615`, -1, "18446744073709551615"},
		{"AsString", `"9007199254740993"`, 9007199254740993, "9007199254740993"},
		{"Small", `7`, 7, "7"},
		{"Missing", ``, 0, ""},
		{"Null", `null`, 0, ""},
		{"Unreadable", `"abc"`, 0, ""},
		{"Fraction", `1.5`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"errcode":0,"errmsg":"ok"}`
			if tt.msgid != "" {
				body = `{"errcode":0,"errmsg":"ok","msgid":` + tt.msgid + `}`
			}
			srv := serveJSON(t, body, nil)
			res, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), sendRequest())
			if err != nil {
				t.Fatalf("got %v, want success: errcode 0 is never a failure", err)
			}
			if res.MsgID != tt.wantID || res.MsgIDString() != tt.wantText {
				t.Errorf("got (%d, %q), want (%d, %q)", res.MsgID, res.MsgIDString(), tt.wantID, tt.wantText)
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		check     func(error) bool
		wantField string
	}{
		{"ErrNoSubscription", `{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 6"}`, wechat.IsConsentGone, ""},
		{"ErrInvalidData", `{"errcode":47003,"errmsg":"argument invalid! data.thing1.value invalid rid: 6"}`, wechat.IsBadRequest, "data.thing1"},
		{"ErrInvalidTemplate", `{"errcode":40037,"errmsg":"invalid template_id rid: 6"}`, wechat.IsBadRequest, ""},
		{"ErrInvalidPage", `{"errcode":41030,"errmsg":"invalid page rid: 6"}`, wechat.IsBadRequest, ""},
		{"ErrConcurrent", `{"errcode":43108,"errmsg":"concurrent limit rid: 6"}`, wechat.IsRetryable, ""},
		{"ErrBusy", `{"errcode":-1,"errmsg":"system error"}`, wechat.IsRetryable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveJSON(t, tt.body, nil)
			_, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), sendRequest())
			if _, ok := errors.AsType[*wechat.Error](err); !ok || !tt.check(err) {
				t.Fatalf("got %v, want a classified *Error", err)
			}
			if got := wechat.InvalidField(err); got != tt.wantField {
				t.Errorf("got field %q, want %q", got, tt.wantField)
			}
			if wechat.IsAmbiguous(err) {
				t.Errorf("IsAmbiguous = true for an answered call, want false")
			}
		})
	}
}

func TestSendInvalidArgument(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*wechat.SendRequest)
	}{
		{"EmptyToUser", func(r *wechat.SendRequest) { r.ToUser = "" }},
		{"EmptyTemplateID", func(r *wechat.SendRequest) { r.TemplateID = "" }},
		{"NoData", func(r *wechat.SendRequest) { r.Data = nil }},
		{"EmptyValue", func(r *wechat.SendRequest) { r.Data = map[string]string{"thing1": ""} }},
		{"KeyWithDATA", func(r *wechat.SendRequest) { r.Data = map[string]string{"thing1.DATA": "x"} }},
		{"EmptyKey", func(r *wechat.SendRequest) { r.Data = map[string]string{"": "x"} }},
		{"BadState", func(r *wechat.SendRequest) { r.MiniprogramState = "release" }},
		{"BadLang", func(r *wechat.SendRequest) { r.Lang = "fr_FR" }},
	}
	srv := serveJSON(t, `{}`, func(*http.Request, []byte) { t.Error("invalid request reached WeChat") })
	c := newClient(t, srv.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sendRequest()
			tt.mod(&req)
			_, err := c.SendSubscribeMessage(t.Context(), req)
			if !errors.Is(err, wechat.ErrInvalidArgument) || !wechat.IsBadRequest(err) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func BenchmarkSendSubscribeMessage(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"errcode":0,"errmsg":"ok","msgid":3395159288267931652}`)
	}))
	b.Cleanup(srv.Close)
	c := newClient(b, srv.URL)
	req := wechat.SendRequest{
		ToUser:     "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		TemplateID: "bDmywsp2oEHjwAadTGKkUHpzusYjyStb6Gvng2dLjS0",
		Page:       "pages/order/detail?id=42",
		Data: map[string]string{
			"character_string1": "SO20240425000123",
			"thing2":            "会议室预订成功",
			"date3":             "2024-04-25 15:01",
			"amount4":           "￥100.00",
		},
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.SendSubscribeMessage(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
