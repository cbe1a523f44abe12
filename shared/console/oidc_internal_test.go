package console

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestOIDCVerifyAlgorithms: only RS256 and ES256 verify; alg none, an HMAC
// signed with the public key, a key under 2048 bits and a JWKS key for
// encryption are refused; email_verified may be the string "true".
func TestOIDCVerifyAlgorithms(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	big2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	rsaJWK := func(kid, use string, k *rsa.PrivateKey) map[string]string {
		return map[string]string{"kty": "RSA", "kid": kid, "use": use, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
			rsaJWK("good", "sig", big2048), rsaJWK("small", "sig", small), rsaJWK("enc", "enc", big2048)}})
	}))
	defer jwks.Close()
	p, err := newOIDCProvider(OIDC{Issuer: "https://id.example.com", ClientID: "c", RedirectURL: "https://x/console/oidc/callback",
		Allowed: []string{"a@example.com"}}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	meta := &oidcMeta{JWKSURI: jwks.URL}
	claims := map[string]any{"iss": "https://id.example.com", "sub": "s", "aud": "c", "exp": now.Unix() + 60, "iat": now.Unix(),
		"nonce": "n", "email": "A@example.com", "email_verified": "true"}
	token := func(alg, kid string, key *rsa.PrivateKey) string {
		h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid})
		c, _ := json.Marshal(claims)
		in := b64(h) + "." + b64(c)
		sum := sha256.Sum256([]byte(in))
		var sig []byte
		if key != nil {
			if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err != nil {
				t.Fatal(err)
			}
		}
		return in + "." + b64(sig)
	}
	c, oerr := p.verify(context.Background(), meta, token("RS256", "good", big2048), "n")
	if oerr != nil {
		t.Fatalf("RS256 with a published key: %v", oerr)
	}
	if !c.verified() || !p.allows(c.Sub, c.Email, c.verified()) {
		t.Errorf("email_verified \"true\" and the email in another case: got verified %v", c.verified())
	}
	for name, tc := range map[string]struct {
		tok, reason string
	}{
		"none":      {token("none", "good", nil), "id_token_alg"},
		"HS256":     {token("HS256", "good", nil), "id_token_alg"},
		"small key": {token("RS256", "small", small), "unknown_key"},
		"enc key":   {token("RS256", "enc", big2048), "unknown_key"},
		"two parts": {"a.b", "id_token_malformed"},
	} {
		if _, oerr := p.verify(context.Background(), meta, tc.tok, "n"); oerr == nil || oerr.reason != tc.reason || oerr.status != http.StatusUnauthorized {
			t.Errorf("%s: got %v, want 401 %s", name, oerr, tc.reason)
		}
	}
}
