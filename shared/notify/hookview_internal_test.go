package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Webhooks shows each subscription with how many secrets sign it, never
// the secrets.
func TestWebhooksHideSecrets(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	cur, prev, other := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()
	svc := hookServiceOpts(t, historyBolt(t), clock, WebhookOptions{Subscriptions: []WebhookSubscription{
		{ID: "crm", URL: "https://crm.example/hook", Events: []string{"*"}, Secrets: []string{cur, prev}},
		{ID: "one", URL: "https://one.example/hook", Events: []string{"notification.sent"}, Secrets: []string{other}},
		{ID: "bus", EventBus: "arn:aws:events:us-east-1:123456789012:event-bus/crm", Events: []string{"*"}},
	}})
	got := svc.Webhooks()
	if len(got) != 3 || got[0].ID != "crm" || got[0].URL != "https://crm.example/hook" || got[0].Secrets != 2 || !got[0].Rotating() ||
		got[1].Secrets != 1 || got[1].Rotating() || got[1].Events[0] != "notification.sent" ||
		got[2].EventBus == "" || got[2].Secrets != 0 {
		t.Fatalf("Webhooks: %+v", got)
	}
	all := fmt.Sprintf("%+v %#v", got, got)
	for _, s := range []string{cur, prev, other, strings.TrimPrefix(cur, "whsec_")} {
		if strings.Contains(all, s) {
			t.Fatalf("Webhooks shows a secret: %s", all)
		}
	}
	got[0].Events[0] = "changed"
	if svc.Webhooks()[0].Events[0] != "*" {
		t.Fatal("Webhooks: the caller changed the configuration")
	}
}

// countingStore counts Gets and Queries.
type countingStore struct {
	store.Store
	gets, queries atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, k store.Key) (store.Item, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, k)
}

func (s *countingStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	s.queries.Add(1)
	return s.Store.Query(ctx, q)
}

// NotificationDeliveries finds a notification's deliveries by their
// derived ids, one read of the index per event type a subscription
// wants and one of each record found: no Query.
func TestNotificationDeliveries(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer srv.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer ok.Close()
	st := &countingStore{Store: historyBolt(t)}
	svc := hookServiceOpts(t, st, clock, WebhookOptions{Subscriptions: []WebhookSubscription{
		{ID: "crm", URL: srv.URL, Events: []string{"*"}, Secrets: []string{webhook.NewSecret()}},
		{ID: "ok", URL: ok.URL, Events: []string{"notification.skipped"}, Secrets: []string{webhook.NewSecret()}},
	}})
	grantCredit(t, st, svc, "oA")
	sent, skipped := send(t, svc, "oA", "k1"), send(t, svc, "oB", "k2")
	if sent.Status != StatusSent || skipped.Status != StatusSkipped {
		t.Fatalf("sends: %s, %s; want sent, skipped", sent.Status, skipped.Status)
	}
	if d, f, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || d != 1 || f != 2 {
		t.Fatalf("deliver: %d delivered, %d failed, %v; want 1 and 2", d, f, err)
	}
	st.gets.Store(0)
	st.queries.Store(0)
	got, err := svc.NotificationDeliveries(context.Background(), sent.ID)
	if err != nil || len(got) != 1 || got[0].Subscription != "crm" || got[0].EventID != sent.ID+":sent" ||
		got[0].ID != webhook.DeliveryID(sent.ID+":sent", "crm") || got[0].Status != DeliveryFailed || len(got[0].Attempts) != 1 {
		t.Fatalf("deliveries of the sent one: %+v, %v", got, err)
	}
	// crm wants 5 event types of a notification, ok 1: 6 index reads and
	// the record found.
	if g, q := st.gets.Load(), st.queries.Load(); g != 7 || q != 0 {
		t.Errorf("lookup: %d Gets and %d Queries, want 7 and none", g, q)
	}
	got, err = svc.NotificationDeliveries(context.Background(), skipped.ID)
	if err != nil || len(got) != 2 || got[0].Subscription != "crm" || got[0].Status != DeliveryFailed ||
		got[1].Subscription != "ok" || got[1].Status != DeliveryDelivered || got[1].EventID != skipped.ID+":skipped" {
		t.Fatalf("deliveries of the skipped one: %+v, %v", got, err)
	}
	if got, err := svc.NotificationDeliveries(context.Background(), "ntf_none"); err != nil || len(got) != 0 {
		t.Fatalf("deliveries of none: %+v, %v", got, err)
	}
	// A replay keeps the record's key: still found, now pending.
	if _, err := svc.ReplayWebhookDelivery(context.Background(), "ok", webhook.DeliveryID(skipped.ID+":skipped", "ok")); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.NotificationDeliveries(context.Background(), skipped.ID); err != nil || len(got) != 2 || got[1].Status != DeliveryPending {
		t.Fatalf("after a replay: %+v, %v", got, err)
	}
}

