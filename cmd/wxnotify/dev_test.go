package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Template ids of the bundled example configuration.
const (
	registrationID = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE"
	leadID         = "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
)

// env is one `wxnotify dev` server on a random port with the sandbox WeChat,
// driven over real HTTP as a mini program, a backend and WeChat would.
type env struct {
	t     testing.TB
	srv   *devServer
	url   string
	key   string
	fake  *wechattest.Server
	http  *http.Client
	vars  map[string]string
	logs  *lockedbuf.Buffer
	token string // the push token, for hand-made pushes
	aes   string
	clock *testClock
	// allowFailedPushes: the test makes WeChat's pushes fail on purpose.
	allowFailedPushes bool
	conns             *countingListener
}

// countingListener counts the connections the server accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// testClock is real time plus an offset the test can advance.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const (
	testPushToken = "wxnotifytesttoken"
	testAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

func newEnv(t testing.TB, vars ...string) *env { return newEnvWith(t, envOptions{}, vars...) }

// envOptions change how newEnvWith builds the server.
type envOptions struct {
	// st replaces the bbolt store.
	st store.Store
	// noTick: the batch function's tick runs only when the test calls
	// e.tick, so that the test knows every store write that happens.
	noTick bool
	// push is the --push flag ("" for the default).
	push string
	// logOut, when set, gets the server's logs instead of e.logs (which
	// then stays nil).
	logOut io.Writer
	// retention replaces the sandbox's retention.
	retention *wechattest.Retention
	// example is the --example flag ("" for the default).
	example string
}

// newEnvPush is newEnv with `wxnotify dev --push push` ("" for the default).
func newEnvPush(t testing.TB, push string, vars ...string) *env {
	t.Helper()
	return newEnvWith(t, envOptions{push: push}, vars...)
}

