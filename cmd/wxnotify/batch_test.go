package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A batch over HTTP: created, run by the dev server's tick, watched to done.
func TestBatchOverHTTP(t *testing.T) {
	e := newEnv(t)
	var recipients []map[string]any
	var openIDs []string
	for i := range 5 {
		token, openID := e.login(fmt.Sprintf("batch-user-%d", i))
		if i < 3 {
			e.grant(token, openID, leadID, 1)
		}
		openIDs = append(openIDs, openID)
		recipients = append(recipients, map[string]any{"openid": openID, "data": map[string]string{"thing1": fmt.Sprintf("Lead %d", i)}})
	}
	body := map[string]any{"template": "lead_assigned", "recipients": recipients,
		"data": map[string]string{"character_string2": "L-1", "time3": "09:30", "thing4": "官网"}, "idempotencyKey": "digest-1"}
	r := e.want(e.do("POST", "/v1/batches", e.key, body), 202)
	if r.str("status") != "scheduled" || r.str("total") != "5" {
		t.Fatalf("create: got %s", r.raw)
	}
	id := r.str("id")
	again := e.want(e.do("POST", "/v1/batches", e.key, body), 202)
	if again.str("id") != id {
		t.Fatalf("same idempotency key: got %s, want %s", again.str("id"), id)
	}
	body["data"] = map[string]string{"character_string2": "L-2", "time3": "09:30", "thing4": "官网"}
	e.want(e.do("POST", "/v1/batches", e.key, body), 409)
	deadline := time.Now().Add(15 * time.Second)
	for {
		g := e.want(e.do("GET", "/v1/batches/"+id, e.key, nil), 200)
		if g.str("status") == "done" {
			if g.str("sent") != "3" || g.str("skipped") != "2" || g.str("pending") != "0" {
				t.Fatalf("done batch: got %s, want 3 sent, 2 skipped", g.raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done by the dev server's ticks: %s", g.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, o := range openIDs {
		want := 0
		if i < 3 {
			want = 1
		}
		if got := len(e.fake.Messages(o)); got != want {
			t.Fatalf("user %d: got %d messages, want %d", i, got, want)
		}
	}
	bad := map[string]any{"template": "lead_assigned", "recipients": []map[string]any{{"openid": openIDs[0]}}}
	r = e.want(e.do("POST", "/v1/batches", e.key, bad), 400)
	if r.str("error", "field") != "recipients[0].data.thing1" {
		t.Fatalf("invalid recipient data: got %s", r.raw)
	}
	e.want(e.do("GET", "/v1/batches/bat_nope", e.key, nil), 404)
	e.want(e.do("DELETE", "/v1/batches/"+id, e.key, nil), 200)
	e.want(e.do("GET", "/v1/batches/"+id, "", nil), 401)
}

// Lead events by webhook: a single event or an array, each sent once
// however often the lead system retries.
func TestEventsWebhook(t *testing.T) {
	e := newEnv(t)
	b := e.bind("sales-42", "lena")
	e.grant(b.str("token"), b.str("openid"), leadID, 2)
	event := map[string]any{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
		"data": map[string]any{"lead": map[string]any{"id": "L-1001", "name": "Acme Ltd"}, "assignee": map[string]any{"userId": "sales-42"}}}
	for range 2 {
		r := e.want(e.do("POST", "/v1/events", e.key, event), 202)
		if r.str("accepted") != "1" || !strings.Contains(r.raw, `"status":"sent"`) {
			t.Fatalf("event: got %s", r.raw)
		}
	}
	msgs := e.fake.Messages(b.str("openid"))
	if len(msgs) != 1 || msgs[0].Data["time3"] != "2026-11-21 17:30" || msgs[0].Data["thing4"] == "" {
		t.Fatalf("inbox after the event and its retry: got %+v, want one message", msgs)
	}
	other := map[string]any{"id": "evt-other", "type": "lead.closed", "data": map[string]any{}}
	r := e.want(e.do("POST", "/v1/events", e.key, []any{other}), 202)
	if r.str("accepted") != "1" || !strings.Contains(r.raw, `"notifications":[]`) {
		t.Fatalf("event without a rule: got %s", r.raw)
	}
	r = e.want(e.do("POST", "/v1/events", e.key, []any{event, map[string]any{"type": "lead.assigned"}}), 400)
	if r.str("error", "field") != "[1].id" {
		t.Fatalf("malformed event in an array: got %s", r.raw)
	}
	e.want(e.do("POST", "/v1/events", "", event), 401)
}
