package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Cookies of the console. The session cookie holds an opaque random token;
// the store holds the session under the token's SHA-256, so that neither a
// store dump nor a log gives a usable cookie.
const (
	sessionCookie = "wxn_console"
	preCookie     = "wxn_console_pre" // the sign-in form's CSRF token (double submit)
	langCookie    = "wxn_console_lang"
)

// session is a signed-in admin, as stored.
type session struct {
	Key string `json:"key"` // the admin key's fingerprint, or oidcFingerprint
	// Actor is how the audit log names who signed in through OIDC ("oidc
	// <email>"); "" for an admin key, named by Key.
	Actor string `json:"actor,omitempty"`
	// OIDC is the identity that signed in through the issuer, re-checked
	// against the allow-list by every request.
	OIDC    *oidcIdentity `json:"oidc,omitempty"`
	CSRF    string        `json:"csrf"`
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires"`
}

// actor is how the audit log and the footer name who signed in.
func (s *session) actor() string {
	if s.Actor != "" {
		return s.Actor
	}
	return s.Key
}

type sessionCtxKey struct{}

func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionCtxKey{}).(*session)
	return s
}

// sessionKey is where the session of token lives: a partition of its own
// per session (Get, Put and Delete only; sessions belong to the
// deployment's admins, not to one app).
func sessionKey(token string) store.Key {
	sum := sha256.Sum256([]byte(token))
	return store.Key{Partition: "console|sess|" + hex.EncodeToString(sum[:]), Sort: "s"}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether v has the shape of a randomToken.
func validToken(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// keyFingerprint returns the fingerprint of a configured admin key equal
// to key, comparing the hashes of every key in constant time.
func (c *Console) keyFingerprint(key string) (string, bool) {
	h := sha256.Sum256([]byte(key))
	found := ""
	for _, k := range c.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			found = k.fingerprint
		}
	}
	return found, found != ""
}

// configured reports whether the fingerprint is still of a configured key:
// removing a key from WXN_ADMIN_KEYS ends its sessions.
func (c *Console) configured(fingerprint string) bool {
	for _, k := range c.keys {
		if k.fingerprint == fingerprint {
			return true
		}
	}
	return false
}

// loadSession returns the request's live session, or nil.
func (c *Console) loadSession(r *http.Request) (*session, string, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || !validToken(ck.Value) {
		return nil, "", nil
	}
	it, err := c.st.Get(r.Context(), sessionKey(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var s session
	if err := json.Unmarshal(it.Value, &s); err != nil {
		return nil, "", nil
	}
	if !c.now().Before(s.Expires) || (s.OIDC == nil && !c.configured(s.Key)) || (s.OIDC != nil && !c.oidcSessionLive(&s)) {
		return nil, "", nil
	}
	return &s, ck.Value, nil
}

// signedIn serves h to a signed-in admin only: pages redirect to the
// sign-in page, other requests answer 401 unauthorized. A POST must also
// pass the CSRF checks (checkPost).
func (c *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, token, err := c.loadSession(r)
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
			return
		}
		if s == nil {
			if r.Method == http.MethodGet && wantsHTML(r) {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			c.fail(w, r, http.StatusUnauthorized, codeUnauthorized, "sign in first")
			return
		}
		if r.Method == http.MethodPost {
			if !c.checkPost(w, r, s.CSRF) {
				return
			}
		}
		ctx := context.WithValue(r.Context(), sessionCtxKey{}, s)
		ctx = context.WithValue(ctx, tokenCtxKey{}, token)
		h(w, r.WithContext(ctx))
	}
}

type tokenCtxKey struct{}

// checkPost refuses a state-changing request from another site (Origin,
// Sec-Fetch-Site) or without the form's CSRF token: 403 with
// origin_refused or csrf_invalid.
func (c *Console) checkPost(w http.ResponseWriter, r *http.Request, want string) bool {
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, codeOrigin, "the request comes from another site")
		return false
	}
	got := r.PostFormValue("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		c.fail(w, r, http.StatusForbidden, codeCSRF, "the form's CSRF token is missing or wrong: reload the page")
		return false
	}
	return true
}

// sameOrigin reports whether the browser says the request comes from the
// console's own origin: Sec-Fetch-Site, when sent, is same-origin, and
// Origin, when sent, names this host ("null" never does).
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
	}
	return true
}

// setCookie sets a console cookie: HttpOnly, Secure, SameSite=Strict.
func setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge.Seconds())
	} else {
		ck.MaxAge = -1
	}
	http.SetCookie(w, ck)
}

