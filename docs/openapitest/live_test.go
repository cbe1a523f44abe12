package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// TestLiveAnswersMatchDocument drives every route of live servers (the
// `wxnotify dev` wiring in sandbox mode) through successes and failures,
// then checks every exchange against the document: the status is
// documented for the route, the answer validates against that status's
// schema, a request the server accepted validates against the route's
// request schema, and every documented operation answered a success at
// least once. The scenario runs twice: on the short routes of a
// single-app server, and on the app routes (/v1/apps/{app}/...,
// /wechat/push/{app}) of a two-app server, which also answers the app
// errors (app_not_found, app_forbidden) and checks each route's
// authentication as documented.
func TestLiveAnswersMatchDocument(t *testing.T) {
	sp := loadSpec(t)
	var patterns []string
	for _, op := range sp.operations(t) {
		patterns = append(patterns, op.pattern())
	}
	single := newDevServer(t, patterns)
	runScenario(t, single)
	multi := newMultiDevServer(t, patterns)
	token := runScenario(t, multi)
	probeAuth(t, sp, multi, token)
	checkApps(t, multi, token)
	for _, s := range []*devServer{single, multi} {
		s.fake.WaitPushes()
		for _, p := range s.fake.Pushes() {
			if !p.Delivered {
				t.Errorf("push %s to %s: got no success, want it delivered: %+v", p.Event.Event, s.route("/wechat/push"), p.Attempts)
			}
		}
	}

	exchanges := append(single.rec.all(), multi.rec.all()...)
	succeeded := map[string]bool{}
	for i, ex := range exchanges {
		t.Run(fmt.Sprintf("%03d %s %s %d", i, ex.method, ex.path, ex.status), func(t *testing.T) {
			sp.checkExchange(t, ex)
		})
		if ex.status < 300 {
			succeeded[ex.pattern] = true
		}
	}
	t.Run("EveryOperationSucceeded", func(t *testing.T) {
		for _, p := range patterns {
			if !succeeded[p] {
				t.Errorf("%s: got no 2xx answer in the live run, want every documented operation exercised", p)
			}
		}
	})
}

// requestIDPattern is what an X-Request-Id answer header may be.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// checkExchange validates one exchange against the document.
func (sp *spec) checkExchange(t *testing.T, ex exchange) {
	t.Helper()
	id := ex.header.Get("X-Request-Id")
	if !requestIDPattern.MatchString(id) {
		t.Errorf("X-Request-Id: got %q, want a request id", id)
	}
	if mediaType(ex.respType) == "application/json" {
		var body struct {
			Error *struct {
				RequestID *string `json:"requestId"`
			} `json:"error"`
		}
		if json.Unmarshal(ex.respBody, &body) == nil && body.Error != nil && body.Error.RequestID != nil && *body.Error.RequestID != id {
			t.Errorf("error body requestId: got %q, want the X-Request-Id header %q", *body.Error.RequestID, id)
		}
	}
	if ex.pattern == "" {
		// No documented route: the API's 404 (a known path with another
		// method included).
		if ex.status != 404 {
			t.Errorf("unrouted request: got status %d, want 404", ex.status)
		}
		sp.validateBody(t, "/components/schemas/Error", "application/json", ex.respBody)
		return
	}
	op, ok := sp.operation(t, ex.pattern)
	if !ok {
		t.Fatalf("%s: not in the document", ex.pattern)
	}
	responses, _ := op.obj["responses"].(map[string]any)
	raw, ok := responses[strconv.Itoa(ex.status)].(map[string]any)
	if !ok {
		t.Fatalf("got status %d, not documented for %s (documented: %v): %s", ex.status, ex.pattern,
			slices.Sorted(maps.Keys(responses)), ex.respBody)
	}
	ptr, resp := sp.resolve(t, pointer(op.ptr, "responses", strconv.Itoa(ex.status)), raw)
	headers, _ := resp["headers"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		h, _ := headers[name].(map[string]any)
		hPtr, h := sp.resolve(t, pointer(ptr, "headers", name), h)
		values, present := ex.header[http.CanonicalHeaderKey(name)]
		if !present {
			if required, _ := h["required"].(bool); required {
				t.Errorf("header %s: got none, want it as %s documents", name, hPtr)
			}
			continue
		}
		if err := sp.schema(t, pointer(hPtr, "schema")).Validate(values[0]); err != nil {
			t.Errorf("header %s: got %q, refused by its schema: %v", name, values[0], err)
		}
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(ex.respBody) != 0 {
			t.Errorf("got body %q, want none as %s documents", ex.respBody, ptr)
		}
	} else {
		mt := mediaType(ex.respType)
		if _, ok := content[mt]; !ok {
			t.Fatalf("got Content-Type %q, want one of %v (%s)", ex.respType, slices.Sorted(maps.Keys(content)), ptr)
		}
		sp.validateBody(t, pointer(ptr, "content", mt, "schema"), mt, ex.respBody)
	}
	if ex.status >= 300 {
		return
	}
	// The server accepted the request: its query and body are as documented.
	params := sp.parameters(t, op)
	for _, p := range params {
		if p.in != "query" {
			continue
		}
		if !ex.query.Has(p.name) {
			if required, _ := p.obj["required"].(bool); required {
				t.Errorf("query parameter %s: got none accepted, want it required as %s documents", p.name, p.ptr)
			}
			continue
		}
		if err := sp.schema(t, pointer(p.ptr, "schema")).Validate(ex.query.Get(p.name)); err != nil {
			t.Errorf("query parameter %s: got %q accepted, refused by its schema: %v", p.name, ex.query.Get(p.name), err)
		}
	}
	for name := range ex.query {
		if _, ok := params["query:"+name]; !ok {
			t.Errorf("query parameter %s: got it accepted, want it documented", name)
		}
	}
	if len(ex.reqBody) == 0 {
		return
	}
	rb, ok := op.obj["requestBody"].(map[string]any)
	if !ok {
		t.Fatalf("got a request body the server accepted, but %s documents none", ex.pattern)
	}
	rbPtr, rb := sp.resolve(t, pointer(op.ptr, "requestBody"), rb)
	reqContent, _ := rb["content"].(map[string]any)
	mt := mediaType(ex.reqType)
	if _, ok := reqContent[mt]; !ok {
		t.Fatalf("got request Content-Type %q accepted, want one of %v (%s)", ex.reqType, slices.Sorted(maps.Keys(reqContent)), rbPtr)
	}
	sp.validateBody(t, pointer(rbPtr, "content", mt, "schema"), mt, ex.reqBody)
}

