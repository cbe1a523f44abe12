package wechattest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// t0 is where the fake's clock starts in tests.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// Template ids of wechattest.DefaultTemplates.
const (
	leadTmpl   = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE" // one-time: thing4, date2, character_string9
	digestTmpl = "Bq2ZhXK0m4Yt8c9XkQfJ7uV3sLwN5aPdRbEeGiHjTk0" // one-time: thing1, number2
	statusTmpl = "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME" // long-term: enum_string1, time2, thing3
)

// newServer starts a fake on a stopped clock (t0) and closes it at the end of the test.
func newServer(tb testing.TB, opts wechattest.Options) *wechattest.Server {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	srv := wechattest.NewServer(opts)
	tb.Cleanup(srv.Close)
	return srv
}

// answer is a decoded WeChat answer; numbers are json.Number.
type answer map[string]any

// errcode is the answer's errcode, 0 when absent.
func (a answer) errcode(tb testing.TB) int {
	tb.Helper()
	v, ok := a["errcode"]
	if !ok {
		return 0
	}
	n, err := v.(json.Number).Int64()
	if err != nil {
		tb.Fatalf("errcode %v: %v", v, err)
	}
	return int(n)
}

func (a answer) str(key string) string {
	s, _ := a[key].(string)
	return s
}

func (a answer) int(tb testing.TB, key string) int64 {
	tb.Helper()
	n, ok := a[key].(json.Number)
	if !ok {
		tb.Fatalf("%s = %v (%T), want a JSON number", key, a[key], a[key])
	}
	v, err := n.Int64()
	if err != nil {
		tb.Fatalf("%s = %v: %v", key, n, err)
	}
	return v
}

// call makes a raw call to the fake: body is nil, a string sent as is, or a value sent as JSON.
func call(tb testing.TB, srv *wechattest.Server, method, path string, q url.Values, body any) answer {
	tb.Helper()
	return callAt(tb, srv.URL(), srv.Client(), method, path, q, body)
}

// callAt is call against the fake listening at base (a Server's or a Multi's URL) with client.
func callAt(tb testing.TB, base string, client *http.Client, method, path string, q url.Values, body any) answer {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, u, r)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: status %d, want 200", method, path, resp.StatusCode)
	}
	var a answer
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		tb.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return a
}

// wantErrcode fails unless a has errcode code and, for errors, an errmsg ending with a request id.
func wantErrcode(tb testing.TB, a answer, code int) {
	tb.Helper()
	if got := a.errcode(tb); got != code {
		tb.Fatalf("errcode = %d (%s), want %d", got, a.str("errmsg"), code)
	}
	if code != 0 && !strings.Contains(a.str("errmsg"), " rid: ") {
		tb.Fatalf("errmsg = %q, want it to end with a rid", a.str("errmsg"))
	}
}

func tokenQuery(srv *wechattest.Server) url.Values {
	return url.Values{"grant_type": {"client_credential"}, "appid": {srv.AppID()}, "secret": {srv.Secret()}}
}

func stableBody(srv *wechattest.Server, force bool) map[string]any {
	return map[string]any{"grant_type": "client_credential", "appid": srv.AppID(), "secret": srv.Secret(), "force_refresh": force}
}

// stableToken fetches the stable token in normal mode.
func stableToken(tb testing.TB, srv *wechattest.Server) string {
	tb.Helper()
	a := call(tb, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false))
	wantErrcode(tb, a, 0)
	return a.str("access_token")
}