// GET /console/signin
func (c *Console) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	if s, _, err := c.loadSession(r); err == nil && s != nil {
		c.handleRoot(w, r)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	pre := randomToken()
	setCookie(w, preCookie, pre, "/console/signin", time.Hour)
	d := signInData{Keys: len(c.keys) > 0}
	if c.oidc != nil {
		d.OIDCHost = c.oidc.Host()
	}
	c.render(w, r, status, "signin", &page{CSRF: pre, Problem: problem, Data: d})
}

// signInData is what the sign-in page offers: the admin key form, the
// issuer's button.
type signInData struct {
	Keys     bool
	OIDCHost string
}

// POST /console/signin: key=<admin key>&csrf=<the form's token>.
func (c *Console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if c.rateLimited(w, r) {
		return
	}
	pre, err := r.Cookie(preCookie)
	want := ""
	if err == nil && validToken(pre.Value) {
		want = pre.Value
	}
	if !c.checkPost(w, r, want) {
		return
	}
	fp, ok := c.keyFingerprint(r.PostFormValue("key"))
	if !ok {
		c.auditAll(r.Context(), auditEntry{Action: "signin_failed", IP: addr})
		c.renderSignIn(w, r, http.StatusUnauthorized, "wrong_key")
		return
	}
	if !c.startSession(w, r, session{Key: fp}) {
		return
	}
	setCookie(w, preCookie, "", "/console/signin", 0)
	c.handleRoot(w, r)
}

// startSession stores the session s (its CSRF token and times set here),
// audits the sign-in and sets the session cookie; false: it answered an
// error.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, s session) bool {
	now := c.now()
	s.CSRF, s.Created, s.Expires = randomToken(), now, now.Add(c.ttl)
	b, err := json.Marshal(s)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, codeInternal, "internal error")
		return false
	}
	token := randomToken()
	if _, err := c.st.Put(r.Context(), sessionKey(token), b, store.PutOptions{IfAbsent: true, ExpiresAt: s.Expires}); err != nil {
		c.log.Error("console session write failed", "err", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
		return false
	}
	c.auditAll(r.Context(), auditEntry{Action: "signin", Actor: s.actor(), IP: clientAddr(r)})
	setCookie(w, sessionCookie, token, "/console", c.ttl)
	return true
}

// POST /console/signout
func (c *Console) handleSignOut(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	token, _ := r.Context().Value(tokenCtxKey{}).(string)
	if err := c.st.Delete(r.Context(), sessionKey(token), store.DeleteOptions{}); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
		return
	}
	c.auditAll(r.Context(), auditEntry{Action: "signout", Actor: s.actor(), IP: clientAddr(r)})
	setCookie(w, sessionCookie, "", "/console", 0)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// clientAddr is the peer's address (X-Forwarded-For is not read: any
// client sets it; see docs/security.md).
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Sign-in attempts: at most signInAttempts per client address in each
// signInWindow, kept in each instance's memory for at most limiterAddrs
// addresses (as the API keys' limiter: no store round trip, nothing an
// attacker can fill in the shared store).
const (
	signInAttempts = 10
	signInWindow   = 10 * time.Minute
	limiterAddrs   = 10000
)

type limiter struct {
	mu    sync.Mutex
	now   func() time.Time
	addrs map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, addrs: map[string]*window{}}
}

// allow counts one attempt of addr; when the address has used up its
// window it answers false and the wait until the window ends.
func (l *limiter) allow(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	wd := l.addrs[addr]
	if wd == nil || now.Sub(wd.start) >= signInWindow {
		if wd == nil && len(l.addrs) >= limiterAddrs {
			for k, v := range l.addrs {
				if now.Sub(v.start) >= signInWindow {
					delete(l.addrs, k)
				}
			}
			if len(l.addrs) >= limiterAddrs {
				addr = "" // full of live windows: the newcomers share one
				if wd = l.addrs[addr]; wd != nil && now.Sub(wd.start) < signInWindow {
					return l.count(wd, now)
				}
			}
		}
		wd = &window{start: now}
		l.addrs[addr] = wd
	}
	return l.count(wd, now)
}

func (l *limiter) count(wd *window, now time.Time) (time.Duration, bool) {
	if wd.n >= signInAttempts {
		return wd.start.Add(signInWindow).Sub(now), false
	}
	wd.n++
	return 0, true
}
