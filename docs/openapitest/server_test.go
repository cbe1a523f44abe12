package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Credentials of the test server.
const (
	testAPIKey    = "wxn_test_0123456789abcdef"
	testPushToken = "openapitesttoken"
	testAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testAppID     = "wxopenapitest00001"
)

// Template ids: the two of the bundled example configuration and a
// long-term one added by the test.
const (
	registrationID = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE"
	leadID         = "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
	noticeID       = "Lt7q-ServiceNotice-4mVpX2cR9sK1wE8yB3nH6jD0"
)

// exchange is one request the live server answered.
type exchange struct {
	method, path string
	query        url.Values
	// pattern is the documented route pattern that matched, "" for none.
	pattern  string
	reqType  string // the request's Content-Type
	reqBody  []byte
	status   int
	header   http.Header
	respType string // the answer's Content-Type
	respBody []byte
}

// clientHeader names the client address a test request plays: the server
// counts failed API key attempts per address.
const clientHeader = "X-Openapitest-Client"

// recorder keeps every exchange of the server it wraps, whoever the client
// (the test, or the fake WeChat pushing to /wechat/push). Each request
// comes from its own client address unless it names one in clientHeader,
// so that the many failures the test provokes on purpose do not lock the
// test out (the server limits failed API key attempts per address).
type recorder struct {
	next   http.Handler
	routes *http.ServeMux // the documented patterns, to name the route of a request

	mu        sync.Mutex
	requests  int
	exchanges []exchange
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := rec.routes.Handler(r)
	rec.mu.Lock()
	rec.requests++
	n := rec.requests
	rec.mu.Unlock()
	r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&255, n>>8&255, n&255)
	if c := r.Header.Get(clientHeader); c != "" {
		r.RemoteAddr = net.JoinHostPort(c, "40000")
		r.Header.Del(clientHeader)
	}
	var reqBody []byte
	if r.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(r.Body); err != nil {
			http.Error(w, "recorder: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rr := httptest.NewRecorder()
	rec.next.ServeHTTP(rr, r)
	maps.Copy(w.Header(), rr.Header())
	w.WriteHeader(rr.Code)
	_, _ = w.Write(rr.Body.Bytes())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.exchanges = append(rec.exchanges, exchange{method: r.Method, path: r.URL.Path, query: r.URL.Query(), pattern: pattern,
		reqType: r.Header.Get("Content-Type"), reqBody: reqBody,
		status: rr.Code, header: rr.Header().Clone(), respType: rr.Header().Get("Content-Type"), respBody: rr.Body.Bytes()})
}

// all returns the exchanges so far.
func (rec *recorder) all() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.exchanges...)
}

// Apps of the multi-app server: the scenario plays app salesApp (the
// sandbox's fake WeChat), customerApp is another mini program whose API
// key and session tokens must not act for salesApp.
const (
	salesApp       = "sales"
	customerApp    = "customer"
	customerAppID  = "wxopenapitest00002"
	customerAPIKey = "wxn_customer_only_0123456789"
)

// devServer is the `wxnotify dev` wiring in sandbox mode: every route
// group, /healthz and the sandbox routes on one mux, the fake WeChat
// pushing to /wechat/push, a bbolt store in a temporary directory.
type devServer struct {
	url  string
	fake *wechattest.Server
	svc  *notify.Service
	rec  *recorder
	http *http.Client
	// app, when not "", is the {app} the requests of do go to: /v1/x is
	// sent as /v1/apps/{app}/x and /wechat/push as /wechat/push/{app}.
	app string
	// other is the fake WeChat of customerApp (multi-app server only).
	other *wechattest.Server
}

// devConfig is the configuration of the test server: the bundled example
// and a long-term template added by the test.
func devConfig(tb testing.TB) config.Config {
	tb.Helper()
	vars := map[string]string{"WXN_WECHAT_APPID": testAppID, "WXN_SESSION_SECRET": strings.Repeat("s", 32),
		"WXN_API_KEYS": testAPIKey, "WXN_WECHAT_PUSH_TOKEN": testPushToken, "WXN_WECHAT_PUSH_AES_KEY": testAESKey}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] }, true)
	if err != nil {
		tb.Fatal(err)
	}
	// An outcome webhook of every event, to a receiver that takes them.
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tb.Cleanup(hooks.Close)
	cfg.Webhooks = []config.Webhook{{ID: "crm", URL: hooks.URL, Events: []string{"*"}, Secret: webhook.NewSecret()}}
	cfg.File.Templates = append(cfg.File.Templates, config.TemplateSpec{Alias: "service_notice", ID: noticeID,
		Title: "服务提醒", Kind: string(notify.LongTerm), Policy: "reject",
		Keywords: []config.KeywordSpec{{Name: "thing1"}, {Name: "time2"}}})
	return cfg
}

// newDevServer starts the single-app server (the app "default", on the
// short routes); patterns are the route patterns the recorder names
// requests by.
func newDevServer(tb testing.TB, patterns []string) *devServer {
	tb.Helper()
	cfg := devConfig(tb)
	fake := wechattest.NewServer(wechattest.Options{AppID: cfg.AppID, Templates: sandbox.Templates(cfg.File)})
	tb.Cleanup(fake.Close)
	cfg.Secret, cfg.APIBase = fake.Secret(), fake.URL()
	s := startDevServer(tb, cfg, fake, patterns)
	s.setPush(tb, "/wechat/push")
	return s
}

