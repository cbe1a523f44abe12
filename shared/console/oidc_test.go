package console_test

import (
	"crypto"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/console"
)

const (
	oidcClientID = "wxnotify-console"
	oidcSecret   = "console-client-secret"
)

// withOIDC gives the fixture a console that signs in through idp, for
// the accounts allowed.
func withOIDC(t *testing.T, f *fixture, idp *fakeIdP, allowed ...string) {
	t.Helper()
	f.parts.Config.ConsoleOIDC = config.ConsoleOIDC{Issuer: idp.issuer(), ClientID: idp.clientID, ClientSecret: idp.secret,
		RedirectURL: f.url + "/console/oidc/callback", Allowed: allowed}
	con, err := console.FromParts(f.parts, f.now)
	if err != nil {
		t.Fatal(err)
	}
	f.parts.API.SetConsole(con)
}

// cookieNamed is the cookie name that a's Set-Cookie sets, or nil.
func cookieNamed(a answer, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// oidcFlow is one sign-in through the issuer: the start's state cookie and
// the callback URL the issuer redirected to.
type oidcFlow struct {
	state    *http.Cookie
	callback string
}

// startOIDC follows /console/oidc/start to the issuer and back to the
// callback URL, without calling it.
func startOIDC(t *testing.T, f *fixture) oidcFlow {
	t.Helper()
	a := do(t, "GET", f.url+"/console/oidc/start", nil, "text/html", nil)
	state := cookieNamed(a, "wxn_console_oidc")
	if a.status != http.StatusSeeOther || state == nil || state.Value == "" {
		t.Fatalf("start: got %d %v, want 303 with the state cookie: %s", a.status, a.header, a.body)
	}
	if state.Path != "/console/oidc" || !state.HttpOnly || !state.Secure || state.SameSite != http.SameSiteLaxMode || state.MaxAge != 600 {
		t.Errorf("state cookie: got %+v, want HttpOnly, Secure, Lax, 10 minutes on /console/oidc", state)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("state") != state.Value || loc.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("start: the authorization request %s does not carry the cookie's state and S256", loc)
	}
	b := do(t, "GET", loc.String(), nil, "text/html", nil)
	if b.status != http.StatusSeeOther {
		t.Fatalf("issuer's authorize: got %d %s", b.status, b.body)
	}
	return oidcFlow{state: state, callback: b.header.Get("Location")}
}

// finish calls the callback with the state cookie.
func (fl oidcFlow) finish(t *testing.T, accept string) answer {
	t.Helper()
	return do(t, "GET", fl.callback, nil, accept, nil, fl.state)
}

// signedInBy checks that a's session cookie opens the overview.
func signedInBy(t *testing.T, f *fixture, a answer) *http.Cookie {
	t.Helper()
	s := cookieNamed(a, "wxn_console")
	if a.status != http.StatusOK || s == nil || s.Value == "" {
		t.Fatalf("callback: got %d without a session: %s", a.status, a.body)
	}
	if !s.HttpOnly || !s.Secure || s.SameSite != http.SameSiteStrictMode || s.Path != "/console" {
		t.Errorf("session cookie: got %+v", s)
	}
	o := do(t, "GET", f.url+"/console/apps/default/overview", nil, "text/html", nil, s)
	if o.status != http.StatusOK || !strings.Contains(o.body, "oidc alice@example.com") {
		t.Fatalf("overview with the OIDC session: got %d, want 200 naming oidc alice@example.com: %.300s", o.status, o.body)
	}
	return s
}

// TestOIDCSignIn: the whole flow against a fake issuer, on a console with
// no admin key at all; the session is the same as an admin key's, named
// "oidc <email>" in the audit log, and ends when the account leaves the
// allow-list.
func TestOIDCSignIn(t *testing.T) {
	f := newFixture(t, map[string]string{"WXN_ADMIN_KEYS": ""})
	idp := newFakeIdP(t, f.now, oidcClientID, oidcSecret)
	withOIDC(t, f, idp, "Alice@example.com")

	page := do(t, "GET", f.url+"/console/signin", nil, "text/html", map[string]string{"Accept-Language": "en"})
	host := strings.TrimPrefix(idp.issuer(), "http://")
	if page.status != http.StatusOK || !strings.Contains(page.body, `href="/console/oidc/start">Sign in with `+host+`</a>`) {
		t.Fatalf("sign-in page: got %d, want the button Sign in with %s: %s", page.status, host, page.body)
	}
	if strings.Contains(page.body, `name="key"`) {
		t.Error("sign-in page: the admin key form is shown without admin keys")
	}

	fl := startOIDC(t, f)
	a := fl.finish(t, "text/html")
	if c := cookieNamed(a, "wxn_console_oidc"); c == nil || c.MaxAge >= 0 {
		t.Errorf("callback: the state cookie is not cleared: %v", c)
	}
	if strings.Contains(a.body, "code=") || strings.Contains(a.body, "state=") {
		t.Errorf("callback: the page links to the code or the state: %s", a.body)
	}
	if !strings.Contains(a.body, `http-equiv="refresh" content="0;url=/console/apps/default/overview"`) {
		t.Errorf("callback: got no page that moves on to the overview: %s", a.body)
	}
	s := signedInBy(t, f, a)
	audit := do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", map[string]string{"Accept-Language": "en"}, s)
	if !strings.Contains(audit.body, `<tr data-action="signin">`) || !strings.Contains(audit.body, "<code>oidc alice@example.com</code>") {
		t.Errorf("audit log: no signin by oidc alice@example.com: %s", audit.body)
	}

	// The account leaves the allow-list: its session ends at once.
	withOIDC(t, f, idp, "bob@example.com")
	if o := do(t, "GET", f.url+"/console/apps/default/overview", nil, "application/json", nil, s); o.status != http.StatusUnauthorized {
		t.Errorf("overview after the allow-list changed: got %d, want 401", o.status)
	}
	// Allowed by sub instead: the same session goes on.
	withOIDC(t, f, idp, "user-alice")
	if o := do(t, "GET", f.url+"/console/apps/default/overview", nil, "application/json", nil, s); o.status != http.StatusOK {
		t.Errorf("overview with alice allowed by sub: got %d, want 200", o.status)
	}
}

// TestOIDCRefusals: each way a sign-in goes wrong answers its 4xx code,
// starts no session and is audited with its reason.
func TestOIDCRefusals(t *testing.T) {
	f := newFixture(t, nil)
	idp := newFakeIdP(t, f.now, oidcClientID, oidcSecret)
	withOIDC(t, f, idp, "alice@example.com", "user-carol")
	unpublished := newRSAKey(t)
	other := func(*testing.T) string { return strings.Repeat("A", 43) }
	reset := func(p *fakeIdP) {
		p.claims, p.tokenError, p.email, p.verified, p.sub = nil, "", "alice@example.com", true, "user-alice"
		p.signKid, p.signKey = "k1", p.published["k1"]
	}
	tests := []struct {
		name   string
		idp    func(p *fakeIdP)
		call   func(t *testing.T, fl oidcFlow) answer
		status int
		code   string
		reason string
	}{
		{name: "WrongState", call: func(t *testing.T, fl oidcFlow) answer {
			u, _ := url.Parse(fl.callback)
			q := u.Query()
			q.Set("state", other(t))
			u.RawQuery = q.Encode()
			return do(t, "GET", u.String(), nil, "application/json", nil, fl.state)
		}, status: 400, code: "bad_request", reason: "state_mismatch"},
		{name: "NoStateCookie", call: func(t *testing.T, fl oidcFlow) answer {
			return do(t, "GET", fl.callback, nil, "application/json", nil)
		}, status: 400, code: "bad_request", reason: "state_cookie_missing"},
		{name: "ReplayedState", call: func(t *testing.T, fl oidcFlow) answer {
			signedInBy(t, f, fl.finish(t, "text/html"))
			return fl.finish(t, "application/json")
		}, status: 400, code: "bad_request", reason: "state_unknown"},
		{name: "ExpiredState", call: func(t *testing.T, fl oidcFlow) answer {
			f.clock.advance(11 * time.Minute)
			return fl.finish(t, "application/json")
		}, status: 400, code: "bad_request", reason: "state_unknown"},
		{name: "IssuerRefused", call: func(t *testing.T, fl oidcFlow) answer {
			return do(t, "GET", strings.Replace(fl.callback, "code=", "error=access_denied&code=", 1), nil, "application/json", nil, fl.state)
		}, status: 401, code: "unauthorized", reason: "idp_error"},
		{name: "TokenEndpointError", idp: func(p *fakeIdP) { p.tokenError = "invalid_grant" }, status: 401, code: "unauthorized", reason: "token_refused"},
		{name: "BadSignature", idp: func(p *fakeIdP) { p.signKey = unpublished }, status: 401, code: "unauthorized", reason: "bad_signature"},
		{name: "UnknownKid", idp: func(p *fakeIdP) { p.signKid = "k9" }, status: 401, code: "unauthorized", reason: "unknown_key"},
		{name: "WrongIssuer", idp: func(p *fakeIdP) { p.claims = func(c map[string]any) { c["iss"] = "https://evil.example.com" } }, status: 401, code: "unauthorized", reason: "wrong_issuer"},
		{name: "WrongAudience", idp: func(p *fakeIdP) { p.claims = func(c map[string]any) { c["aud"] = "another-client" } }, status: 401, code: "unauthorized", reason: "wrong_audience"},
		{name: "SeveralAudiencesNoAzp", idp: func(p *fakeIdP) {
			p.claims = func(c map[string]any) { c["aud"] = []string{oidcClientID, "another-client"} }
		}, status: 401, code: "unauthorized", reason: "wrong_audience"},
		{name: "Expired", idp: func(p *fakeIdP) {
			p.claims = func(c map[string]any) { c["exp"] = p.now().Add(-2 * time.Minute).Unix() }
		}, status: 401, code: "unauthorized", reason: "expired"},
		{name: "IssuedInTheFuture", idp: func(p *fakeIdP) {
			p.claims = func(c map[string]any) { c["iat"] = p.now().Add(10 * time.Minute).Unix() }
		}, status: 401, code: "unauthorized", reason: "not_yet_valid"},
		{name: "WrongNonce", idp: func(p *fakeIdP) { p.claims = func(c map[string]any) { c["nonce"] = "another-nonce" } }, status: 401, code: "unauthorized", reason: "wrong_nonce"},
		{name: "EmailNotVerified", idp: func(p *fakeIdP) { p.verified = false }, status: 403, code: "forbidden", reason: "email_not_verified"},
		{name: "NotAllowed", idp: func(p *fakeIdP) { p.email, p.sub = "mallory@example.com", "user-mallory" }, status: 403, code: "forbidden", reason: "not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.advance(11 * time.Minute) // a fresh window of the sign-in rate limit
			idp.set(reset)
			if tc.idp != nil {
				idp.set(tc.idp)
			}
			fl := startOIDC(t, f)
			call := tc.call
			if call == nil {
				call = func(t *testing.T, fl oidcFlow) answer { return fl.finish(t, "application/json") }
			}
			a := call(t, fl)
			if a.status != tc.status || a.code() != tc.code {
				t.Errorf("got %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if c := cookieNamed(a, "wxn_console"); c != nil && c.Value != "" {
				t.Errorf("got a session cookie %v", c)
			}
			if tc.name != "ReplayedState" && tc.name != "NoStateCookie" && tc.name != "WrongState" {
				// The flow's state is spent: the same callback again is refused
				// (a wrong state spends nothing).
				if b := fl.finish(t, "application/json"); b.status != http.StatusBadRequest {
					t.Errorf("the callback again: got %d %s, want 400", b.status, b.body)
				}
			}
			s := sessionCookie(t, f)
			audit := do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", nil, s)
			if !strings.Contains(audit.body, "<td>oidc "+tc.reason+"</td>") {
				t.Errorf("audit log: no signin_failed with oidc %s", tc.reason)
			}
		})
	}
	// A carol allowed by sub signs in without an email.
	f.clock.advance(11 * time.Minute)
	idp.set(func(p *fakeIdP) { reset(p); p.email, p.sub = "", "user-carol" })
	a := startOIDC(t, f).finish(t, "text/html")
	if c := cookieNamed(a, "wxn_console"); a.status != http.StatusOK || c == nil {
		t.Errorf("carol by sub: got %d %s", a.status, a.body)
	}
	// A refusal to a browser is a page with the code.
	f.clock.advance(11 * time.Minute)
	idp.set(func(p *fakeIdP) { reset(p); p.tokenError = "invalid_grant" })
	a = startOIDC(t, f).finish(t, "text/html")
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, `<code id="error-code">unauthorized</code>`) {
		t.Errorf("a refusal to a browser: got %d %s", a.status, a.body)
	}
}

