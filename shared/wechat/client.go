package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	// DefaultBaseURL is WeChat's API host.
	DefaultBaseURL = "https://api.weixin.qq.com"
	// DefaultTokenFreeBaseURL is the host inside WeChat Cloud Hosting, where
	// the open interface service adds the access token to plain-HTTP calls.
	DefaultTokenFreeBaseURL = "http://api.weixin.qq.com" // #nosec G101 -- a public endpoint, no credential

	// maxResponseSize bounds every answer read from WeChat.
	maxResponseSize = 1 << 20
)

// Config configures a Client. Only AppID is required, and not even that in
// token-free mode.
type Config struct {
	// AppID and Secret are the mini program's credentials. Secret is needed
	// by Code2Session and by NewStoreTokenSource, not by calls made with a
	// token from Tokens.
	AppID  string
	Secret string

	// BaseURL replaces WeChat's host, for a sandbox or a test server. It may
	// carry a path prefix. Default DefaultBaseURL, or DefaultTokenFreeBaseURL
	// with TokenFree.
	BaseURL string

	// HTTPClient makes every call. Default: a client with a 10 s overall
	// timeout and 5 s dial and TLS handshake timeouts, keeping MaxConns
	// idle connections per host. A replacement should set timeouts too.
	HTTPClient *http.Client

	// MaxConns is how many calls the program makes at once at most, such
	// as a batch's workers plus the HTTP requests served beside it. The
	// default HTTP client keeps that many idle connections per host, so
	// that a connection a worker hands back is kept for its next call
	// instead of being closed and dialled again (a TLS handshake each
	// time). Default DefaultMaxConns; ignored with HTTPClient.
	MaxConns int

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Logger receives one debug line per call (API name, HTTP status,
	// errcode, latency) and warnings. It never receives secrets, tokens or
	// session keys. Default: discard.
	Logger *slog.Logger

	// TokenFree makes calls without any access_token, for WeChat Cloud
	// Hosting's open interface service, which adds it. Tokens must then be
	// nil.
	TokenFree bool

	// Tokens supplies access tokens: a *StoreTokenSource in production,
	// StaticToken in tests. Every call except Code2Session needs one unless
	// TokenFree is set; without it they fail.
	Tokens TokenSource

	// RefreshSecret, when set, returns the current AppSecret, e.g. re-read
	// from a secret store. It is the hook for rotation: when WeChat refuses
	// Secret (IsSecretRefused: errcode 40001 or 40125 from stable_token or
	// code2Session), the Client or StoreTokenSource calls it, and if it
	// returns another secret, makes the refused call once more with it and
	// keeps it for later calls. It is called on every refusal, so it must
	// bound its own cost (package secrets reads the store at most once a
	// minute) and not block for long.
	RefreshSecret func(ctx context.Context) (string, error)

	// OnCall, when set, is told of every HTTP call to WeChat once it is
	// answered or has failed: the API's name as the Logger names it
	// ("subscribeMessage.send", "auth.getStableAccessToken",
	// "auth.code2Session", ...), WeChat's errcode (0 when none), the error
	// (nil on success) and the latency. A call retried with a new token is
	// two calls. The Client and a StoreTokenSource made with the same Config
	// both report. It is for metrics: it must be fast and must not block.
	OnCall func(api string, errcode int, err error, d time.Duration)

	// StartCall, when set, is called as each HTTP call to WeChat starts,
	// with the ctx of the method called and the API's name (as OnCall
	// names it); the func it returns is called once the call is answered
	// or has failed, with WeChat's errcode and the error. It is for
	// tracing (a client span per call): it must be fast and must not block.
	StartCall func(ctx context.Context, api string) (end func(errcode int, err error))
}

// Client calls WeChat's server APIs for one mini program. It is safe for
// concurrent use.
//
// Every method returns *Error for a non-zero errcode, *HTTPError for a
// non-2xx status, *TransportError when no usable answer came, and an error
// wrapping ErrInvalidArgument for arguments refused before any call; use
// the Is* classifiers rather than comparing codes. A call whose access
// token WeChat rejects (IsTokenInvalid) is retried once with a replacement
// from the TokenSource.
type Client struct {
	caller
	appID     string
	secret    *appSecret
	tokenFree bool
	tokens    TokenSource
}

// New returns a Client for cfg, or an error naming the first invalid field.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.TokenFree && cfg.Tokens != nil:
		return nil, errors.New("wechat: config: Tokens must be nil with TokenFree")
	case !cfg.TokenFree && cfg.AppID == "":
		return nil, errors.New("wechat: config: AppID is required unless TokenFree")
	}
	cl, err := newCaller(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{caller: cl, appID: cfg.AppID, secret: newAppSecret(cfg, cl.log), tokenFree: cfg.TokenFree, tokens: cfg.Tokens}, nil
}

