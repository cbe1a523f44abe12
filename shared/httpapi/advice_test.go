package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// adviceBody is the part of GET /v1/consents/advice the tests read.
type adviceBody struct {
	OpenID    string
	UserID    string
	Suggested []string
	Limit     int
	Since     time.Time
	Templates []struct {
		Alias, TemplateID, Kind string
		Rank, Tier              int
		Reasons                 []string
		Suggested               bool
		Held                    int
		UnmetDemand             int
		RecentDemand            int
		Credits                 int64
		AppDemand               int64
	}
	Excluded []struct{ Alias, Reason string }
}

// GET /v1/consents/advice answers the mini program's user (session token)
// or a bound userId (API key): a send skipped for lack of consent makes
// the template the one to ask for, with its reasons; after an "always
// keep" reject it is never suggested.
func TestAdviceRoute(t *testing.T) {
	r := newAPIRig(t)
	bound := r.do(t, "192.0.2.80", "POST", "/v1/bindings", testAPIKey, []byte(`{"userId":"sales-42","code":"`+r.fake.Login("lena")+`"}`))
	var login struct{ Token, OpenID string }
	if bound.status != http.StatusOK || json.Unmarshal([]byte(bound.raw), &login) != nil || login.Token == "" {
		t.Fatalf("bind: got %d %s", bound.status, bound.raw)
	}
	r.created(t, "/v1/notifications", `{"to":{"userId":"sales-42"},"template":"lead","data":{"thing1":"x"}}`, http.StatusOK)

	get := func(target, auth string) adviceBody {
		t.Helper()
		a := r.do(t, "192.0.2.80", "GET", target, auth, nil)
		var b adviceBody
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.raw), &b) != nil {
			t.Fatalf("GET %s: got %d %s, want 200", target, a.status, a.raw)
		}
		return b
	}
	for _, c := range []struct{ target, auth, userID string }{
		{"/v1/consents/advice", login.Token, ""},
		{"/v1/consents/advice?userId=sales-42", testAPIKey, "sales-42"},
		{"/v1/apps/default/consents/advice?userId=sales-42&limit=1", testAPIKey, "sales-42"},
		{"/v1/apps/" + testAppID + "/consents/advice", login.Token, ""},
	} {
		b := get(c.target, c.auth)
		if b.OpenID != login.OpenID || b.UserID != c.userID || !slices.Equal(b.Suggested, []string{testTmplID}) || len(b.Templates) != 1 {
			t.Fatalf("GET %s: got %+v, want lena's advice suggesting %s", c.target, b, testTmplID)
		}
		lead := b.Templates[0]
		if lead.Alias != "lead" || lead.Rank != 1 || lead.Tier != 2 || lead.Reasons[0] != "unmet_demand" || lead.UnmetDemand != 1 ||
			lead.Held != 0 || lead.Credits != 0 || !lead.Suggested || lead.Kind != "one-time" {
			t.Fatalf("GET %s: lead %+v, want rank 1, unmet_demand 1, held 0, suggested", c.target, lead)
		}
		if wantLimit := map[bool]int{true: 1, false: 3}[strings.Contains(c.target, "limit=1")]; b.Limit != wantLimit {
			t.Fatalf("GET %s: limit %d, want %d", c.target, b.Limit, wantLimit)
		}
	}

	// A reject kept with "always keep this choice": never suggested.
	rep := r.do(t, "192.0.2.80", "POST", "/v1/consents", login.Token, []byte(`{"result":{"errMsg":"requestSubscribeMessage:ok","`+
		testTmplID+`":"reject"},"settings":{"mainSwitch":true,"itemSettings":{"`+testTmplID+`":"reject"}}}`))
	if rep.status != http.StatusOK {
		t.Fatalf("report: got %d %s", rep.status, rep.raw)
	}
	b := get("/v1/consents/advice", login.Token)
	if len(b.Suggested) != 0 || len(b.Templates) != 0 || len(b.Excluded) != 1 || b.Excluded[0].Reason != "always_reject" {
		t.Fatalf("after an always-kept reject: got %+v, want nothing suggested, lead excluded as always_reject", b)
	}
	if a := r.do(t, "192.0.2.80", "GET", "/v1/consents/advice", login.Token, nil); !strings.Contains(a.raw, `"suggested":[]`) {
		t.Fatalf("empty suggestion: got %s, want \"suggested\":[] (never null)", a.raw)
	}
}

