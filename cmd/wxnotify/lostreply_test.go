package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

func TestMain(m *testing.M) { storeenv.Main(m) }

// A write whose reply is lost - the store applied it, the caller got a
// timeout, as with Redis stalled after the command ran - must be safe to
// repeat on every path. Each scenario below is run once to count its store
// writes, then once per write with that write's reply lost, on every
// backend; the clients behave as documented (a backend retries a 5xx with
// the same idempotency key, the kit resends a consent report with its
// Idempotency-Key, WeChat redelivers an unanswered push up to three times,
// the schedule ticks again). After each run the ledger equals WeChat's own
// count, nobody got a message twice, and every notification has a final
// state.
func TestLostRepliesKeepLedgerTrue(t *testing.T) {
	if testing.Short() {
		t.Skip("lost-reply matrix skipped in -short mode")
	}
	for _, backend := range storeenv.Backends {
		t.Run(backend, func(t *testing.T) {
			lost := storetest.NewLostReplies(storeenv.Open(t, backend))
			e := newEnvWith(t, envOptions{st: lost, noTick: true})
			runs := 0
			for _, sc := range lostReplyScenarios {
				t.Run(sc.name, func(t *testing.T) {
					e := e.with(t)
					st := sc.setup(e, sc.name+"-clean")
					lost.Reset(0, nil)
					st = sc.run(e, st)
					writes := lost.Writes()
					sc.check(e, st)
					if writes == 0 {
						t.Fatal("the scenario wrote nothing: the test proves nothing")
					}
					for k := 1; k <= writes; k++ {
						st := sc.setup(e, fmt.Sprintf("%s-%d", sc.name, k))
						lost.Reset(k, nil)
						st = sc.run(e, st)
						if len(lost.Lost()) == 1 {
							runs++
						}
						lost.Reset(0, nil)
						sc.check(e, st)
					}
				})
			}
			t.Logf("%s: %d runs with a lost reply, every one ending with the ledger equal to WeChat's count", backend, runs)
			if runs < 40 {
				t.Fatalf("only %d runs lost a reply: the matrix proves too little", runs)
			}
		})
	}
}

// lostReplyState is what a scenario set up and ran: its users and what it
// expects of them.
type lostReplyState struct {
	users    []lostReplyUser
	ntfs     []string // notification ids to find final
	batchID  string
	messages int // messages each credited user must have received (0 or 1)
}

type lostReplyUser struct {
	token, openID string
	credited      bool // given a credit in setup
}

type lostReplyScenario struct {
	name  string
	setup func(e *env, name string) lostReplyState
	run   func(e *env, st lostReplyState) lostReplyState
	check func(e *env, st lostReplyState)
}

var lostReplyScenarios = []lostReplyScenario{
	{name: "Send", setup: oneCreditedUser, run: sendToFirst(nil), check: checkLedger},
	{name: "SendAfterBusy", setup: oneCreditedUser,
		run: sendToFirst(&wechattest.Fault{API: wechattest.APISend, Errcode: -1, Count: 1}), check: checkLedger},
	{name: "SendNeverArrived", setup: oneCreditedUser,
		run: sendToFirst(&wechattest.Fault{API: wechattest.APISend, Drop: wechattest.DropBeforeRead, Count: 1}), check: checkLedger},
	{name: "SendAnswerLost", setup: oneCreditedUser,
		run: sendToFirst(&wechattest.Fault{API: wechattest.APISend, Drop: wechattest.DropAfterRead, Count: 1}), check: checkLedger},
	{name: "ReportThenEvent", setup: popupWithoutPush, run: reportPopup, check: pushPopupThenCheck},
	{name: "EventThenReport", setup: popupWithoutPush, run: pushPopup, check: reportPopupThenCheck},
	{name: "ChangeEvent", setup: turnedOffWithoutPush, run: pushChange, check: checkLedger},
	{name: "Batch", setup: threeCreditedUsers, run: runBatch, check: checkLedger},
}

