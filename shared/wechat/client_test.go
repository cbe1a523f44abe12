package wechat_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

const (
	testAppID  = "wx0123456789abcdef"
	testSecret = "s3cr3t-app-secret-value"
	testToken  = "ACCESS_TOKEN_ABC"
)

// newClient returns a Client on baseURL with a static token; mods adjust
// the config first.
func newClient(tb testing.TB, baseURL string, mods ...func(*wechat.Config)) *wechat.Client {
	tb.Helper()
	cfg := wechat.Config{AppID: testAppID, Secret: testSecret, BaseURL: baseURL, Tokens: wechat.StaticToken(testToken)}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := wechat.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// serveJSON starts a server answering every request with body and hands
// each request (with its body read) to check, if not nil.
func serveJSON(tb testing.TB, body string, check func(r *http.Request, reqBody []byte)) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if check != nil {
			check(r, b)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// rawServer accepts TCP connections on localhost and hands each to handle;
// it returns the base URL.
func rawServer(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				handle(conn)
			})
		}
	})
	return "http://" + ln.Addr().String()
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     wechat.Config
		wantErr string
	}{
		{"OK", wechat.Config{AppID: testAppID, Tokens: wechat.StaticToken("t")}, ""},
		{"OKLoginOnly", wechat.Config{AppID: testAppID, Secret: testSecret}, ""},
		{"OKTokenFree", wechat.Config{TokenFree: true}, ""},
		{"OKBaseURLWithPrefix", wechat.Config{AppID: testAppID, BaseURL: "http://localhost:8080/wechat/"}, ""},
		{"ErrNoAppID", wechat.Config{Tokens: wechat.StaticToken("t")}, "AppID"},
		{"ErrTokenFreeWithTokens", wechat.Config{TokenFree: true, Tokens: wechat.StaticToken("t")}, "Tokens"},
		{"ErrBaseURLScheme", wechat.Config{AppID: testAppID, BaseURL: "ftp://example.com"}, "BaseURL"},
		{"ErrBaseURLNoHost", wechat.Config{AppID: testAppID, BaseURL: "http://"}, "BaseURL"},
		{"ErrBaseURLQuery", wechat.Config{AppID: testAppID, BaseURL: "http://example.com?a=b"}, "BaseURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := wechat.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("got (%v, %v), want a client", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestBaseURLPrefixAndToken(t *testing.T) {
	var gotPath, gotToken string
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok"}`, func(r *http.Request, _ []byte) {
		gotPath, gotToken = r.URL.Path, r.URL.Query().Get("access_token")
	})
	c := newClient(t, srv.URL+"/sandbox/")
	if err := c.DelTemplate(t.Context(), "tmpl"); err != nil {
		t.Fatal(err)
	}
	if gotPath != "/sandbox/wxaapi/newtmpl/deltemplate" {
		t.Errorf("got path %q, want /sandbox/wxaapi/newtmpl/deltemplate", gotPath)
	}
	if gotToken != testToken {
		t.Errorf("got access_token %q, want %q", gotToken, testToken)
	}
}

func TestTokenFree(t *testing.T) {
	var query string
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","msgid":1}`, func(r *http.Request, _ []byte) { query = r.URL.RawQuery })
	c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.Tokens, cfg.TokenFree = nil, true })
	if _, err := c.SendSubscribeMessage(t.Context(), sendRequest()); err != nil {
		t.Fatal(err)
	}
	if query != "" {
		t.Errorf("got query %q, want none (no access_token in token-free mode)", query)
	}
}

func TestNoTokenSource(t *testing.T) {
	srv := serveJSON(t, `{}`, func(*http.Request, []byte) { t.Error("request sent without a token source") })
	c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.Tokens = nil })
	_, err := c.GetTemplates(t.Context())
	if err == nil || wechat.IsAmbiguous(err) {
		t.Fatalf("got %v, want a non-ambiguous error", err)
	}
}

// failingTokens is a TokenSource whose Token fails with err.
type failingTokens struct{ err error }

func (f failingTokens) Token(context.Context) (string, error)    { return "", f.err }
func (f failingTokens) Invalidate(context.Context, string) error { return nil }

