package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// created posts a JSON body with the API key and returns the id of what it
// created.
func (r *apiRig) created(tb testing.TB, target, body string, status int) string {
	tb.Helper()
	a := r.do(tb, "192.0.2.50", "POST", target, testAPIKey, []byte(body))
	var out struct{ ID string }
	if err := json.Unmarshal([]byte(a.raw), &out); a.status != status || err != nil || out.ID == "" {
		tb.Fatalf("POST %s: got %d %s, want %d with an id", target, a.status, a.raw, status)
	}
	return out.ID
}

// Every path parameter of every route is checked at the edge: a value that
// cannot name anything (not UTF-8, NUL, '|', '/', spaces, too long) is
// answered 404 not_found where the route looks a record up by id, and 400
// bad_request naming the parameter where the route's contract says so
// (userId, openid). Never a 500, and the store never sees the value.
func TestPathParametersRefusedCleanly(t *testing.T) {
	r := newAPIRig(t)
	ntf := r.created(t, "/v1/notifications", `{"to":{"openid":"o-path"},"template":"lead","data":{"thing1":"x"}}`, http.StatusOK)
	bat := r.created(t, "/v1/batches", `{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o-path"}]}`, http.StatusAccepted)
	long := func(n int) string { return strings.Repeat("a", n) }
	type want struct {
		status      int
		code, field string
	}
	notFound := want{http.StatusNotFound, "not_found", ""}
	badUserID := want{http.StatusBadRequest, "bad_request", "userId"}
	badOpenID := want{http.StatusBadRequest, "bad_request", "openid"}
	unboundUserID := want{http.StatusNotFound, "not_found", "userId"}
	ok := want{http.StatusOK, "", ""}
	for _, tc := range []struct {
		name, method, target string
		want                 want
	}{
		// The two of the issue: the store refused the key and the answer was 500.
		{"NotificationInvalidUTF8", "GET", "/v1/notifications/%ff%fe", notFound},
		{"BatchInvalidUTF8", "GET", "/v1/batches/%ff%fe", notFound},
		{"CancelBatchInvalidUTF8", "DELETE", "/v1/batches/%ff%fe", notFound},
		{"NotificationNUL", "GET", "/v1/notifications/ntf_%00", notFound},
		{"NotificationPipe", "GET", "/v1/notifications/ntf_a%7Cb", notFound},
		{"NotificationSlash", "GET", "/v1/notifications/ntf_a%2Fb", notFound},
		{"NotificationSpace", "GET", "/v1/notifications/ntf_%20", notFound},
		{"NotificationNonASCII", "GET", "/v1/notifications/ntf_%E5%AE%98", notFound},
		{"NotificationTooLong", "GET", "/v1/notifications/ntf_" + long(61), notFound},
		{"NotificationUnknown", "GET", "/v1/notifications/ntf_nope", notFound},
		{"NotificationKnown", "GET", "/v1/notifications/" + ntf, ok},
		{"BatchNUL", "GET", "/v1/batches/bat_%00", notFound},
		{"BatchPipe", "DELETE", "/v1/batches/bat_%7C", notFound},
		{"BatchTooLong", "GET", "/v1/batches/" + long(65), notFound},
		{"BatchKnown", "GET", "/v1/batches/" + bat, ok},
		{"UnbindInvalidUTF8", "DELETE", "/v1/bindings/%ff%fe", badUserID},
		{"UnbindNUL", "DELETE", "/v1/bindings/sales%00", badUserID},
		{"UnbindPipe", "DELETE", "/v1/bindings/sales%7C42", badUserID},
		{"UnbindSpace", "DELETE", "/v1/bindings/sales%2042", badUserID},
		{"UnbindTooLong", "DELETE", "/v1/bindings/" + long(129), badUserID},
		{"UnbindUnbound", "DELETE", "/v1/bindings/sales-42", unboundUserID},
		{"UserLedgerInvalidUTF8", "GET", "/v1/users/%ff%fe/consents", badUserID},
		{"UserLedgerNUL", "GET", "/v1/users/%00/consents", badUserID},
		{"UserLedgerUnbound", "GET", "/v1/users/sales-42/consents", unboundUserID},
		{"OpenIDLedgerInvalidUTF8", "GET", "/v1/openids/%ff%fe/consents", badOpenID},
		{"OpenIDLedgerPipe", "GET", "/v1/openids/o%7Cx/consents", badOpenID},
		{"OpenIDLedgerTooLong", "GET", "/v1/openids/" + long(65) + "/consents", badOpenID},
		{"OpenIDLedgerKnown", "GET", "/v1/openids/o-path/consents", ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.do(t, "192.0.2.50", tc.method, tc.target, testAPIKey, nil)
			if a.status != tc.want.status || a.body.Error.Code != tc.want.code || a.body.Error.Field != tc.want.field {
				t.Fatalf("%s %s: got %d %s, want %d code %q field %q", tc.method, tc.target, a.status, a.raw,
					tc.want.status, tc.want.code, tc.want.field)
			}
			if a.status >= 400 && (a.body.Error.Message == "" || a.body.Error.RequestID == "") {
				t.Fatalf("%s %s: got %s, want the error body with a message and a request id", tc.method, tc.target, a.raw)
			}
		})
	}
}