// TestOIDCKeyRotation: an id_token signed with a key the console has not
// seen makes it fetch the JWKS once more; a key the issuer does not
// publish is refused after that one fetch. ES256 keys work as RS256 ones.
// A public client (no secret) sends its client id and the PKCE verifier.
func TestOIDCKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	idp := newFakeIdP(t, f.now, oidcClientID, "")
	withOIDC(t, f, idp, "alice@example.com")
	signedInBy(t, f, startOIDC(t, f).finish(t, "text/html"))
	hits := func() int {
		idp.mu.Lock()
		defer idp.mu.Unlock()
		return idp.jwksHits
	}
	if hits() != 1 {
		t.Fatalf("JWKS fetched %d times for one sign-in, want 1", hits())
	}
	signedInBy(t, f, startOIDC(t, f).finish(t, "text/html"))
	if hits() != 1 {
		t.Errorf("JWKS fetched %d times for two sign-ins with the same key, want 1 (cached)", hits())
	}
	// Rotation: k2 (ES256) replaces k1.
	idp.set(func(p *fakeIdP) {
		k2 := newECKey(t)
		p.published = map[string]crypto.Signer{"k2": k2}
		p.signKid, p.signKey = "k2", k2
	})
	signedInBy(t, f, startOIDC(t, f).finish(t, "text/html"))
	if hits() != 2 {
		t.Errorf("JWKS fetched %d times after the rotation, want 2 (once more for the new kid)", hits())
	}
	// A kid the issuer never publishes: one more fetch, then 401.
	f.clock.advance(11 * time.Minute)
	idp.set(func(p *fakeIdP) { p.signKid, p.signKey = "k3", newRSAKey(t) })
	a := startOIDC(t, f).finish(t, "application/json")
	if a.status != http.StatusUnauthorized || a.code() != "unauthorized" || !strings.Contains(a.body, "k3") {
		t.Errorf("unknown kid: got %d %s, want 401 unauthorized", a.status, a.body)
	}
	if hits() != 3 {
		t.Errorf("JWKS fetched %d times after an unknown kid, want 3", hits())
	}
}