func newEnvWith(t testing.TB, o envOptions, vars ...string) *env {
	t.Helper()
	e := &env{t: t, vars: map[string]string{
		"WXN_WECHAT_PUSH_TOKEN":   testPushToken,
		"WXN_WECHAT_PUSH_AES_KEY": testAESKey,
	}, http: &http.Client{Timeout: 20 * time.Second}, clock: &testClock{}}
	for i := 0; i+1 < len(vars); i += 2 {
		e.vars[vars[i]] = vars[i+1]
	}
	logOut := o.logOut
	if logOut == nil {
		e.logs = &lockedbuf.Buffer{}
		logOut = e.logs
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := startDev(ctx, devOptions{addr: "127.0.0.1:0", dataDir: t.TempDir(),
		getenv: func(k string) string { return e.vars[k] }, logOut: logOut, now: e.clock.Now, st: o.st, push: o.push,
		retention: o.retention, example: o.example})
	if err != nil {
		cancel()
		t.Fatalf("startDev: %v", err)
	}
	e.conns = &countingListener{Listener: srv.listener}
	srv.listener = e.conns
	done := make(chan struct{})
	var hs *http.Server
	if o.noTick {
		srv.tickOnce = boot.Tick(srv.parts)
		hs = &http.Server{Handler: srv.handler, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer close(done)
			if err := hs.Serve(srv.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}()
	} else {
		go func() {
			defer close(done)
			if err := srv.serve(ctx); err != nil {
				t.Errorf("serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		// Every push the sandbox WeChat made was answered "success": a push
		// the server failed would be a lost consent or sent event.
		if srv.fake != nil && !e.allowFailedPushes {
			srv.fake.WaitPushes()
			for _, p := range srv.fake.Pushes() {
				if !p.Delivered {
					t.Errorf("push %s to /wechat/push not delivered: %+v", p.Event.Event, p.Attempts)
				}
			}
			// The sandbox keeps the last records only; its counts cover every push.
			if ended, delivered := srv.fake.PushCounts(); delivered != ended {
				t.Errorf("pushes to /wechat/push: %d of %d not delivered", ended-delivered, ended)
			}
		}
		// A connection the client dialed for the concurrent requests but
		// never used is new to the server, and Shutdown waits 5 s (its
		// whole timeout) before it counts as idle: close them first.
		e.http.CloseIdleConnections()
		cancel()
		if hs != nil {
			_ = hs.Close()
		}
		<-done
		srv.close()
	})
	e.srv, e.url, e.key, e.fake = srv, srv.url, srv.apiKey, srv.fake
	e.token, e.aes = e.vars["WXN_WECHAT_PUSH_TOKEN"], e.vars["WXN_WECHAT_PUSH_AES_KEY"]
	return e
}

// tick runs the batch function's tick once (an env built with noTick).
func (e *env) tick() {
	e.t.Helper()
	if err := e.srv.tickOnce(context.Background(), e.clock.Now().Add(30*time.Second)); err != nil {
		e.t.Logf("tick: %v", err)
	}
}

// response is a decoded answer.
type response struct {
	status  int
	body    map[string]any
	raw     string
	headers http.Header
}

func (r response) header(name string) string { return r.headers.Get(name) }

func (r response) str(path ...string) string {
	v := r.get(path...)
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprint(v)
}

func (r response) get(path ...string) any {
	var cur any = r.body
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (e *env) do(method, path, auth string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: string(raw), headers: resp.Header}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (e *env) want(r response, status int) response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("got status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// login plays the mini program: a sandbox wx.login code exchanged for a session.
func (e *env) login(user string) (token, openID string) {
	e.t.Helper()
	code := e.want(e.do("POST", "/sandbox/login", "", map[string]string{"user": user}), 200).str("code")
	r := e.want(e.do("POST", "/v1/session", "", map[string]string{"code": code}), 200)
	return r.str("token"), r.str("openid")
}

// bind plays the customer's login backend binding userID to user.
func (e *env) bind(userID, user string) response {
	e.t.Helper()
	code := e.want(e.do("POST", "/sandbox/login", "", map[string]string{"user": user}), 200).str("code")
	return e.want(e.do("POST", "/v1/bindings", e.key, map[string]string{"userId": userID, "code": code}), 200)
}

// popup plays the user answering a subscribe popup: WeChat's truth changes
// and WeChat pushes the popup event; the returned object is what
// wx.requestSubscribeMessage gives the mini program.
func (e *env) popup(openID string, choices map[string]string) map[string]any {
	e.t.Helper()
	r := e.want(e.do("POST", "/sandbox/subscribe", "", map[string]any{"openid": openID, "choices": choices}), 200)
	return r.body
}

func (e *env) consent(token, tmplID string) map[string]any {
	e.t.Helper()
	r := e.want(e.do("GET", "/v1/consents", token, nil), 200)
	list, _ := r.get("consents").([]any)
	for _, c := range list {
		m := c.(map[string]any)
		if m["templateId"] == tmplID {
			return m
		}
	}
	e.t.Fatalf("no consent for %s in %s", tmplID, r.raw)
	return nil
}

func (e *env) credits(token, tmplID string) int {
	e.t.Helper()
	return int(e.consent(token, tmplID)["credits"].(float64))
}

func leadData(name string) map[string]string {
	return map[string]string{"thing1": name, "character_string2": "L-1001", "time3": "2026-11-21 09:30", "thing4": "官网"}
}

func (e *env) send(body map[string]any) response {
	e.t.Helper()
	return e.do("POST", "/v1/notifications", e.key, body)
}

func sendLead(to map[string]string, key string) map[string]any {
	b := map[string]any{"to": to, "template": "lead_assigned", "data": leadData("Acme Ltd"), "page": "pages/clue/clue?id=L-1001"}
	if key != "" {
		b["idempotencyKey"] = key
	}
	return b
}

func (e *env) sendCalls() int { return e.fake.Calls("send") }

// TestSeedFlow is the seeds' flow: log in, subscribe, report, notify.
func TestSeedFlow(t *testing.T) {
	e := newEnv(t)
	token, openID := e.login("alice")
	if !strings.HasPrefix(openID, "o") || token == "" {
		t.Fatalf("login: got openid %q token %q", openID, token)
	}
	if c := e.consent(token, leadID); c["prompt"] != true || c["credits"].(float64) != 0 {
		t.Fatalf("before subscribing: got %v, want prompt true, 0 credits", c)
	}
	result := e.popup(openID, map[string]string{leadID: "accept"})
	if result["errMsg"] != "requestSubscribeMessage:ok" || result[leadID] != "accept" {
		t.Fatalf("popup result: got %v", result)
	}
	// The mini program reports what it got; WeChat's popup event was pushed
	// too: one popup counts once.
	r := e.want(e.do("POST", "/v1/consents", token, map[string]any{"result": result}), 200)
	if got := e.credits(token, leadID); got != 1 {
		t.Fatalf("credits after one accepted popup (report + push event): got %d, want 1 (%s)", got, r.raw)
	}
	s := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if s.str("status") != "sent" || s.str("wechat", "msgid") == "" || !strings.HasPrefix(s.str("id"), "ntf_") {
		t.Fatalf("send: got %s, want sent with a msgid", s.raw)
	}
	msgs := e.fake.Messages(openID)
	if len(msgs) != 1 || msgs[0].Data["thing1"] != "Acme Ltd" || msgs[0].Page != "pages/clue/clue?id=L-1001" {
		t.Fatalf("inbox: got %+v, want the one message", msgs)
	}
	inbox := e.want(e.do("GET", "/sandbox/messages?openid="+openID, "", nil), 200)
	if list, _ := inbox.get("messages").([]any); len(list) != 1 {
		t.Fatalf("/sandbox/messages: got %s, want one message", inbox.raw)
	}
	calls := e.sendCalls()
	s2 := e.want(e.send(sendLead(map[string]string{"openid": openID}, "")), 200)
	if s2.str("status") != "skipped" || s2.str("reason") != "no_consent" {
		t.Fatalf("second send: got %s, want skipped/no_consent", s2.raw)
	}
	if e.sendCalls() != calls {
		t.Fatalf("second send called WeChat: %d calls, want %d", e.sendCalls(), calls)
	}
	got := e.want(e.do("GET", "/v1/notifications/"+s.str("id"), e.key, nil), 200)
	if got.str("status") != "sent" || got.str("wechat", "msgid") != s.str("wechat", "msgid") {
		t.Fatalf("GET notification: got %s, want the sent record", got.raw)
	}
}