// The path is checked after authentication: a caller without a key learns
// nothing from it, and a bad path does not spare a wrong key its count.
func TestPathParametersCheckedAfterAuth(t *testing.T) {
	r := newAPIRig(t)
	for _, target := range []string{"/v1/notifications/%ff%fe", "/v1/bindings/%ff%fe", "/v1/openids/%ff/consents"} {
		method := "GET"
		if strings.HasPrefix(target, "/v1/bindings/") {
			method = "DELETE"
		}
		if a := r.do(t, "192.0.2.51", method, target, "", nil); a.status != http.StatusUnauthorized {
			t.Fatalf("%s %s without a key: got %d %s, want 401", method, target, a.status, a.raw)
		}
	}
}

// A JSON string (a value or a key) that is not valid UTF-8 is refused on
// every JSON route with 400 bad_request naming its path, before any
// effect: encoding/json would replace the bytes with U+FFFD and the
// request would go on with data the caller never sent. Invalid bytes and
// \u escapes of unpaired surrogates are both refused; valid text,
// escaped surrogate pairs and a real U+FFFD are not.
func TestInvalidUTF8RefusedOnEveryRoute(t *testing.T) {
	r := newAPIRig(t)
	session, _ := r.sessions.Issue(testAppID, "o-utf8")
	// Each body has one spot, X, where the bad text goes, and the path of
	// the field that holds it.
	routes := []struct {
		name, target, auth, body, field string
	}{
		{"Session", "/v1/session", "", `{"code":"081X"}`, "code"},
		{"Bindings", "/v1/bindings", testAPIKey, `{"userId":"sales-X","code":"081"}`, "userId"},
		{"Consents", "/v1/consents", session, `{"result":{"errMsg":"requestSubscribeMessage:ok","sec-tmpl-id":"acceptX"}}`, "result.sec-tmpl-id"},
		{"ConsentSettings", "/v1/consents", session, `{"result":{},"settings":{"itemSettings":{"sec-tmpl-id":"X"}}}`, "settings.itemSettings.sec-tmpl-id"},
		{"Notifications", "/v1/notifications", testAPIKey, `{"to":{"openid":"o-utf8"},"template":"lead","data":{"thing1":"AcmeX"}}`, "data.thing1"},
		{"NotificationsWeChatShape", "/v1/notifications", testAPIKey, `{"to":{"openid":"o-utf8"},"template":"lead","data":{"thing1":{"value":"X"}}}`, "data.thing1.value"},
		{"Batches", "/v1/batches", testAPIKey, `{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o-a"},{"openid":"o-b"},{"openid":"o-c"},{"userId":"u-X"}]}`, "recipients[3].userId"},
		{"Event", "/v1/events", testAPIKey, `{"id":"e1","type":"lead.assigned","data":{"lead":{"name":"X"}}}`, "data.lead.name"},
		{"Events", "/v1/events", testAPIKey, `[{"id":"e1","type":"lead.assigned","data":{}},{"id":"e2","type":"lead.assigned","data":{"lead":{"tags":["a","X"]}}}]`, "[1].data.lead.tags[1]"},
		{"NotificationsKey", "/v1/notifications", testAPIKey, `{"to":{"openid":"o-utf8"},"template":"lead","data":{"thingX":"Acme"}}`, "data.thingX"},
	}
	bad := []struct{ name, text string }{
		{"InvalidBytes", "\xff\xfe"},
		{"TruncatedSequence", "\xe5\xae"},
		{"Overlong", "\xc0\xaf"},
		{"EncodedSurrogate", "\xed\xa0\x80"},
		{"LoneHighSurrogate", `\ud800`},
		{"LoneLowSurrogate", `\udc00`},
		{"HighSurrogateThenLetter", `\ud83dA`},
		{"HighSurrogateThenEscape", `\ud83d\u0041`},
		{"TwoHighSurrogates", `\ud83d\ud83d`},
	}
	for _, rt := range routes {
		for _, b := range bad {
			t.Run(rt.name+"/"+b.name, func(t *testing.T) {
				body := strings.Replace(rt.body, "X", b.text, 1)
				// A bad key is named as encoding/json decodes it.
				field := strings.Replace(rt.field, "X", decoded(b.text), 1)
				a := r.do(t, "192.0.2.60", "POST", rt.target, rt.auth, []byte(body))
				if a.status != http.StatusBadRequest || a.body.Error.Code != "bad_request" || a.body.Error.Field != field ||
					!strings.Contains(a.body.Error.Message, "UTF-8") {
					t.Fatalf("POST %s %q: got %d %s, want 400 bad_request naming %q as not UTF-8", rt.target, body, a.status, a.raw, field)
				}
			})
		}
	}
	for _, api := range []string{wechattest.APICode2Session, wechattest.APISend} {
		if n := r.fake.Calls(api); n != 0 {
			t.Errorf("WeChat %s calls: got %d, want 0", api, n)
		}
	}
	if c, err := r.svc.Consents(context.Background(), "o-utf8"); err != nil || c[0].Status != "" || c[0].Credits != 0 {
		t.Errorf("consents after refused reports: got %+v %v, want untouched", c, err)
	}
	// Valid text is kept as sent, U+FFFD and escaped pairs included.
	a := r.do(t, "192.0.2.60", "POST", "/v1/notifications", testAPIKey,
		[]byte(`{"to":{"openid":"o-utf8"},"template":"lead","data":{"thing1":"官网 \ud83d\ude00 \ufffd `+"\uFFFD"+`"}}`))
	if a.status != http.StatusOK {
		t.Fatalf("valid text: got %d %s, want 200", a.status, a.raw)
	}
}

