package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// tokenServer plays WeChat's stable_token and subscribeMessage.send with
// real token checks: stable_token returns the current token while it is
// valid, send refuses any token not valid with 40001.
type tokenServer struct {
	*httptest.Server
	tb      testing.TB
	fetches atomic.Int64
	sends   atomic.Int64
	// beforeFetch, if set, runs at the start of the n-th stable_token call
	// (from 1), outside any lock.
	beforeFetch func(n int64)

	mu       sync.Mutex
	current  string
	valid    map[string]bool
	renew    bool           // the next fetch issues a new token
	issued   int            // tokens issued so far
	attempts map[string]int // send attempts per page
}

func newTokenServer(tb testing.TB) *tokenServer {
	tb.Helper()
	s := &tokenServer{tb: tb, valid: map[string]bool{}, attempts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", s.stableToken)
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", s.send)
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

func (s *tokenServer) stableToken(w http.ResponseWriter, r *http.Request) {
	n := s.fetches.Add(1)
	if s.beforeFetch != nil {
		s.beforeFetch(n)
	}
	var body struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh *bool  `json:"force_refresh"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.tb.Errorf("stable_token body: %v", err)
	}
	if body.GrantType != "client_credential" || body.AppID != testAppID || body.Secret != testSecret {
		s.tb.Errorf("stable_token got %+v, want client_credential for the test app", body)
	}
	if body.ForceRefresh == nil || *body.ForceRefresh {
		s.tb.Errorf("stable_token got force_refresh %v, want false", body.ForceRefresh)
	}
	s.mu.Lock()
	if s.current == "" || !s.valid[s.current] || s.renew {
		s.issued++
		s.current = "tok-" + strconv.Itoa(s.issued)
		s.valid[s.current] = true
		s.renew = false
	}
	tok := s.current
	s.mu.Unlock()
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, tok)
}

func (s *tokenServer) send(w http.ResponseWriter, r *http.Request) {
	s.sends.Add(1)
	var body struct {
		Page string `json:"page"` // a call id in the token tests
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.tb.Errorf("send body: %v", err)
	}
	s.mu.Lock()
	ok := s.valid[r.URL.Query().Get("access_token")]
	s.attempts[body.Page]++
	s.mu.Unlock()
	if !ok {
		io.WriteString(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: 1"}`)
		return
	}
	io.WriteString(w, `{"errcode":0,"errmsg":"ok","msgid":1}`)
}

// invalidate makes the current token invalid, as a force_refresh elsewhere
// would: the next fetch issues a new one.
func (s *tokenServer) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid[s.current] = false
}

// renewNext makes the next fetch issue a new token while the current one
// stays valid, as stable_token does in a token's last five minutes.
func (s *tokenServer) renewNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renew = true
}