// validateBody validates a body of the given media type against the
// schema at ptr: JSON is decoded, any other type is validated as a string.
func (sp *spec) validateBody(t *testing.T, ptr, mt string, body []byte) {
	t.Helper()
	var v any = string(body)
	if mt == "application/json" {
		var err error
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			t.Fatalf("got a body that is not JSON (%v): %q", err, body)
		}
	}
	if err := sp.schema(t, ptr).Validate(v); err != nil {
		t.Errorf("got a body its schema %s refuses: %v\nbody: %s", ptr, err, body)
	}
}

// mediaType is the media type of a Content-Type without its parameters.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return mt
}

// probeAuth calls every operation without credentials and with the
// credential of another scheme: an operation documenting a security scheme
// must answer 401 both times, one documenting none must not answer 401.
// sessionToken is a valid mini-program session token.
func probeAuth(t *testing.T, sp *spec, s *devServer, sessionToken string) {
	t.Helper()
	for _, op := range sp.operations(t) {
		path := op.path
		for _, p := range sp.parameters(t, op) {
			if p.in != "path" {
				continue
			}
			example, ok := p.obj["example"].(string)
			if !ok {
				t.Fatalf("%s: path parameter %s: got no string example to call the route with", op.pattern(), p.name)
			}
			path = strings.ReplaceAll(path, "{"+p.name+"}", url.PathEscape(example))
		}
		security, _ := op.obj["security"].([]any)
		if len(security) == 0 {
			if a := s.send(t, "", op.method, path, "", nil); a.status == 401 {
				t.Errorf("%s without credentials: got 401, want the route open as documented", op.pattern())
			}
			continue
		}
		if len(security) > 1 {
			// Alternatives (a session token or an API key): no credential,
			// and a forged one of either form, are 401.
			for _, cred := range []string{"", "wxn1.forged.token", "not-an-api-key-0123456789"} {
				if a := s.send(t, "", op.method, path, cred, nil); a.status != 401 {
					t.Errorf("%s with credential %.12q (documented: %d schemes): got %d, want 401: %s", op.pattern(), cred, len(security), a.status, a.raw)
				}
			}
			continue
		}
		var scheme string
		req, _ := security[0].(map[string]any)
		for name := range req {
			scheme = name
		}
		wrong := testAPIKey // the credential of another scheme
		if scheme == "apiKey" {
			wrong = sessionToken
		}
		for _, cred := range []string{"", wrong} {
			if a := s.send(t, "", op.method, path, cred, nil); a.status != 401 {
				t.Errorf("%s with credential %.12q (documented scheme %s): got %d, want 401: %s", op.pattern(), cred, scheme, a.status, a.raw)
			}
		}
	}
}