// useToken calls gettemplate with token and returns its errcode.
func useToken(tb testing.TB, srv *wechattest.Server, token string) int {
	tb.Helper()
	return call(tb, srv, http.MethodGet, "/wxaapi/newtmpl/gettemplate", url.Values{"access_token": {token}}, nil).errcode(tb)
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	kw := []wechattest.Keyword{{Name: "thing1"}}
	tests := []struct {
		name string
		opts wechattest.Options
	}{
		{"TemplateWithoutID", wechattest.Options{Templates: []wechattest.Template{{Type: wechattest.OneTime, Keywords: kw}}}},
		{"BadType", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: 1, Keywords: kw}}}},
		{"NoKeywords", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime}}}},
		{"UnknownKeywordType", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "stuff1"}}}}}},
		{"KeywordWithDATA", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "thing1.DATA"}}}}}},
		{"DuplicateKeyword", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "thing1"}}}}}},
		{"EnumWithoutValues", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "enum_string1"}}}}}},
		{"DuplicateTemplate", wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "a", Type: wechattest.OneTime, Keywords: kw}, {PriTmplID: "a", Type: wechattest.OneTime, Keywords: kw}}}},
		{"EmptyPage", wechattest.Options{Pages: []string{""}}},
		{"NegativeRetention", wechattest.Options{Retention: wechattest.Retention{Pushes: -1}}},
		{"BadLibraryRule", wechattest.Options{Library: []wechattest.PubTemplate{{TID: 1, Type: wechattest.OneTime, Keywords: []wechattest.PubKeyword{{KID: 1, Rule: "stuff"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := wechattest.New(tt.opts); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	srv, err := wechattest.New(wechattest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := srv.AppID(); !strings.HasPrefix(got, "wx") || len(got) != 18 {
		t.Errorf("AppID() = %q, want wx and 16 hex digits", got)
	}
	if got := srv.Secret(); len(got) != 32 {
		t.Errorf("Secret() = %q, want 32 characters", got)
	}
	if got := srv.OriginalID(); !strings.HasPrefix(got, "gh_") {
		t.Errorf("OriginalID() = %q, want gh_...", got)
	}
	if srv.URL() != "" {
		t.Errorf("URL() = %q, want \"\" without a listener", srv.URL())
	}
	for _, tm := range srv.Templates() {
		if len(tm.PriTmplID) != 43 {
			t.Errorf("template %s: id of %d characters, want 43 as WeChat's", tm.PriTmplID, len(tm.PriTmplID))
		}
	}
}

func TestHandlerMountedUnderPrefix(t *testing.T) {
	srv, err := wechattest.New(wechattest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	mux.Handle("/wechat/", http.StripPrefix("/wechat", srv.Handler()))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	u := ts.URL + "/wechat/cgi-bin/token?" + tokenQuery(srv).Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.AccessToken == "" {
		t.Fatal("got no access_token through the mounted handler, want one")
	}
	if got := srv.Calls(wechattest.APIToken); got != 1 {
		t.Fatalf("Calls(token) = %d, want 1", got)
	}
}

func TestTokenErrors(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	with := func(key, value string) url.Values {
		q := tokenQuery(srv)
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		return q
	}
	tests := []struct {
		name   string
		method string
		query  url.Values
		want   int
	}{
		{"ErrInvalidAppID", http.MethodGet, with("appid", "wx0000000000000000"), 40013},
		{"ErrInvalidSecret", http.MethodGet, with("secret", "nope"), 40125},
		{"ErrMissingAppID", http.MethodGet, with("appid", ""), 41002},
		{"ErrMissingSecret", http.MethodGet, with("secret", ""), 41004},
		{"ErrGrantType", http.MethodGet, with("grant_type", "password"), 40002},
		{"ErrMethod", http.MethodPost, tokenQuery(srv), 43001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, call(t, srv, tt.method, "/cgi-bin/token", tt.query, nil), tt.want)
		})
	}
}

func TestTokenReplacesPreviousAfterOverlap(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	fetch := func() string {
		a := call(t, srv, http.MethodGet, "/cgi-bin/token", tokenQuery(srv), nil)
		wantErrcode(t, a, 0)
		if got := a.int(t, "expires_in"); got != 7200 {
			t.Fatalf("expires_in = %d, want 7200", got)
		}
		return a.str("access_token")
	}
	first := fetch()
	if len(first) < 512 {
		t.Fatalf("token of %d characters, want >= 512", len(first))
	}
	second := fetch()
	if second == first {
		t.Fatal("second fetch returned the same token, want a new one")
	}

	srv.Advance(5*time.Minute - time.Second)
	if got := useToken(t, srv, first); got != 0 {
		t.Fatalf("previous token within 5 minutes: errcode %d, want 0", got)
	}
	srv.Advance(time.Second)
	if got := useToken(t, srv, first); got != 40001 {
		t.Fatalf("previous token after 5 minutes: errcode %d, want 40001", got)
	}
	if got := useToken(t, srv, second); got != 0 {
		t.Fatalf("latest token: errcode %d, want 0", got)
	}
	srv.Advance(7200*time.Second - 5*time.Minute)
	if got := useToken(t, srv, second); got != 42001 {
		t.Fatalf("latest token after 7200 s: errcode %d, want 42001", got)
	}
}

func TestStableTokenNormalMode(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	first := call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false))
	wantErrcode(t, first, 0)
	tok := first.str("access_token")
	if len(tok) < 512 {
		t.Fatalf("token of %d characters, want >= 512", len(tok))
	}
	if got := first.int(t, "expires_in"); got != 7200 {
		t.Fatalf("expires_in = %d, want 7200", got)
	}

	srv.Advance(time.Hour)
	again := call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false))
	if again.str("access_token") != tok {
		t.Fatal("normal mode within the lifetime returned another token, want the same")
	}
	if got := again.int(t, "expires_in"); got != 3600 {
		t.Fatalf("expires_in = %d, want 3600 (what is left)", got)
	}

	// In its last 5 minutes the token is renewed; the old one works until it expires.
	srv.Advance(time.Hour - 5*time.Minute)
	renewed := call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false))
	if renewed.str("access_token") == tok {
		t.Fatal("normal mode in the last 5 minutes returned the old token, want a new one")
	}
	if got := renewed.int(t, "expires_in"); got != 7200 {
		t.Fatalf("renewed expires_in = %d, want 7200", got)
	}
	if got := useToken(t, srv, tok); got != 0 {
		t.Fatalf("old token during the overlap: errcode %d, want 0", got)
	}
	srv.Advance(5 * time.Minute)
	if got := useToken(t, srv, tok); got != 42001 {
		t.Fatalf("old token after its expiry: errcode %d, want 42001", got)
	}
	if got := useToken(t, srv, renewed.str("access_token")); got != 0 {
		t.Fatalf("renewed token: errcode %d, want 0", got)
	}
}