// with returns a copy of e that reports to t.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// retry sends a request as a client that retries a 5xx (the documented
// contract), up to 10 times.
func (e *env) retry(method, path, auth string, body any, header map[string]string) response {
	e.t.Helper()
	var r response
	for range 10 {
		if r = e.doHeader(method, path, auth, body, header); r.status < 500 {
			return r
		}
		e.t.Logf("%s %s: %d %s", method, path, r.status, r.raw)
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// doHeader is do with extra request headers.
func (e *env) doHeader(method, path, auth string, body any, header map[string]string) response {
	e.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+auth)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: string(b), headers: resp.Header}
	_ = json.Unmarshal(b, &out.body)
	return out
}

// withoutPush runs f with WeChat's message push switched off, so that the
// test delivers the events itself.
func (e *env) withoutPush(f func()) {
	e.t.Helper()
	if err := e.fake.SetPush(wechattest.PushConfig{}); err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		if err := e.fake.SetPush(wechattest.PushConfig{URL: e.url + "/wechat/push", Token: e.token,
			EncodingAESKey: e.aes, JSON: true, Mode: wechattest.Safe}); err != nil {
			e.t.Fatal(err)
		}
	}()
	f()
}

// deliver pushes ev as WeChat does: safe mode, redelivered with the same
// parameters until it is answered success, three attempts at most.
func (e *env) deliver(ev wechat.PushEvent) {
	e.t.Helper()
	q, body := e.signedPush(safeMode, ev, true, e.clock.Now())
	var r response
	for range 3 {
		if r = e.do("POST", "/wechat/push?"+q.Encode(), "", string(body)); r.status == 200 && r.raw == "success" {
			return
		}
	}
	e.t.Errorf("push %s: not answered success in three attempts: %d %s", ev.Event, r.status, r.raw)
}

func oneCreditedUser(e *env, name string) lostReplyState {
	token, openID := e.login(name)
	e.grant(token, openID, leadID, 1)
	return lostReplyState{users: []lostReplyUser{{token, openID, true}}, messages: 1}
}

func threeCreditedUsers(e *env, name string) lostReplyState {
	var st lostReplyState
	for i := range 4 {
		token, openID := e.login(fmt.Sprintf("%s-u%d", name, i))
		if i < 3 {
			e.grant(token, openID, leadID, 1)
		}
		st.users = append(st.users, lostReplyUser{token, openID, i < 3})
	}
	st.messages = 1
	return st
}

func popupWithoutPush(e *env, name string) lostReplyState {
	token, openID := e.login(name)
	e.withoutPush(func() {
		if _, err := e.fake.Subscribe(openID, map[string]string{leadID: "accept"}); err != nil {
			e.t.Fatal(err)
		}
	})
	return lostReplyState{users: []lostReplyUser{{token, openID, false}}}
}

func turnedOffWithoutPush(e *env, name string) lostReplyState {
	st := oneCreditedUser(e, name)
	e.withoutPush(func() {
		if err := e.fake.Unsubscribe(st.users[0].openID, leadID); err != nil {
			e.t.Fatal(err)
		}
	})
	st.messages = 0
	return st
}

func sendToFirst(fault *wechattest.Fault) func(e *env, st lostReplyState) lostReplyState {
	return func(e *env, st lostReplyState) lostReplyState {
		if fault != nil {
			if err := e.fake.Inject(*fault); err != nil {
				e.t.Fatal(err)
			}
		}
		u := st.users[0]
		body := sendLead(map[string]string{"openid": u.openID}, "lost-"+u.openID)
		r := e.retry("POST", "/v1/notifications", e.key, body, nil)
		if r.status != 200 {
			e.t.Fatalf("send after retries: got %d %s, want 200", r.status, r.raw)
		}
		e.fake.ClearFaults()
		st.ntfs = append(st.ntfs, r.str("id"))
		if fault != nil && fault.Drop == wechattest.DropBeforeRead {
			st.messages = 0 // WeChat never had it
		}
		return st
	}
}

