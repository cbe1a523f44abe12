package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// GET /v1/users/{userId} answers the binding, logins, ledger and last
// popup; GET /v1/users/{userId}/timeline its events newest first, a page
// at a time. Both want the API key; an unbound userId is 404
// user_not_found, a bad cursor or limit 400 naming it.
func TestUserRoutes(t *testing.T) {
	r := newAPIRig(t)
	bound := r.do(t, "192.0.2.70", "POST", "/v1/bindings", testAPIKey, []byte(`{"userId":"sales-42","code":"`+r.fake.Login("lena")+`"}`))
	var login struct{ OpenID string }
	if bound.status != http.StatusOK || json.Unmarshal([]byte(bound.raw), &login) != nil || login.OpenID == "" {
		t.Fatalf("bind: got %d %s", bound.status, bound.raw)
	}
	r.clock.advance(time.Second)
	// A send before any consent (skipped), then a popup's report.
	ntf := r.created(t, "/v1/notifications", `{"to":{"userId":"sales-42"},"template":"lead","data":{"thing1":"x"}}`, http.StatusOK)
	sentAt := r.clock.Now().UTC()
	r.clock.advance(time.Second)
	res, err := r.fake.Subscribe(login.OpenID, map[string]string{testTmplID: "accept"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.RecordReport(context.Background(), login.OpenID, notify.Report{Result: map[string]string{testTmplID: res[testTmplID].(string)}}); err != nil {
		t.Fatal(err)
	}
	prompted := r.clock.Now().UTC()

	a := r.do(t, "192.0.2.70", "GET", "/v1/users/sales-42", testAPIKey, nil)
	var user struct {
		UserID, App, AppID string
		Bindings           []struct{ OpenID string }
		LastPromptAt       time.Time
		Consents           []struct {
			Alias        string
			Credits      int64
			LastAcceptAt time.Time
		}
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.raw), &user) != nil {
		t.Fatalf("GET /v1/users/sales-42: got %d %s", a.status, a.raw)
	}
	if user.UserID != "sales-42" || user.App != "default" || user.AppID != testAppID || len(user.Bindings) != 1 ||
		user.Bindings[0].OpenID != login.OpenID || !user.LastPromptAt.Equal(prompted) || len(user.Consents) != 1 ||
		user.Consents[0].Alias != "lead" || user.Consents[0].Credits != 1 || !user.Consents[0].LastAcceptAt.Equal(prompted) {
		t.Fatalf("GET /v1/users/sales-42: got %s, want lena's binding, the report's time and its credit", a.raw)
	}

	type page struct {
		Events []struct {
			Type, Template, TemplateID, Status, Source, NotificationID, Reason string
			At                                                                 time.Time
		}
		Next string
	}
	get := func(target string) page {
		t.Helper()
		a := r.do(t, "192.0.2.70", "GET", target, testAPIKey, nil)
		var p page
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.raw), &p) != nil {
			t.Fatalf("GET %s: got %d %s, want 200 and a page", target, a.status, a.raw)
		}
		return p
	}
	first := get("/v1/users/sales-42/timeline?limit=1")
	if len(first.Events) != 1 || first.Next == "" {
		t.Fatalf("first page: got %+v, want one event and a cursor", first)
	}
	if e := first.Events[0]; e.Type != "consent" || e.Source != "report" || e.Status != "accept" || e.Template != "lead" ||
		e.TemplateID != testTmplID || !e.At.Equal(prompted) {
		t.Fatalf("first page: got %+v, want the report's accept", e)
	}
	second := get("/v1/users/sales-42/timeline?limit=1&cursor=" + url.QueryEscape(first.Next))
	if len(second.Events) != 1 || second.Events[0].Type != "notification" || second.Events[0].NotificationID != ntf ||
		second.Events[0].Status != "skipped" || second.Events[0].Reason != "no_consent" || !second.Events[0].At.Equal(sentAt) {
		t.Fatalf("second page: got %+v, want the skipped send %s", second, ntf)
	}
	if second.Next != "" {
		t.Fatalf("second page: got next %q, want none after the last event", second.Next)
	}
	if p := get("/v1/users/sales-42/timeline?until=" + sentAt.Format(time.RFC3339Nano)); len(p.Events) != 0 {
		t.Fatalf("until the send: got %+v, want nothing before it", p)
	}
	if p := get("/v1/users/sales-42/timeline?since=" + prompted.Format(time.RFC3339Nano)); len(p.Events) != 1 || p.Events[0].Type != "consent" {
		t.Fatalf("since the report: got %+v, want the report", p)
	}

	for _, c := range []struct {
		target, code, field string
		status              int
	}{
		{"/v1/users/nobody-7", "user_not_found", "userId", http.StatusNotFound},
		{"/v1/users/nobody-7/timeline", "user_not_found", "userId", http.StatusNotFound},
		{"/v1/users/sales-42/timeline?cursor=nonsense", "bad_request", "cursor", http.StatusBadRequest},
		{"/v1/users/sales-42/timeline?cursor=0000000000000001%7Ca%7Cb", "bad_request", "cursor", http.StatusBadRequest},
		{"/v1/users/sales-42/timeline?limit=0", "bad_request", "limit", http.StatusBadRequest},
		{"/v1/users/sales-42/timeline?limit=101", "bad_request", "limit", http.StatusBadRequest},
		{"/v1/users/sales-42/timeline?limit=x", "bad_request", "limit", http.StatusBadRequest},
		{"/v1/users/sales-42/timeline?since=yesterday", "bad_request", "since", http.StatusBadRequest},
		{"/v1/users/sales%2042/timeline", "bad_request", "userId", http.StatusBadRequest},
		{"/v1/users/%ff%fe", "bad_request", "userId", http.StatusBadRequest},
	} {
		a := r.do(t, "192.0.2.70", "GET", c.target, testAPIKey, nil)
		if a.status != c.status || a.body.Error.Code != c.code || a.body.Error.Field != c.field {
			t.Errorf("GET %s: got %d %s, want %d %s naming %s", c.target, a.status, a.raw, c.status, c.code, c.field)
		}
	}
	for _, target := range []string{"/v1/users/sales-42", "/v1/users/sales-42/timeline"} {
		if a := r.do(t, "192.0.2.71", "GET", target, "", nil); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s without the API key: got %d, want 401", target, a.status)
		}
		if a := r.do(t, "192.0.2.71", "GET", target, "wxn_wrong_key_000000", nil); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong key: got %d, want 401", target, a.status)
		}
	}
}