func TestStableTokenExpiresInNeverBelow300(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	for i := range 300 {
		a := call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, false))
		if got := a.int(t, "expires_in"); got < 300 || got > 7200 {
			t.Fatalf("call %d: expires_in = %d, want 300..7200", i, got)
		}
		srv.Advance(97 * time.Second)
	}
}

func TestStableTokenForceRefresh(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	old := stableToken(t, srv)
	forced := call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, true))
	wantErrcode(t, forced, 0)
	if forced.str("access_token") == old {
		t.Fatal("force_refresh returned the old token, want a new one")
	}
	if got := useToken(t, srv, old); got != 40001 {
		t.Fatalf("token replaced by force_refresh: errcode %d, want 40001 at once", got)
	}
	if got := stableToken(t, srv); got != forced.str("access_token") {
		t.Fatal("normal mode after force_refresh returned another token, want the forced one")
	}

	wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, true)), 45011)
	for i := 2; i <= 20; i++ {
		srv.Advance(30 * time.Second)
		wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, true)), 0)
	}
	srv.Advance(30 * time.Second)
	wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, true)), 45009)
	srv.Advance(24 * time.Hour)
	wantErrcode(t, call(t, srv, http.MethodPost, "/cgi-bin/stable_token", nil, stableBody(srv, true)), 0)
}

func TestStableTokenErrors(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	body := func(key string, value any) map[string]any {
		b := stableBody(srv, false)
		b[key] = value
		return b
	}
	tests := []struct {
		name   string
		method string
		body   any
		want   int
	}{
		{"ErrInvalidAppID", http.MethodPost, body("appid", "wx0000000000000000"), 40013},
		{"ErrInvalidSecret", http.MethodPost, body("secret", "nope"), 40125},
		{"ErrGrantType", http.MethodPost, body("grant_type", "client"), 40002},
		{"ErrNotJSON", http.MethodPost, "appid=x&secret=y", 47001},
		{"ErrForceRefreshNotBoolean", http.MethodPost, body("force_refresh", "true"), 47001},
		{"ErrKeysAreCaseSensitive", http.MethodPost, map[string]any{"grant_type": "client_credential", "AppID": srv.AppID(), "secret": srv.Secret()}, 41002},
		{"ErrMethod", http.MethodGet, nil, 43002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, call(t, srv, tt.method, "/cgi-bin/stable_token", nil, tt.body), tt.want)
		})
	}
}

func TestStableTokenIndependentOfToken(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	stable := stableToken(t, srv)
	for range 3 {
		wantErrcode(t, call(t, srv, http.MethodGet, "/cgi-bin/token", tokenQuery(srv), nil), 0)
	}
	srv.Advance(10 * time.Minute)
	if got := useToken(t, srv, stable); got != 0 {
		t.Fatalf("stable token after /cgi-bin/token fetches: errcode %d, want 0", got)
	}
}

func TestTokenChecks(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tok := stableToken(t, srv)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"OK", tok, 0},
		{"ErrMissing", "", 41001},
		{"ErrUnknown", strings.Repeat("x", 512), 40001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := useToken(t, srv, tt.token); got != tt.want {
				t.Fatalf("errcode %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("ErrInvalidated", func(t *testing.T) {
		srv.InvalidateTokens()
		if got := useToken(t, srv, tok); got != 40001 {
			t.Fatalf("invalidated token: errcode %d, want 40001", got)
		}
		fresh := stableToken(t, srv)
		if fresh == tok {
			t.Fatal("normal mode after InvalidateTokens returned the invalidated token, want a new one")
		}
		if got := useToken(t, srv, fresh); got != 0 {
			t.Fatalf("new token: errcode %d, want 0", got)
		}
	})
}

func TestTokenFree(t *testing.T) {
	srv := newServer(t, wechattest.Options{TokenFree: true})
	if got := useToken(t, srv, ""); got != 0 {
		t.Fatalf("no token in token-free mode: errcode %d, want 0", got)
	}
	if got := useToken(t, srv, "bogus"); got != 40001 {
		t.Fatalf("bogus token in token-free mode: errcode %d, want 40001", got)
	}
}

func TestClockAdvance(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	srv.Advance(90 * time.Minute)
	if got, want := srv.Now(), t0.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}
