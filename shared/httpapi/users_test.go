package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
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

// In a deployment of several apps, GET /v1/users/{userId} lists the
// userId's openid in each app the API key may act for: a key of every app
// sees both, a key of one app only its own, and the route's app decides
// the ledger (and user_not_found).
func TestUserBindingsPerApp(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const keyB = "wxn_test_only_app_b_0000"
	var apps []httpapi.App
	openIDs := map[string]string{}
	for _, id := range []string{"a", "b", "c"} {
		appID := "wxusers" + id
		fake := wechattest.NewServer(wechattest.Options{AppID: appID, Templates: []wechattest.Template{{
			PriTmplID: testTmplID, Title: "线索分配通知", Type: 2, Keywords: []wechattest.Keyword{{Name: "thing1"}}}}})
		t.Cleanup(fake.Close)
		svc := usersService(t, st, fake, appID)
		if id != "c" { // u-1 has no account in app c
			res, err := svc.Bind(context.Background(), "u-1", fake.Login("pat"))
			if err != nil {
				t.Fatal(err)
			}
			openIDs[id] = res.OpenID
		}
		app := httpapi.App{ID: id, Service: svc}
		if id == "b" {
			app.APIKeys = []string{keyB}
		}
		apps = append(apps, app)
	}
	api, err := httpapi.New(httpapi.Options{Apps: apps, APIKeys: []string{testAPIKey}})
	if err != nil {
		t.Fatal(err)
	}
	r := &apiRig{mux: api.NewMux(httpapi.AllGroups...)}
	bindings := func(target, key string) []string {
		t.Helper()
		a := r.do(t, "192.0.2.72", "GET", target, key, nil)
		var out struct {
			App      string
			Bindings []struct{ App, AppID, OpenID string }
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.raw), &out) != nil {
			t.Fatalf("GET %s: got %d %s", target, a.status, a.raw)
		}
		var got []string
		for _, b := range out.Bindings {
			got = append(got, b.App+":"+b.AppID+":"+b.OpenID)
		}
		return got
	}
	bothFromA := []string{"a:wxusersa:" + openIDs["a"], "b:wxusersb:" + openIDs["b"]}
	if got := bindings("/v1/users/u-1", testAPIKey); !slices.Equal(got, bothFromA) {
		t.Errorf("the default app (a), a key of every app: got %v, want %v", got, bothFromA)
	}
	bothFromB := []string{"b:wxusersb:" + openIDs["b"], "a:wxusersa:" + openIDs["a"]}
	if got := bindings("/v1/apps/b/users/u-1", testAPIKey); !slices.Equal(got, bothFromB) {
		t.Errorf("app b, a key of every app: got %v, want %v", got, bothFromB)
	}
	if got := bindings("/v1/apps/b/users/u-1", keyB); !slices.Equal(got, bothFromB[:1]) {
		t.Errorf("app b, a key of app b only: got %v, want b's alone", got)
	}
	if a := r.do(t, "192.0.2.72", "GET", "/v1/apps/a/users/u-1", keyB, nil); a.status != http.StatusForbidden || a.body.Error.Code != "app_forbidden" {
		t.Errorf("app a with a key of app b: got %d %s, want 403 app_forbidden", a.status, a.raw)
	}
	for _, target := range []string{"/v1/apps/c/users/u-1", "/v1/apps/c/users/u-1/timeline"} {
		if a := r.do(t, "192.0.2.72", "GET", target, testAPIKey, nil); a.status != http.StatusNotFound || a.body.Error.Code != "user_not_found" {
			t.Errorf("GET %s (not bound in c): got %d %s, want 404 user_not_found", target, a.status, a.raw)
		}
	}
}

func usersService(t *testing.T, st store.Store, fake *wechattest.Server, appID string) *notify.Service {
	t.Helper()
	wx, err := wechat.New(wechat.Config{AppID: appID, Secret: fake.Secret(), BaseURL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := notify.NewCatalog([]notify.Template{{Alias: "lead", ID: testTmplID, Keywords: []notify.Keyword{{Name: "thing1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := notify.NewSessions([]byte(testSecret32), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := notify.New(notify.Options{AppID: appID, Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
