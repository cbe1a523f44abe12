package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/webhook"
)

// hookServiceOpts is hookService with the webhook options given.
func hookServiceOpts(t *testing.T, st store.Store, clock *fakeClock, o WebhookOptions) *Service {
	t.Helper()
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	o.App, o.AllowPrivate = "shop", true
	if o.Timeout == 0 {
		o.Timeout = 300 * time.Millisecond
	}
	svc, err := New(Options{AppID: "wxhook", Store: st, WeChat: &silentWeChat{answers: map[int]int64{1: 7, 2: 8, 3: 9}},
		Catalog: catalog, Sessions: sessions, Now: clock.Now, Webhooks: o})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// deliveries lists every delivery of sub with status, page by page.
func deliveries(t *testing.T, svc *Service, sub string, status DeliveryStatus, limit int) []WebhookDelivery {
	t.Helper()
	var out []WebhookDelivery
	cursor := ""
	for range 100 {
		p, err := svc.ListWebhookDeliveries(context.Background(), sub, status, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Deliveries) > limit {
			t.Fatalf("page of %d, limit %d", len(p.Deliveries), limit)
		}
		out = append(out, p.Deliveries...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
	t.Fatal("the list does not end")
	return nil
}

func codeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// A receiver that refuses connections (not listening yet), then times
// out, then answers 500, gets every event exactly once with a 2xx once
// retried on the backoff the fake clock drives; each delivery's record
// holds every attempt, in order, as the receiver saw them.
func TestOutboxRefusedTimeout500ExactlyOnce(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // connections are refused until the receiver listens there
	secret := webhook.NewSecret()
	svc := hookServiceOpts(t, st, clock, WebhookOptions{Subscriptions: []WebhookSubscription{
		{ID: "crm", URL: "http://" + addr + "/hook", Events: []string{"*"}, Secrets: []string{secret}}}})
	grantCredit(t, st, svc, "oA")
	events := []Notification{send(t, svc, "oA", "k1"), send(t, svc, "oB", "k2"), send(t, svc, "oC", "k3")}

	// Round 1: refused.
	if d, f, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || d != 0 || f != 3 {
		t.Fatalf("refused round: delivered %d, failed %d, %v; want 3 failures", d, f, err)
	}
	for _, d := range deliveries(t, svc, "crm", DeliveryFailed, 10) {
		a := d.Attempts
		if len(a) != 1 || a[0].Number != 1 || a[0].HTTPStatus != 0 || !strings.Contains(a[0].Error, "refused") ||
			!a[0].NextAttempt.After(clock.Now()) || !d.NextAttempt.Equal(a[0].NextAttempt) {
			t.Fatalf("after a refused attempt: %+v", d)
		}
	}

	// The receiver listens: one timeout, one 500, then 200s.
	type hit struct {
		id     string
		status int
		ok     bool // signature verified
	}
	var (
		mu   sync.Mutex
		hits []hit
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(hits) + 1
		hits = append(hits, hit{id: r.Header.Get(webhook.HeaderID), ok: webhook.Verify(secret, r.Header, body, time.Now(), 0) == nil})
		mu.Unlock()
		status := http.StatusOK
		switch n {
		case 1:
			<-r.Context().Done() // the sender gives up: a timeout
			status = 0
		case 2:
			status = http.StatusInternalServerError
		}
		mu.Lock()
		hits[n-1].status = status
		mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
	}))
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	// The first retry is 5 s (±20 %) after the refused attempt: not due
	// before.
	clock.Advance(3 * time.Second)
	if d, f, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || d+f != 0 {
		t.Fatalf("before the backoff: delivered %d, failed %d, %v; want nothing due", d, f, err)
	}
	drain(t, svc, clock, 2*time.Hour, 10)

	mu.Lock()
	defer mu.Unlock()
	byID := map[string][]hit{}
	for _, h := range hits {
		byID[h.id] = append(byID[h.id], h)
		if !h.ok {
			t.Errorf("%s: signature refused", h.id)
		}
	}
	if len(hits) != 5 {
		t.Fatalf("%d requests, want 5 (a timeout, a 500, 3 deliveries): %+v", len(hits), hits)
	}
	recs := map[string]WebhookDelivery{}
	for _, d := range deliveries(t, svc, "crm", "", 2) {
		recs[d.ID] = d
	}
	for _, n := range events {
		id := webhook.DeliveryID(n.ID+":"+string(n.Status), "crm")
		ok := 0
		for _, h := range byID[id] {
			if h.status == http.StatusOK {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("%s delivered %d times, want exactly once", id, ok)
		}
		d := recs[id]
		if d.Status != DeliveryDelivered || len(d.Attempts) != 1+len(byID[id]) {
			t.Errorf("record of %s: %+v; want delivered after %d attempts", id, d, 1+len(byID[id]))
			continue
		}
		for i, a := range d.Attempts {
			want := 0
			if i > 0 {
				want = byID[id][i-1].status
			}
			last := i == len(d.Attempts)-1
			if a.Number != i+1 || a.HTTPStatus != want || (a.Error == "") != last || a.NextAttempt.IsZero() != last || a.Duration < 0 {
				t.Errorf("record of %s, attempt %d: %+v; want status %d", id, i+1, a, want)
			}
		}
	}
}

// The deliveries list newest first, by page and by status; a dead one is
// replayed with the same webhook-id, idempotently while pending; unknown
// webhooks and deliveries, bad filters and cursors are refused.
func TestDeliveriesListAndReplay(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	var (
		mu  sync.Mutex
		bad = map[string]bool{}
		got = map[string]int{} // webhook-id -> 2xx answers
	)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(webhook.HeaderID)
		if bad[id] {
			w.WriteHeader(http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		got[id]++
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	})
	svc := hookService(t, st, clock, WebhookSubscription{ID: "crm", URL: rc.srv.URL, Events: []string{"*"}, Secrets: []string{rc.secret}})
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		n := send(t, svc, fmt.Sprintf("o%d", i), fmt.Sprintf("k%d", i))
		ids = append(ids, webhook.DeliveryID(n.ID+":skipped", "crm"))
		clock.Advance(time.Second)
	}
	bad[ids[1]] = true
	if _, _, err := svc.DeliverWebhooks(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	all := deliveries(t, svc, "crm", "", 10)
	if len(all) != 3 || all[0].ID != ids[2] || all[1].ID != ids[1] || all[2].ID != ids[0] {
		t.Fatalf("list %+v, want the 3 deliveries newest first", all)
	}
	if all[0].Status != DeliveryDelivered || all[1].Status != DeliveryFailed || all[2].Status != DeliveryDelivered {
		t.Fatalf("statuses %s %s %s; want delivered failed delivered", all[0].Status, all[1].Status, all[2].Status)
	}
	if paged := deliveries(t, svc, "crm", "", 1); len(paged) != 3 || paged[0].ID != ids[2] || paged[2].ID != ids[0] {
		t.Fatalf("pages of 1: %+v", paged)
	}
	if f := deliveries(t, svc, "crm", DeliveryFailed, 1); len(f) != 1 || f[0].ID != ids[1] || f[0].EventType != webhook.EventNotificationSkipped {
		t.Fatalf("failed: %+v", f)
	}
	// Until given up: retried on the schedule, then dead.
	start := clock.Now()
	for clock.Now().Sub(start) <= webhook.GiveUpAfter {
		clock.Advance(11 * time.Hour)
		if _, _, err := svc.DeliverWebhooks(ctx, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	dead := deliveries(t, svc, "crm", DeliveryDead, 10)
	if len(dead) != 1 || dead[0].ID != ids[1] || dead[0].Reason != DeadRetriesExhausted || len(dead[0].Attempts) != 4 {
		t.Fatalf("dead: %+v; want %s given up after 4 attempts", dead, ids[1])
	}
	for i, a := range dead[0].Attempts {
		if a.Number != i+1 || a.HTTPStatus != 500 || a.NextAttempt.IsZero() != (i == 3) {
			t.Fatalf("dead attempt %d: %+v", i+1, a)
		}
	}
	if n := partitionSize(t, st, svc.outboxDeadPartition()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}

	// Replay: pending, out of the dead letters, once however often asked.
	mu.Lock()
	delete(bad, ids[1])
	mu.Unlock()
	for range 2 {
		d, err := svc.ReplayWebhookDelivery(ctx, "crm", ids[1])
		if err != nil || d.Status != DeliveryPending || d.Replays != 1 || d.ID != ids[1] {
			t.Fatalf("replay: %+v, %v; want pending, 1 replay", d, err)
		}
	}
	if o, dl := partitionSize(t, st, svc.outboxPartition()), partitionSize(t, st, svc.outboxDeadPartition()); o != 1 || dl != 0 {
		t.Fatalf("after replays: outbox %d, dead %d; want 1, 0", o, dl)
	}
	if p := deliveries(t, svc, "crm", DeliveryPending, 10); len(p) != 1 || p[0].ID != ids[1] {
		t.Fatalf("pending: %+v", p)
	}
	// A delivered one is replayed too (the receiver asked for it again).
	if d, err := svc.ReplayWebhookDelivery(ctx, "crm", ids[0]); err != nil || d.Status != DeliveryPending {
		t.Fatalf("replay of a delivered one: %+v, %v", d, err)
	}
	drain(t, svc, clock, time.Minute, 3)
	mu.Lock()
	if got[ids[1]] != 1 || got[ids[0]] != 2 || got[ids[2]] != 1 {
		t.Errorf("2xx per webhook-id %v; want the replayed dead one once, the replayed delivered one twice", got)
	}
	mu.Unlock()
	if d := deliveries(t, svc, "crm", DeliveryDelivered, 10); len(d) != 3 {
		t.Fatalf("delivered: %+v", d)
	}
	rec, _, err := svc.getDelivery(ctx, "crm", ids[1])
	if err != nil || len(rec.Attempts) != 5 || rec.Attempts[4].Number != 5 || rec.Attempts[4].HTTPStatus != 204 || rec.Replays != 1 {
		t.Fatalf("replayed record %+v, %v; want a 5th attempt answered 204", rec.WebhookDelivery, err)
	}

	for _, c := range []struct {
		err  error
		want Code
	}{
		{func() error { _, err := svc.ListWebhookDeliveries(ctx, "nope", "", "", 10); return err }(), CodeWebhookNotFound},
		{func() error { _, err := svc.ReplayWebhookDelivery(ctx, "nope", ids[0]); return err }(), CodeWebhookNotFound},
		{func() error { _, err := svc.EnableWebhook(ctx, "nope"); return err }(), CodeWebhookNotFound},
		{func() error {
			_, err := svc.ReplayWebhookDelivery(ctx, "crm", webhook.DeliveryID("x", "crm"))
			return err
		}(), CodeDeliveryNotFound},
		{func() error { _, err := svc.ReplayWebhookDelivery(ctx, "crm", "msg_/../x"); return err }(), CodeDeliveryNotFound},
		{func() error { _, err := svc.ListWebhookDeliveries(ctx, "crm", "sent", "", 10); return err }(), CodeBadRequest},
		{func() error { _, err := svc.ListWebhookDeliveries(ctx, "crm", "", "zzz", 10); return err }(), CodeBadRequest},
		{func() error { _, err := svc.ListWebhookDeliveries(ctx, "crm", "", "", 101); return err }(), CodeBadRequest},
	} {
		if codeOf(c.err) != c.want {
			t.Errorf("got %v, want %s", c.err, c.want)
		}
	}
}

// A 410 Gone disables the subscription: its pending entries, due later
// included, become dead (endpoint_gone) at once, new events too when due,
// other subscriptions are unaffected; replay is refused until enabled.
func TestGoneDisablesSubscription(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	var gone sync.Map // path -> true while that path answers 410
	gone.Store("/gone", true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) int {
		if _, ok := gone.Load(r.URL.Path); ok {
			w.WriteHeader(http.StatusGone)
			return http.StatusGone
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	subs := []WebhookSubscription{
		{ID: "gone", URL: rc.srv.URL + "/gone", Events: []string{"*"}, Secrets: []string{rc.secret}},
		{ID: "ok", URL: rc.srv.URL + "/ok", Events: []string{"*"}, Secrets: []string{rc.secret}},
	}
	// One entry per run and one worker: the 410 finds the others pending.
	svc := hookServiceOpts(t, st, clock, WebhookOptions{Subscriptions: subs, PageSize: 1, Workers: 1})
	ctx := context.Background()
	var ns []Notification
	for i := range 3 {
		ns = append(ns, send(t, svc, fmt.Sprintf("o%d", i), fmt.Sprintf("k%d", i)))
		clock.Advance(time.Second)
	}
	// The entries are due in turn (each sub once per event): run until
	// "gone" got its 410.
	for range 6 {
		if _, _, err := svc.DeliverWebhooks(ctx, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if st, _ := svc.WebhookStatus(ctx, "gone"); st.Disabled {
			break
		}
	}
	state, err := svc.WebhookStatus(ctx, "gone")
	if err != nil || !state.Disabled || state.Reason != DeadEndpointGone {
		t.Fatalf("state %+v, %v; want disabled by endpoint_gone", state, err)
	}
	dead := deliveries(t, svc, "gone", DeliveryDead, 10)
	if len(dead) != 3 {
		t.Fatalf("dead deliveries of gone: %+v; want all 3", dead)
	}
	attempted := 0
	for _, d := range dead {
		if d.Reason != DeadEndpointGone {
			t.Errorf("%s: reason %q", d.ID, d.Reason)
		}
		attempted += len(d.Attempts)
	}
	goneHits := 0
	for _, c := range rc.snapshot() {
		if c.status == http.StatusGone {
			goneHits++
		}
	}
	if attempted != 1 || goneHits != 1 {
		t.Fatalf("%d attempts recorded, %d requests answered 410; want one of each", attempted, goneHits)
	}
	// A new event of the disabled subscription is dead when due.
	n4 := send(t, svc, "o4", "k4")
	drain(t, svc, clock, time.Minute, 10)
	if d := deliveries(t, svc, "gone", DeliveryDead, 10); len(d) != 4 || d[0].ID != webhook.DeliveryID(n4.ID+":skipped", "gone") {
		t.Fatalf("dead after a new event: %+v", d)
	}
	if ok := deliveries(t, svc, "ok", DeliveryDelivered, 10); len(ok) != 4 {
		t.Fatalf("the other subscription delivered %d, want 4", len(ok))
	}
	id := webhook.DeliveryID(ns[0].ID+":skipped", "gone")
	if _, err := svc.ReplayWebhookDelivery(ctx, "gone", id); codeOf(err) != CodeWebhookDisabled {
		t.Fatalf("replay while disabled: %v", err)
	}
	gone.Delete("/gone")
	if st, err := svc.EnableWebhook(ctx, "gone"); err != nil || st.Disabled {
		t.Fatalf("enable: %+v, %v", st, err)
	}
	if st, _ := svc.WebhookStatus(ctx, "gone"); st.Disabled {
		t.Fatal("still disabled after enable")
	}
	if d, err := svc.ReplayWebhookDelivery(ctx, "gone", id); err != nil || d.Status != DeliveryPending {
		t.Fatalf("replay after enable: %+v, %v", d, err)
	}
	drain(t, svc, clock, time.Minute, 10)
	n := 0
	for _, c := range rc.snapshot() {
		if c.id == id && c.status == http.StatusOK {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("replayed delivery answered 200 %d times, want once", n)
	}
	if d := deliveries(t, svc, "gone", DeliveryDelivered, 10); len(d) != 1 || d[0].ID != id {
		t.Fatalf("delivered of gone: %+v", d)
	}
}

// specSignature is the Standard Webhooks signature written from the
// specification alone: HMAC-SHA256 keyed with the base64-decoded bytes
// after whsec_, of "{id}.{timestamp}.{body}", as "v1,<base64>".
func specSignature(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// During a rotation every delivery carries two signatures, one per
// secret: a receiver knowing only the new secret or only the old one
// accepts it (checked by a verifier written from the specification, and
// by webhook.Verify).
func TestRotationSignsWithBothSecrets(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	cur, prev := webhook.NewSecret(), webhook.NewSecret()
	type req struct {
		h    http.Header
		body []byte
	}
	reqs := make(chan req, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- req{r.Header.Clone(), body}
	}))
	t.Cleanup(srv.Close)
	svc := hookService(t, st, clock, WebhookSubscription{ID: "crm", URL: srv.URL, Events: []string{"*"}, Secrets: []string{cur, prev}})
	send(t, svc, "oB", "k")
	if d, _, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || d != 1 {
		t.Fatalf("delivered %d, %v", d, err)
	}
	r := <-reqs
	entries := strings.Split(r.h.Get(webhook.HeaderSignature), " ")
	if len(entries) != 2 {
		t.Fatalf("webhook-signature %q, want two entries", r.h.Get(webhook.HeaderSignature))
	}
	ts := r.h.Get(webhook.HeaderTimestamp)
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Fatalf("timestamp %q", ts)
	}
	for i, secret := range []string{cur, prev} {
		if want := specSignature(t, secret, r.h.Get(webhook.HeaderID), ts, r.body); entries[i] != want {
			t.Errorf("entry %d %q, want %q (secret %d by the specification)", i, entries[i], want, i+1)
		}
		if err := webhook.Verify(secret, r.h, r.body, time.Now(), 0); err != nil {
			t.Errorf("secret %d: %v", i+1, err)
		}
	}
	if err := webhook.Verify(webhook.NewSecret(), r.h, r.body, time.Now(), 0); err == nil {
		t.Error("a third secret verifies")
	}
	var env map[string]any
	if err := json.Unmarshal(r.body, &env); err != nil || env["type"] != webhook.EventNotificationSkipped {
		t.Fatalf("body %s", r.body)
	}
}