// fakeClock is a settable clock for the token sources and the store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openStore opens a bbolt store in a temporary directory; now may be nil.
func openStore(tb testing.TB, now func() time.Time) *boltstore.Store {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// instance is one process of the fleet: its own token source (with its own
// memory) and client on the shared store.
type instance struct {
	tokens *wechat.StoreTokenSource
	client *wechat.Client
}

func newInstance(tb testing.TB, baseURL string, st store.Store, now func() time.Time, opts wechat.TokenOptions) instance {
	tb.Helper()
	cfg := wechat.Config{AppID: testAppID, Secret: testSecret, BaseURL: baseURL, Now: now}
	ts, err := wechat.NewStoreTokenSource(st, cfg, opts)
	if err != nil {
		tb.Fatalf("NewStoreTokenSource: %v", err)
	}
	cfg.Tokens = ts
	c, err := wechat.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return instance{tokens: ts, client: c}
}

// sendAll makes perInstance concurrent sends on every instance, each with
// a distinct page (round-instance-call), and fails the test for every
// error.
func sendAll(t *testing.T, round string, fleet []instance, perInstance int) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, in := range fleet {
		for g := range perInstance {
			wg.Go(func() {
				<-start
				req := sendRequest()
				req.Page = fmt.Sprintf("%s-%d-%d", round, i, g)
				if _, err := in.client.SendSubscribeMessage(t.Context(), req); err != nil {
					t.Errorf("instance %d call %d: %v", i, g, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
}

// TestStoreTokenSourceOneFetchForFleet is G5 from a cold start: four
// instances with separate memories on one store, 100 concurrent calls each,
// one stable_token call in all.
func TestStoreTokenSourceOneFetchForFleet(t *testing.T) {
	srv := newTokenServer(t)
	srv.beforeFetch = func(int64) { time.Sleep(50 * time.Millisecond) } // widen the race
	st := openStore(t, nil)
	fleet := make([]instance, 4)
	for i := range fleet {
		fleet[i] = newInstance(t, srv.URL, st, nil, wechat.TokenOptions{})
	}
	sendAll(t, "cold", fleet, 100)
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("got %d stable_token calls, want 1", got)
	}
	if got := srv.sends.Load(); got != 400 {
		t.Errorf("got %d sends, want 400", got)
	}
}

// TestStoreTokenSourceInvalidated: once the server invalidates the token,
// every failing call retries once and the fleet refreshes exactly once.
func TestStoreTokenSourceInvalidated(t *testing.T) {
	srv := newTokenServer(t)
	st := openStore(t, nil)
	fleet := make([]instance, 4)
	for i := range fleet {
		fleet[i] = newInstance(t, srv.URL, st, nil, wechat.TokenOptions{})
	}
	sendAll(t, "warm", fleet, 1)
	srv.invalidate()
	sendAll(t, "after", fleet, 50)

	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("got %d stable_token calls, want 2 (cold start, one refresh)", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	retried := 0
	for page, n := range srv.attempts {
		switch {
		case n > 2:
			t.Errorf("call %s made %d attempts, want at most 2", page, n)
		case n == 2:
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no call was retried, want the calls holding the invalidated token to retry")
	}
}

// TestStoreTokenSourceDeadLease: an instance that took the lease and hangs
// delays the others only until the lease expires.
func TestStoreTokenSourceDeadLease(t *testing.T) {
	srv := newTokenServer(t)
	fetching, release := make(chan struct{}), make(chan struct{})
	srv.beforeFetch = func(n int64) {
		if n == 1 {
			close(fetching)
			<-release // the first instance's fetch never completes in time
		}
	}
	t.Cleanup(func() { close(release) })
	st := openStore(t, nil)
	const leaseTTL = 500 * time.Millisecond
	opts := wechat.TokenOptions{LeaseTTL: leaseTTL, MaxWait: 5 * time.Second, PollInterval: 20 * time.Millisecond}

	dead := newInstance(t, srv.URL, st, nil, opts)
	ctx, cancel := context.WithCancel(t.Context())
	deadErr := make(chan error, 1)
	start := time.Now() // the lease is taken after this
	go func() {
		_, err := dead.tokens.Token(ctx)
		deadErr <- err
	}()
	<-fetching // the lease is held and its holder hangs
	cancel()
	if err := <-deadErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung instance: got %v, want its cancellation", err)
	}

	other := newInstance(t, srv.URL, st, nil, opts)
	tok, err := other.tokens.Token(t.Context())
	if err != nil || tok != "tok-1" {
		t.Fatalf("got (%q, %v), want tok-1 once the lease expired", tok, err)
	}
	if elapsed := time.Since(start); elapsed < leaseTTL-20*time.Millisecond {
		t.Errorf("got the token %v after the lease was taken, want it no sooner than the lease expiry (%v)", elapsed, leaseTTL)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("got %d stable_token calls, want 2", got)
	}
}

// TestStoreTokenSourceWaitIsBounded: without a valid token and with the
// lease held elsewhere, Token fails after MaxWait or with its context.
func TestStoreTokenSourceWaitIsBounded(t *testing.T) {
	srv := newTokenServer(t)
	st := openStore(t, nil)
	lease := store.Key{Partition: wechat.TokenPartition, Sort: testAppID + "#lease"}
	if _, err := st.Put(t.Context(), lease, []byte("other"), store.PutOptions{ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, srv.URL, st, nil, wechat.TokenOptions{MaxWait: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond})

	start := time.Now()
	_, err := in.tokens.Token(t.Context())
	if elapsed := time.Since(start); err == nil || elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("got %v after %v, want an error after about 300 ms", err, elapsed)
	}

	in = newInstance(t, srv.URL, st, nil, wechat.TokenOptions{MaxWait: 5 * time.Second, PollInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := in.tokens.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the caller's deadline", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("returned after %v, want soon after the 50 ms deadline", elapsed)
	}
	if got := srv.fetches.Load(); got != 0 {
		t.Errorf("got %d stable_token calls, want 0 while another instance holds the lease", got)
	}
}

// TestStoreTokenSourceRefreshAhead: near expiry one instance refreshes,
// the others keep the current token while it does and then pick the new
// one from the store.
func TestStoreTokenSourceRefreshAhead(t *testing.T) {
	srv := newTokenServer(t)
	clock := &fakeClock{now: time.Now()}
	st := openStore(t, clock.Now)
	a := newInstance(t, srv.URL, st, clock.Now, wechat.TokenOptions{})
	b := newInstance(t, srv.URL, st, clock.Now, wechat.TokenOptions{})
	token := func(in instance) string {
		t.Helper()
		tok, err := in.tokens.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if got := token(a) + "," + token(b); got != "tok-1,tok-1" {
		t.Fatalf("got %s, want tok-1 for both", got)
	}

	clock.Advance(110 * time.Minute)
	if got := token(a); got != "tok-1" {
		t.Fatalf("got %s with 10 minutes left, want tok-1 without refresh", got)
	}
	clock.Advance(7 * time.Minute) // 3 minutes left: due, still valid
	srv.renewNext()

	// Another instance holds the lease: b keeps its valid token.
	lease := store.Key{Partition: wechat.TokenPartition, Sort: testAppID + "#lease"}
	if _, err := st.Put(t.Context(), lease, []byte("other"), store.PutOptions{IfAbsent: true, ExpiresAt: clock.Now().Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if got := token(b); got != "tok-1" {
			t.Fatalf("got %s while another instance refreshes, want tok-1", got)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("got %d stable_token calls, want 1 while the lease is held elsewhere", got)
	}

	if err := st.Delete(t.Context(), lease, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	if got := token(b); got != "tok-2" {
		t.Errorf("got %s from the instance that refreshed, want tok-2", got)
	}
	if got := token(a); got != "tok-2" {
		t.Errorf("got %s from the other instance, want tok-2 from the store", got)
	}
	for range 100 {
		token(a)
		token(b)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("got %d stable_token calls, want 2 (one per token lifetime)", got)
	}
}

// countingStore counts the calls that reach the store.
type countingStore struct {
	store.Store
	calls atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, k store.Key) (store.Item, error) {
	s.calls.Add(1)
	return s.Store.Get(ctx, k)
}

func (s *countingStore) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	s.calls.Add(1)
	return s.Store.Put(ctx, k, v, o)
}

func TestStoreTokenSourceServesFromMemory(t *testing.T) {
	srv := newTokenServer(t)
	st := &countingStore{Store: openStore(t, nil)}
	in := newInstance(t, srv.URL, st, nil, wechat.TokenOptions{})
	if _, err := in.tokens.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := st.calls.Load()
	for range 1000 {
		if _, err := in.tokens.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.calls.Load() - before; got != 0 {
		t.Errorf("got %d store calls for 1000 cached tokens, want 0", got)
	}
}

// downStore fails every call, like an unreachable backend.
type downStore struct{ store.Store }

var errDown = errors.New("store unreachable")

func (downStore) Get(context.Context, store.Key) (store.Item, error) { return store.Item{}, errDown }
func (downStore) Put(context.Context, store.Key, []byte, store.PutOptions) (int64, error) {
	return 0, errDown
}
func (downStore) Delete(context.Context, store.Key, store.DeleteOptions) error { return errDown }

func TestStoreTokenSourceStoreDown(t *testing.T) {
	srv := newTokenServer(t)
	in := newInstance(t, srv.URL, downStore{}, nil, wechat.TokenOptions{})
	for range 10 {
		if tok, err := in.tokens.Token(t.Context()); err != nil || tok != "tok-1" {
			t.Fatalf("got (%q, %v), want tok-1 fetched without the store", tok, err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("got %d stable_token calls, want 1", got)
	}
}

// TestStoreTokenSourceRejectedTokenHandedBack: when stable_token returns
// the very token WeChat keeps rejecting, calls fail without a retry and
// without a fetch per call.
func TestStoreTokenSourceRejectedTokenHandedBack(t *testing.T) {
	var fetches, sends atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		io.WriteString(w, `{"access_token":"stuck","expires_in":7200}`)
	})
	mux.HandleFunc("/cgi-bin/message/subscribe/send", func(w http.ResponseWriter, r *http.Request) {
		sends.Add(1)
		io.WriteString(w, `{"errcode":40001,"errmsg":"invalid credential"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	in := newInstance(t, srv.URL, openStore(t, nil), nil, wechat.TokenOptions{})

	for i := range 3 {
		_, err := in.client.SendSubscribeMessage(t.Context(), sendRequest())
		if !wechat.IsTokenInvalid(err) {
			t.Fatalf("call %d: got %v, want the token error", i, err)
		}
	}
	if got := sends.Load(); got != 3 {
		t.Errorf("got %d sends, want 3 (no retry with the same token)", got)
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("got %d stable_token calls, want 2 (cold start, one refetch)", got)
	}
}

// TestStoreTokenSourceFetchError: a refused fetch fails the call without
// sending it, and calls right after fail without another fetch.
func TestStoreTokenSourceFetchError(t *testing.T) {
	var sends, fetches atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		io.WriteString(w, `{"errcode":40125,"errmsg":"invalid appsecret rid: 1"}`)
	})
	mux.HandleFunc("/cgi-bin/message/subscribe/send", func(w http.ResponseWriter, r *http.Request) { sends.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	in := newInstance(t, srv.URL, openStore(t, nil), nil, wechat.TokenOptions{})

	for i := range 5 {
		_, err := in.client.SendSubscribeMessage(t.Context(), sendRequest())
		if !wechat.IsMisconfigured(err) || wechat.IsAmbiguous(err) {
			t.Errorf("call %d: got %v, want a non-ambiguous misconfiguration", i, err)
		}
	}
	if got := fetches.Load(); got != 1 {
		t.Errorf("got %d stable_token calls, want 1 for calls within a second", got)
	}
	if sends.Load() != 0 {
		t.Errorf("got %d sends, want 0 without a token", sends.Load())
	}
}

func TestNewStoreTokenSource(t *testing.T) {
	st := openStore(t, nil)
	cfg := wechat.Config{AppID: testAppID, Secret: testSecret}
	tests := []struct {
		name string
		st   store.Store
		cfg  wechat.Config
		opts wechat.TokenOptions
		ok   bool
	}{
		{"OK", st, cfg, wechat.TokenOptions{}, true},
		{"OKTuned", st, cfg, wechat.TokenOptions{RefreshAhead: time.Minute, LeaseTTL: time.Second, MaxWait: 2 * time.Second, PollInterval: 10 * time.Millisecond}, true},
		{"ErrNilStore", nil, cfg, wechat.TokenOptions{}, false},
		{"ErrNoSecret", st, wechat.Config{AppID: testAppID}, wechat.TokenOptions{}, false},
		{"ErrNoAppID", st, wechat.Config{Secret: testSecret}, wechat.TokenOptions{}, false},
		{"ErrTokenFree", st, wechat.Config{AppID: testAppID, Secret: testSecret, TokenFree: true}, wechat.TokenOptions{}, false},
		{"ErrRefreshAheadTooEarly", st, cfg, wechat.TokenOptions{RefreshAhead: 5 * time.Minute}, false},
		{"ErrRefreshAheadTooLate", st, cfg, wechat.TokenOptions{RefreshAhead: 30 * time.Second}, false},
		{"ErrPollAboveWait", st, cfg, wechat.TokenOptions{MaxWait: time.Second, PollInterval: 2 * time.Second}, false},
		{"ErrNegative", st, cfg, wechat.TokenOptions{LeaseTTL: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wechat.NewStoreTokenSource(tt.st, tt.cfg, tt.opts)
			if (err == nil) != tt.ok {
				t.Errorf("got error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestStaticToken(t *testing.T) {
	if tok, err := wechat.StaticToken("t").Token(t.Context()); tok != "t" || err != nil {
		t.Errorf("got (%q, %v), want (t, nil)", tok, err)
	}
	if _, err := wechat.StaticToken("").Token(t.Context()); err == nil {
		t.Error("got no error for an empty static token, want one")
	}
	if err := wechat.StaticToken("t").Invalidate(t.Context(), "t"); err == nil {
		t.Error("got no error from Invalidate, want one: a static token has no replacement")
	}
}

// TestStoreTokenSourceIPNotWhitelisted: when stable_token answers 40164,
// Token fails with ErrIPNotWhitelisted and the refresh failure is logged
// as an error that says to whitelist the egress IP.
func TestStoreTokenSourceIPNotWhitelisted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"errcode":40164,"errmsg":"invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 1"}`)
	}))
	t.Cleanup(srv.Close)
	var logs lockedbuf.Buffer
	cfg := wechat.Config{AppID: testAppID, Secret: testSecret, BaseURL: srv.URL, Logger: debugLogger(&logs)}
	ts, err := wechat.NewStoreTokenSource(openStore(t, nil), cfg, wechat.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token(t.Context())
	if !errors.Is(err, wechat.ErrIPNotWhitelisted) {
		t.Fatalf("got %v, want ErrIPNotWhitelisted", err)
	}
	var line struct {
		Level, Msg, Fix string
		Errcode         int
	}
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		line.Level = ""
		if err := json.Unmarshal([]byte(l), &line); err == nil && line.Level == "ERROR" {
			break
		}
	}
	if line.Level != "ERROR" || line.Errcode != 40164 || !strings.Contains(line.Msg, "whitelist") ||
		!strings.Contains(line.Fix, "egress IP") || !strings.Contains(line.Fix, "mp.weixin.qq.com") {
		t.Errorf("got log line %+v, want an ERROR with errcode 40164 saying to whitelist the egress IP; logs:\n%s", line, logs.String())
	}
}