// caller performs the HTTP exchanges shared by Client and StoreTokenSource.
type caller struct {
	base string // scheme://host[/prefix], no trailing slash
	hc   *http.Client
	now  func() time.Time
	log  *slog.Logger
	// onCall is Config.OnCall (nil: none).
	onCall func(api string, errcode int, err error, d time.Duration)
	// startCall is Config.StartCall (nil: none).
	startCall func(ctx context.Context, api string) func(errcode int, err error)
}

func newCaller(cfg Config) (caller, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
		if cfg.TokenFree {
			base = DefaultTokenFreeBaseURL
		}
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return caller{}, fmt.Errorf("wechat: config: BaseURL %q is not an http(s) URL without query", base)
	}
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	c := caller{base: base, hc: cfg.HTTPClient, now: cfg.Now, log: cfg.Logger, onCall: cfg.OnCall, startCall: cfg.StartCall}
	if c.hc == nil {
		c.hc = defaultHTTPClient(cfg.MaxConns)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// DefaultMaxConns is Config.MaxConns's default: a batch's default workers.
const DefaultMaxConns = 32

func defaultHTTPClient(maxConns int) *http.Client {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 5 * time.Second,
			// Two hosts at most: the API's and, in token-free mode, its own.
			MaxIdleConns:          2 * maxConns,
			MaxIdleConnsPerHost:   maxConns,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// request is one API call, ready to be sent any number of times.
type request struct {
	api    string     // official API name, for errors and logs
	method string     // GET or POST
	path   string     // below the base URL
	query  url.Values // without access_token
	body   []byte     // JSON for POST, nil for GET
}

func getRequest(api, path string, query url.Values) *request {
	return &request{api: api, method: http.MethodGet, path: path, query: query}
}

// postRequest encodes body as JSON, leaving non-ASCII and HTML characters
// as they are (WeChat counts characters in what it decodes either way).
func postRequest(api, path string, body any) (*request, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("wechat %s: encoding request: %w", api, err)
	}
	return &request{api: api, method: http.MethodPost, path: path, body: buf.Bytes()}, nil
}

// response is implemented by every answer type through an embedded
// apiStatus.
type response interface{ status() *apiStatus }

// apiStatus is the errcode and errmsg every answer may carry. A missing
// errcode means success.
type apiStatus struct {
	ErrCode flexInt `json:"errcode"`
	ErrMsg  string  `json:"errmsg"`
}

func (s *apiStatus) status() *apiStatus { return s }

// call makes r with an access token (none in token-free mode) and decodes
// the answer into a new T. When WeChat rejects the token it invalidates it
// and retries exactly once with the replacement.
func call[T any, P interface {
	*T
	response
}](ctx context.Context, c *Client, r *request) (P, error) {
	if c.tokenFree {
		out := P(new(T))
		return out, c.roundTrip(ctx, r, "", out)
	}
	if c.tokens == nil {
		return nil, &tokenError{api: r.api, err: errors.New("no token source configured")}
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, &tokenError{api: r.api, err: err}
	}
	out := P(new(T))
	err = c.roundTrip(ctx, r, tok, out)
	if !IsTokenInvalid(err) {
		return out, err
	}
	if ierr := c.tokens.Invalidate(ctx, tok); ierr != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token rejected and not replaced",
			slog.String("api", r.api), slog.Int("errcode", ErrCode(err)), slog.String("error", ierr.Error()))
		return nil, err
	}
	if tok, err = c.tokens.Token(ctx); err != nil {
		return nil, &tokenError{api: r.api, err: err}
	}
	out = P(new(T))
	return out, c.roundTrip(ctx, r, tok, out)
}

