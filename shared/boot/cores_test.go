package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const leadTmplID = "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"

// leadsRig is the leads function's parts on bbolt with the fake WeChat and
// the bundled example configuration (its lead.assigned rule).
type leadsRig struct {
	parts *Parts
	fake  *wechattest.Server
	core  func(context.Context, []platform.Event) ([]string, error)
}

func newLeadsRig(t *testing.T) *leadsRig {
	t.Helper()
	fake := wechattest.NewServer(wechattest.Options{AppID: "wxleads", Templates: []wechattest.Template{{
		PriTmplID: leadTmplID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "character_string2"}, {Name: "time3"}, {Name: "thing4"}},
	}}})
	t.Cleanup(fake.Close)
	env := map[string]string{"WXN_WECHAT_APPID": "wxleads", "WXN_WECHAT_SECRET": fake.Secret(), "WXN_WECHAT_API_BASE": fake.URL(),
		"WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": "0123456789abcdef"}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(cfg, st, Options{Function: "leads"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	h, err := LeadsCore(parts)
	if err != nil {
		t.Fatal(err)
	}
	return &leadsRig{parts: parts, fake: fake, core: h.Events}
}

// salesperson binds userID to a WeChat user with credits accepts.
func (r *leadsRig) salesperson(t *testing.T, userID string, credits int) string {
	t.Helper()
	ctx := context.Background()
	res, err := r.parts.Service.Bind(ctx, userID, r.fake.Login(userID))
	if err != nil {
		t.Fatal(err)
	}
	for range credits {
		if _, err := r.fake.Subscribe(res.OpenID, map[string]string{leadTmplID: "accept"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.parts.Service.RecordReport(ctx, res.OpenID, notify.Report{Result: map[string]string{leadTmplID: "accept"}}); err != nil {
			t.Fatal(err)
		}
	}
	return res.OpenID
}

func leadEvent(id, typ, userID string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "occurredAt": "2026-11-21T09:30:00Z",
		"data": map[string]any{"lead": map[string]any{"id": "L-" + id, "name": "Acme Ltd", "source": "官网"},
			"assignee": map[string]any{"userId": userID}}})
	return b
}

func sqs(id string, body []byte) platform.Event {
	return platform.Event{ID: id, Source: platform.SourceSQS, Body: body}
}

func TestLeadEventOutcomes(t *testing.T) {
	r := newLeadsRig(t)
	openID := r.salesperson(t, "sales-42", 1)
	r.salesperson(t, "sales-7", 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		event      platform.Event
		wantFailed bool
		wantSends  int
	}{
		{"Sent", sqs("m1", leadEvent("evt-1", "lead.assigned", "sales-42")), false, 1},
		{"NoCreditSkipped", sqs("m2", leadEvent("evt-2", "lead.assigned", "sales-7")), false, 1},
		{"UnboundSkipped", sqs("m3", leadEvent("evt-3", "lead.assigned", "sales-99")), false, 1},
		{"NoRuleAcknowledged", sqs("m4", leadEvent("evt-4", "lead.closed", "sales-42")), false, 1},
		{"MalformedToDLQ", sqs("m5", []byte(`{"type":"lead.assigned"`)), true, 1},
		{"NoRecipientToDLQ", sqs("m6", []byte(`{"id":"evt-6","type":"lead.assigned","data":{}}`)), true, 1},
		{"MalformedCKafkaAcknowledged", platform.Event{ID: "t/0/1", Source: platform.SourceCKafka, Body: []byte(`nope`)}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed, err := r.core(ctx, []platform.Event{tc.event})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(failed) == 1; got != tc.wantFailed {
				t.Fatalf("failed: got %v, want reported %v", failed, tc.wantFailed)
			}
			if got := r.fake.Calls(wechattest.APISend); got != tc.wantSends {
				t.Fatalf("WeChat sends: got %d, want %d", got, tc.wantSends)
			}
		})
	}
	msgs := r.fake.Messages(openID)
	if len(msgs) != 1 || msgs[0].Data["thing1"] != "Acme Ltd" || msgs[0].Data["time3"] != "2026-11-21 17:30" ||
		msgs[0].Page != "pages/clue/clue?id=L-evt-1" {
		t.Fatalf("the salesperson's message: got %+v", msgs)
	}
}

// The same SQS message delivered 5 times at once sends one message.
func TestLeadEventDuplicateDeliveries(t *testing.T) {
	r := newLeadsRig(t)
	openID := r.salesperson(t, "sales-42", 3)
	body := leadEvent("evt-dup", "lead.assigned", "sales-42")
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			failed, err := r.core(context.Background(), []platform.Event{sqs(fmt.Sprintf("delivery-%d", i), body)})
			if err != nil || len(failed) != 0 {
				t.Errorf("delivery %d: failed %v, err %v", i, failed, err)
			}
		})
	}
	wg.Wait()
	if got := r.fake.Calls(wechattest.APISend); got != 1 {
		t.Fatalf("WeChat sends: got %d, want 1", got)
	}
	if got := len(r.fake.Messages(openID)); got != 1 {
		t.Fatalf("inbox: got %d, want 1", got)
	}
}

