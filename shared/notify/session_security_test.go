package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

var testSessionSecret = []byte("0123456789abcdef0123456789abcdef")

// signed builds a token in wxnotify's format over any payload, signed with
// secret: what an attacker who knew the secret (or a bug) could make.
func signed(secret []byte, prefix string, payload []byte) string {
	body := prefix + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// jwt builds a JSON Web Token with the given header, signed with HMAC-SHA256
// under secret (or unsigned when secret is nil, as alg "none" tokens are).
func jwt(header string, payload []byte, secret []byte) string {
	body := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	if secret == nil {
		return body + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Every token wxnotify did not issue, or issued and expired, is refused
// with the same unauthorized error.
func TestSessionTokenForgeries(t *testing.T) {
	clock := newTestClock()
	sessions, err := notify.NewSessions(testSessionSecret, time.Hour, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := notify.NewSessions([]byte("another-secret-of-32-bytes-long!"), time.Hour, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	token, exp := sessions.Issue("wxapp", "o-user")
	if s, err := sessions.Verify(token); err != nil || s.OpenID != "o-user" || s.AppID != "wxapp" || !s.Expires.Equal(exp) {
		t.Fatalf("Verify of an issued token: got %+v, %v", s, err)
	}
	body, sig, _ := strings.Cut(strings.TrimPrefix(token, "wxn1."), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	future := clock.Now().Add(time.Hour).Unix()
	claims := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	tampered := claims(map[string]any{"a": "wxapp", "o": "o-admin", "iat": clock.Now().Unix(), "exp": future})
	resigned, _ := other.Issue("wxapp", "o-user")
	flip := []byte(sig)
	flip[0] ^= 1

	for _, tc := range []struct{ name, token string }{
		{"Empty", ""},
		{"PrefixOnly", "wxn1."},
		{"PrefixDot", "wxn1.."},
		{"NoSignature", "wxn1." + body},
		{"EmptySignature", "wxn1." + body + "."},
		{"FlippedSignature", "wxn1." + body + "." + string(flip)},
		{"TruncatedSignature", token[:len(token)-1]},
		{"HalfToken", token[:len(token)/2]},
		{"PaddedSignature", token + "="},
		{"DoublePaddedSignature", token + "=="},
		{"PaddedPayload", "wxn1." + body + "=." + sig},
		{"StdBase64Signature", "wxn1." + body + "." + base64.StdEncoding.EncodeToString(mustDecode(t, sig))},
		{"NonCanonicalLastChar", token[:len(token)-1] + sameBitsOtherChar(token[len(token)-1])},
		{"TrailingSegment", token + ".AAAA"},
		{"TrailingNewline", token + "\n"},
		{"TrailingNUL", token + "\x00"},
		{"LeadingSpace", " " + token},
		{"UpperCasePrefix", "WXN1." + body + "." + sig},
		{"OtherVersion", "wxn2." + body + "." + sig},
		{"NoPrefix", body + "." + sig},
		{"TamperedPayload", "wxn1." + base64.RawURLEncoding.EncodeToString(tampered) + "." + sig},
		{"ResignedWithAnotherSecret", resigned},
		{"JWTAlgNone", jwt(`{"alg":"none","typ":"JWT"}`, payload, nil)},
		{"JWTAlgNoneWithPrefix", "wxn1." + jwt(`{"alg":"none"}`, payload, nil)},
		{"JWTHS256SameSecret", jwt(`{"alg":"HS256","typ":"JWT"}`, payload, testSessionSecret)},
		{"JWTHS256WithPrefix", "wxn1." + jwt(`{"alg":"HS256"}`, payload, testSessionSecret)},
		{"OtherPrefixSameSecret", signed(testSessionSecret, "wxn2.", payload)},
		{"Oversized", "wxn1." + strings.Repeat("A", 2048) + "." + sig},
		// Signed with the right secret but not a session wxnotify issues.
		{"SignedNotJSON", signed(testSessionSecret, "wxn1.", []byte("not json"))},
		{"SignedNoOpenID", signed(testSessionSecret, "wxn1.", claims(map[string]any{"a": "wxapp", "exp": future}))},
		{"SignedNoAppID", signed(testSessionSecret, "wxn1.", claims(map[string]any{"o": "o-user", "exp": future}))},
		{"SignedNoExpiry", signed(testSessionSecret, "wxn1.", claims(map[string]any{"a": "wxapp", "o": "o-user"}))},
		{"SignedExpiryAsString", signed(testSessionSecret, "wxn1.", claims(map[string]any{"a": "wxapp", "o": "o-user", "exp": "9999999999"}))},
		{"SignedArray", signed(testSessionSecret, "wxn1.", []byte(`[1,2]`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sessions.Verify(tc.token)
			wantUnauthorized(t, s, err)
		})
	}

	t.Run("Expired", func(t *testing.T) {
		c := newTestClock()
		ss, _ := notify.NewSessions(testSessionSecret, time.Minute, c.Now)
		tk, _ := ss.Issue("wxapp", "o-user")
		c.advance(time.Minute - time.Second)
		if _, err := ss.Verify(tk); err != nil {
			t.Fatalf("a second before expiry: got %v, want valid", err)
		}
		c.advance(time.Second)
		s, err := ss.Verify(tk)
		wantUnauthorized(t, s, err)
		// The expiry cannot be pushed back without the secret.
		later := claims(map[string]any{"a": "wxapp", "o": "o-user", "iat": c.Now().Unix(), "exp": c.Now().Add(time.Hour).Unix()})
		_, oldSig, _ := strings.Cut(strings.TrimPrefix(tk, "wxn1."), ".")
		s, err = ss.Verify("wxn1." + base64.RawURLEncoding.EncodeToString(later) + "." + oldSig)
		wantUnauthorized(t, s, err)
	})
}

// sameBitsOtherChar returns another base64url character for the last one
// of a 32-byte value: its lowest bits are padding, so a lax decoder reads
// the same bytes (found by FuzzVerifySessionToken).
func sameBitsOtherChar(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[strings.IndexByte(alphabet, c)^1])
}

func mustDecode(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func wantUnauthorized(tb testing.TB, s notify.Session, err error) {
	tb.Helper()
	var e *notify.Error
	if !errors.As(err, &e) || e.Code != notify.CodeUnauthorized || e.Message != "invalid or expired session token" {
		tb.Fatalf("got %+v, %v; want unauthorized \"invalid or expired session token\"", s, err)
	}
	if s != (notify.Session{}) {
		tb.Fatalf("got session %+v with the error, want none", s)
	}
}

// FuzzVerifySessionToken: no input panics Verify or passes it unless it is
// a token the issuer signed, and a valid token with any byte changed fails.
func FuzzVerifySessionToken(f *testing.F) {
	// A fixed clock: every fuzzing process issues the same token, so that an
	// input kept from another run verifies only if it is that token.
	fixed := func() time.Time { return time.Unix(1800000000, 0) }
	sessions, err := notify.NewSessions(testSessionSecret, time.Hour, fixed)
	if err != nil {
		f.Fatal(err)
	}
	token, _ := sessions.Issue("wxapp", "o-user")
	f.Add(token, 0, byte(0))
	f.Add(token, len(token)-1, byte(1))
	f.Add("wxn1..", 3, byte('.'))
	f.Add(jwt(`{"alg":"none"}`, []byte(`{"a":"wxapp","o":"x","exp":9999999999}`), nil), 0, byte(0))
	f.Fuzz(func(t *testing.T, s string, at int, xor byte) {
		if sess, err := sessions.Verify(s); err == nil {
			// Only an issued token verifies; the fuzzer cannot forge HMAC,
			// so anything accepted must be a byte-for-byte issued token.
			if s != token {
				t.Fatalf("Verify(%q) accepted a token that was not issued: %+v", s, sess)
			}
		} else if notify.CodeOf(err) != notify.CodeUnauthorized {
			t.Fatalf("Verify(%q): got %v, want unauthorized", s, err)
		}
		if xor == 0 || len(token) == 0 {
			return
		}
		b := []byte(token)
		i := ((at % len(b)) + len(b)) % len(b)
		b[i] ^= xor
		if _, err := sessions.Verify(string(b)); err == nil && string(b) != token {
			t.Fatalf("Verify accepted the issued token with byte %d changed: %q", i, b)
		}
	})
}