// decoded is what encoding/json makes of text in a string.
func decoded(text string) string {
	var s string
	if err := json.Unmarshal([]byte(`"`+text+`"`), &s); err != nil {
		panic(err)
	}
	return s
}

// An event of an array that is refused as a whole is named by its index
// alone ("[1]", not "[1].").
func TestEventErrorsNameTheElement(t *testing.T) {
	r := newAPIRig(t)
	for _, tc := range []struct{ name, body, field string }{
		{"NotAnObject", `[{"id":"a","type":"t","data":{}},1]`, "[1]"},
		{"MissingID", `[{"id":"a","type":"t","data":{}},{"type":"t"}]`, "[1].id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.do(t, "192.0.2.61", "POST", "/v1/events", testAPIKey, []byte(tc.body))
			if a.status != http.StatusBadRequest || a.body.Error.Field != tc.field {
				t.Fatalf("POST /v1/events %s: got %d %s, want 400 naming %q", tc.body, a.status, a.raw, tc.field)
			}
		})
	}
}

// A signed push whose body is not UTF-8, or whose FromUserName is not an
// openid, is refused with 400 and applied to no one: decoding it would
// grant consent to an openid WeChat never sent (the bytes replaced with
// U+FFFD) or put a '|' into store keys.
func TestPushRefusesWhatIsNotAnOpenIDOrUTF8(t *testing.T) {
	r := newAPIRig(t)
	ts := strconv.FormatInt(r.clock.Now().Unix(), 10)
	jsonPush := func(from, tmpl string) string {
		return `{"ToUserName":"gh_x","FromUserName":"` + from + `","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event",` +
			`"List":[{"TemplateId":"` + tmpl + `","SubscribeStatusString":"accept","PopupScene":"0"}]}`
	}
	for i, tc := range []struct {
		name, body string
		status     int
	}{
		{"FromUserNameInvalidUTF8", jsonPush("o-push\xff\xfe", testTmplID), http.StatusBadRequest},
		{"FromUserNameSurrogateEscape", jsonPush(`o-push\ud800`, testTmplID), http.StatusBadRequest},
		{"FromUserNamePipe", jsonPush("o-push|x", testTmplID), http.StatusBadRequest},
		{"FromUserNameSpace", jsonPush("o-push x", testTmplID), http.StatusBadRequest},
		{"TemplateIDInvalidUTF8", jsonPush("o-push", testTmplID+"\xff"), http.StatusBadRequest},
		{"XMLInvalidUTF8", `<xml><ToUserName>gh_x</ToUserName><FromUserName>o-push` + "\xff" + `</FromUserName><CreateTime>1</CreateTime>` +
			`<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId>` + testTmplID +
			`</TemplateId><SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>`,
			http.StatusBadRequest},
		{"Valid", jsonPush("o-push", testTmplID), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nonce := strconv.Itoa(i)
			q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "signature": {wechat.Signature(testPushTok, ts, nonce)}}
			a := r.do(t, "192.0.2.62", "POST", "/wechat/push?"+q.Encode(), "", []byte(tc.body))
			if a.status != tc.status || (tc.status == http.StatusBadRequest && a.body.Error.Code != "bad_request") {
				t.Fatalf("got %d %s, want %d", a.status, a.raw, tc.status)
			}
		})
	}
	for openID, want := range map[string]int64{"o-push": 1, "o-push\uFFFD\uFFFD": 0, "o-push\uFFFD": 0, "o-push|x": 0} {
		c, err := r.svc.Consents(context.Background(), openID)
		if err != nil || c[0].Credits != want {
			t.Errorf("credits of %q: got %+v %v, want %d", openID, c, err, want)
		}
	}
}
