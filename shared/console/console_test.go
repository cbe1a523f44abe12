package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/console"
)

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// code is the error code of a JSON error body ("" for none).
func (a answer) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Error.Code
}

// do sends one request with the cookies given and returns the answer.
func do(t *testing.T, method, target string, form url.Values, accept string, header map[string]string, cookies ...*http.Cookie) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", accept)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInForm fetches the sign-in form: its CSRF token and the cookie that
// pairs with it.
func signInForm(t *testing.T, f *fixture) (string, *http.Cookie) {
	t.Helper()
	a := do(t, "GET", f.url+"/console/signin", nil, "text/html", nil)
	m := csrfInput.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		t.Fatalf("sign-in form: got %d without a CSRF token: %s", a.status, a.body)
	}
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "wxn_console_pre" {
			return m[1], c
		}
	}
	t.Fatalf("sign-in form: no wxn_console_pre cookie: %v", a.header)
	return "", nil
}

// signIn signs in with key and returns the answer.
func signIn(t *testing.T, f *fixture, key string) answer {
	t.Helper()
	token, pre := signInForm(t, f)
	return do(t, "POST", f.url+"/console/signin", url.Values{"csrf": {token}, "key": {key}}, "text/html",
		map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}, pre)
}

// sessionCookie signs in with the admin key and returns the session cookie.
func sessionCookie(t *testing.T, f *fixture) *http.Cookie {
	t.Helper()
	a := signIn(t, f, testAdminKey)
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "wxn_console" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("sign-in: got %d without a session cookie: %s", a.status, a.body)
	return nil
}