// A batch of 10 SQS messages of which 3 meet WeChat busy: exactly those 3
// are reported for redelivery, and their redelivery sends them.
func TestLeadEventPartialBatchFailure(t *testing.T) {
	r := newLeadsRig(t)
	var events []platform.Event
	for i := range 10 {
		userID := fmt.Sprintf("sales-%d", i)
		r.salesperson(t, userID, 1)
		events = append(events, sqs(fmt.Sprintf("msg-%d", i), leadEvent(fmt.Sprintf("evt-%d", i), "lead.assigned", userID)))
	}
	if err := r.fake.Inject(wechattest.Fault{API: wechattest.APISend, Errcode: -1, Count: 3}); err != nil {
		t.Fatal(err)
	}
	failed, err := r.core(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 3 {
		t.Fatalf("failed: got %v, want exactly 3", failed)
	}
	if got := r.fake.Delivered(); got != 7 {
		t.Fatalf("delivered: got %d, want 7", got)
	}
	// Exactly the messages whose send met -1 were reported.
	for _, e := range events {
		i := slices.Index(failed, e.ID)
		userID := fmt.Sprintf("sales-%s", strings.TrimPrefix(e.ID, "msg-"))
		openID, _ := r.parts.Service.ResolveUserID(context.Background(), userID)
		got := len(r.fake.Messages(openID))
		if (i >= 0) != (got == 0) {
			t.Fatalf("message %s: reported %v but %d messages delivered", e.ID, i >= 0, got)
		}
	}
	var again []platform.Event
	for _, e := range events {
		if slices.Contains(failed, e.ID) {
			again = append(again, e)
		}
	}
	failed, err = r.core(context.Background(), again)
	if err != nil || len(failed) != 0 {
		t.Fatalf("redelivery: failed %v, err %v", failed, err)
	}
	if got := r.fake.Delivered(); got != 10 {
		t.Fatalf("delivered after redelivery: got %d, want 10", got)
	}
}

func TestEventBridgeDetailWithoutEnvelopeFields(t *testing.T) {
	r := newLeadsRig(t)
	openID := r.salesperson(t, "sales-42", 1)
	detail := []byte(`{"lead":{"id":"L-9","name":"Globex","source":"展会"},"assignee":{"userId":"sales-42"}}`)
	failed, err := r.core(context.Background(), []platform.Event{{ID: "eb-1", Source: platform.SourceEventBridge, Type: "lead.assigned", Body: detail,
		Time: time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)}})
	if err != nil || len(failed) != 0 {
		t.Fatalf("failed %v, err %v", failed, err)
	}
	if msgs := r.fake.Messages(openID); len(msgs) != 1 || msgs[0].Data["thing1"] != "Globex" || msgs[0].Data["time3"] != "2026-11-21 09:00" {
		t.Fatalf("inbox: got %+v", msgs)
	}
}

// A queued event with a string that is not UTF-8 (an escaped unpaired
// surrogate, which encoding/json would replace with U+FFFD) is rejected as
// malformed, as POST /v1/events refuses it, instead of being sent with text
// the lead system never wrote; so is an EventBridge envelope id or type
// that is not UTF-8.
func TestQueuedEventsNotUTF8Rejected(t *testing.T) {
	r := newLeadsRig(t)
	r.salesperson(t, "sales-42", 3)
	ctx := context.Background()
	detail := []byte(`{"lead":{"id":"L-9","name":"Globex","source":"展会"},"assignee":{"userId":"sales-42"}}`)
	event := func(id, name string) []byte {
		return []byte(`{"id":"` + id + `","type":"lead.assigned","occurredAt":"2026-11-21T09:30:00Z",` +
			`"data":{"lead":{"id":"L-1","name":"` + name + `","source":"web"},"assignee":{"userId":"sales-42"}}}`)
	}
	for _, tc := range []struct {
		name       string
		event      platform.Event
		wantFailed bool
		wantSends  int
	}{
		{"SQSSurrogateEscape", sqs("m1", event("evt-1", `Acme \ud800`)), true, 0},
		{"SQSInvalidBytes", sqs("m2", event("evt-2", "Acme \xff")), true, 0},
		{"CKafkaSurrogateEscapeDropped", platform.Event{ID: "t/0/1", Source: platform.SourceCKafka, Body: event("evt-3", `\udc00`)}, false, 0},
		{"EventBridgeIDNotUTF8", platform.Event{ID: "eb-\xff", Source: platform.SourceEventBridge, Type: "lead.assigned", Body: detail}, true, 0},
		{"EventBridgeTypeNotUTF8", platform.Event{ID: "eb-2", Source: platform.SourceEventBridge, Type: "lead.assigned\xff", Body: detail}, true, 0},
		{"SQSValid", sqs("m4", event("evt-4", `Acme \ud83d\ude00`)), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed, err := r.core(ctx, []platform.Event{tc.event})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(failed) == 1; got != tc.wantFailed {
				t.Fatalf("failed: got %v, want reported %v", failed, tc.wantFailed)
			}
			if got := r.fake.Calls(wechattest.APISend); got != tc.wantSends {
				t.Fatalf("WeChat sends: got %d, want %d", got, tc.wantSends)
			}
		})
	}
}