func TestTokenFailureIsNotAmbiguous(t *testing.T) {
	srv := serveJSON(t, `{}`, func(*http.Request, []byte) { t.Error("request sent without a token") })
	fetchErr := &wechat.TransportError{API: "auth.getStableAccessToken", Written: true, Err: io.ErrUnexpectedEOF}
	c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.Tokens = failingTokens{fetchErr} })
	_, err := c.SendSubscribeMessage(t.Context(), sendRequest())
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want it to wrap the token fetch error", err)
	}
	if wechat.IsAmbiguous(err) {
		t.Errorf("IsAmbiguous = true, want false: the send never left")
	}
	if !wechat.IsRetryable(err) {
		t.Errorf("IsRetryable = false, want true")
	}
}

func TestStaticTokenRejected(t *testing.T) {
	var calls int
	srv := serveJSON(t, `{"errcode":40001,"errmsg":"invalid credential rid: 1"}`, func(*http.Request, []byte) { calls++ })
	c := newClient(t, srv.URL)
	_, err := c.SendSubscribeMessage(t.Context(), sendRequest())
	if !wechat.IsTokenInvalid(err) {
		t.Fatalf("got %v, want a token error", err)
	}
	if calls != 1 {
		t.Errorf("got %d calls, want 1: a static token cannot be replaced, so no retry", calls)
	}
}

func TestResponseDecoding(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode int
	}{
		{"NoErrcode", `{"msgid":5}`, 0},
		{"ErrcodeZero", `{"errcode":0,"errmsg":"ok","msgid":5}`, 0},
		{"ErrcodeNull", `{"errcode":null,"msgid":5}`, 0},
		{"ErrcodeString", `{"errcode":"43101","errmsg":"user refuse to accept the msg rid: x"}`, 43101},
		{"ErrcodeNegative", `{"errcode":-1,"errmsg":"system error"}`, -1},
		{"ErrcodeWithBadFields", `{"errcode":40003,"errmsg":"invalid openid","msgid":{"x":1}}`, 40003},
		{"UnknownFields", `{"errcode":0,"errmsg":"ok","msgid":5,"extra":[1,2,{"a":null}]}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveJSON(t, tt.body, nil)
			_, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), sendRequest())
			if got := wechat.ErrCode(err); got != tt.wantCode {
				t.Fatalf("got errcode %d (err %v), want %d", got, err, tt.wantCode)
			}
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("got %v, want success", err)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		status                   int
		wantRetryable, wantAmbig bool
	}{
		{http.StatusNotFound, false, false},
		{http.StatusTooManyRequests, true, false},
		{http.StatusInternalServerError, true, false},
		{http.StatusBadGateway, true, false},
		{http.StatusGatewayTimeout, true, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"errcode":0}`, tt.status)
			}))
			t.Cleanup(srv.Close)
			_, err := newClient(t, srv.URL).SendSubscribeMessage(t.Context(), sendRequest())
			he, ok := errors.AsType[*wechat.HTTPError](err)
			if !ok || he.StatusCode != tt.status {
				t.Fatalf("got %v, want *HTTPError with status %d", err, tt.status)
			}
			if got := wechat.IsRetryable(err); got != tt.wantRetryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.wantRetryable)
			}
			if got := wechat.IsAmbiguous(err); got != tt.wantAmbig {
				t.Errorf("IsAmbiguous = %v, want %v", got, tt.wantAmbig)
			}
		})
	}
}