// runScenario plays a mini program, a backend, WeChat and a person through
// every route; each step checks its status. It returns a valid session
// token.
func runScenario(t *testing.T, s *devServer) string {
	t.Helper()
	const salesID = "sales-42"
	login := func(user string) string {
		t.Helper()
		return s.want(t, 200, "POST", "/sandbox/login", "", map[string]string{"user": user}).str("code")
	}
	// subscribe plays a popup answered with choices and the mini program's
	// report of it (wrapped or bare).
	subscribe := func(who map[string]any, token string, choices map[string]string, wrapped bool) answer {
		t.Helper()
		who["choices"] = choices
		res := s.want(t, 200, "POST", "/sandbox/subscribe", "", who).body
		var report any = res
		if wrapped {
			report = map[string]any{"result": res}
		}
		return s.want(t, 200, "POST", "/v1/consents", token, report)
	}
	leadData := func(name string) map[string]any {
		return map[string]any{"thing1": name, "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "官网"}
	}
	lead := func(to map[string]string, key string) map[string]any {
		b := map[string]any{"to": to, "template": "lead_assigned", "data": leadData("Acme Ltd"), "page": "pages/clue/clue?id=L-1001",
			"miniprogramState": "formal", "lang": "zh_CN"}
		if key != "" {
			b["idempotencyKey"] = key
		}
		return b
	}

	s.want(t, 200, "GET", "/healthz", "", nil)

	// alice: a mini-program user without an account.
	alice := s.want(t, 200, "POST", "/v1/session", "", map[string]string{"code": login("alice")})
	aliceToken, aliceOpenID := alice.str("token"), alice.str("openid")
	s.want(t, 200, "GET", "/v1/templates", aliceToken, nil)
	if a := s.want(t, 200, "GET", "/v1/consents", aliceToken, nil); !strings.Contains(string(a.raw), `"prompt":true`) {
		t.Fatalf("consents before any popup: got %s, want prompt true", a.raw)
	}
	// The kit reports the popup it opens, then its result.
	if a := s.want(t, 200, "POST", "/v1/consents/shown", aliceToken, map[string]any{"templates": []string{leadID, "not-a-template"}}); !strings.Contains(string(a.raw), `"ignored":["not-a-template"]`) {
		t.Fatalf("shown popup: got %s, want the unknown id ignored", a.raw)
	}
	s.want(t, 400, "POST", "/v1/consents/shown", aliceToken, map[string]any{"templates": []string{}})
	// Before any popup, the advice suggests one-time ids for alice's popup.
	if a := s.want(t, 200, "GET", "/v1/consents/advice", aliceToken, nil); len(a.get("suggested").([]any)) == 0 {
		t.Fatalf("advice before any popup: got %s, want suggested template ids", a.raw)
	}
	s.want(t, 400, "GET", "/v1/consents/advice?limit=9", aliceToken, nil)
	s.want(t, 200, "POST", "/v1/consents", aliceToken, map[string]any{
		"result":   s.want(t, 200, "POST", "/sandbox/subscribe", "", map[string]any{"openid": aliceOpenID, "choices": map[string]string{leadID: "accept"}}).body,
		"settings": map[string]any{"mainSwitch": true, "itemSettings": map[string]string{registrationID: "reject"}},
	})

	// lena: a salesperson, bound to sales-42 by the customer's backend.
	lenaCode := login("lena")
	lena := s.want(t, 200, "POST", "/v1/bindings", testAPIKey, map[string]string{"userId": salesID, "code": lenaCode})
	lenaToken, lenaOpenID := lena.str("token"), lena.str("openid")
	subscribe(map[string]any{"code": lenaCode}, lenaToken, map[string]string{noticeID: "accept"}, false)
	for range 3 {
		subscribe(map[string]any{"openid": lenaOpenID}, lenaToken, map[string]string{leadID: "accept"}, false)
	}
	s.want(t, 400, "POST", "/sandbox/subscribe", "", map[string]any{"openid": lenaOpenID,
		"choices": map[string]string{leadID: "accept", noticeID: "accept"}}) // one-time and long-term in one popup

	// The ledgers as an operator sees them, by account and by openid.
	byUser := s.want(t, 200, "GET", "/v1/users/"+salesID+"/consents", testAPIKey, nil)
	if lead := ledgerEntry(byUser, "lead_assigned"); byUser.str("openid") != lenaOpenID || byUser.str("userId") != salesID ||
		lead["credits"] != float64(3) || lead["updatedAt"] == nil {
		t.Fatalf("%s's ledger: got %s, want lena's with 3 lead_assigned credits and when they changed", salesID, byUser.raw)
	}
	if a := s.want(t, 200, "GET", "/v1/openids/"+lenaOpenID+"/consents", testAPIKey, nil); a.str("userId") != salesID {
		t.Fatalf("lena's ledger by openid: got %s, want userId %s", a.raw, salesID)
	}
	if a := s.want(t, 200, "GET", "/v1/openids/"+aliceOpenID+"/consents", testAPIKey, nil); a.str("openid") != aliceOpenID || a.get("userId") != nil {
		t.Fatalf("alice's ledger by openid: got %s, want hers without a userId", a.raw)
	}
	const neverSeen = "oNeverSeen0000000000000000000"
	if a := s.want(t, 200, "GET", "/v1/openids/"+neverSeen+"/consents", testAPIKey, nil); ledgerEntry(a, "lead_assigned")["status"] != "" {
		t.Fatalf("the ledger of an openid never seen: got %s, want every template unasked", a.raw)
	}
	s.want(t, 404, "GET", "/v1/users/nobody-7/consents", testAPIKey, nil)
	if a := s.want(t, 200, "GET", "/v1/consents/advice?userId="+salesID+"&limit=2", testAPIKey, nil); a.str("userId") != salesID || a.str("openid") != lenaOpenID {
		t.Fatalf("advice for %s: got %s, want lena's", salesID, a.raw)
	}
	s.want(t, 404, "GET", "/v1/consents/advice?userId=nobody-7", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/consents/advice", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/users/sales%2042/consents", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/openids/"+strings.Repeat("o", 65)+"/consents", testAPIKey, nil)

	// A client that keeps reporting is refused for the rest of the minute
	// (10 reports a minute: 25 tries are enough even across a minute's end).
	carolToken := s.want(t, 200, "POST", "/v1/session", "", map[string]string{"code": login("carol")}).str("token")
	limited := false
	for i := 0; i < 25 && !limited; i++ {
		a := s.do(t, "POST", "/v1/consents", carolToken, map[string]string{"errMsg": "requestSubscribeMessage:ok", registrationID: "reject"})
		switch {
		case a.status == 429 && a.str("error", "code") == "rate_limited":
			limited = true
		case a.status != 200:
			t.Fatalf("consent report %d: got %d, want 200 or 429 rate_limited: %s", i+1, a.status, a.raw)
		}
	}
	if !limited {
		t.Fatal("25 consent reports in a row: got no 429, want rate_limited past 10 a minute")
	}

	// Sends.
	sent := s.want(t, 200, "POST", "/v1/notifications", testAPIKey, lead(map[string]string{"userId": salesID}, "lead-L-1001-assign-1"))
	if sent.str("status") != "sent" || sent.str("wechat", "msgid") == "" {
		t.Fatalf("send: got %s, want sent with a msgid", sent.raw)
	}
	if again := s.want(t, 200, "POST", "/v1/notifications", testAPIKey, lead(map[string]string{"userId": salesID}, "lead-L-1001-assign-1")); again.str("id") != sent.str("id") {
		t.Fatalf("repeated idempotency key: got %s, want the first result %s", again.raw, sent.raw)
	}
	other := lead(map[string]string{"userId": salesID}, "lead-L-1001-assign-1")
	other["data"] = leadData("Other Ltd")
	s.want(t, 409, "POST", "/v1/notifications", testAPIKey, other)
	s.want(t, 200, "GET", "/v1/notifications/"+sent.str("id"), testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/notifications/ntf_0000000000000000000000NONE", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/notifications/%ff%fe", testAPIKey, nil) // an id that cannot exist
	wechatShape := map[string]any{"to": map[string]string{"openid": aliceOpenID}, "template": leadID, "data": map[string]any{
		"thing1": map[string]string{"value": "Acme Ltd"}, "character_string2": map[string]string{"value": "L-1002"},
		"time3": map[string]string{"value": "2026-11-21 17:30"}, "thing4": map[string]string{"value": "官网"}}}
	if a := s.want(t, 200, "POST", "/v1/notifications", testAPIKey, wechatShape); a.str("status") != "sent" {
		t.Fatalf("send in WeChat's data shape: got %s, want sent", a.raw)
	}
	if a := s.want(t, 200, "POST", "/v1/notifications", testAPIKey, wechatShape); a.str("reason") != "no_consent" {
		t.Fatalf("send without credit: got %s, want skipped/no_consent", a.raw)
	}
	if a := s.want(t, 200, "POST", "/v1/notifications", testAPIKey, lead(map[string]string{"userId": "nobody-7"}, "")); a.str("reason") != "unbound_user" {
		t.Fatalf("send to an unbound userId: got %s, want skipped/unbound_user", a.raw)
	}
	s.want(t, 200, "POST", "/v1/notifications", testAPIKey, map[string]any{"to": map[string]string{"userId": salesID},
		"template": "service_notice", "data": map[string]string{"thing1": "Maintenance", "time2": "2026-11-22 08:00"}})
	subscribe(map[string]any{"openid": aliceOpenID}, aliceToken, map[string]string{leadID: "accept"}, true)
	s.want(t, 200, "POST", "/sandbox/faults", "", map[string]any{"api": "send", "errcode": -1, "count": 1})
	s.want(t, 503, "POST", "/v1/notifications", testAPIKey, lead(map[string]string{"openid": aliceOpenID}, "busy-1"))
	s.want(t, 400, "POST", "/v1/notifications", testAPIKey, map[string]any{"to": map[string]string{"openid": aliceOpenID},
		"template": "lead_assigned", "data": map[string]string{"thing1": "x"}})
	s.want(t, 400, "POST", "/v1/notifications", testAPIKey, `{"to":{"openid":"o1"},"template":"lead_assigned","idempotency_key":"x"}`)
	if a := s.want(t, 400, "POST", "/v1/notifications", testAPIKey, "{\"to\":{\"openid\":\"o1\"},\"template\":\"lead_assigned\",\"data\":{\"thing1\":\"\xff\"}}"); a.str("error", "field") != "data.thing1" {
		t.Fatalf("a string that is not UTF-8: got %s, want bad_request naming data.thing1", a.raw)
	}
	s.want(t, 413, "POST", "/v1/notifications", testAPIKey, `{"template":"`+strings.Repeat("x", 70<<10)+`"}`)

	// Outcome webhooks: the tick delivers the sends' events; their
	// deliveries are listed and one is replayed; the webhook is enabled.
	if _, _, err := s.svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil {
		t.Fatalf("deliver webhooks: %v", err)
	}
	hooks := s.want(t, 200, "GET", "/v1/webhooks/crm/deliveries?status=delivered&limit=2", testAPIKey, nil)
	delivered, _ := hooks.get("deliveries").([]any)
	if len(delivered) != 2 || hooks.str("next") == "" {
		t.Fatalf("GET /v1/webhooks/crm/deliveries: got %s, want 2 delivered and a next cursor", hooks.raw)
	}
	s.want(t, 200, "GET", "/v1/webhooks/crm/deliveries?cursor="+url.QueryEscape(hooks.str("next")), testAPIKey, nil)
	hookID, _ := delivered[0].(map[string]any)["id"].(string)
	if a := s.want(t, 202, "POST", "/v1/webhooks/crm/deliveries/"+hookID+"/replay", testAPIKey, nil); a.str("delivery", "status") != "pending" {
		t.Fatalf("replay: got %s, want pending", a.raw)
	}
	s.want(t, 200, "POST", "/v1/webhooks/crm/enable", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/webhooks/nope/deliveries", testAPIKey, nil)
	s.want(t, 404, "POST", "/v1/webhooks/nope/enable", testAPIKey, nil)
	s.want(t, 404, "POST", "/v1/webhooks/crm/deliveries/msg_nope/replay", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/webhooks/crm/deliveries?status=sent", testAPIKey, nil)

	// Login failures, WeChat's and the caller's.
	s.want(t, 400, "POST", "/v1/session", "", map[string]string{"code": "not-a-code"})
	s.want(t, 400, "POST", "/v1/session", "", `{"code":"x","extra":1}`)
	for _, f := range []struct{ errcode, status int }{{40226, 403}, {45011, 429}, {-1, 503}} {
		s.want(t, 200, "POST", "/sandbox/faults", "", map[string]any{"api": "jscode2session", "errcode": f.errcode, "count": 1})
		s.want(t, f.status, "POST", "/v1/session", "", map[string]string{"code": login("bob")})
	}

	// The inbox, and a template turned off.
	if a := s.want(t, 200, "GET", "/sandbox/messages?openid="+url.QueryEscape(lenaOpenID), "", nil); len(a.get("messages").([]any)) == 0 {
		t.Fatalf("lena's inbox: got %s, want messages", a.raw)
	}
	s.want(t, 200, "POST", "/sandbox/unsubscribe", "", map[string]string{"openid": lenaOpenID, "templateId": noticeID})
	s.want(t, 400, "POST", "/sandbox/faults", "", map[string]any{"api": "nope", "errcode": -1})

	// The sandbox's templates through WeChat's API, as `wxnotify templates sync --sandbox` reads them.
	wx := s.want(t, 200, "GET", "/sandbox/wechat", "", nil)
	tok := s.want(t, 200, "POST", "/sandbox/wechat/cgi-bin/stable_token", "",
		map[string]string{"grant_type": "client_credential", "appid": wx.str("appid"), "secret": wx.str("secret")})
	if a := s.want(t, 200, "GET", "/sandbox/wechat/wxaapi/newtmpl/gettemplate?access_token="+url.QueryEscape(tok.str("access_token")), "", nil); len(a.get("data").([]any)) != 3 {
		t.Fatalf("the sandbox's templates: got %s, want the 3 of the configuration", a.raw)
	}
	if a := s.want(t, 200, "POST", "/sandbox/wechat/cgi-bin/stable_token", "",
		map[string]string{"grant_type": "client_credential", "appid": wx.str("appid"), "secret": "wrong"}); a.get("errcode") == nil {
		t.Fatalf("stable_token with a wrong secret: got %s, want WeChat's errcode", a.raw)
	}

	// Lead events.
	event := map[string]any{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
		"data": map[string]any{"lead": map[string]any{"id": "L-1001", "name": "Acme Ltd"}, "assignee": map[string]any{"userId": salesID}}}
	if a := s.want(t, 202, "POST", "/v1/events", testAPIKey, event); !strings.Contains(string(a.raw), `"status":"sent"`) {
		t.Fatalf("lead event: got %s, want a sent notification", a.raw)
	}
	s.want(t, 202, "POST", "/v1/events", testAPIKey, []any{event, map[string]any{"id": "evt-7f3b", "type": "lead.closed", "data": map[string]any{}}})
	s.want(t, 400, "POST", "/v1/events", testAPIKey, []any{event, map[string]any{"type": "lead.assigned"}})

	// Batches.
	batch := map[string]any{"template": "lead_assigned", "data": leadData("Daily leads"), "idempotencyKey": "digest-2026-11-22",
		"recipients": []any{map[string]any{"userId": salesID, "data": map[string]string{"thing1": "Lead 1"}}, map[string]any{"openid": aliceOpenID}}}
	b := s.want(t, 202, "POST", "/v1/batches", testAPIKey, batch)
	if again := s.want(t, 202, "POST", "/v1/batches", testAPIKey, batch); again.str("id") != b.str("id") {
		t.Fatalf("repeated batch idempotency key: got %s, want %s", again.raw, b.raw)
	}
	batch["data"] = leadData("Other leads")
	s.want(t, 409, "POST", "/v1/batches", testAPIKey, batch)
	cancelled := s.want(t, 202, "POST", "/v1/batches", testAPIKey, map[string]any{"template": "lead_assigned", "audience": "consenting",
		"data": leadData("Later"), "notBefore": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	// Paused and resumed before it runs, paused again, then cancelled
	// while paused: a finished batch is neither paused nor resumed.
	if a := s.want(t, 200, "POST", "/v1/batches/"+b.str("id")+"/pause", testAPIKey, nil); a.str("status") != "paused" {
		t.Fatalf("pause: got %s, want paused", a.raw)
	}
	if a := s.want(t, 200, "POST", "/v1/batches/"+b.str("id")+"/resume", testAPIKey, nil); a.str("status") != "scheduled" {
		t.Fatalf("resume: got %s, want scheduled", a.raw)
	}
	s.want(t, 200, "POST", "/v1/batches/"+cancelled.str("id")+"/pause", testAPIKey, nil)
	if a := s.want(t, 200, "DELETE", "/v1/batches/"+cancelled.str("id"), testAPIKey, nil); a.str("status") != "cancelled" {
		t.Fatalf("cancel a paused batch: got %s, want cancelled", a.raw)
	}
	s.want(t, 409, "POST", "/v1/batches/"+cancelled.str("id")+"/pause", testAPIKey, nil)
	s.want(t, 409, "POST", "/v1/batches/"+cancelled.str("id")+"/resume", testAPIKey, nil)
	s.want(t, 404, "POST", "/v1/batches/bat_0000000000000000000000NONE/pause", testAPIKey, nil)
	s.want(t, 404, "POST", "/v1/batches/bat_0000000000000000000000NONE/resume", testAPIKey, nil)
	if err := s.svc.RunBatches(context.Background(), time.Now().Add(30*time.Second)); err != nil {
		t.Fatalf("run batches: %v", err)
	}
	if a := s.want(t, 200, "GET", "/v1/batches/"+b.str("id"), testAPIKey, nil); a.str("status") != "done" {
		t.Fatalf("batch after a run: got %s, want done", a.raw)
	}
	// The list, newest first: the cancelled batch, then b; a page of one
	// has a cursor to the next.
	list := s.want(t, 200, "GET", "/v1/batches?limit=1", testAPIKey, nil)
	first, _ := list.get("batches").([]any)
	if len(first) != 1 || list.str("next") == "" {
		t.Fatalf("GET /v1/batches?limit=1: got %s, want one batch and a next cursor", list.raw)
	}
	if id, _ := first[0].(map[string]any)["id"].(string); id != cancelled.str("id") {
		t.Fatalf("GET /v1/batches: first %s, want the newest, %s", id, cancelled.str("id"))
	}
	rest := s.want(t, 200, "GET", "/v1/batches?limit=100&cursor="+url.QueryEscape(list.str("next")), testAPIKey, nil)
	if more, _ := rest.get("batches").([]any); len(more) == 0 || more[0].(map[string]any)["id"] != b.str("id") {
		t.Fatalf("GET /v1/batches after the cursor: got %s, want %s next", rest.raw, b.str("id"))
	}
	s.want(t, 400, "GET", "/v1/batches?limit=0", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/batches?cursor=nonsense", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/batches/bat_0000000000000000000000NONE", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/batches/%ff%fe", testAPIKey, nil)
	s.want(t, 404, "DELETE", "/v1/batches/bat_%00", testAPIKey, nil)
	s.want(t, 400, "POST", "/v1/batches", testAPIKey, map[string]any{"template": "lead_assigned", "audience": "consenting",
		"recipients": []any{map[string]string{"openid": aliceOpenID}}})

	// The history: the batch's two notifications a page at a time, then
	// filters combined, then bad filters.
	hist := s.want(t, 200, "GET", "/v1/notifications?limit=1&batch="+b.str("id"), testAPIKey, nil)
	h1, _ := hist.get("notifications").([]any)
	if len(h1) != 1 || hist.str("next") == "" {
		t.Fatalf("GET /v1/notifications?limit=1&batch=: got %s, want one notification and a next cursor", hist.raw)
	}
	hist2 := s.want(t, 200, "GET", "/v1/notifications?limit=1&batch="+b.str("id")+"&cursor="+url.QueryEscape(hist.str("next")), testAPIKey, nil)
	h2, _ := hist2.get("notifications").([]any)
	if len(h2) != 1 || h2[0].(map[string]any)["id"] == h1[0].(map[string]any)["id"] {
		t.Fatalf("GET /v1/notifications after the cursor: got %s, want the batch's other notification", hist2.raw)
	}
	since, until := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	mine := s.want(t, 200, "GET", "/v1/notifications?openid="+aliceOpenID+"&template=lead_assigned&since="+since+"&until="+until, testAPIKey, nil)
	got, _ := mine.get("notifications").([]any)
	if len(got) == 0 {
		t.Fatalf("GET /v1/notifications?openid=: got %s, want alice's notifications", mine.raw)
	}
	for _, n := range got {
		if to, _ := n.(map[string]any)["to"].(map[string]any); to["openid"] != aliceOpenID {
			t.Fatalf("GET /v1/notifications?openid=: got %s, want only alice's", mine.raw)
		}
	}
	s.want(t, 200, "GET", "/v1/notifications?userId="+salesID+"&status=sent", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/notifications?status=pending", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/notifications?since=yesterday", testAPIKey, nil)

	// The account: its binding, ledger and last popup; its timeline a page
	// at a time, newest first (the batch's send to it is its latest event).
	acct := s.want(t, 200, "GET", "/v1/users/"+salesID, testAPIKey, nil)
	if bs, _ := acct.get("bindings").([]any); len(bs) != 1 || bs[0].(map[string]any)["openid"] != lenaOpenID ||
		acct.str("lastPromptAt") == "" || acct.str("lastAcceptAt") == "" {
		t.Fatalf("GET /v1/users/%s: got %s, want lena's binding and her last popup", salesID, acct.raw)
	}
	tl := s.want(t, 200, "GET", "/v1/users/"+salesID+"/timeline?limit=1", testAPIKey, nil)
	ev1, _ := tl.get("events").([]any)
	if len(ev1) != 1 || tl.str("next") == "" || ev1[0].(map[string]any)["type"] != "notification" {
		t.Fatalf("GET /v1/users/%s/timeline?limit=1: got %s, want the latest send and a next cursor", salesID, tl.raw)
	}
	tl2 := s.want(t, 200, "GET", "/v1/users/"+salesID+"/timeline?limit=100&since="+since+"&cursor="+url.QueryEscape(tl.str("next")), testAPIKey, nil)
	if ev2, _ := tl2.get("events").([]any); len(ev2) < 5 || tl2.str("next") != "" {
		t.Fatalf("GET /v1/users/%s/timeline after the cursor: got %s, want the rest (sends and popups) and no cursor", salesID, tl2.raw)
	}
	s.want(t, 404, "GET", "/v1/users/nobody-7", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/users/nobody-7/timeline", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/users/"+salesID+"/timeline?cursor=nonsense", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/users/"+salesID+"/timeline?limit=101", testAPIKey, nil)
	// The consent funnel: alice's popup was shown, accepted and sent to.
	st := s.want(t, 200, "GET", "/v1/stats", testAPIKey, nil)
	if !strings.Contains(string(st.raw), `"shown":1`) || !strings.Contains(string(st.raw), `"template":"lead_assigned"`) {
		t.Fatalf("GET /v1/stats: got %s, want the lead template's shown popup", st.raw)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	s.want(t, 200, "GET", "/v1/stats?from="+today+"&to="+today+"&template=lead_assigned", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/stats?from=2026-01-01&to=2026-12-31", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/stats?to=today", testAPIKey, nil)
	s.want(t, 400, "GET", "/v1/stats?template=nope", testAPIKey, nil)

	// WeChat's URL verification, and a forged push.
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "1514711492"
	q := url.Values{"signature": {wechat.Signature(testPushToken, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {"4513239471302859837"}}
	if a := s.want(t, 200, "GET", "/wechat/push?"+q.Encode(), "", nil); string(a.raw) != "4513239471302859837" {
		t.Fatalf("URL verification: got %q, want echostr", a.raw)
	}
	q.Set("signature", strings.Repeat("0", 40))
	s.want(t, 401, "GET", "/wechat/push?"+q.Encode(), "", nil)
	q.Del("echostr")
	s.want(t, 401, "POST", "/wechat/push?"+q.Encode(), "", map[string]any{"ToUserName": "gh_0a1b2c3d4e5f", "FromUserName": aliceOpenID,
		"CreateTime": ts, "MsgType": "event", "Event": "subscribe_msg_popup_event",
		"List": map[string]string{"TemplateId": leadID, "SubscribeStatusString": "accept", "PopupScene": "0"}})

	// An address that keeps failing the API key check is slowed: its wrong
	// keys are answered 429 for a while, a valid key still passes.
	const attacker = "203.0.113.7"
	for range 10 {
		if a := s.doAs(t, attacker, "GET", "/v1/batches/"+b.str("id"), "wxn_guess_0000000000", nil); a.status != 401 {
			t.Fatalf("a wrong API key: got %d, want 401: %s", a.status, a.raw)
		}
	}
	if a := s.doAs(t, attacker, "GET", "/v1/batches/"+b.str("id"), testAPIKey, nil); a.status != 200 {
		t.Fatalf("a valid API key from the noisy address: got %d, want 200: %s", a.status, a.raw)
	}
	if a := s.doAs(t, attacker, "GET", "/v1/batches/"+b.str("id"), "wxn_guess_0000000001", nil); a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Fatalf("the 11th wrong key within a minute: got %d (Retry-After %q), want 429 with Retry-After: %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	for _, path := range []string{"/v1/users/" + salesID + "/consents", "/v1/openids/" + aliceOpenID + "/consents"} {
		if a := s.doAs(t, attacker, "GET", path, "wxn_guess_0000000002", nil); a.status != 429 {
			t.Fatalf("GET %s with a wrong key from a slowed address: got %d, want 429: %s", path, a.status, a.raw)
		}
	}

	// Unbinding, and routes that do not exist.
	s.want(t, 204, "DELETE", "/v1/bindings/"+salesID, testAPIKey, nil)
	s.want(t, 404, "DELETE", "/v1/bindings/"+salesID, testAPIKey, nil)
	s.want(t, 400, "DELETE", "/v1/bindings/%ff%fe", testAPIKey, nil)
	s.want(t, 404, "GET", "/v1/users/"+salesID+"/consents", testAPIKey, nil)
	if a := s.want(t, 200, "GET", "/v1/openids/"+lenaOpenID+"/consents", testAPIKey, nil); a.get("userId") != nil {
		t.Fatalf("lena's ledger after unbinding: got %s, want no userId", a.raw)
	}
	s.want(t, 404, "GET", "/v1/nope", testAPIKey, nil)
	s.want(t, 404, "PUT", "/v1/templates", lenaToken, nil)
	return aliceToken
}

// ledgerEntry returns the consent of template alias in a ledger answer,
// nil if there is none.
func ledgerEntry(a answer, alias string) map[string]any {
	list, _ := a.get("consents").([]any)
	for _, raw := range list {
		if c, _ := raw.(map[string]any); c["alias"] == alias {
			return c
		}
	}
	return nil
}

// checkApps checks what only a server of several apps answers: {app} by id
// or AppID, an unknown app (404 app_not_found whoever asks), an API key of
// another app and a session token another app issued (403
// app_forbidden, on both route forms), and lead events naming their app.
// salesToken is a session token of salesApp.
func checkApps(t *testing.T, s *devServer, salesToken string) {
	t.Helper()
	send := map[string]any{"to": map[string]string{"userId": "nobody-7"}, "template": "lead_assigned",
		"data": map[string]any{"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "官网"}}

	s.wantAt(t, 200, "", "GET", "/v1/apps/"+testAppID+"/templates", salesToken, nil)
	s.wantAt(t, 404, "app_not_found", "GET", "/v1/apps/nope/templates", salesToken, nil)
	s.wantAt(t, 404, "app_not_found", "POST", "/v1/apps/nope/notifications", testAPIKey, send)
	s.wantAt(t, 404, "app_not_found", "POST", "/v1/apps/nope/session", "", map[string]string{"code": "081xYz"})
	s.wantAt(t, 404, "app_not_found", "GET", "/v1/apps/sales%21/batches/bat_0000000000000000000000NONE", testAPIKey, nil)
	s.wantAt(t, 404, "app_not_found", "GET", "/wechat/push/nope?signature=0&timestamp=1&nonce=2&echostr=3", "", nil)

	// API keys: WXN_API_KEYS act for every app, an app's own keys for it only.
	s.wantAt(t, 403, "app_forbidden", "POST", "/v1/apps/"+salesApp+"/notifications", customerAPIKey, send)
	s.wantAt(t, 403, "app_forbidden", "POST", "/v1/notifications", customerAPIKey, send)
	s.wantAt(t, 403, "app_forbidden", "GET", "/v1/apps/"+salesApp+"/users/sales-42/consents", customerAPIKey, nil)
	for _, app := range []string{customerApp, customerAppID} {
		for _, key := range []string{customerAPIKey, testAPIKey} {
			if a := s.wantAt(t, 200, "", "POST", "/v1/apps/"+app+"/notifications", key, send); a.str("reason") != "unbound_user" {
				t.Fatalf("send for %s with key %.12q: got %s, want skipped/unbound_user", app, key, a.raw)
			}
		}
	}

	// Session tokens act for the app that issued them only.
	s.wantAt(t, 403, "app_forbidden", "GET", "/v1/apps/"+customerApp+"/templates", salesToken, nil)
	dan := s.wantAt(t, 200, "", "POST", "/v1/apps/"+customerApp+"/session", "", map[string]string{"code": s.other.Login("dan")})
	danToken := dan.str("token")
	s.wantAt(t, 200, "", "GET", "/v1/apps/"+customerAppID+"/consents", danToken, nil)
	s.wantAt(t, 403, "app_forbidden", "GET", "/v1/apps/"+salesApp+"/consents", danToken, nil)
	s.wantAt(t, 403, "app_forbidden", "GET", "/v1/templates", danToken, nil)

	// Lead events name their app (id or AppID); a route refuses another app's.
	event := func(id, app string) map[string]any {
		return map[string]any{"id": id, "type": "lead.assigned", "app": app, "occurredAt": "2026-11-21T09:30:00Z",
			"data": map[string]any{"lead": map[string]any{"id": "L-2001", "name": "Acme Ltd"}, "assignee": map[string]any{"userId": "nobody-7"}}}
	}
	s.wantAt(t, 202, "", "POST", "/v1/apps/"+salesApp+"/events", testAPIKey, event("evt-app-1", salesApp))
	s.wantAt(t, 202, "", "POST", "/v1/events", testAPIKey, event("evt-app-2", testAppID))
	s.wantAt(t, 202, "", "POST", "/v1/apps/"+customerApp+"/events", customerAPIKey, event("evt-app-3", customerAppID))
	for _, c := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/apps/" + salesApp + "/events", event("evt-app-4", customerApp), "app"},
		{"/v1/events", event("evt-app-5", customerApp), "app"},
		{"/v1/apps/" + customerApp + "/events", []any{event("evt-app-6", customerApp), event("evt-app-7", testAppID)}, "[1].app"},
	} {
		if a := s.wantAt(t, 400, "bad_request", "POST", c.path, testAPIKey, c.body); a.str("error", "field") != c.field {
			t.Fatalf("POST %s with an event of another app: got %s, want field %q", c.path, a.raw, c.field)
		}
	}
}
