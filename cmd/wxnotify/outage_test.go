package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// outageStore serves from live until down is set, then from dead: a Redis
// that is no longer there (the server killed), so every call fails the way
// the client fails then (connection refused, timeouts).
type outageStore struct {
	live, dead store.Store
	down       atomic.Bool
}

func (o *outageStore) pick() store.Store {
	if o.down.Load() {
		return o.dead
	}
	return o.live
}

func (o *outageStore) Get(ctx context.Context, k store.Key) (store.Item, error) {
	return o.pick().Get(ctx, k)
}
func (o *outageStore) Put(ctx context.Context, k store.Key, v []byte, opts store.PutOptions) (int64, error) {
	return o.pick().Put(ctx, k, v, opts)
}
func (o *outageStore) Delete(ctx context.Context, k store.Key, opts store.DeleteOptions) error {
	return o.pick().Delete(ctx, k, opts)
}
func (o *outageStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	return o.pick().Query(ctx, q)
}
func (o *outageStore) Add(ctx context.Context, k store.Key, d, lo, hi int64) (int64, error) {
	return o.pick().Add(ctx, k, d, lo, hi)
}
func (o *outageStore) AddOnce(ctx context.Context, k store.Key, d, lo, hi int64, op store.CounterOp) (int64, error) {
	return o.pick().AddOnce(ctx, k, d, lo, hi, op)
}
func (o *outageStore) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	return o.pick().Undo(ctx, k, id)
}
func (o *outageStore) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	return o.pick().Write(ctx, ops)
}
func (o *outageStore) Close() error { return o.live.Close() }

