package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// The webhook admin routes: list a webhook's deliveries, replay one,
// enable a webhook a 410 disabled; unknown ids and bad filters are 4xx
// with their codes; an API key is required.
func TestWebhookDeliveryRoutes(t *testing.T) {
	var gone atomic.Bool
	gone.Store(true)
	hits := map[string]int{}
	var hitsCh = make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		hitsCh <- r.Header.Get(webhook.HeaderID)
	}))
	t.Cleanup(srv.Close)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	catalog, _ := notify.NewCatalog([]notify.Template{{Alias: "lead", ID: testTmplID, Keywords: []notify.Keyword{{Name: "thing1"}}}})
	sessions, _ := notify.NewSessions([]byte(testSecret32), time.Hour, nil)
	wx, err := wechat.New(wechat.Config{AppID: testAppID, Secret: "s", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := notify.New(notify.Options{AppID: testAppID, Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions,
		Webhooks: notify.WebhookOptions{App: "default", AllowPrivate: true, Timeout: time.Second, Subscriptions: []notify.WebhookSubscription{
			{ID: "crm", URL: srv.URL, Events: []string{"*"}, Secrets: []string{webhook.NewSecret()}}}}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Options{Service: svc, APIKeys: []string{testAPIKey}})
	if err != nil {
		t.Fatal(err)
	}
	r := &apiRig{mux: api.NewMux(httpapi.AllGroups...), svc: svc}
	ctx := context.Background()
	n, _ := svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: "oNoConsent"}, Template: "lead",
		Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k1"})
	if n.Status != notify.StatusSkipped {
		t.Fatalf("send: %+v", n)
	}
	id := webhook.DeliveryID(n.ID+":skipped", "crm")
	if _, _, err := svc.DeliverWebhooks(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}

	type listBody struct {
		Deliveries []struct {
			ID, Webhook, EventType, EventID, Status, Reason string
			Replays                                         int
			Attempts                                        []struct {
				Attempt, HTTPStatus int
				DurationMs          int64
				Error               string
			}
		}
		Next string
	}
	list := func(target string) (answer, listBody) {
		t.Helper()
		a := r.do(t, "192.0.2.1", http.MethodGet, target, testAPIKey, nil)
		var b listBody
		if a.status == http.StatusOK {
			if err := json.Unmarshal([]byte(a.raw), &b); err != nil {
				t.Fatalf("%s: %v", target, err)
			}
		}
		return a, b
	}
	for _, target := range []string{"/v1/webhooks/crm/deliveries?status=dead", "/v1/apps/default/webhooks/crm/deliveries"} {
		a, b := list(target)
		if a.status != http.StatusOK || len(b.Deliveries) != 1 || b.Next != "" {
			t.Fatalf("%s: %d %s", target, a.status, a.raw)
		}
		d := b.Deliveries[0]
		if d.ID != id || d.Webhook != "crm" || d.Status != "dead" || d.Reason != "endpoint_gone" || d.EventType != "notification.skipped" ||
			d.EventID != n.ID+":skipped" || len(d.Attempts) != 1 || d.Attempts[0].Attempt != 1 || d.Attempts[0].HTTPStatus != 410 {
			t.Fatalf("%s: delivery %+v", target, d)
		}
	}
	if _, b := list("/v1/webhooks/crm/deliveries?status=delivered"); len(b.Deliveries) != 0 {
		t.Fatalf("delivered: %+v", b)
	}
	replay := "/v1/webhooks/crm/deliveries/" + id + "/replay"
	for _, c := range []struct {
		method, target, auth string
		status               int
		code                 string
	}{
		{http.MethodGet, "/v1/webhooks/crm/deliveries", "", 401, "unauthorized"},
		{http.MethodGet, "/v1/webhooks/nope/deliveries", testAPIKey, 404, "webhook_not_found"},
		{http.MethodGet, "/v1/webhooks/no%20pe/deliveries", testAPIKey, 404, "webhook_not_found"},
		{http.MethodGet, "/v1/webhooks/crm/deliveries?status=sent", testAPIKey, 400, "bad_request"},
		{http.MethodGet, "/v1/webhooks/crm/deliveries?cursor=x", testAPIKey, 400, "bad_request"},
		{http.MethodGet, "/v1/webhooks/crm/deliveries?limit=0", testAPIKey, 400, "bad_request"},
		{http.MethodGet, "/v1/webhooks/crm/deliveries?limit=abc", testAPIKey, 400, "bad_request"},
		{http.MethodPost, replay, testAPIKey, 409, "webhook_disabled"},
		{http.MethodPost, "/v1/webhooks/nope/deliveries/" + id + "/replay", testAPIKey, 404, "webhook_not_found"},
		{http.MethodPost, "/v1/webhooks/crm/deliveries/msg_nope/replay", testAPIKey, 404, "delivery_not_found"},
		{http.MethodPost, "/v1/webhooks/crm/deliveries/x.y/replay", testAPIKey, 404, "delivery_not_found"},
		{http.MethodPost, "/v1/webhooks/nope/enable", testAPIKey, 404, "webhook_not_found"},
		{http.MethodPost, "/v1/webhooks/crm/enable", "", 401, "unauthorized"},
	} {
		a := r.do(t, "192.0.2.1", c.method, c.target, c.auth, nil)
		if a.status != c.status || a.body.Error.Code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.target, a.status, a.raw, c.status, c.code)
		}
	}
	gone.Store(false)
	if a := r.do(t, "192.0.2.1", http.MethodPost, "/v1/webhooks/crm/enable", testAPIKey, nil); a.status != 200 || a.raw != `{"webhook":{"id":"crm","enabled":true}}`+"\n" {
		t.Fatalf("enable: %d %s", a.status, a.raw)
	}
	for range 2 { // idempotent while pending
		a := r.do(t, "192.0.2.1", http.MethodPost, replay, testAPIKey, nil)
		var b struct{ Delivery struct{ ID, Status string } }
		_ = json.Unmarshal([]byte(a.raw), &b)
		if a.status != http.StatusAccepted || b.Delivery.ID != id || b.Delivery.Status != "pending" {
			t.Fatalf("replay: %d %s", a.status, a.raw)
		}
	}
	if _, b := list("/v1/webhooks/crm/deliveries?status=pending"); len(b.Deliveries) != 1 || b.Deliveries[0].Replays != 1 {
		t.Fatalf("pending after replay: %+v", b)
	}
	if d, _, err := svc.DeliverWebhooks(ctx, time.Time{}); err != nil || d != 1 {
		t.Fatalf("deliver the replay: %d, %v", d, err)
	}
	close(hitsCh)
	for h := range hitsCh {
		hits[h]++
	}
	if len(hits) != 1 || hits[id] != 1 {
		t.Fatalf("receiver got %v, want %s once", hits, id)
	}
	if _, b := list("/v1/webhooks/crm/deliveries?status=delivered"); len(b.Deliveries) != 1 || len(b.Deliveries[0].Attempts) != 2 ||
		b.Deliveries[0].Attempts[1].Attempt != 2 || b.Deliveries[0].Attempts[1].HTTPStatus != 200 {
		t.Fatalf("delivered after replay: %+v", b)
	}
}