func reportPopup(e *env, st lostReplyState) lostReplyState {
	u := st.users[0]
	result := map[string]string{"errMsg": "requestSubscribeMessage:ok", leadID: "accept"}
	if r := e.retry("POST", "/v1/consents", u.token, map[string]any{"result": result},
		map[string]string{"Idempotency-Key": "popup-" + u.openID}); r.status != 200 {
		e.t.Fatalf("report after retries: got %d %s, want 200", r.status, r.raw)
	}
	return st
}

func pushPopup(e *env, st lostReplyState) lostReplyState {
	e.deliver(popupEvent(st.users[0].openID, e.clock.Now().Unix(), accept(leadID)))
	return st
}

func pushChange(e *env, st lostReplyState) lostReplyState {
	e.deliver(wechat.PushEvent{ToUserName: "gh_sandbox", FromUserName: st.users[0].openID, CreateTime: e.clock.Now().Unix(),
		MsgType: "event", Event: wechat.EventSubscribeChange, Items: []wechat.PushItem{{TemplateID: leadID, SubscribeStatus: "reject"}}})
	return st
}

func pushPopupThenCheck(e *env, st lostReplyState) {
	pushPopup(e, st)
	checkLedger(e, st)
}

func reportPopupThenCheck(e *env, st lostReplyState) {
	reportPopup(e, st)
	checkLedger(e, st)
}

func runBatch(e *env, st lostReplyState) lostReplyState {
	recipients := make([]map[string]any, len(st.users))
	for i, u := range st.users {
		recipients[i] = map[string]any{"openid": u.openID}
	}
	key := "lost-batch-" + st.users[0].openID
	r := e.retry("POST", "/v1/batches", e.key, map[string]any{"template": "lead_assigned", "data": leadData("Digest"),
		"recipients": recipients, "idempotencyKey": key}, nil)
	if r.status != 202 {
		e.t.Fatalf("batch after retries: got %d %s, want 202", r.status, r.raw)
	}
	st.batchID = r.str("id")
	for range 20 {
		e.tick()
		if b := e.do("GET", "/v1/batches/"+st.batchID, e.key, nil); b.str("status") == "done" {
			return st
		}
	}
	e.t.Fatalf("batch %s not done after 20 ticks", st.batchID)
	return st
}

// checkLedger settles what the sweeps settle (an hour on, one tick), then
// compares every user's ledger with WeChat's count and inbox.
func checkLedger(e *env, st lostReplyState) {
	e.t.Helper()
	e.fake.WaitPushes()
	e.clock.advance(time.Hour)
	e.tick()
	for _, u := range st.users {
		ledger, truth := e.credits(u.token, leadID), e.fake.Credits(u.openID, leadID)
		if ledger != truth {
			e.t.Errorf("user %s: ledger %d credits, WeChat %d", u.openID, ledger, truth)
		}
		want := 0
		if u.credited {
			want = st.messages
		}
		if got := len(e.fake.Messages(u.openID)); got != want {
			e.t.Errorf("user %s: %d messages delivered, want %d", u.openID, got, want)
		}
	}
	for _, id := range st.ntfs {
		r := e.do("GET", "/v1/notifications/"+id, e.key, nil)
		if s := r.str("status"); r.status != 200 || s == "pending" || (s == "failed" && strings.Contains(r.raw, `"retryable":true`)) {
			e.t.Errorf("notification %s: got %d %s, want a final state", id, r.status, r.raw)
		}
	}
	if st.batchID != "" {
		b := e.do("GET", "/v1/batches/"+st.batchID, e.key, nil)
		if b.str("status") != "done" || b.str("sent") != "3" || b.str("skipped") != "1" {
			e.t.Errorf("batch: got %s, want done with 3 sent and 1 skipped", b.raw)
		}
	}
}