// A store outage is not an internal error: every route that needs the
// store answers 503 store_unavailable with Retry-After (the contract tells
// clients to retry a 503), a send names the notification it was accepted
// as, and once the store is back the retry with the same key completes it
// with one message and one credit.
func TestStoreOutageAnswers503(t *testing.T) {
	port, err := storeenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead, err := redisstore.Open(fmt.Sprintf("redis://127.0.0.1:%d/0?dial_timeout=200ms&read_timeout=200ms", port), "wxn:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Close() })
	st := &outageStore{live: storeenv.RedisStore(t), dead: dead}
	e := newEnvWith(t, envOptions{st: st, noTick: true})
	token, openID := e.login("olga")
	e.grant(token, openID, leadID, 1)
	e.bind("sales-olga", "olga")
	newCode := func() string {
		return e.want(e.do("POST", "/sandbox/login", "", map[string]string{"user": "olga"}), 200).str("code")
	}

	st.down.Store(true)
	for _, tc := range []struct {
		name, method, path, auth string
		body                     any
	}{
		{"Session", "POST", "/v1/session", "", map[string]string{"code": newCode()}},
		{"Bind", "POST", "/v1/bindings", e.key, map[string]string{"userId": "olga-1", "code": newCode()}},
		{"GetConsents", "GET", "/v1/consents", token, nil},
		{"Report", "POST", "/v1/consents", token, map[string]any{"result": map[string]string{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}}},
		{"Send", "POST", "/v1/notifications", e.key, sendLead(map[string]string{"openid": openID}, "outage-1")},
		{"GetNotification", "GET", "/v1/notifications/ntf_00000000000000000000000000", e.key, nil},
		{"Batch", "POST", "/v1/batches", e.key, map[string]any{"template": "lead_assigned", "data": leadData("x"), "audience": "consenting"}},
		{"Events", "POST", "/v1/events", e.key, map[string]any{"id": "evt-outage", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
			"data": map[string]any{"lead": map[string]any{"id": "L-9", "name": "Acme"}, "assignee": map[string]string{"userId": "sales-olga"}}}},
		{"Unbind", "DELETE", "/v1/bindings/sales-olga", e.key, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.auth, tc.body)
			if r.status != 503 || r.str("error", "code") != "store_unavailable" {
				t.Fatalf("got %d %s, want 503 store_unavailable", r.status, r.raw)
			}
			if r.header("Retry-After") == "" {
				t.Fatalf("no Retry-After on the 503: %s", r.raw)
			}
		})
	}
	r := e.send(sendLead(map[string]string{"openid": openID}, "outage-1"))
	id := r.str("error", "notificationId")
	if r.status != 503 || len(id) != len("ntf_")+26 {
		t.Fatalf("send during the outage: got %d %s, want 503 with the notification id", r.status, r.raw)
	}
	st.down.Store(false)
	ok := e.want(e.send(sendLead(map[string]string{"openid": openID}, "outage-1")), 200)
	if ok.str("id") != id || ok.str("status") != "sent" {
		t.Fatalf("retry after the outage: got %s, want notification %s sent", ok.raw, id)
	}
	if got := len(e.fake.Messages(openID)); got != 1 {
		t.Fatalf("messages: got %d, want 1", got)
	}
	if ledger, truth := e.credits(token, leadID), e.fake.Credits(openID, leadID); ledger != truth || ledger != 0 {
		t.Fatalf("ledger %d, WeChat %d: want both 0", ledger, truth)
	}
	// WeChat unavailable: the 503 names the notification too.
	e.grant(token, openID, leadID, 1)
	if err := e.fake.Inject(wechattest.Fault{API: wechattest.APISend, Errcode: -1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	busy := e.want(e.send(sendLead(map[string]string{"openid": openID}, "outage-2")), 503)
	if busy.str("error", "code") != "wechat_unavailable" || busy.str("error", "notificationId") == "" || busy.header("Retry-After") == "" {
		t.Fatalf("WeChat busy: got %s, want wechat_unavailable with the notification id and Retry-After", busy.raw)
	}
}

// A stalled store (Redis stopped for seconds) times out every call of a
// push, after applying its writes. WeChat's redeliveries - which stop well
// before any claim lease of seconds would end - must finish the event: it
// counts once, and a consent report retried the same way counts once too.
func TestPushFinishedAfterStall(t *testing.T) {
	faulty := storetest.NewFaulty(storeenv.Open(t, "bolt"), 7)
	e := newEnvWith(t, envOptions{st: faulty, noTick: true})
	token, openID := e.login("stella")
	e.withoutPush(func() {
		for range 2 {
			if _, err := e.fake.Subscribe(openID, map[string]string{leadID: "accept"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	q, body := e.signedPush(safeMode, popupEvent(openID, e.clock.Now().Unix(), accept(leadID)), true, e.clock.Now())
	// The stall: every call fails, every write after it was applied.
	faulty.SetRate(1, 1, 0)
	if r := e.do("POST", "/wechat/push?"+q.Encode(), "", string(body)); r.status == 200 {
		t.Fatalf("push during the stall: got %d %s, want an error (WeChat redelivers)", r.status, r.raw)
	}
	report := map[string]any{"result": map[string]string{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}}
	key := map[string]string{"Idempotency-Key": "stall-report"}
	if r := e.doHeader("POST", "/v1/consents", token, report, key); r.status < 500 {
		t.Fatalf("report during the stall: got %d %s, want a 5xx (the kit resends)", r.status, r.raw)
	}
	faulty.SetRate(0, 0, 0)
	// WeChat's first redelivery comes about five seconds later: the claim
	// of the stalled attempt, if any, must not stand in its way.
	e.clock.advance(5 * time.Second)
	for i := range 2 {
		if r := e.do("POST", "/wechat/push?"+q.Encode(), "", string(body)); r.status != 200 || r.raw != "success" {
			t.Fatalf("redelivery %d after the stall: got %d %s, want success", i+1, r.status, r.raw)
		}
	}
	if r := e.doHeader("POST", "/v1/consents", token, report, key); r.status != 200 {
		t.Fatalf("report resent after the stall: got %d %s", r.status, r.raw)
	}
	// The second popup's event and report, to pair with each other.
	e.deliver(popupEvent(openID, e.clock.Now().Unix()+1, accept(leadID)))
	e.want(e.doHeader("POST", "/v1/consents", token, report, map[string]string{"Idempotency-Key": "stall-report-2"}), 200)
	e.clock.advance(time.Hour)
	e.tick()
	if ledger, truth := e.credits(token, leadID), e.fake.Credits(openID, leadID); ledger != truth || truth != 2 {
		t.Fatalf("ledger %d, WeChat %d: want both 2", ledger, truth)
	}
	if faulty.Faults() == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}