// roundTrip sends r once and decodes the answer into out, returning *Error
// for a non-zero errcode. It logs one debug line and tells StartCall and
// OnCall.
func (c *caller) roundTrip(ctx context.Context, r *request, token string, out response) error {
	var end func(errcode int, err error)
	if c.startCall != nil {
		end = c.startCall(ctx, r.api)
	}
	start := c.now()
	status, err := c.exchange(ctx, r, token, out)
	latency := c.now().Sub(start)
	if end != nil {
		end(ErrCode(err), err)
	}
	if c.onCall != nil {
		c.onCall(r.api, ErrCode(err), err, latency)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{
			slog.String("api", r.api),
			slog.Int("status", status),
			slog.Int("errcode", ErrCode(err)),
			slog.Duration("latency", latency),
		}
		if err != nil && ErrCode(err) == 0 {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "wechat call", attrs...)
	}
	return err
}

func (c *caller) exchange(ctx context.Context, r *request, token string, out response) (status int, err error) {
	query := r.query.Encode()
	if token != "" {
		if query != "" {
			query += "&"
		}
		query += "access_token=" + url.QueryEscape(token)
	}
	target := c.base + r.path
	if query != "" {
		target += "?" + query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}

	// written records whether the whole request reached the connection at
	// least once; the transport may call WroteRequest again on a retry.
	var written atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			written.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.method, target, body)
	if err != nil {
		// The URL may hold a token or secret: never include it.
		return 0, fmt.Errorf("wechat %s: building request for %s%s failed", r.api, c.base, r.path)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, &TransportError{API: r.api, Written: written.Load(), Err: withoutURL(err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, &HTTPError{API: r.api, StatusCode: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return resp.StatusCode, &TransportError{API: r.api, Written: true, Err: withoutURL(err)}
	}
	if len(data) > maxResponseSize {
		return resp.StatusCode, &TransportError{API: r.api, Written: true,
			Err: fmt.Errorf("answer larger than %d bytes", maxResponseSize)}
	}
	if err := decodeResponse(data, out); err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			e.API = r.api
			return resp.StatusCode, e
		}
		return resp.StatusCode, &TransportError{API: r.api, Written: true, Err: err}
	}
	return resp.StatusCode, nil
}

// decodeResponse decodes data into out and returns an *Error (without API)
// for a non-zero errcode. An answer whose other fields do not decode still
// yields its errcode when that is readable.
func decodeResponse(data []byte, out response) error {
	if err := json.Unmarshal(data, out); err != nil {
		var st apiStatus
		if json.Unmarshal(data, &st) == nil && st.ErrCode != 0 {
			return &Error{Code: int(st.ErrCode), Msg: st.ErrMsg}
		}
		return fmt.Errorf("malformed answer: %w", err)
	}
	if st := out.status(); st.ErrCode != 0 {
		return &Error{Code: int(st.ErrCode), Msg: st.ErrMsg}
	}
	return nil
}

// withoutURL drops the *url.Error layer of an http.Client error: its URL
// holds the access token or the app secret.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// flexInt decodes a JSON integer, a string holding one, or null (as 0).
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %.40s", b)
	}
	*n = flexInt(v)
	return nil
}

// flexString decodes a JSON string, a number (kept as written) or null (as
// ""): WeChat sends some ids either way.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	case len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9'):
		*s = flexString(b)
		return nil
	}
	return fmt.Errorf("not a string or number: %.40s", b)
}
