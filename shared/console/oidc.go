package console

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/store"
)

// Sign-in through an OpenID Connect issuer (WXN_CONSOLE_OIDC_*): the
// authorization code flow with PKCE (S256), a state and a nonce, the
// id_token's signature checked against the issuer's JWKS, and an
// allow-list. Standard library only. See docs/console.md.

// OIDC configures sign-in through an OpenID Connect issuer; Issuer ""
// means none.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string // "": a public client, PKCE only
	RedirectURL  string // the console's /console/oidc/callback
	// Allowed are the accounts that may sign in: emails (with an @,
	// lower case, verified emails only) or sub values.
	Allowed []string
	// Client makes the calls to the issuer (default: a client with a 10 s
	// timeout).
	Client *http.Client
}

const (
	oidcCookie     = "wxn_console_oidc" // the state of a sign-in under way
	oidcCookiePath = "/console/oidc"
	oidcFlowTTL    = 10 * time.Minute // from start to callback
	oidcSkew       = time.Minute      // allowed clock difference with the issuer
	oidcCacheTTL   = time.Hour        // discovery and keys, in memory
	oidcMaxBody    = 1 << 20
)

// oidcProvider is the configured issuer and what the console learned of it.
type oidcProvider struct {
	OIDC
	now func() time.Time

	mu        sync.Mutex
	meta      *oidcMeta
	metaAt    time.Time
	keys      map[string]crypto.PublicKey // by kid ("" for a key without one)
	keysAt    time.Time
	emails    map[string]bool
	subs      map[string]bool
	issuerURL *url.URL
}

// oidcMeta is the discovery document's part the console uses.
type oidcMeta struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

func newOIDCProvider(o OIDC, now func() time.Time) (*oidcProvider, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || !config.WebURL(u) {
		return nil, fmt.Errorf("console: OIDC issuer %q is not an https URL", o.Issuer)
	}
	if o.ClientID == "" || o.RedirectURL == "" || len(o.Allowed) == 0 {
		return nil, errors.New("console: OIDC needs a client id, a redirect URL and an allow-list")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	p := &oidcProvider{OIDC: o, now: now, emails: map[string]bool{}, subs: map[string]bool{}, issuerURL: u}
	for _, a := range o.Allowed {
		if strings.Contains(a, "@") {
			p.emails[strings.ToLower(a)] = true
		} else {
			p.subs[a] = true
		}
	}
	return p, nil
}

// Host is the issuer's host, for the sign-in button.
func (p *oidcProvider) Host() string { return p.issuerURL.Host }

// allows reports whether the identity is on the allow-list: its sub, or
// its email when the issuer says it is verified.
func (p *oidcProvider) allows(sub, email string, verified bool) bool {
	return p.subs[sub] || (verified && email != "" && p.emails[strings.ToLower(email)])
}

// oidcError is a refused sign-in: its status, code, the reason the audit
// log records and the message shown.
type oidcError struct {
	status int
	code   string
	reason string
	msg    string
}

func (e *oidcError) Error() string { return e.reason + ": " + e.msg }

func refuse(status int, code, reason, msg string) *oidcError {
	return &oidcError{status: status, code: code, reason: reason, msg: msg}
}

func badRequest(reason, msg string) *oidcError {
	return refuse(http.StatusBadRequest, codeBadRequest, reason, msg)
}

func unauthorized(reason, msg string) *oidcError {
	return refuse(http.StatusUnauthorized, codeUnauthorized, reason, msg)
}

func idpUnavailable(reason, msg string) *oidcError {
	return refuse(http.StatusBadGateway, codeIdPUnavailable, reason, msg)
}

// codeIdPUnavailable: the issuer did not answer, or not as OIDC says.
const codeIdPUnavailable = "idp_unavailable"

// codeForbidden: signed in at the issuer, but not allowed here.
const codeForbidden = "forbidden"

// getJSON fetches u into v: status 200, at most oidcMaxBody bytes.
func (p *oidcProvider) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.Client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, oidcMaxBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// discover returns the issuer's discovery document, cached for
// oidcCacheTTL. Its issuer must be the configured one exactly and its
// endpoints https (or http on loopback).
func (p *oidcProvider) discover(ctx context.Context) (*oidcMeta, *oidcError) {
	p.mu.Lock()
	if p.meta != nil && p.now().Sub(p.metaAt) < oidcCacheTTL {
		m := p.meta
		p.mu.Unlock()
		return m, nil
	}
	p.mu.Unlock()
	var m oidcMeta
	if err := p.getJSON(ctx, strings.TrimSuffix(p.Issuer, "/")+"/.well-known/openid-configuration", &m); err != nil {
		return nil, idpUnavailable("discovery_failed", "the issuer's discovery document could not be read: "+err.Error())
	}
	if m.Issuer != p.Issuer {
		return nil, idpUnavailable("discovery_issuer", fmt.Sprintf("the discovery document names the issuer %q, not %q", m.Issuer, p.Issuer))
	}
	for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.JWKSURI} {
		if u, err := url.Parse(e); err != nil || !config.WebURL(u) {
			return nil, idpUnavailable("discovery_endpoint", fmt.Sprintf("the discovery document's endpoint %q is not an https URL", e))
		}
	}
	p.mu.Lock()
	p.meta, p.metaAt = &m, p.now()
	p.mu.Unlock()
	return &m, nil
}