// newMultiDevServer starts a server of two apps, salesApp (the default
// app, AppID testAppID, served by the sandbox) and customerApp (its own
// fake WeChat and an API key of its own), the one WeChat base URL routing
// by app; the requests of do go to the routes of salesApp.
func newMultiDevServer(tb testing.TB, patterns []string) *devServer {
	tb.Helper()
	cfg := devConfig(tb)
	file := config.File{Templates: cfg.File.Templates, Rules: cfg.File.Rules}
	fake := wechattest.NewServer(wechattest.Options{AppID: testAppID, Templates: sandbox.Templates(file)})
	other := wechattest.NewServer(wechattest.Options{AppID: customerAppID, Templates: sandbox.Templates(file)})
	multi, err := wechattest.NewMultiServer(fake, other)
	if err != nil {
		fake.Close()
		other.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(multi.Close)
	cfg.APIBase = multi.URL()
	cfg.Apps = []config.App{
		{ID: salesApp, AppID: testAppID, Secret: fake.Secret(), SecretVariable: config.AppVariable(salesApp, "WXN_WECHAT_SECRET"),
			PushToken: testPushToken, PushAESKey: testAESKey, PushEnabled: true, File: file, Webhooks: cfg.Webhooks},
		{ID: customerApp, AppID: customerAppID, Secret: other.Secret(), SecretVariable: config.AppVariable(customerApp, "WXN_WECHAT_SECRET"),
			APIKeys: []string{customerAPIKey}, File: file},
	}
	cfg.DefaultApp = salesApp
	cfg.Secret = fake.Secret()
	s := startDevServer(tb, cfg, fake, patterns)
	s.app, s.other = salesApp, other
	s.setPush(tb, "/wechat/push/"+salesApp)
	return s
}

// startDevServer builds the server of cfg on a bbolt store, with the
// sandbox of fake; svc is the default app's service.
func startDevServer(tb testing.TB, cfg config.Config, fake *wechattest.Server, patterns []string) *devServer {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "wxnotify.db"), boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "openapitest", WebhooksAllowPrivate: true})
	if err != nil {
		_ = st.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = parts.Close() })
	mux := parts.API.NewMux(httpapi.AllGroups...)
	for _, rt := range sandbox.New(fake).Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	rec := &recorder{next: mux, routes: http.NewServeMux()}
	for _, p := range patterns {
		rec.routes.Handle(p, http.NotFoundHandler())
	}
	ts := httptest.NewServer(rec)
	tb.Cleanup(ts.Close)
	return &devServer{url: ts.URL, fake: fake, svc: parts.Service, rec: rec, http: &http.Client{Timeout: 20 * time.Second}}
}

// setPush makes the fake WeChat push to path, in compatible mode: the
// pushes carry the plaintext event and its encryption, so that both are
// checked against the document.
func (s *devServer) setPush(tb testing.TB, path string) {
	tb.Helper()
	if err := s.fake.SetPush(wechattest.PushConfig{URL: s.url + path, Token: testPushToken,
		EncodingAESKey: testAESKey, JSON: true, Mode: wechattest.Compatible}); err != nil {
		tb.Fatal(err)
	}
}

// route is the path a request of do goes to: path itself, or with s.app
// its app route.
func (s *devServer) route(path string) string {
	switch {
	case s.app == "":
		return path
	case strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1/apps/"):
		return "/v1/apps/" + s.app + path[len("/v1"):]
	case path == "/wechat/push" || strings.HasPrefix(path, "/wechat/push?"):
		return "/wechat/push/" + s.app + path[len("/wechat/push"):]
	}
	return path
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // nil when the body is not a JSON object
}

// get returns the value at a path of object keys, nil if there is none.
func (a answer) get(path ...string) any {
	var cur any = a.body
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// str returns the string at a path of object keys, "" if there is none.
func (a answer) str(path ...string) string {
	s, _ := a.get(path...).(string)
	return s
}

// do sends a request; body is marshalled to JSON unless it is a string or
// nil. auth is the bearer credential, "" for none.
func (s *devServer) do(tb testing.TB, method, path, auth string, body any) answer {
	tb.Helper()
	return s.doAs(tb, "", method, path, auth, body)
}

// doAs is do from the client address client ("" for a fresh one).
func (s *devServer) doAs(tb testing.TB, client, method, path, auth string, body any) answer {
	tb.Helper()
	return s.send(tb, client, method, s.route(path), auth, body)
}

// send is doAs to path as it is (no app route).
func (s *devServer) send(tb testing.TB, client, method, path, auth string, body any) answer {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if client != "" {
		req.Header.Set(clientHeader, client)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		_ = json.Unmarshal(raw, &a.body)
	}
	return a
}

// want sends a request and fails the test unless the status is status.
func (s *devServer) want(tb testing.TB, status int, method, path, auth string, body any) answer {
	tb.Helper()
	a := s.do(tb, method, path, auth, body)
	if a.status != status {
		tb.Fatalf("%s %s: got status %d, want %d: %s", method, path, a.status, status, a.raw)
	}
	return a
}

// wantAt is want to path as it is (no app route), with the error code the
// answer must have ("" for any).
func (s *devServer) wantAt(tb testing.TB, status int, code, method, path, auth string, body any) answer {
	tb.Helper()
	a := s.send(tb, "", method, path, auth, body)
	if a.status != status || a.str("error", "code") != code {
		tb.Fatalf("%s %s: got status %d code %q, want %d %q: %s", method, path, a.status, a.str("error", "code"), status, code, a.raw)
	}
	return a
}
