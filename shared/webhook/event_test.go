package webhook_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

func TestEventJSONShape(t *testing.T) {
	at := time.Date(2026, 12, 6, 23, 4, 5, 0, time.FixedZone("CST", 8*3600))
	ev := webhook.Event{Type: webhook.EventNotificationSent, ID: "ev1", Timestamp: at,
		Data: webhook.NotificationData{NotificationID: "n1", App: "shop", UserID: "u1", Template: "order_shipped", Status: "sent"}}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["type"] == nil || got["timestamp"] == nil || got["data"] == nil {
		t.Fatalf("envelope keys: %s", b)
	}
	var ts string
	_ = json.Unmarshal(got["timestamp"], &ts)
	parsed, err := time.Parse(time.RFC3339, ts)
	if err != nil || !parsed.Equal(at) || !strings.HasSuffix(ts, "Z") {
		t.Fatalf("timestamp %q: %v (want %v in UTC)", ts, err, at)
	}
	var data webhook.NotificationData
	if err := json.Unmarshal(got["data"], &data); err != nil || data.NotificationID != "n1" || data.UserID != "u1" {
		t.Fatalf("data %s: %v", got["data"], err)
	}
	if strings.Contains(string(b), "openid") {
		t.Fatalf("payload names an openid field: %s", b)
	}
}

func TestEventBadInput(t *testing.T) {
	now := time.Now()
	for name, ev := range map[string]webhook.Event{
		"unknown type": {Type: "notification.lost", ID: "e", Timestamp: now},
		"no timestamp": {Type: webhook.EventBatchFinished, ID: "e"},
		"array data":   {Type: webhook.EventBatchFinished, ID: "e", Timestamp: now, Data: []int{1}},
		"string data":  {Type: webhook.EventBatchFinished, ID: "e", Timestamp: now, Data: "x"},
		"bad data":     {Type: webhook.EventBatchFinished, ID: "e", Timestamp: now, Data: map[string]any{"f": func() {}}},
	} {
		if b, err := json.Marshal(ev); err == nil {
			t.Errorf("%s: encoded as %s", name, b)
		}
	}
	b, err := json.Marshal(webhook.Event{Type: webhook.EventConsentChanged, ID: "e", Timestamp: now})
	if err != nil || !strings.Contains(string(b), `"data":{}`) {
		t.Fatalf("nil data: %s, %v", b, err)
	}
}

func TestEventTypes(t *testing.T) {
	want := []string{"notification.sent", "notification.failed", "notification.skipped",
		"notification.delivered", "notification.unknown", "consent.changed", "batch.finished"}
	if strings.Join(webhook.EventTypes, ",") != strings.Join(want, ",") {
		t.Fatalf("EventTypes = %v", webhook.EventTypes)
	}
	for _, ty := range want {
		if !webhook.KnownType(ty) {
			t.Errorf("%s unknown", ty)
		}
	}
	if webhook.KnownType("notification") || webhook.KnownType("") {
		t.Error("KnownType accepts a non-type")
	}
}

func TestDeliveryID(t *testing.T) {
	id := webhook.DeliveryID("ev1", "sub1")
	if !regexp.MustCompile(`^msg_[a-z2-7]{26}$`).MatchString(id) {
		t.Fatalf("id %q", id)
	}
	if webhook.DeliveryID("ev1", "sub1") != id {
		t.Fatal("same pair, different id")
	}
	seen := map[string]string{id: "ev1/sub1"}
	for _, p := range [][2]string{{"ev1", "sub2"}, {"ev2", "sub1"}, {"ev1s", "ub1"}, {"ev", "1sub1"}, {"", "ev1sub1"}, {"sub1", "ev1"}} {
		d := webhook.DeliveryID(p[0], p[1])
		if prev, dup := seen[d]; dup {
			t.Fatalf("%v and %s share id %s", p, prev, d)
		}
		seen[d] = p[0] + "/" + p[1]
	}
}

func TestNewMessage(t *testing.T) {
	ev := webhook.Event{Type: webhook.EventBatchFinished, ID: "b-ev", Timestamp: time.Unix(1_800_000_000, 0),
		Data: webhook.BatchData{BatchID: "b1", App: "shop", Status: "done", Total: 3, Sent: 2, Skipped: 1}}
	m, err := webhook.NewMessage(ev, "sub9")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	if m.ID != webhook.DeliveryID("b-ev", "sub9") || m.Type != ev.Type || string(m.Body) != string(body) {
		t.Fatalf("message %+v", m)
	}
	if _, err := webhook.NewMessage(webhook.Event{Type: ev.Type, Timestamp: ev.Timestamp}, "sub9"); err == nil {
		t.Error("event without id accepted")
	}
	if _, err := webhook.NewMessage(ev, ""); err == nil {
		t.Error("empty subscription accepted")
	}
	if _, err := webhook.NewMessage(webhook.Event{Type: "x", ID: "e", Timestamp: ev.Timestamp}, "s"); err == nil {
		t.Error("unknown type accepted")
	}
}