// TestOIDCRateLimit: start and callback count as the key form's attempts.
func TestOIDCRateLimit(t *testing.T) {
	f := newFixture(t, nil)
	idp := newFakeIdP(t, f.now, oidcClientID, oidcSecret)
	withOIDC(t, f, idp, "alice@example.com")
	for range 5 {
		signedInBy(t, f, startOIDC(t, f).finish(t, "text/html")) // 2 attempts each
	}
	a := do(t, "GET", f.url+"/console/oidc/start", nil, "application/json", nil)
	if a.status != http.StatusTooManyRequests || a.code() != "rate_limited" || a.header.Get("Retry-After") == "" {
		t.Errorf("the 11th attempt: got %d %s, want 429 rate_limited with Retry-After", a.status, a.body)
	}
	if b := signIn(t, f, testAdminKey); b.status != http.StatusTooManyRequests {
		t.Errorf("the key form after 10 OIDC attempts: got %d, want 429 (one limit)", b.status)
	}
}

// TestOIDCDiscoveryRefusals: an issuer whose discovery names another
// issuer, or no issuer at all, gives a 502 idp_unavailable page, never a
// 500; without OIDC the routes are 404.
func TestOIDCDiscoveryRefusals(t *testing.T) {
	f := newFixture(t, nil)
	if a := do(t, "GET", f.url+"/console/oidc/start", nil, "application/json", nil); a.status != http.StatusNotFound || a.code() != "not_found" {
		t.Errorf("start without OIDC: got %d %s, want 404 not_found", a.status, a.body)
	}
	if a := do(t, "GET", f.url+"/console/signin", nil, "text/html", nil); strings.Contains(a.body, "oidc-signin") {
		t.Error("the sign-in page offers OIDC without an issuer")
	}
	idp := newFakeIdP(t, f.now, oidcClientID, oidcSecret)
	withOIDC(t, f, idp, "alice@example.com")
	f.parts.Config.ConsoleOIDC.Issuer = idp.issuer() + "/" // not the discovery document's issuer exactly
	con, err := console.FromParts(f.parts, f.now)
	if err != nil {
		t.Fatal(err)
	}
	f.parts.API.SetConsole(con)
	a := do(t, "GET", f.url+"/console/oidc/start", nil, "application/json", nil)
	if a.status != http.StatusBadGateway || a.code() != "idp_unavailable" || !strings.Contains(a.body, "names the issuer") {
		t.Errorf("issuer mismatch: got %d %s, want 502 idp_unavailable", a.status, a.body)
	}
	idp.srv.Close()
	f.parts.Config.ConsoleOIDC.Issuer = idp.issuer()
	if con, err = console.FromParts(f.parts, f.now); err != nil {
		t.Fatal(err)
	}
	f.parts.API.SetConsole(con)
	if a := do(t, "GET", f.url+"/console/oidc/start", nil, "text/html", nil); a.status != http.StatusBadGateway || !strings.Contains(a.body, "idp_unavailable") {
		t.Errorf("issuer down: got %d %s, want a 502 idp_unavailable page", a.status, a.body)
	}
}