// Bad input is a 4xx naming the field: a userId that cannot be one, none
// with an API key, one with a session token, one nobody is bound to, a
// limit out of 1..5, an unknown or repeated parameter; no credential or a
// wrong one is 401.
func TestAdviceRouteBadInput(t *testing.T) {
	r := newAPIRig(t)
	token, _ := r.sessions.Issue(testAppID, "oAdviceBad")
	for _, c := range []struct {
		target, auth string
		status       int
		code, field  string
	}{
		{"/v1/consents/advice?userId=sales%2042", testAPIKey, 400, "bad_request", "userId"},
		{"/v1/consents/advice?userId=" + strings.Repeat("u", 129), testAPIKey, 400, "bad_request", "userId"},
		{"/v1/consents/advice?userId=a%7Cb", testAPIKey, 400, "bad_request", "userId"},
		{"/v1/consents/advice", testAPIKey, 400, "bad_request", "userId"},
		{"/v1/consents/advice?userId=", testAPIKey, 400, "bad_request", "userId"},
		{"/v1/consents/advice?userId=nobody-7", testAPIKey, 404, "user_not_found", "userId"},
		{"/v1/consents/advice?userId=sales-42", token, 400, "bad_request", "userId"},
		{"/v1/consents/advice?limit=0", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=6", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=x", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=%2B3", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=03", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?limit=1&limit=2", token, 400, "bad_request", "limit"},
		{"/v1/consents/advice?openid=o1", token, 400, "bad_request", "openid"},
		{"/v1/consents/advice", "", 401, "unauthorized", ""},
		{"/v1/consents/advice?userId=sales-42", "wxn_wrong_0123456789abcdef", 401, "unauthorized", ""},
		{"/v1/consents/advice", "wxn1.forged.token", 401, "unauthorized", ""},
	} {
		a := r.do(t, "192.0.2.81", "GET", c.target, c.auth, nil)
		if a.status != c.status || a.body.Error.Code != c.code || a.body.Error.Field != c.field {
			t.Errorf("GET %s: got %d %s %q, want %d %s %q: %s", c.target, a.status, a.body.Error.Code, a.body.Error.Field,
				c.status, c.code, c.field, a.raw)
		}
	}
}

// Invalid session tokens are not failed API-key attempts: a mini
// program's many expired tokens behind one address never get the address
// slowed, while wrong API keys do.
func TestAdviceRouteSessionFailuresNotCounted(t *testing.T) {
	r := newAPIRig(t)
	for i := range 30 {
		if a := r.do(t, "192.0.2.82", "GET", "/v1/consents/advice", "wxn1.expired.token", nil); a.status != 401 {
			t.Fatalf("bad session token %d: got %d %s, want 401", i, a.status, a.raw)
		}
	}
	if a := r.do(t, "192.0.2.82", "GET", "/v1/consents/advice?userId=sales-42", "wxn_wrong_0123456789abcdef", nil); a.status != 401 {
		t.Fatalf("a wrong API key after 30 bad session tokens: got %d, want 401 (not rate_limited)", a.status)
	}
	var last answer
	for range 12 {
		last = r.do(t, "192.0.2.83", "GET", "/v1/consents/advice?userId=sales-42", "wxn_wrong_0123456789abcdef", nil)
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("12 wrong API keys: got %d, want 429 rate_limited", last.status)
	}
}
