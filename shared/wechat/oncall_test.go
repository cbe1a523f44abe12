package wechat_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// call is one report to Config.OnCall.
type call struct {
	api     string
	errcode int
	err     error
	d       time.Duration
}

// callLog records OnCall reports; safe for concurrent use.
type callLog struct {
	mu    sync.Mutex
	calls []call
}

func (l *callLog) onCall(api string, errcode int, err error, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call{api, errcode, err, d})
}

func (l *callLog) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls...)
}

// steppingClock advances by step on every reading, so that each call has
// a known latency.
type steppingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func TestOnCallReportsEachCall(t *testing.T) {
	const step = 7 * time.Millisecond
	t.Run("Sent", func(t *testing.T) {
		var log callLog
		clock := &steppingClock{t: time.Unix(1_700_000_000, 0), step: step}
		srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","msgid":42}`, nil)
		c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.OnCall, cfg.Now = log.onCall, clock.Now })
		if _, err := c.SendSubscribeMessage(t.Context(), sendRequest()); err != nil {
			t.Fatal(err)
		}
		got := log.snapshot()
		if len(got) != 1 {
			t.Fatalf("got %d reports, want 1: %+v", len(got), got)
		}
		if g := got[0]; g.api != "subscribeMessage.send" || g.errcode != 0 || g.err != nil || g.d != step {
			t.Errorf("got %+v, want subscribeMessage.send, errcode 0, no error, latency %s", g, step)
		}
	})
	t.Run("Errcode", func(t *testing.T) {
		var log callLog
		srv := serveJSON(t, `{"errcode":43101,"errmsg":"user refuse to accept the msg"}`, nil)
		c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.OnCall = log.onCall })
		_, err := c.SendSubscribeMessage(t.Context(), sendRequest())
		if wechat.ErrCode(err) != 43101 {
			t.Fatalf("got %v, want errcode 43101", err)
		}
		got := log.snapshot()
		if len(got) != 1 {
			t.Fatalf("got %d reports, want 1: %+v", len(got), got)
		}
		if g := got[0]; g.api != "subscribeMessage.send" || g.errcode != 43101 || !errors.Is(g.err, err) {
			t.Errorf("got %+v, want subscribeMessage.send, errcode 43101 and the error returned", g)
		}
	})
	t.Run("TransportFailure", func(t *testing.T) {
		var log callLog
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close() // nothing listens: connection refused
		c := newClient(t, "http://"+ln.Addr().String(), func(cfg *wechat.Config) { cfg.OnCall = log.onCall })
		_, err = c.SendSubscribeMessage(t.Context(), sendRequest())
		if _, ok := errors.AsType[*wechat.TransportError](err); !ok {
			t.Fatalf("got %v, want a *TransportError", err)
		}
		got := log.snapshot()
		if len(got) != 1 {
			t.Fatalf("got %d reports, want 1: %+v", len(got), got)
		}
		if g := got[0]; g.api != "subscribeMessage.send" || g.errcode != 0 || !errors.Is(g.err, err) {
			t.Errorf("got %+v, want subscribeMessage.send, errcode 0 and the transport error", g)
		}
	})
	t.Run("TokenFetch", func(t *testing.T) {
		var log callLog
		srv := newTokenServer(t)
		cfg := wechat.Config{AppID: testAppID, Secret: testSecret, BaseURL: srv.URL, OnCall: log.onCall}
		ts, err := wechat.NewStoreTokenSource(openStore(t, nil), cfg, wechat.TokenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tokens = ts
		c, err := wechat.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendSubscribeMessage(t.Context(), sendRequest()); err != nil {
			t.Fatal(err)
		}
		got := log.snapshot()
		if len(got) != 2 {
			t.Fatalf("got %d reports, want 2 (token fetch, send): %+v", len(got), got)
		}
		if g := got[0]; g.api != "auth.getStableAccessToken" || g.errcode != 0 || g.err != nil {
			t.Errorf("first report %+v, want auth.getStableAccessToken without error", g)
		}
		if g := got[1]; g.api != "subscribeMessage.send" || g.errcode != 0 || g.err != nil {
			t.Errorf("second report %+v, want subscribeMessage.send without error", g)
		}
		if n := srv.fetches.Load(); n != 1 {
			t.Errorf("server saw %d stable_token calls, want 1", n)
		}
	})
}

// ctxMark tags the ctx a test passes to a method.
type ctxMark struct{}

func TestStartCallSeesTheCallsContext(t *testing.T) {
	type started struct {
		api     string
		mark    any
		ended   bool
		errcode int
		err     error
	}
	var (
		mu    sync.Mutex
		calls []*started
	)
	startCall := func(ctx context.Context, api string) func(int, error) {
		s := &started{api: api, mark: ctx.Value(ctxMark{})}
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
		return func(errcode int, err error) {
			mu.Lock()
			defer mu.Unlock()
			if s.ended {
				t.Errorf("%s ended twice", api)
			}
			s.ended, s.errcode, s.err = true, errcode, err
		}
	}
	srv := serveJSON(t, `{"errcode":43101,"errmsg":"user refuse to accept the msg"}`, nil)
	c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.StartCall = startCall })
	ctx := context.WithValue(t.Context(), ctxMark{}, "send-1")
	_, err := c.SendSubscribeMessage(ctx, sendRequest())
	if wechat.ErrCode(err) != 43101 {
		t.Fatalf("got %v, want errcode 43101", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("%d calls started, want 1", len(calls))
	}
	if g := calls[0]; g.api != "subscribeMessage.send" || g.mark != "send-1" || !g.ended || g.errcode != 43101 || !errors.Is(g.err, err) {
		t.Errorf("got %+v, want subscribeMessage.send in the caller's ctx, ended with errcode 43101", g)
	}

	// A token fetch made for a call is started in the same ctx.
	calls = nil
	mu.Unlock()
	tsrv := newTokenServer(t)
	cfg := wechat.Config{AppID: testAppID, Secret: testSecret, BaseURL: tsrv.URL, StartCall: startCall}
	ts, err := wechat.NewStoreTokenSource(openStore(t, nil), cfg, wechat.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = ts
	c2, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.SendSubscribeMessage(ctx, sendRequest()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(calls) != 2 || calls[0].api != "auth.getStableAccessToken" || calls[0].mark != "send-1" || !calls[0].ended ||
		calls[1].api != "subscribeMessage.send" || calls[1].mark != "send-1" || calls[1].err != nil {
		for _, c := range calls {
			t.Errorf("call %+v", *c)
		}
		t.Fatal("want the token fetch and the send, both in the caller's ctx")
	}
}