// jwk is one key of a JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKey is k as an *rsa.PublicKey (2048 bits or more) or a P-256
// *ecdsa.PublicKey; false for any other key.
func (k jwk) publicKey() (crypto.PublicKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return nil, false
	}
	switch k.Kty {
	case "RSA":
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return nil, false
		}
		return pub, true
	case "EC":
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if k.Crv != "P-256" || err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, false
		}
		return pub, true
	}
	return nil, false
}

// fetchKeys reads the issuer's JWKS into the cache.
func (p *oidcProvider) fetchKeys(ctx context.Context, jwksURI string) *oidcError {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := p.getJSON(ctx, jwksURI, &set); err != nil {
		return idpUnavailable("jwks_failed", "the issuer's keys could not be read: "+err.Error())
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if pub, ok := k.publicKey(); ok {
			keys[k.Kid] = pub
		}
	}
	p.mu.Lock()
	p.keys, p.keysAt = keys, p.now()
	p.mu.Unlock()
	return nil
}

// key returns the issuer's key kid: from the cache, else (an unknown kid,
// or a cache older than oidcCacheTTL) from the JWKS fetched once more.
func (p *oidcProvider) key(ctx context.Context, jwksURI, kid string) (crypto.PublicKey, *oidcError) {
	lookup := func() (crypto.PublicKey, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.keys == nil || p.now().Sub(p.keysAt) >= oidcCacheTTL {
			return nil, false
		}
		if k, ok := p.keys[kid]; ok {
			return k, true
		}
		if kid == "" && len(p.keys) == 1 {
			for _, k := range p.keys {
				return k, true
			}
		}
		return nil, false
	}
	if k, ok := lookup(); ok {
		return k, nil
	}
	if err := p.fetchKeys(ctx, jwksURI); err != nil {
		return nil, err
	}
	if k, ok := lookup(); ok {
		return k, nil
	}
	return nil, unauthorized("unknown_key", fmt.Sprintf("the id_token is signed with a key (kid %q) the issuer does not publish", kid))
}