// SentEvent finds WeChat's sent event of a known send (paired with the
// notification) and of an unknown send it settled (by msgid); none before
// it comes, none for a send without a msgid.
func TestSentEvent(t *testing.T) {
	ctx := context.Background()
	t.Run("known", func(t *testing.T) {
		r := newTimelineRig(t, "wxtl", 0)
		const openID = "oKnown"
		r.bind(t, r.svc, "crm-1", openID)
		if _, err := r.svc.RecordReport(ctx, openID, Report{Result: map[string]string{"tmpl-lead": "accept"}}); err != nil {
			t.Fatal(err)
		}
		r.wx.answers[1] = 501
		n, err := r.svc.Send(ctx, SendRequest{To: Recipient{UserID: "crm-1"}, Template: "lead", Data: map[string]string{"thing1": "x"}})
		if err != nil || n.Status != StatusSent {
			t.Fatalf("send: %s %v", n.Status, err)
		}
		if _, found, err := r.svc.SentEvent(ctx, n); err != nil || found {
			t.Fatalf("before the event: found %v, %v; want none", found, err)
		}
		r.clock.Advance(2 * time.Second)
		at := r.clock.Now()
		if err := r.svc.ApplyPush(ctx, pushOf(openID, at, wechat.EventSubscribeSent, wechat.PushItem{TemplateID: "tmpl-lead", MsgID: "501", ErrorStatus: "success"})); err != nil {
			t.Fatal(err)
		}
		ev, found, err := r.svc.SentEvent(ctx, n)
		if err != nil || !found || ev.Notification != n.ID || ev.MsgID != "501" || ev.Status != "success" || !ev.At.Equal(at.Truncate(time.Second)) {
			t.Fatalf("after the event: %+v, %v, %v", ev, found, err)
		}
		// Another message's event is not this one's.
		other := n
		other.ID, other.WeChat.MsgID = "ntf_other", "502"
		if _, found, err := r.svc.SentEvent(ctx, other); err != nil || found {
			t.Fatalf("another message: found %v, %v; want none", found, err)
		}
		if _, found, _ := r.svc.SentEvent(ctx, Notification{ID: n.ID, OpenID: openID}); found {
			t.Fatal("a send without a msgid: found an event")
		}
	})
	t.Run("settled unknown", func(t *testing.T) {
		svc, clock, _ := newUnknownRig(t)
		const openID = "oUnknown"
		if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
		if n.Status != StatusUnknown {
			t.Fatalf("send: %s, want unknown", n.Status)
		}
		if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now(), "3395159288267931652")); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
			t.Fatalf("sweep: %d, %v", settled, err)
		}
		n, _ = svc.Notification(ctx, n.ID)
		ev, found, err := svc.SentEvent(ctx, n)
		if err != nil || !found || ev.MsgID != "3395159288267931652" || ev.Notification != n.ID {
			t.Fatalf("settled unknown: %+v, %v, %v; want the event that settled it", ev, found, err)
		}
	})
}
