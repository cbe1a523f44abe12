package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/webhook"
)

// receiver is a loopback webhook endpoint that records every request and
// answers with answer(n), n counting the requests from 1.
type receiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	calls  []call
	answer func(n int, w http.ResponseWriter, r *http.Request) int
}

type call struct {
	id        string
	typ       string
	verifyErr error
	status    int // 0: no answer (dropped, timed out)
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{secret: webhook.NewSecret(), answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &env)
		rc.mu.Lock()
		c := call{id: r.Header.Get(webhook.HeaderID), typ: env.Type, verifyErr: webhook.Verify(rc.secret, r.Header, body, time.Now(), 0)}
		rc.calls = append(rc.calls, c)
		n := len(rc.calls)
		rc.mu.Unlock()
		st := rc.answer(n, w, r)
		rc.mu.Lock()
		rc.calls[n-1].status = st
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) snapshot() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]call(nil), rc.calls...)
}

// answerOK answers 200.
func answerOK(_ int, w http.ResponseWriter, _ *http.Request) int {
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// flaky drops the connection of request 1, lets request 2 time out,
// answers 500 to request 3 and 200 from then on.
func flaky(n int, w http.ResponseWriter, r *http.Request) int {
	switch n {
	case 1:
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
		}
		return 0
	case 2:
		<-r.Context().Done()
		return 0
	case 3:
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	return answerOK(n, w, r)
}

func hookService(t *testing.T, st store.Store, clock *fakeClock, subs ...WebhookSubscription) *Service {
	t.Helper()
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxhook", Store: st, WeChat: &silentWeChat{answers: map[int]int64{1: 7, 2: 8, 3: 9}},
		Catalog: catalog, Sessions: sessions, Now: clock.Now,
		Webhooks: WebhookOptions{App: "shop", Subscriptions: subs, AllowPrivate: true, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// send sends to openID with the idempotency key key: sent when openID has
// a credit, else skipped.
func send(t *testing.T, svc *Service, openID, key string) Notification {
	t.Helper()
	n, _ := svc.Send(context.Background(), SendRequest{To: Recipient{OpenID: openID}, Template: "lead",
		Data: map[string]string{"thing1": "x"}, IdempotencyKey: key})
	if n.ID == "" || n.Status == StatusPending {
		t.Fatalf("send %s: %+v", key, n)
	}
	return n
}

// drain runs DeliverWebhooks until the outbox is empty, advancing the
// clock by step after each run; it fails after rounds runs.
func drain(t *testing.T, svc *Service, clock *fakeClock, step time.Duration, rounds int) {
	t.Helper()
	for range rounds {
		if _, _, err := svc.DeliverWebhooks(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if partitionSize(t, svc.st, svc.outboxPartition()) == 0 {
			return
		}
		clock.Advance(step)
	}
	t.Fatalf("outbox not empty after %d rounds", rounds)
}

// A receiver that drops the connection, times out, answers 500, then 200
// gets every event delivered exactly once with a 2xx, each attempt of an
// event under the same webhook-id with a valid signature.
func TestOutboxDeliversEachEventOnce(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	rc := newReceiver(t, flaky)
	svc := hookService(t, st, clock, WebhookSubscription{ID: "crm", URL: rc.srv.URL + "/hook", Events: []string{"*"}, Secrets: []string{rc.secret}})
	grantCredit(t, st, svc, "oA")
	sent := send(t, svc, "oA", "k1")
	skipped := send(t, svc, "oB", "k2")
	if sent.Status != StatusSent || skipped.Status != StatusSkipped {
		t.Fatalf("statuses %s, %s; want sent, skipped", sent.Status, skipped.Status)
	}
	if n := partitionSize(t, st, svc.outboxPartition()); n != 2 {
		t.Fatalf("%d outbox entries, want 2", n)
	}
	drain(t, svc, clock, 2*time.Hour, 10)
	want := map[string]string{
		webhook.DeliveryID(sent.ID+":sent", "crm"):       webhook.EventNotificationSent,
		webhook.DeliveryID(skipped.ID+":skipped", "crm"): webhook.EventNotificationSkipped,
	}
	ok := map[string]int{}
	calls := rc.snapshot()
	if len(calls) < 5 {
		t.Fatalf("%d requests, want the 3 failures and 2 deliveries", len(calls))
	}
	for i, c := range calls {
		if typ, known := want[c.id]; !known || typ != c.typ {
			t.Errorf("request %d: webhook-id %q type %q is none of the events", i+1, c.id, c.typ)
		}
		if c.verifyErr != nil {
			t.Errorf("request %d: signature: %v", i+1, c.verifyErr)
		}
		if c.status >= 200 && c.status < 300 {
			ok[c.id]++
		}
	}
	for id := range want {
		if ok[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, ok[id])
		}
	}
	if n := partitionSize(t, st, svc.outboxDeadPartition()); n != 0 {
		t.Errorf("%d dead entries, want none", n)
	}
}

// The reply of the outcome's Write is lost: the send recognises its
// outcome, and exactly one outbox entry exists.
func TestOutboxLostReplyOneEntry(t *testing.T) {
	lost := storetest.NewLostReplies(historyBolt(t))
	clock := &fakeClock{t: time.Now()}
	svc := hookService(t, lost, clock, WebhookSubscription{ID: "crm", URL: "https://crm.example.com/hook", Events: []string{"*"}, Secrets: []string{webhook.NewSecret()}})
	grantCredit(t, lost, svc, "oL")
	lost.Reset(1, func(op string, k store.Key) bool { return op == "write" && strings.HasPrefix(k.Partition, "n|") })
	n := send(t, svc, "oL", "k")
	if len(lost.Lost()) != 1 || n.Status != StatusSent {
		t.Fatalf("lost %v, status %s; want the outcome write's lost, sent", lost.Lost(), n.Status)
	}
	p, err := lost.Query(context.Background(), store.Query{Partition: svc.outboxPartition(), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || !strings.HasSuffix(p.Items[0].Key.Sort, webhook.DeliveryID(n.ID+":sent", "crm")) {
		t.Fatalf("outbox %v, want the one entry of %s", p.Items, n.ID)
	}
}

// Without subscriptions nothing is written to the outbox; a subscription
// only gets the events it names.
func TestOutboxSubscriptionsAndFilter(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	none := hookService(t, st, clock)
	grantCredit(t, st, none, "oA")
	send(t, none, "oA", "k1")
	send(t, none, "oB", "k2")
	if n := partitionSize(t, st, none.outboxPartition()); n != 0 {
		t.Fatalf("no subscriptions: %d outbox entries", n)
	}

	st2 := historyBolt(t)
	rc := newReceiver(t, answerOK)
	secret := []string{rc.secret}
	svc := hookService(t, st2, clock,
		WebhookSubscription{ID: "failures", URL: rc.srv.URL, Events: []string{webhook.EventNotificationFailed, webhook.EventNotificationSkipped}, Secrets: secret},
		WebhookSubscription{ID: "sent", URL: rc.srv.URL, Events: []string{webhook.EventNotificationSent}, Secrets: secret},
		WebhookSubscription{ID: "batches", URL: rc.srv.URL, Events: []string{webhook.EventBatchFinished}, Secrets: secret})
	grantCredit(t, st2, svc, "oA")
	sent := send(t, svc, "oA", "k1")
	skipped := send(t, svc, "oB", "k2")
	drain(t, svc, clock, time.Minute, 3)
	got := map[string]bool{}
	for _, c := range rc.snapshot() {
		got[c.id] = true
	}
	want := map[string]bool{
		webhook.DeliveryID(sent.ID+":sent", "sent"):           true,
		webhook.DeliveryID(skipped.ID+":skipped", "failures"): true,
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for id := range want {
		if !got[id] {
			t.Errorf("%s not delivered (got %v)", id, got)
		}
	}
}

// An endpoint that always fails: the delivery is retried on the schedule
// and moved to the dead letters once 24 hours have passed.
func TestOutboxDeadAfterGiveUp(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) int {
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	})
	svc := hookService(t, st, clock, WebhookSubscription{ID: "crm", URL: rc.srv.URL, Events: []string{"*"}, Secrets: []string{rc.secret}})
	n := send(t, svc, "oB", "k")
	start := clock.Now()
	for clock.Now().Sub(start) < webhook.GiveUpAfter {
		delivered, failed, err := svc.DeliverWebhooks(context.Background(), time.Time{})
		if err != nil || delivered != 0 || failed != 1 {
			t.Fatalf("at %v: delivered %d, failed %d, %v; want 1 failure", clock.Now().Sub(start), delivered, failed, err)
		}
		if d := partitionSize(t, st, svc.outboxDeadPartition()); d != 0 {
			t.Fatalf("dead at %v, before 24 h", clock.Now().Sub(start))
		}
		clock.Advance(11 * time.Hour)
	}
	if _, _, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if o := partitionSize(t, st, svc.outboxPartition()); o != 0 {
		t.Fatalf("%d entries still in the outbox after 24 h", o)
	}
	p, err := st.Query(context.Background(), store.Query{Partition: svc.outboxDeadPartition(), Limit: 10})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("dead letters %v, %v; want one", p.Items, err)
	}
	var e outboxEntry
	if err := json.Unmarshal(p.Items[0].Value, &e); err != nil {
		t.Fatal(err)
	}
	calls := rc.snapshot()
	if e.Attempt != len(calls) || e.Attempt != 4 || !strings.Contains(e.LastError, "500") || e.Event.ID != n.ID+":skipped" {
		t.Fatalf("dead entry %+v after %d requests; want 4 attempts, the last a 500", e, len(calls))
	}
	for _, c := range calls {
		if c.id != webhook.DeliveryID(n.ID+":skipped", "crm") || c.verifyErr != nil {
			t.Fatalf("attempt %+v", c)
		}
	}
}

// A 410 Gone is not retried: the entry goes to the dead letters at once.
func TestOutboxGoneIsDead(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) int {
		w.WriteHeader(http.StatusGone)
		return http.StatusGone
	})
	svc := hookService(t, st, clock, WebhookSubscription{ID: "crm", URL: rc.srv.URL, Events: []string{"*"}, Secrets: []string{rc.secret}})
	send(t, svc, "oB", "k")
	if _, failed, err := svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || failed != 1 {
		t.Fatalf("failed %d, %v", failed, err)
	}
	if o, d := partitionSize(t, st, svc.outboxPartition()), partitionSize(t, st, svc.outboxDeadPartition()); o != 0 || d != 1 {
		t.Fatalf("outbox %d, dead %d; want 0, 1", o, d)
	}
}

// Two runners delivering at once deliver each entry once.
func TestOutboxConcurrentRunners(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
		time.Sleep(10 * time.Millisecond)
		return answerOK(n, w, r)
	})
	sub := WebhookSubscription{ID: "crm", URL: rc.srv.URL, Events: []string{"*"}, Secrets: []string{rc.secret}}
	a := hookService(t, st, clock, sub)
	// b's clock is 1 ms ahead, so the runners' lease keys differ and only
	// the claim's condition keeps them apart.
	b := hookService(t, st, &fakeClock{t: clock.Now().Add(time.Millisecond)}, sub)
	const count = 20
	for i := range count {
		send(t, a, fmt.Sprintf("o%d", i), fmt.Sprintf("k%d", i))
	}
	var wg sync.WaitGroup
	total := make([]int, 2)
	for i, svc := range []*Service{a, b} {
		wg.Go(func() {
			d, _, err := svc.DeliverWebhooks(context.Background(), time.Time{})
			if err != nil {
				t.Error(err)
			}
			total[i] = d
		})
	}
	wg.Wait()
	if total[0]+total[1] != count {
		t.Fatalf("delivered %v, want %d in all", total, count)
	}
	seen := map[string]int{}
	for _, c := range rc.snapshot() {
		seen[c.id]++
	}
	if len(seen) != count {
		t.Fatalf("%d distinct webhook-ids, want %d", len(seen), count)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}
