package console_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIdP is an OpenID Connect issuer on loopback: discovery, an
// authorization endpoint that signs in its one account at once and
// redirects back with a code, a token endpoint that checks the client and
// the PKCE verifier, and a JWKS of keys the test generates.
type fakeIdP struct {
	t        *testing.T
	srv      *httptest.Server
	now      func() time.Time
	clientID string
	secret   string // "": a public client
	// iss, when set, is the issuer's URL in place of the server's own
	// (http://localhost:<port>, another site than 127.0.0.1).
	iss string
	// loginPage: the authorization endpoint shows a page whose link
	// (#idp-login) signs in, as an issuer's login form does; the redirect
	// back is then initiated by the issuer's page.
	loginPage bool

	mu sync.Mutex
	// published are the keys of the JWKS, by kid; signKid and signKey sign
	// the id_tokens (a key that is not published makes a bad signature).
	published map[string]crypto.Signer
	signKid   string
	signKey   crypto.Signer
	// claims change the id_token's claims before it is signed.
	claims func(map[string]any)
	// tokenError, when set, is the token endpoint's OAuth error (400).
	tokenError string
	codes      map[string]fakeCode
	jwksHits   int
	tokenCalls int
	// email, verified and sub are the account's.
	email    string
	verified bool
	sub      string
}

type fakeCode struct {
	challenge, nonce, redirect string
}

func newFakeIdP(t *testing.T, now func() time.Time, clientID, secret string) *fakeIdP {
	t.Helper()
	p := &fakeIdP{t: t, now: now, clientID: clientID, secret: secret, published: map[string]crypto.Signer{},
		codes: map[string]fakeCode{}, email: "alice@example.com", verified: true, sub: "user-alice"}
	k1 := newRSAKey(t)
	p.published["k1"] = k1
	p.signKid, p.signKey = "k1", k1
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /jwks", p.jwks)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issuer is the fake's issuer URL.
func (p *fakeIdP) issuer() string {
	if p.iss != "" {
		return p.iss
	}
	return p.srv.URL
}

func (p *fakeIdP) set(f func(p *fakeIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *fakeIdP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeFakeJSON(w, http.StatusOK, map[string]any{"issuer": p.issuer(), "authorization_endpoint": p.issuer() + "/authorize",
		"token_endpoint": p.issuer() + "/token", "jwks_uri": p.issuer() + "/jwks", "response_types_supported": []string{"code"},
		"code_challenge_methods_supported": []string{"S256"}})
}

func (p *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID || q.Get("scope") != "openid email" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	if p.loginPage && q.Get("confirmed") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>IdP</title><a id="idp-login" href="/authorize?` +
			template.HTMLEscapeString(r.URL.RawQuery) + `&amp;confirmed=1">Log in</a>`))
		return
	}
	code := strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(q.Get("state")))[:20], "=")
	p.mu.Lock()
	p.codes[code] = fakeCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
	p.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenCalls++
	if err := r.ParseForm(); err != nil {
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	switch {
	case p.secret != "" && (!basic || id != p.clientID || secret != p.secret):
		writeFakeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case p.secret == "" && (basic || r.PostForm.Get("client_id") != p.clientID):
		writeFakeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case p.tokenError != "":
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"error": p.tokenError})
		return
	}
	c, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != c.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	now := p.now()
	claims := map[string]any{"iss": p.issuer(), "sub": p.sub, "aud": p.clientID, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "nonce": c.nonce, "email": p.email, "email_verified": p.verified}
	if p.claims != nil {
		p.claims(claims)
	}
	writeFakeJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": signJWT(p.t, p.signKid, p.signKey, claims)})
}

func (p *fakeIdP) jwks(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksHits++
	keys := []map[string]string{}
	for kid, k := range p.published {
		switch pub := k.Public().(type) {
		case *rsa.PublicKey:
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())})
		case *ecdsa.PublicKey:
			raw, err := pub.Bytes()
			if err != nil {
				p.t.Error(err)
				return
			}
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
				"x": b64(raw[1:33]), "y": b64(raw[33:])})
		}
	}
	writeFakeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT makes a JWS of claims: RS256 with an RSA key, ES256 with a
// P-256 key.
func signJWT(t *testing.T, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	alg := "RS256"
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	h, err := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, sum[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func writeFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
