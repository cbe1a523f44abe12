package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/webhook/webhooktest"
)

const testBusARN = "arn:aws:events:ap-east-1:123456789012:event-bus/crm"

// An event bus subscription gets its entries as signed PutEvents, retried
// like HTTP deliveries: a 500 is tried again on the schedule, with the
// same webhookId, and the entry is deleted once EventBridge takes it.
func TestOutboxEventBus(t *testing.T) {
	var (
		mu       sync.Mutex
		problems []string
		details  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Entries []struct{ Source, DetailType, Detail, EventBusName string }
		}
		_ = json.Unmarshal(body, &in)
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, webhooktest.VerifySigV4(r, body, "AKIDBUS", "bus-secret", "ap-east-1"))
		if len(in.Entries) == 1 && in.Entries[0].EventBusName == testBusARN && in.Entries[0].Source == "wxnotify" {
			details = append(details, in.Entries[0].DetailType+" "+in.Entries[0].Detail)
		}
		if len(problems) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"Entries":[{"EventId":"e-1"}],"FailedEntryCount":0}`)
	}))
	defer srv.Close()
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxbus", Store: st, WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions, Now: clock.Now,
		Webhooks: WebhookOptions{App: "shop", AllowPrivate: true, Timeout: time.Second,
			Subscriptions: []WebhookSubscription{{ID: "bus", EventBus: testBusARN, Events: []string{"*"}}},
			EventBridge: EventBridgeOptions{Endpoint: srv.URL, Credentials: func() (webhook.AWSCredentials, error) {
				return webhook.AWSCredentials{AccessKeyID: "AKIDBUS", SecretAccessKey: "bus-secret", SessionToken: "tok"}, nil
			}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := send(t, svc, "oB", "k")
	if delivered, failed, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || delivered != 0 || failed != 1 {
		t.Fatalf("first round: %d delivered, %d failed, %v; want the 500", delivered, failed, err)
	}
	if partitionSize(t, st, svc.outboxPartition()) != 1 {
		t.Fatal("the failed entry left the outbox")
	}
	clock.Advance(10 * time.Second) // past the first backoff (5 s ± 20 %)
	if delivered, failed, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || delivered != 1 || failed != 0 {
		t.Fatalf("second round: %d delivered, %d failed, %v", delivered, failed, err)
	}
	if o, d := partitionSize(t, st, svc.outboxPartition()), partitionSize(t, st, svc.outboxDeadPartition()); o != 0 || d != 0 {
		t.Fatalf("outbox %d, dead %d after the delivery", o, d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) != 2 || problems[0] != "" || problems[1] != "" {
		t.Fatalf("signatures: %q", problems)
	}
	id := webhook.DeliveryID(n.ID+":skipped", "bus")
	want := `notification.skipped {"webhookId":"` + id + `","type":"notification.skipped",`
	if len(details) != 2 || details[0] != details[1] || !strings.HasPrefix(details[0], want) {
		t.Fatalf("entries %q, want twice %s...", details, want)
	}
}

func TestEventBusSubscriptionChecked(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	for _, c := range []struct {
		sub  WebhookSubscription
		want string
	}{
		{WebhookSubscription{ID: "a", URL: "https://x.example/h", EventBus: testBusARN, Events: []string{"*"}}, "both a URL and an event bus"},
		{WebhookSubscription{ID: "b", EventBus: "arn:aws:sns:ap-east-1:123456789012:t", Events: []string{"*"}}, "not an event bus ARN"},
		{WebhookSubscription{ID: "c", URL: "https://x.example/h", Events: []string{"*"}}, "has no secret"},
	} {
		_, err := New(Options{AppID: "wxbus", Store: historyBolt(t), WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions,
			Webhooks: WebhookOptions{Subscriptions: []WebhookSubscription{c.sub}}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.sub, err, c.want)
		}
	}
}