func TestConsoleOffWithoutAdminKeys(t *testing.T) {
	f := newFixture(t, map[string]string{"WXN_ADMIN_KEYS": ""})
	for _, path := range []string{"/console", "/console/signin", "/console/apps/default/overview"} {
		a := do(t, "GET", f.url+path, nil, "application/json", nil)
		if a.status != http.StatusNotFound || a.code() != "not_found" {
			t.Errorf("GET %s without admin keys: got %d %s, want 404 not_found", path, a.status, a.body)
		}
	}
	a := do(t, "POST", f.url+"/console/signin", url.Values{"key": {testAPIKey}}, "application/json", nil)
	if a.status != http.StatusNotFound {
		t.Errorf("POST /console/signin without admin keys: got %d, want 404", a.status)
	}
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, nil)
	token, pre := signInForm(t, f)
	if pre.Path != "/console/signin" || !pre.HttpOnly || !pre.Secure || pre.SameSite != http.SameSiteStrictMode {
		t.Errorf("pre cookie: got %+v, want HttpOnly, Secure, Strict on /console/signin", pre)
	}
	post := func(form url.Values, header map[string]string, cookies ...*http.Cookie) answer {
		return do(t, "POST", f.url+"/console/signin", form, "application/json", header, cookies...)
	}
	same := map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}
	for _, tc := range []struct {
		name    string
		form    url.Values
		header  map[string]string
		cookies []*http.Cookie
		status  int
		code    string
	}{
		{"NoPreCookie", url.Values{"csrf": {token}, "key": {testAdminKey}}, same, nil, 403, "csrf_invalid"},
		{"WrongToken", url.Values{"csrf": {token + "x"}, "key": {testAdminKey}}, same, []*http.Cookie{pre}, 403, "csrf_invalid"},
		{"ForeignOrigin", url.Values{"csrf": {token}, "key": {testAdminKey}}, map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{pre}, 403, "origin_refused"},
		{"CrossSite", url.Values{"csrf": {token}, "key": {testAdminKey}}, map[string]string{"Sec-Fetch-Site": "same-site"}, []*http.Cookie{pre}, 403, "origin_refused"},
	} {
		if a := post(tc.form, tc.header, tc.cookies...); a.status != tc.status || a.code() != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	// An API key is no admin key.
	if a := signIn(t, f, testAPIKey); a.status != http.StatusUnauthorized || !strings.Contains(a.body, `id="problem"`) {
		t.Errorf("API key: got %d, want 401 and the form again: %s", a.status, a.body)
	}
	a := signIn(t, f, testAdminKey)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/overview" {
		t.Fatalf("admin key: got %d to %q, want 303 to the overview", a.status, a.header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "wxn_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode ||
		session.Path != "/console" || session.MaxAge != 8*3600 || len(session.Value) != 43 {
		t.Fatalf("session cookie: got %+v, want an opaque token, HttpOnly, Secure, Strict, /console, 8h", session)
	}
	page := do(t, "GET", f.url+"/console/apps/default/overview", nil, "text/html", nil, session)
	if page.status != http.StatusOK {
		t.Fatalf("overview: got %d: %s", page.status, page.body)
	}
	for name, want := range map[string]string{"Content-Security-Policy": console.CSP, "X-Frame-Options": "DENY",
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"} {
		if got := page.header.Get(name); got != want {
			t.Errorf("overview %s: got %q, want %q", name, got, want)
		}
	}
	if strings.Contains(page.body, " style=") || strings.Contains(page.body, "<script>") || strings.Contains(page.body, " on") &&
		regexp.MustCompile(`\son[a-z]+=`).MatchString(page.body) {
		t.Errorf("overview: an inline style, script or handler, which the CSP refuses")
	}
	// Signed in, the sign-in page leads to the overview.
	if a := do(t, "GET", f.url+"/console/signin", nil, "text/html", nil, session); a.status != http.StatusSeeOther {
		t.Errorf("sign-in page signed in: got %d, want 303", a.status)
	}
}

func TestSignInRateLimited(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 10 {
		if a := signIn(t, f, "wrong-admin-key-0123456789"); a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: got %d, want 401", i+1, a.status)
		}
	}
	// The right key too: attempts are counted, not failures.
	a := signIn(t, f, testAdminKey)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "600" || !strings.Contains(a.body, "rate_limited") {
		t.Fatalf("attempt 11: got %d Retry-After %q, want 429 rate_limited after 600 s: %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	f.clock.advance(10 * time.Minute)
	if a := signIn(t, f, testAdminKey); a.status != http.StatusSeeOther {
		t.Errorf("after the window: got %d, want 303", a.status)
	}
}

func TestSessionExpiresAndSignsOut(t *testing.T) {
	f := newFixture(t, nil)
	s := seed(t, f)
	progress := f.url + "/console/apps/default/batches/" + s.done.ID + "/progress"
	session := sessionCookie(t, f)
	a := do(t, "GET", progress, nil, "application/json", nil, session)
	var p struct {
		Status string
		Sent   int
		Final  bool
	}
	if err := json.Unmarshal([]byte(a.body), &p); err != nil || a.status != 200 || p.Status != "done" || p.Sent != 1 || !p.Final {
		t.Fatalf("progress: got %d %s, want the done batch", a.status, a.body)
	}
	f.clock.advance(8*time.Hour + time.Second)
	if a := do(t, "GET", progress, nil, "application/json", nil, session); a.status != http.StatusUnauthorized || a.code() != "unauthorized" {
		t.Errorf("after 8h: got %d %s, want 401 unauthorized", a.status, a.body)
	}
	if a := do(t, "GET", f.url+"/console/apps/default/overview", nil, "text/html", nil, session); a.status != http.StatusSeeOther ||
		a.header.Get("Location") != "/console/signin" {
		t.Errorf("page after 8h: got %d to %q, want 303 to sign-in", a.status, a.header.Get("Location"))
	}

	// Sign-out needs the session's token, and ends the session.
	session = sessionCookie(t, f)
	a = do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", nil, session)
	m := csrfInput.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("audit page: no CSRF token: %s", a.body)
	}
	same := map[string]string{"Origin": f.url}
	if a := do(t, "POST", f.url+"/console/signout", url.Values{}, "application/json", same, session); a.status != 403 || a.code() != "csrf_invalid" {
		t.Errorf("sign-out without the token: got %d %s, want 403 csrf_invalid", a.status, a.body)
	}
	if a := do(t, "POST", f.url+"/console/signout", url.Values{"csrf": {m[1]}}, "text/html", same, session); a.status != http.StatusSeeOther {
		t.Errorf("sign-out: got %d, want 303", a.status)
	}
	if a := do(t, "GET", progress, nil, "application/json", nil, session); a.status != http.StatusUnauthorized {
		t.Errorf("after sign-out: got %d, want 401", a.status)
	}
}

func TestBadInputAnswered(t *testing.T) {
	f := newFixture(t, nil)
	s := seed(t, f)
	session := sessionCookie(t, f)
	app := f.url + "/console/apps/default"
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/console/apps/nope/overview", 404, "not_found"},
		{"/console/apps/default/nope", 404, "not_found"},
		{"/console/nope", 404, "not_found"},
		{"/console/assets/nope.js", 404, "not_found"},
		{"/console/apps/default/notifications/ntf_nope", 404, "not_found"},
		{"/console/apps/default/notifications/a%7Cb", 404, "not_found"},
		{"/console/apps/default/batches/bat_nope/progress", 404, "not_found"},
		{"/console/apps/default/batches/%ff%fe", 404, "not_found"},
		{"/console/apps/default/notifications?status=lost", 400, "bad_request"},
		{"/console/apps/default/notifications?template=nope", 400, "bad_request"},
		{"/console/apps/default/notifications?cursor=xyz", 400, "bad_request"},
		{"/console/apps/default/notifications?userId=a%20b", 400, "bad_request"},
		{"/console/apps/default/batches?cursor=xyz", 400, "bad_request"},
		{"/console/apps/default/audit?cursor=xyz", 400, "bad_request"},
	} {
		a := do(t, "GET", f.url+tc.path, nil, "application/json", nil, session)
		if tc.path == "/console/apps/default/notifications?status=lost" || strings.Contains(tc.path, "notifications?") {
			// The list answers its page with the problem: the filter
			// form stays usable.
			a = do(t, "GET", f.url+tc.path, nil, "text/html", nil, session)
			if a.status != tc.status || !strings.Contains(a.body, `<code id="error-code">`+tc.code+`</code>`) {
				t.Errorf("GET %s: got %d, want %d with %s on the page", tc.path, a.status, tc.status, tc.code)
			}
			continue
		}
		if a.status != tc.status || a.code() != tc.code {
			t.Errorf("GET %s: got %d %s, want %d %s", tc.path, a.status, a.body, tc.status, tc.code)
		}
	}
	// Cancelling a batch that is done leaves it done; one that does not
	// exist is not found. Both are audited with their result.
	a := do(t, "GET", app+"/audit", nil, "text/html", nil, session)
	token := csrfInput.FindStringSubmatch(a.body)[1]
	a = do(t, "POST", app+"/batches/"+s.done.ID+"/cancel", url.Values{"csrf": {token}}, "application/json",
		map[string]string{"Origin": f.url}, session)
	if a.status != http.StatusSeeOther {
		t.Errorf("cancel a done batch: got %d %s, want 303 to its page", a.status, a.body)
	}
	a = do(t, "POST", app+"/batches/bat_nope/cancel", url.Values{"csrf": {token}}, "application/json",
		map[string]string{"Origin": f.url}, session)
	if a.status != http.StatusNotFound || a.code() != "not_found" {
		t.Errorf("cancel an unknown batch: got %d %s, want 404 not_found", a.status, a.body)
	}
	a = do(t, "GET", app+"/audit", nil, "text/html", nil, session)
	for _, want := range []string{"<td>" + s.done.ID + "</td><td>done</td>", "<td>bat_nope</td><td>not_found</td>"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("audit: got no batch_cancel %q: %s", want, a.body)
		}
	}
	// A page of the audit log names its next page with a cursor it takes.
	for range 60 {
		signIn(t, f, "wrong-admin-key-0123456789")
		f.clock.advance(2 * time.Minute) // at most 5 attempts in a window of the limiter
	}
	a = do(t, "GET", app+"/audit", nil, "text/html", nil, session)
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(a.body)
	if next == nil {
		t.Fatalf("audit: no next page after 63 entries")
	}
	if a := do(t, "GET", f.url+strings.ReplaceAll(next[1], "&amp;", "&"), nil, "text/html", nil, session); a.status != 200 ||
		strings.Count(a.body, "<tr data-action=") != 13 {
		t.Errorf("audit page 2: got %d with %d entries, want 13", a.status, strings.Count(a.body, "<tr data-action="))
	}
}
