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

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// eventService is hookService with push configured and a WeChat that
// answers the first ten sends with msgids 1..10.
func eventService(t *testing.T, st store.Store, clock *fakeClock, subs ...WebhookSubscription) *Service {
	t.Helper()
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	answers := map[int]int64{}
	for i := 1; i <= 10; i++ {
		answers[i] = int64(i)
	}
	svc, err := New(Options{AppID: "wxevents", Store: st, WeChat: &silentWeChat{answers: answers},
		Catalog: catalog, Sessions: sessions, Now: clock.Now, PushConfigured: true, UnknownWindow: 10 * time.Minute,
		Webhooks: WebhookOptions{App: "shop", Subscriptions: subs, AllowPrivate: true, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func sub(id string, events ...string) WebhookSubscription {
	return WebhookSubscription{ID: id, URL: "https://crm.example.com/hook", Events: events, Secrets: []string{webhook.NewSecret()}}
}

// outbox returns the app's outbox entries, oldest due first.
func outbox(t *testing.T, svc *Service) []outboxEntry {
	t.Helper()
	p, err := svc.st.Query(context.Background(), store.Query{Partition: svc.outboxPartition(), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []outboxEntry
	for _, it := range p.Items {
		var e outboxEntry
		if err := json.Unmarshal(it.Value, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// ofType keeps the entries of event type typ.
func ofType(es []outboxEntry, typ string) []outboxEntry {
	var out []outboxEntry
	for _, e := range es {
		if e.Event.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// data decodes an entry's data into v.
func data(t *testing.T, e outboxEntry, v any) {
	t.Helper()
	raw, ok := e.Event.Data.(json.RawMessage)
	if !ok {
		t.Fatalf("entry data %T, want json.RawMessage", e.Event.Data)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func popup(openID string, at time.Time, status string) wechat.PushEvent {
	return wechat.PushEvent{FromUserName: openID, CreateTime: at.Unix(), Event: wechat.EventSubscribePopup,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", SubscribeStatus: status, PopupScene: "0"}}}
}

func bindUser(t *testing.T, svc *Service, openID, userID string) {
	t.Helper()
	if _, err := svc.updateUser(context.Background(), openID, func(u *User, _ bool) { u.UserID = userID }); err != nil {
		t.Fatal(err)
	}
}

// One delivered push gives exactly one notification.delivered, written
// with the sent event's item: redeliveries add none, a delivery failure
// gives none, and the push costs one read more (the msgid mark, which
// holds the event's payload) and the same one write.
func TestEventDeliveredOnce(t *testing.T) {
	counting := storetest.NewCounting(historyBolt(t))
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, counting, clock, sub("crm", webhook.EventNotificationDelivered))
	ctx := context.Background()
	grantCredit(t, counting, svc, "oD")
	n := send(t, svc, "oD", "k1")
	if n.Status != StatusSent || n.WeChat.MsgID != "1" {
		t.Fatalf("send: %s msgid %q, want sent with msgid 1", n.Status, n.WeChat.MsgID)
	}
	if es := outbox(t, svc); len(es) != 0 {
		t.Fatalf("outbox after the send %+v, want empty (only delivered is subscribed)", es)
	}
	before := counting.Counts()
	if err := svc.ApplyPush(ctx, sentEvent("oD", clock.Now(), "1")); err != nil {
		t.Fatal(err)
	}
	after := counting.Counts()
	if d := after["get"] - before["get"]; d != 1 {
		t.Errorf("push: %d gets, want 1 (the msgid mark)", d)
	}
	if w, p := after["write"]-before["write"], after["put"]-before["put"]; w != 1 || p != 0 {
		t.Errorf("push: %d writes, %d puts; want the sent event's one Write", w, p)
	}
	for range 2 { // redelivered
		if err := svc.ApplyPush(ctx, sentEvent("oD", clock.Now(), "1")); err != nil {
			t.Fatal(err)
		}
	}
	es := outbox(t, svc)
	if len(es) != 1 || es[0].Event.Type != webhook.EventNotificationDelivered || es[0].Event.ID != n.ID+":delivered" || es[0].Subscription != "crm" {
		t.Fatalf("outbox %+v, want one notification.delivered of %s", es, n.ID)
	}
	var d webhook.NotificationData
	data(t, es[0], &d)
	if d != (webhook.NotificationData{NotificationID: n.ID, App: "shop", Template: "lead", TemplateID: "tmpl-lead",
		Status: "delivered", Source: "api", IdempotencyKey: "k1"}) {
		t.Fatalf("delivered data %+v", d)
	}
	if !es[0].Event.Timestamp.Equal(time.Unix(clock.Now().Unix(), 0)) {
		t.Errorf("timestamp %v, want the sent event's CreateTime", es[0].Event.Timestamp)
	}

	// A sent event reporting a failed delivery is no notification.delivered.
	grantCredit(t, counting, svc, "oF")
	n2 := send(t, svc, "oF", "k2")
	failed := sentEvent("oF", clock.Now(), n2.WeChat.MsgID)
	failed.Items[0].ErrorCode, failed.Items[0].ErrorStatus = 43101, "fail:user refuse to accept the msg"
	if err := svc.ApplyPush(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if es := outbox(t, svc); len(es) != 1 {
		t.Fatalf("%d entries after a failed delivery, want still 1", len(es))
	}
}

// Without a subscription to notification.delivered, the push costs one
// write (the sent event's item with its timeline entry and counter) and no
// read.
func TestEventDeliveredUnsubscribedCostsNothing(t *testing.T) {
	counting := storetest.NewCounting(historyBolt(t))
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, counting, clock, sub("crm", webhook.EventNotificationSent))
	grantCredit(t, counting, svc, "oD")
	send(t, svc, "oD", "k1")
	before := counting.Counts()
	if err := svc.ApplyPush(context.Background(), sentEvent("oD", clock.Now(), "1")); err != nil {
		t.Fatal(err)
	}
	after := counting.Counts()
	if g, p, w := after["get"]-before["get"], after["put"]-before["put"], after["write"]-before["write"]; g != 0 || p != 0 || w != 1 {
		t.Fatalf("push: %d gets, %d puts, %d writes; want 0, 0, 1", g, p, w)
	}
	if es := ofType(outbox(t, svc), webhook.EventNotificationDelivered); len(es) != 0 {
		t.Fatalf("delivered entries %+v, want none", es)
	}
}

// An unknown send that the sweep settles with its (delivered) sent event
// gets notification.sent and notification.delivered in the settling Write.
func TestEventDeliveredSettlesUnknown(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxevents", Store: st, WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions,
		Now: clock.Now, PushConfigured: true, UnknownWindow: 10 * time.Minute,
		Webhooks: WebhookOptions{App: "shop", Subscriptions: []WebhookSubscription{sub("crm", "*")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	grantCredit(t, st, svc, "oU")
	n := send(t, svc, "oU", "k")
	if n.Status != StatusUnknown {
		t.Fatalf("send: %s, want unknown", n.Status)
	}
	if err := svc.ApplyPush(ctx, sentEvent("oU", clock.Now(), "3395159288267931652")); err != nil {
		t.Fatal(err)
	}
	if es := outbox(t, svc); len(es) != 1 || es[0].Event.Type != webhook.EventNotificationUnknown {
		t.Fatalf("outbox before the sweep %+v, want the unknown event alone", es)
	}
	clock.Advance(11 * time.Minute)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: %d, %v", settled, err)
	}
	es := outbox(t, svc)
	got := map[string]string{}
	for _, e := range es {
		got[e.Event.Type] = e.Event.ID
	}
	want := map[string]string{webhook.EventNotificationUnknown: n.ID + ":unknown", webhook.EventNotificationSent: n.ID + ":sent",
		webhook.EventNotificationDelivered: n.ID + ":delivered"}
	if len(es) != 3 || len(got) != 3 {
		t.Fatalf("outbox %+v, want unknown, sent, delivered", es)
	}
	for typ, id := range want {
		if got[typ] != id {
			t.Errorf("%s: event %q, want %q", typ, got[typ], id)
		}
	}
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 0 || len(outbox(t, svc)) != 3 {
		t.Fatalf("second sweep: %d, %v, %d entries", settled, err, len(outbox(t, svc)))
	}
}

// A popup accept gives exactly one consent.changed, naming the user by the
// userId bound to it; its redeliveries and the client's report of the same
// popup give none; a reject then gives one more.
func TestEventConsentPopupAcceptOnce(t *testing.T) {
	counting := storetest.NewCounting(historyBolt(t))
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, counting, clock, sub("crm", webhook.EventConsentChanged))
	ctx := context.Background()
	bindUser(t, svc, "oC", "crm-42")
	before := counting.Counts()
	for range 3 {
		if err := svc.ApplyPush(ctx, popup("oC", clock.Now(), "accept")); err != nil {
			t.Fatal(err)
		}
	}
	after := counting.Counts()
	if w := after["write"] - before["write"]; w != 1 {
		t.Errorf("%d writes, want the consent record's one", w)
	}
	if _, err := svc.RecordReport(ctx, "oC", Report{Result: map[string]string{"tmpl-lead": "accept"}, ID: "popup-1"}); err != nil {
		t.Fatal(err)
	}
	es := outbox(t, svc)
	if len(es) != 1 || es[0].Event.Type != webhook.EventConsentChanged {
		t.Fatalf("outbox %+v, want one consent.changed", es)
	}
	var c webhook.ConsentData
	data(t, es[0], &c)
	at := c.At
	c.At = time.Time{}
	if c != (webhook.ConsentData{App: "shop", UserID: "crm-42", Template: "lead", TemplateID: "tmpl-lead", Kind: "one-time",
		Status: "accept", PreviousStatus: "", Credits: 1, Sendable: true, Source: "popup"}) {
		t.Fatalf("consent data %+v", c)
	}
	if !at.Equal(clock.Now()) || !es[0].Event.Timestamp.Equal(clock.Now()) {
		t.Errorf("at %v, timestamp %v; want %v", at, es[0].Event.Timestamp, clock.Now())
	}
	if got := svc.credits(t, "oC"); got != 1 {
		t.Fatalf("credits %d, want 1 (the report paired with the event)", got)
	}

	clock.Advance(time.Minute)
	if err := svc.ApplyPush(ctx, popup("oC", clock.Now(), "reject")); err != nil {
		t.Fatal(err)
	}
	rejects := outbox(t, svc)
	if len(rejects) != 2 {
		t.Fatalf("%d entries after a reject, want 2", len(rejects))
	}
	var r webhook.ConsentData
	data(t, rejects[1], &r)
	if r.Status != "reject" || r.PreviousStatus != "accept" || r.Credits != 1 || r.UserID != "crm-42" || r.Source != "popup" {
		t.Fatalf("reject data %+v", r)
	}
}

// The unbound user's event has no userId, and no payload carries the
// openid; a subscribe_msg_change_event reject revokes with credits 0.
func TestEventConsentChangeEventRevokes(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, st, clock, sub("crm", webhook.EventConsentChanged))
	ctx := context.Background()
	if err := svc.ApplyPush(ctx, popup("oSecretOpenID", clock.Now(), "accept")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	change := wechat.PushEvent{FromUserName: "oSecretOpenID", CreateTime: clock.Now().Unix(), Event: wechat.EventSubscribeChange,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", SubscribeStatus: "reject"}}}
	if err := svc.ApplyPush(ctx, change); err != nil {
		t.Fatal(err)
	}
	es := outbox(t, svc)
	if len(es) != 2 {
		t.Fatalf("outbox %+v, want accept and revoke", es)
	}
	var c webhook.ConsentData
	data(t, es[1], &c)
	if c.UserID != "" || c.Status != "reject" || c.PreviousStatus != "accept" || c.Credits != 0 || c.Sendable || c.Source != "change" {
		t.Fatalf("revoke data %+v", c)
	}
	for _, e := range es {
		if b, _ := json.Marshal(e); strings.Contains(string(b), "oSecretOpenID") {
			t.Fatalf("outbox entry carries the openid: %s", b)
		}
	}
}

// A finished batch gives exactly one batch.finished with its counts; a
// cancelled one one more; cancelling again and running again none.
func TestEventBatchFinishedOnce(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, st, clock, sub("crm", webhook.EventBatchFinished))
	ctx := context.Background()
	grantCredit(t, st, svc, "oA")
	b, err := svc.CreateBatch(ctx, BatchRequest{Template: "lead", Data: map[string]string{"thing1": "x"},
		Recipients: []BatchRecipient{{OpenID: "oA"}, {OpenID: "oB"}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	es := outbox(t, svc)
	if len(es) != 1 || es[0].Event.Type != webhook.EventBatchFinished || es[0].Event.ID != b.ID+":done" {
		t.Fatalf("outbox %+v, want one batch.finished of %s", es, b.ID)
	}
	var d webhook.BatchData
	data(t, es[0], &d)
	if d != (webhook.BatchData{BatchID: b.ID, App: "shop", Status: "done", Template: "lead", TemplateID: "tmpl-lead", Total: 2, Sent: 1, Skipped: 1}) {
		t.Fatalf("batch data %+v", d)
	}

	later, err := svc.CreateBatch(ctx, BatchRequest{Template: "lead", Data: map[string]string{"thing1": "x"},
		Recipients: []BatchRecipient{{OpenID: "oA"}, {OpenID: "oB"}, {OpenID: "oC"}}, NotBefore: clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := svc.CancelBatch(ctx, later.ID); err != nil {
			t.Fatal(err)
		}
	}
	cancelled := ofType(outbox(t, svc), webhook.EventBatchFinished)
	if len(cancelled) != 2 {
		t.Fatalf("%d batch.finished, want 2", len(cancelled))
	}
	var c webhook.BatchData
	for _, e := range cancelled {
		if e.Event.ID == later.ID+":cancelled" {
			data(t, e, &c)
		}
	}
	if c.Status != "cancelled" || c.Total != 3 || c.Pending != 3 || c.Sent != 0 {
		t.Fatalf("cancelled data %+v", c)
	}
}

// noCrossPartition refuses a Write that spans partitions, as Redis
// Cluster does: the change is written first, then its events.
type noCrossPartition struct{ store.Store }

func (s noCrossPartition) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	for _, op := range ops {
		if op.Key.Partition != ops[0].Key.Partition {
			return nil, store.ErrInvalidWrite
		}
	}
	return s.Store.Write(ctx, ops)
}

func TestEventsWithoutCrossPartitionWrites(t *testing.T) {
	st := noCrossPartition{historyBolt(t)}
	clock := &fakeClock{t: time.Now()}
	svc := eventService(t, st, clock, sub("crm", webhook.EventConsentChanged, webhook.EventNotificationDelivered, webhook.EventBatchFinished))
	ctx := context.Background()
	if err := svc.ApplyPush(ctx, popup("oX", clock.Now(), "accept")); err != nil {
		t.Fatal(err)
	}
	n := send(t, svc, "oX", "k")
	if err := svc.ApplyPush(ctx, sentEvent("oX", clock.Now(), n.WeChat.MsgID)); err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateBatch(ctx, BatchRequest{Template: "lead", Data: map[string]string{"thing1": "x"},
		Recipients: []BatchRecipient{{OpenID: "oY"}}, NotBefore: clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CancelBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	es := outbox(t, svc)
	var types []string
	for _, e := range es {
		types = append(types, e.Event.Type)
	}
	if len(es) != 3 || len(ofType(es, webhook.EventConsentChanged)) != 1 || len(ofType(es, webhook.EventNotificationDelivered)) != 1 ||
		len(ofType(es, webhook.EventBatchFinished)) != 1 {
		t.Fatalf("outbox %v, want one of each", types)
	}
	if got, _ := svc.Notification(ctx, n.ID); got.Status != StatusSent {
		t.Fatalf("notification %s", got.Status)
	}
}

// The new events are delivered like the outcomes: the body is the
// envelope with the data as written, signed.
func TestEventsDelivered(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	var mu sync.Mutex
	bodies := map[string]string{}
	secret := webhook.NewSecret()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("signature: %v", err)
		}
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		bodies[env.Type] = string(body)
		mu.Unlock()
	}))
	defer srv.Close()
	svc := eventService(t, st, clock, WebhookSubscription{ID: "crm", URL: srv.URL, Events: []string{"*"}, Secrets: []string{secret}})
	ctx := context.Background()
	bindUser(t, svc, "oE", "crm-9")
	if err := svc.ApplyPush(ctx, popup("oE", clock.Now(), "accept")); err != nil {
		t.Fatal(err)
	}
	n := send(t, svc, "oE", "k")
	if err := svc.ApplyPush(ctx, sentEvent("oE", clock.Now(), n.WeChat.MsgID)); err != nil {
		t.Fatal(err)
	}
	drain(t, svc, clock, time.Minute, 3)
	ts := clock.Now().UTC().Format(time.RFC3339Nano)
	wantConsent := `{"type":"consent.changed","timestamp":"` + ts + `","data":{"app":"shop","userId":"crm-9","template":"lead",` +
		`"templateId":"tmpl-lead","kind":"one-time","status":"accept","previousStatus":"","credits":1,"sendable":true,"source":"popup","at":"` + ts + `"}}`
	if bodies[webhook.EventConsentChanged] != wantConsent {
		t.Errorf("consent.changed body\n%s\nwant\n%s", bodies[webhook.EventConsentChanged], wantConsent)
	}
	wantDelivered := `{"type":"notification.delivered","timestamp":"` + time.Unix(clock.Now().Unix(), 0).UTC().Format(time.RFC3339Nano) +
		`","data":{"notificationId":"` + n.ID + `","app":"shop","template":"lead","templateId":"tmpl-lead","status":"delivered","source":"api","idempotencyKey":"k"}}`
	if bodies[webhook.EventNotificationDelivered] != wantDelivered {
		t.Errorf("notification.delivered body\n%s\nwant\n%s", bodies[webhook.EventNotificationDelivered], wantDelivered)
	}
	if len(bodies) != 3 || bodies[webhook.EventNotificationSent] == "" {
		t.Errorf("delivered types %v, want consent.changed, notification.sent, notification.delivered", bodies)
	}
}

// The store cost of one delivered message (BenchmarkDeliveredMessage's
// figures, exactly): 3 round trips for the send, 1 for its sent event, 1
// more to read the msgid mark when webhooks take notification.delivered.
func TestDeliveredMessageRoundTrips(t *testing.T) {
	for _, mode := range deliveredModes {
		t.Run(mode.name, func(t *testing.T) {
			svc, counting, openIDs := benchSetupWith(t, 5, 10, true, func(o *Options) {
				o.PushConfigured = mode.push
				if mode.hooks {
					observeAll(o)
				}
			})
			for i := range 20 {
				send, event := deliveredMessage(context.Background(), t, svc, counting, openIDs[i%len(openIDs)], i, mode.push)
				if send != 3 || float64(event) != mode.wantEventOps {
					t.Fatalf("message %d: %d store round trips for the send, %d for its sent event; want 3 and %.0f", i, send, event, mode.wantEventOps)
				}
			}
		})
	}
}