// TestTransportError checks that a failure before the whole request was
// written is reported as not delivered, and one after as ambiguous.
func TestTransportError(t *testing.T) {
	readRequest := func(conn net.Conn) *http.Request {
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return nil
		}
		return req
	}
	tests := []struct {
		name        string
		baseURL     func(t *testing.T) string
		ctx         func(t *testing.T) context.Context
		data        string // value of thing1; large to outgrow socket buffers
		wantWritten bool
		wantCause   error
	}{
		{
			name: "ConnectionRefused",
			baseURL: func(t *testing.T) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				ln.Close()
				return "http://" + ln.Addr().String()
			},
		},
		{
			name: "ClosedBeforeReadingBody",
			baseURL: func(t *testing.T) string {
				return rawServer(t, func(conn net.Conn) {
					if readRequest(conn) == nil {
						return
					}
					// Unread data makes the close a reset: the client's
					// remaining writes fail.
					conn.(*net.TCPConn).SetLinger(0)
				})
			},
			data: strings.Repeat("x", 32<<20),
		},
		{
			name: "ClosedAfterReadingBody",
			baseURL: func(t *testing.T) string {
				return rawServer(t, func(conn net.Conn) {
					if req := readRequest(conn); req != nil {
						io.Copy(io.Discard, req.Body)
					}
				})
			},
			wantWritten: true,
		},
		{
			name: "AnswerCutShort",
			baseURL: func(t *testing.T) string {
				return rawServer(t, func(conn net.Conn) {
					if req := readRequest(conn); req != nil {
						io.Copy(io.Discard, req.Body)
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"errcode\":0,")
					}
				})
			},
			wantWritten: true,
			wantCause:   io.ErrUnexpectedEOF,
		},
		{
			name: "DeadlineAfterWrite",
			baseURL: func(t *testing.T) string {
				return serveJSON(t, `{}`, func(r *http.Request, _ []byte) { <-r.Context().Done() }).URL
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantWritten: true,
			wantCause:   context.DeadlineExceeded,
		},
		{
			name: "CanceledBeforeWrite",
			baseURL: func(t *testing.T) string {
				return serveJSON(t, `{}`, func(*http.Request, []byte) { t.Error("request arrived") }).URL
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			wantCause: context.Canceled,
		},
		{
			name: "AnswerNotJSON",
			baseURL: func(t *testing.T) string {
				return serveJSON(t, `<html>gateway</html>`, nil).URL
			},
			wantWritten: true,
		},
		{
			name: "AnswerTooLarge",
			baseURL: func(t *testing.T) string {
				return serveJSON(t, `{"errmsg":"`+strings.Repeat("a", 1<<20)+`"}`, nil).URL
			},
			wantWritten: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			req := sendRequest()
			if tt.data != "" {
				req.Data = map[string]string{"thing1": tt.data}
			}
			c := newClient(t, tt.baseURL(t))
			_, err := c.SendSubscribeMessage(ctx, req)
			te, ok := errors.AsType[*wechat.TransportError](err)
			if !ok {
				t.Fatalf("got %v, want *TransportError", err)
			}
			if te.Written != tt.wantWritten {
				t.Errorf("got Written %v, want %v (err %v)", te.Written, tt.wantWritten, err)
			}
			if got := wechat.IsAmbiguous(err); got != tt.wantWritten {
				t.Errorf("IsAmbiguous = %v, want %v", got, tt.wantWritten)
			}
			if !wechat.IsRetryable(err) {
				t.Errorf("IsRetryable = false, want true")
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("got %v, want it to wrap %v", err, tt.wantCause)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q contains the access token", err)
			}
		})
	}
}

// TestSecretsNeverLogged runs calls that succeed and fail with a debug
// logger and checks that no token, secret or session key appears in the
// logs or the errors.
func TestSecretsNeverLogged(t *testing.T) {
	const sessionKey = "SESSION_KEY_tiHgs0=="
	mux := http.NewServeMux()
	mux.HandleFunc("/sns/jscode2session", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"openid":"o1","session_key":"`+sessionKey+`"}`)
	})
	mux.HandleFunc("/cgi-bin/message/subscribe/send", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"errcode":47003,"errmsg":"argument invalid! data.thing1.value invalid rid: 1"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var logs lockedbuf.Buffer
	c := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.Logger = debugLogger(&logs) })
	s, err := c.Code2Session(t.Context(), "code")
	if err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("session", "session", s)
	_, sendErr := c.SendSubscribeMessage(t.Context(), sendRequest())
	down := newClient(t, "http://127.0.0.1:1", func(cfg *wechat.Config) { cfg.Logger = debugLogger(&logs) })
	_, downErr := down.Code2Session(t.Context(), "code")

	all := logs.String() + sendErr.Error() + downErr.Error()
	for _, secret := range []string{testToken, testSecret, sessionKey} {
		if strings.Contains(all, secret) {
			t.Errorf("logs or errors contain %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(logs.String(), `"api":"subscribeMessage.send"`) || !strings.Contains(logs.String(), `"errcode":47003`) {
		t.Errorf("got logs\n%s\nwant a debug line with the api and errcode", logs.String())
	}
}
