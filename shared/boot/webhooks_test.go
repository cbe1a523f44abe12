package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/webhook/webhooktest"
)

// hookHit is one request a webhook receiver got.
type hookHit struct {
	path, id, app, typ, notification string
	verifyErr                        error
}

// hookRig is a deployment of two apps, each with a webhook to its own
// path of one loopback receiver, built as the batch function.
type hookRig struct {
	parts   *Parts
	tick    func(context.Context, time.Time) error
	secrets map[string]string // app -> signing secret
	mu      sync.Mutex
	hits    []hookHit
}

func newHookRig(t *testing.T, backend string, o Options) *hookRig {
	t.Helper()
	r := &hookRig{secrets: map[string]string{"shop": webhook.NewSecret(), "sales-team": webhook.NewSecret()}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			Type string                   `json:"type"`
			Data webhook.NotificationData `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		app := strings.TrimPrefix(req.URL.Path, "/")
		r.mu.Lock()
		r.hits = append(r.hits, hookHit{path: app, id: req.Header.Get(webhook.HeaderID), app: env.Data.App, typ: env.Type,
			notification: env.Data.NotificationID, verifyErr: webhook.Verify(r.secrets[app], req.Header, body, time.Now(), 0)})
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	var yml strings.Builder
	yml.WriteString("apps:\n")
	for i, app := range []string{"shop", "sales-team"} {
		fmt.Fprintf(&yml, `  - id: %s
    appId: wx00000000000000b%d
    templates:
      - {alias: hello, id: TMPL-HELLO, kind: one-time, keywords: [{name: thing1}]}
    webhooks:
      - {id: crm, url: '%s/%s', events: [notification.skipped]}
      - {id: sent-only, url: '%s/%s', events: [notification.sent]}
`, app, i, srv.URL, app, srv.URL, app)
	}
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, []byte(yml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WXN_CONFIG": path, "WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": "0123456789abcdef",
		"WXN_WECHAT_API_BASE": "http://127.0.0.1:1", "WXN_APP_SHOP_WECHAT_SECRET": "s1", "WXN_APP_SALES_TEAM_WECHAT_SECRET": "s2",
		"WXN_APP_SHOP_WEBHOOK_CRM_SECRET": r.secrets["shop"], "WXN_APP_SHOP_WEBHOOK_SENT_ONLY_SECRET": webhook.NewSecret(),
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_SECRET": r.secrets["sales-team"], "WXN_APP_SALES_TEAM_WEBHOOK_SENT_ONLY_SECRET": webhook.NewSecret()}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	st := storeenv.Open(t, backend)
	o.Function = "batch"
	if r.parts, err = Build(cfg, st, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.parts.Close() })
	h, err := BatchCore(r.parts)
	if err != nil {
		t.Fatal(err)
	}
	r.tick = h.Tick
	return r
}

// skip sends to a user without consent in app: skipped, no WeChat call.
func (r *hookRig) skip(t *testing.T, app, openID string) notify.Notification {
	t.Helper()
	n, err := r.parts.App(app).Service.Send(context.Background(), notify.SendRequest{To: notify.Recipient{OpenID: openID},
		Template: "hello", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k-" + openID})
	if n.Status != notify.StatusSkipped {
		t.Fatalf("send in %s: %s, %v; want skipped", app, n.Status, err)
	}
	return n
}

func (r *hookRig) snapshot() []hookHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookHit(nil), r.hits...)
}

// The tick delivers every app's outcome events to that app's endpoints,
// signed with that app's secrets, each once.
func TestTickDeliversWebhooksPerApp(t *testing.T) {
	r := newHookRig(t, "bolt", Options{WebhooksAllowPrivate: true, WebhookTimeout: time.Second})
	shop := r.skip(t, "shop", "oShop")
	sales := r.skip(t, "sales-team", "oSales")
	for range 2 {
		if err := r.tick(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	hits := r.snapshot()
	if len(hits) != 2 {
		t.Fatalf("receiver got %+v, want one event per app", hits)
	}
	want := map[string]notify.Notification{"shop": shop, "sales-team": sales}
	for _, h := range hits {
		n := want[h.path]
		if h.app != h.path || h.typ != webhook.EventNotificationSkipped || h.notification != n.ID ||
			h.id != webhook.DeliveryID(n.ID+":skipped", "crm") || h.verifyErr != nil {
			t.Errorf("hit %+v, want the skipped event of %s signed with its secret", h, n.ID)
		}
		delete(want, h.path)
	}
	if len(want) != 0 {
		t.Errorf("apps without a delivery: %v", want)
	}
}

// In a deployment (no AllowPrivate) a loopback endpoint is refused: the
// delivery is not made and goes to the dead letters at once.
func TestTickWebhooksRefuseLoopbackInDeployment(t *testing.T) {
	r := newHookRig(t, "bolt", Options{WebhookTimeout: time.Second})
	r.skip(t, "shop", "oShop")
	if err := r.tick(context.Background(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if hits := r.snapshot(); len(hits) != 0 {
		t.Fatalf("loopback receiver reached: %+v", hits)
	}
	appID := r.parts.App("shop").Service.AppID()
	for partition, want := range map[string]int{"ob|" + appID: 0, "obdead|" + appID: 1} {
		p, err := r.parts.Store.Query(context.Background(), store.Query{Partition: partition, Limit: 10})
		if err != nil || len(p.Items) != want {
			t.Errorf("%s: %d items, %v; want %d", partition, len(p.Items), err, want)
		}
	}
}

// On every backend, the outbox entries are written with the outcomes and
// runners delivering at once (ticks and direct calls) deliver each once.
func TestWebhooksEveryBackend(t *testing.T) {
	for _, backend := range storeenv.Backends {
		t.Run(backend, func(t *testing.T) {
			r := newHookRig(t, backend, Options{WebhooksAllowPrivate: true, WebhookTimeout: time.Second})
			want := map[string]bool{}
			for i := range 8 {
				n := r.skip(t, "shop", fmt.Sprintf("oShop%d", i))
				want[webhook.DeliveryID(n.ID+":skipped", "crm")] = true
			}
			svc := r.parts.App("shop").Service
			var wg sync.WaitGroup
			for i := range 3 {
				wg.Go(func() {
					var err error
					if i == 0 {
						err = r.tick(context.Background(), time.Now().Add(time.Minute))
					} else {
						_, _, err = svc.DeliverWebhooks(context.Background(), time.Time{})
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			seen := map[string]int{}
			for _, h := range r.snapshot() {
				seen[h.id]++
				if !want[h.id] || h.verifyErr != nil {
					t.Errorf("unexpected delivery %+v", h)
				}
			}
			for id := range want {
				if seen[id] != 1 {
					t.Errorf("%s delivered %d times, want once", id, seen[id])
				}
			}
			p, err := r.parts.Store.Query(context.Background(), store.Query{Partition: "ob|" + svc.AppID(), Limit: 10})
			if err != nil || len(p.Items) != 0 {
				t.Errorf("outbox after delivery: %d items, %v", len(p.Items), err)
			}
			// Each delivery's record was written with its settlement.
			page, err := svc.ListWebhookDeliveries(context.Background(), "crm", notify.DeliveryDelivered, "", 100)
			if err != nil || len(page.Deliveries) != len(want) {
				t.Fatalf("delivered records: %d, %v; want %d", len(page.Deliveries), err, len(want))
			}
			for _, d := range page.Deliveries {
				if !want[d.ID] || len(d.Attempts) != 1 || d.Attempts[0].HTTPStatus != http.StatusOK {
					t.Errorf("record %+v", d)
				}
			}
		})
	}
}

// A webhook to an event bus is delivered by the tick as a PutEvents signed
// with the environment's AWS credentials, at AWS_ENDPOINT_URL_EVENTBRIDGE.
func TestTickPutsWebhooksOnEventBus(t *testing.T) {
	const bus = "arn:aws:events:us-west-2:123456789012:event-bus/crm"
	var (
		mu      sync.Mutex
		signed  []string
		details []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var in struct {
			Entries []struct{ DetailType, Detail, EventBusName string }
		}
		_ = json.Unmarshal(body, &in)
		mu.Lock()
		defer mu.Unlock()
		signed = append(signed, webhooktest.VerifySigV4(req, body, "AKIDBOOT", "boot-secret", "us-west-2"))
		for _, e := range in.Entries {
			if e.EventBusName == bus {
				details = append(details, e.DetailType+" "+e.Detail)
			}
		}
		_, _ = io.WriteString(w, `{"Entries":[{"EventId":"e"}],"FailedEntryCount":0}`)
	}))
	defer srv.Close()
	yml := `apps:
  - id: shop
    appId: wx00000000000000b0
    templates:
      - {alias: hello, id: TMPL-HELLO, kind: one-time, keywords: [{name: thing1}]}
    webhooks:
      - {id: bus, eventBusArn: '` + bus + `', events: [notification.skipped]}
`
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WXN_CONFIG": path, "WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": "0123456789abcdef",
		"WXN_WECHAT_API_BASE": "http://127.0.0.1:1", "WXN_APP_SHOP_WECHAT_SECRET": "s1",
		"AWS_ACCESS_KEY_ID": "AKIDBOOT", "AWS_SECRET_ACCESS_KEY": "boot-secret", "AWS_SESSION_TOKEN": "tok",
		"AWS_ENDPOINT_URL_EVENTBRIDGE": srv.URL}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.FromEnv(getenv, false)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(cfg, storeenv.Open(t, "bolt"), Options{Function: "batch", Getenv: getenv, WebhooksAllowPrivate: true, WebhookTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	h, err := BatchCore(parts)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := parts.App("shop").Service.Send(context.Background(), notify.SendRequest{To: notify.Recipient{OpenID: "oBus"},
		Template: "hello", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"})
	if n.Status != notify.StatusSkipped {
		t.Fatalf("send: %s", n.Status)
	}
	for range 2 {
		if err := h.Tick(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := `notification.skipped {"webhookId":"` + webhook.DeliveryID(n.ID+":skipped", "bus") + `","type":"notification.skipped",`
	if len(signed) != 1 || signed[0] != "" || len(details) != 1 || !strings.HasPrefix(details[0], want) {
		t.Fatalf("signatures %q, entries %q; want one signed entry %s...", signed, details, want)
	}
}

// A webhook with a previous secret (a rotation) is signed with both, the
// new one first.
func TestWebhookOptionsRotation(t *testing.T) {
	cur, prev := webhook.NewSecret(), webhook.NewSecret()
	w := webhookOptions(config.App{ID: "shop", Webhooks: []config.Webhook{
		{ID: "crm", URL: "https://crm.example.com", Events: []string{"*"}, Secret: cur, SecretPrevious: prev},
		{ID: "audit", URL: "https://audit.example.com", Events: []string{"*"}, Secret: cur},
	}}, Options{})
	if len(w.Subscriptions) != 2 || !slices.Equal(w.Subscriptions[0].Secrets, []string{cur, prev}) ||
		!slices.Equal(w.Subscriptions[1].Secrets, []string{cur}) {
		t.Fatalf("subscriptions %+v", w.Subscriptions)
	}
}