// idClaims are the id_token's claims the console checks.
type idClaims struct {
	Iss           string          `json:"iss"`
	Sub           string          `json:"sub"`
	Aud           json.RawMessage `json:"aud"`
	Azp           string          `json:"azp"`
	Exp           *float64        `json:"exp"`
	Iat           *float64        `json:"iat"`
	Nbf           *float64        `json:"nbf"`
	Nonce         string          `json:"nonce"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
}

// verified reports whether email_verified is true (some issuers send the
// string "true").
func (c idClaims) verified() bool {
	var b bool
	if json.Unmarshal(c.EmailVerified, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(c.EmailVerified, &s) == nil && s == "true"
}

func (c idClaims) audiences() ([]string, bool) {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(c.Aud, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

// verify checks the id_token: a JWS signed RS256 or ES256 with one of the
// issuer's keys, of the issuer, for this client, live, with our nonce.
func (p *oidcProvider) verify(ctx context.Context, meta *oidcMeta, token, nonce string) (*idClaims, *oidcError) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, unauthorized("id_token_malformed", "the id_token is not a signed JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil {
		return nil, unauthorized("id_token_malformed", "the id_token is not a signed JWT")
	}
	if hdr.Alg != "RS256" && hdr.Alg != "ES256" {
		return nil, unauthorized("id_token_alg", fmt.Sprintf("the id_token's algorithm %q is not RS256 or ES256", hdr.Alg))
	}
	pub, oerr := p.key(ctx, meta.JWKSURI, hdr.Kid)
	if oerr != nil {
		return nil, oerr
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		ok = hdr.Alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil
	case *ecdsa.PublicKey:
		if hdr.Alg == "ES256" && len(sig) == 64 {
			ok = ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}
	}
	if !ok {
		return nil, unauthorized("bad_signature", "the id_token's signature does not verify with the issuer's key")
	}
	var c idClaims
	if err := json.Unmarshal(cb, &c); err != nil {
		return nil, unauthorized("id_token_malformed", "the id_token's claims are not a JSON object")
	}
	if c.Iss != p.Issuer {
		return nil, unauthorized("wrong_issuer", fmt.Sprintf("the id_token's issuer is %q, not %q", c.Iss, p.Issuer))
	}
	aud, ok := c.audiences()
	if !ok || !slices.Contains(aud, p.ClientID) || ((len(aud) > 1 || c.Azp != "") && c.Azp != p.ClientID) {
		return nil, unauthorized("wrong_audience", "the id_token is not for this console's client")
	}
	now := p.now()
	at := func(f *float64) time.Time {
		sec, frac := math.Modf(*f)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	switch {
	case c.Exp == nil || !now.Before(at(c.Exp).Add(oidcSkew)):
		return nil, unauthorized("expired", "the id_token has expired (or has no exp)")
	case c.Iat == nil || at(c.Iat).After(now.Add(oidcSkew)):
		return nil, unauthorized("not_yet_valid", "the id_token is issued in the future (or has no iat)")
	case c.Nbf != nil && at(c.Nbf).After(now.Add(oidcSkew)):
		return nil, unauthorized("not_yet_valid", "the id_token is not valid yet")
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 {
		return nil, unauthorized("wrong_nonce", "the id_token's nonce is not this sign-in's")
	}
	if c.Sub == "" {
		return nil, unauthorized("id_token_malformed", "the id_token has no sub")
	}
	return &c, nil
}

// exchange trades the code for the id_token at the token endpoint:
// client_secret_basic with a secret, else the client id alone; the PKCE
// verifier always.
func (p *oidcProvider) exchange(ctx context.Context, meta *oidcMeta, code, verifier string) (string, *oidcError) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {p.RedirectURL},
		"code_verifier": {verifier}}
	if p.ClientSecret == "" {
		form.Set("client_id", p.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", idpUnavailable("token_failed", "the token endpoint could not be called")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return "", idpUnavailable("token_failed", "the token endpoint did not answer: "+err.Error())
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, oidcMaxBody))
	if err != nil {
		return "", idpUnavailable("token_failed", "the token endpoint's answer could not be read")
	}
	var tr struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(b, &tr)
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		e := tr.Error
		if e == "" {
			e = strconv.Itoa(resp.StatusCode)
		}
		return "", unauthorized("token_refused", fmt.Sprintf("the token endpoint refused the code (%.64s)", e))
	case resp.StatusCode != http.StatusOK:
		return "", idpUnavailable("token_failed", fmt.Sprintf("the token endpoint answered %d", resp.StatusCode))
	case tr.IDToken == "":
		return "", unauthorized("token_refused", "the token endpoint's answer has no id_token")
	}
	return tr.IDToken, nil
}

// oidcFlow is a sign-in under way, in the store under its state's hash.
type oidcFlow struct {
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Created  time.Time `json:"created"`
}

func oidcFlowKey(state string) store.Key {
	sum := sha256.Sum256([]byte(state))
	return store.Key{Partition: "console|oidc|" + hex.EncodeToString(sum[:]), Sort: "s"}
}

// oidcIdentity is who signed in through the issuer, as a session keeps it.
type oidcIdentity struct {
	Sub      string `json:"sub"`
	Email    string `json:"email,omitempty"`
	Verified bool   `json:"verified,omitempty"`
}

// oidcFingerprint is the session's Key of an identity: "oidc:" and 12 hex
// digits of the SHA-256 of the issuer and sub.
func oidcFingerprint(issuer, sub string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + sub))
	return "oidc:" + hex.EncodeToString(sum[:6])
}

// name is how the audit log shows the identity: "oidc <email>", else
// "oidc sub <sub>".
func (id oidcIdentity) name() string {
	if id.Email != "" {
		return "oidc " + id.Email
	}
	return "oidc sub " + id.Sub
}

// oidcSessionLive reports whether the session s of an OIDC identity may go
// on: OIDC still configured and the identity still on the allow-list.
func (c *Console) oidcSessionLive(s *session) bool {
	return c.oidc != nil && s.OIDC != nil && s.Key == oidcFingerprint(c.oidc.Issuer, s.OIDC.Sub) &&
		c.oidc.allows(s.OIDC.Sub, s.OIDC.Email, s.OIDC.Verified)
}

// rateLimited counts a sign-in attempt of the client; false: answered 429.
func (c *Console) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	if wait, ok := c.limiter.allow(clientAddr(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		c.fail(w, r, http.StatusTooManyRequests, codeRateLimited, "too many sign-in attempts from this address, retry later")
		return true
	}
	return false
}

// oidcFail answers and audits a refused sign-in.
func (c *Console) oidcFail(w http.ResponseWriter, r *http.Request, e *oidcError, who string) {
	if e.status >= 500 {
		c.log.Warn("console OIDC sign-in failed", "reason", e.reason, "err", e.msg)
	}
	c.auditAll(r.Context(), auditEntry{Action: "signin_failed", Actor: who, IP: clientAddr(r), Result: "oidc " + e.reason})
	setCookie(w, oidcCookie, "", oidcCookiePath, 0)
	c.fail(w, r, e.status, e.code, e.msg)
}

// GET /console/oidc/start: to the issuer's authorization endpoint, with a
// new state, nonce and PKCE challenge.
func (c *Console) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no OpenID Connect issuer is configured (WXN_CONSOLE_OIDC_ISSUER)")
		return
	}
	if c.rateLimited(w, r) {
		return
	}
	meta, oerr := c.oidc.discover(r.Context())
	if oerr != nil {
		c.oidcFail(w, r, oerr, "")
		return
	}
	state, flow := randomToken(), oidcFlow{Nonce: randomToken(), Verifier: randomToken(), Created: c.now()}
	b, err := json.Marshal(flow)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, codeInternal, "internal error")
		return
	}
	if _, err := c.st.Put(r.Context(), oidcFlowKey(state), b, store.PutOptions{IfAbsent: true, ExpiresAt: flow.Created.Add(oidcFlowTTL)}); err != nil {
		c.log.Error("console OIDC state write failed", "err", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
		return
	}
	challenge := sha256.Sum256([]byte(flow.Verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.oidc.ClientID}, "redirect_uri": {c.oidc.RedirectURL},
		"scope": {"openid email"}, "state": {state}, "nonce": {flow.Nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
	target, _ := url.Parse(meta.AuthorizationEndpoint)
	if target.RawQuery != "" {
		target.RawQuery += "&" + q.Encode()
	} else {
		target.RawQuery = q.Encode()
	}
	// Lax, not Strict: the issuer's redirect back is a navigation from
	// another site, which carries Lax cookies and not Strict ones.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state, Path: oidcCookiePath, MaxAge: int(oidcFlowTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}

// GET /console/oidc/callback?code=&state=: the issuer's answer.
func (c *Console) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no OpenID Connect issuer is configured (WXN_CONSOLE_OIDC_ISSUER)")
		return
	}
	if c.rateLimited(w, r) {
		return
	}
	q := r.URL.Query()
	// The pages answered show no link with the code and state (the
	// language switch keeps the query).
	r = r.WithContext(r.Context())
	r.URL = &url.URL{Path: r.URL.Path}
	state := q.Get("state")
	ck, err := r.Cookie(oidcCookie)
	switch {
	case !validToken(state):
		c.oidcFail(w, r, badRequest("state_missing", "the callback has no valid state: start the sign-in again"), "")
		return
	case err != nil || !validToken(ck.Value):
		c.oidcFail(w, r, badRequest("state_cookie_missing", "this browser did not start this sign-in (or it took over 10 minutes): start it again"), "")
		return
	case subtle.ConstantTimeCompare([]byte(state), []byte(ck.Value)) != 1:
		c.oidcFail(w, r, badRequest("state_mismatch", "the callback's state is not this browser's sign-in: start it again"), "")
		return
	}
	// The state is used once: read, then deleted at the version read, so
	// that of two callbacks with it only one goes on.
	it, err := c.st.Get(r.Context(), oidcFlowKey(state))
	if err == nil {
		err = c.st.Delete(r.Context(), oidcFlowKey(state), store.DeleteOptions{IfVersion: it.Version})
	}
	var flow oidcFlow
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict):
		c.oidcFail(w, r, badRequest("state_unknown", "this sign-in is used already or has expired: start it again"), "")
		return
	case err != nil:
		c.fail(w, r, http.StatusServiceUnavailable, codeUnavailable, "the store did not answer")
		return
	case json.Unmarshal(it.Value, &flow) != nil || !c.now().Before(flow.Created.Add(oidcFlowTTL)):
		c.oidcFail(w, r, badRequest("state_unknown", "this sign-in is used already or has expired: start it again"), "")
		return
	}
	if e := q.Get("error"); e != "" {
		c.oidcFail(w, r, unauthorized("idp_error", fmt.Sprintf("the issuer refused the sign-in (%.64s)", e)), "")
		return
	}
	code := q.Get("code")
	if code == "" {
		c.oidcFail(w, r, badRequest("code_missing", "the callback has no code"), "")
		return
	}
	meta, oerr := c.oidc.discover(r.Context())
	if oerr != nil {
		c.oidcFail(w, r, oerr, "")
		return
	}
	token, oerr := c.oidc.exchange(r.Context(), meta, code, flow.Verifier)
	if oerr != nil {
		c.oidcFail(w, r, oerr, "")
		return
	}
	claims, oerr := c.oidc.verify(r.Context(), meta, token, flow.Nonce)
	if oerr != nil {
		c.oidcFail(w, r, oerr, "")
		return
	}
	id := oidcIdentity{Sub: claims.Sub, Email: claims.Email, Verified: claims.verified()}
	if !c.oidc.allows(id.Sub, id.Email, id.Verified) {
		e := refuse(http.StatusForbidden, codeForbidden, "not_allowed", "this account is not on the console's allow-list (WXN_CONSOLE_OIDC_ALLOWED)")
		if id.Email != "" && !id.Verified && c.oidc.emails[strings.ToLower(id.Email)] {
			e = refuse(http.StatusForbidden, codeForbidden, "email_not_verified", "the issuer does not say this account's email is verified")
		}
		c.oidcFail(w, r, e, id.name())
		return
	}
	setCookie(w, oidcCookie, "", oidcCookiePath, 0)
	s := session{Key: oidcFingerprint(c.oidc.Issuer, id.Sub), Actor: id.name(), OIDC: &id}
	if !c.startSession(w, r, s) {
		return
	}
	// A page that moves on, not a redirect: the session cookie is
	// SameSite=Strict, and a redirect would still belong to the issuer's
	// cross-site navigation, which does not carry it.
	c.render(w, r, http.StatusOK, "oidc", &page{Data: "/console/apps/" + url.PathEscape(c.def) + "/overview"})
}
