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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
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

// devServer is the `wxnotify dev` wiring in sandbox mode: every route
// group, /healthz and the sandbox routes on one mux, the fake WeChat
// pushing to /wechat/push, a bbolt store in a temporary directory.
//
// The deployment has two apps: sales (the default, on the sandbox) and
// customer (a key of its own, testCustomerKey; never reaches WeChat). With
// a prefix (/v1/apps/sales), every request of the scenario goes to the app
// route of the path it names, and the fake pushes to /wechat/push/sales.
type devServer struct {
	url    string
	prefix string
	fake   *wechattest.Server
	svc    *notify.Service
	rec    *recorder
	http   *http.Client
}

// testCustomerKey is an API key of the app customer only.
const testCustomerKey = "wxn_test_customer_only_0123456789"

// route is the path the server is asked for path: the app route of
// s.prefix, or path itself.
func (s *devServer) route(path string) string {
	if s.prefix == "" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok {
		return s.prefix + "/" + rest
	}
	if rest, ok := strings.CutPrefix(path, "/wechat/push"); ok && (rest == "" || rest[0] == '?') {
		return "/wechat/push/" + strings.TrimPrefix(s.prefix, "/v1/apps/") + rest
	}
	return path
}

// newDevServer starts the server; patterns are the route patterns the
// recorder names requests by.
func newDevServer(tb testing.TB, patterns []string, prefix string) *devServer {
	tb.Helper()
	example, err := config.ParseFile(config.Example)
	if err != nil {
		tb.Fatal(err)
	}
	sales := config.AppSpec{ID: "sales", AppID: testAppID, Rules: example.Rules,
		Templates: append(example.Templates, config.TemplateSpec{Alias: "service_notice", ID: noticeID,
			Title: "服务提醒", Kind: string(notify.LongTerm), Policy: "reject",
			Keywords: []config.KeywordSpec{{Name: "thing1"}, {Name: "time2"}}})}
	file := config.File{Apps: []config.AppSpec{sales, {ID: "customer", AppID: "wx00000000c0570e01", Templates: example.Templates}}}
	raw, err := yaml.Marshal(file)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	fake := wechattest.NewServer(wechattest.Options{AppID: testAppID, Templates: sandbox.Templates(config.File{Templates: sales.Templates})})
	tb.Cleanup(fake.Close)
	// sales is the default app: the plain variables are its credentials.
	vars := map[string]string{"WXN_CONFIG": path, "WXN_SESSION_SECRET": strings.Repeat("s", 32),
		"WXN_API_KEYS": testAPIKey, "WXN_WECHAT_PUSH_TOKEN": testPushToken, "WXN_WECHAT_PUSH_AES_KEY": testAESKey,
		"WXN_WECHAT_SECRET": fake.Secret(), "WXN_WECHAT_API_BASE": fake.URL(),
		"WXN_APP_CUSTOMER_WECHAT_SECRET": "customer-secret", "WXN_APP_CUSTOMER_API_KEYS": testCustomerKey}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] }, false)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "wxnotify.db"), boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "openapitest"})
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
	// Compatible mode: the pushes carry the plaintext event and its
	// encryption, so that both are checked against the document.
	srv := &devServer{url: ts.URL, prefix: prefix, fake: fake, svc: parts.Service, rec: rec, http: &http.Client{Timeout: 20 * time.Second}}
	if err := fake.SetPush(wechattest.PushConfig{URL: ts.URL + srv.route("/wechat/push"), Token: testPushToken,
		EncodingAESKey: testAESKey, JSON: true, Mode: wechattest.Compatible}); err != nil {
		tb.Fatal(err)
	}
	return srv
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
	req, err := http.NewRequest(method, s.url+s.route(path), rd)
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
