package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Session is what a mini-program session token proves: this caller is the
// WeChat user openid of app appid, until Expires.
type Session struct {
	AppID   string
	OpenID  string
	Issued  time.Time
	Expires time.Time
}

// tokenPrefix versions the token format. The algorithm is fixed (HMAC-SHA256
// over the prefix and the payload) and never read from the token, so no
// "alg" swap is possible.
const tokenPrefix = "wxn1."

// MinSecretLen is the shortest accepted signing secret, in bytes.
const MinSecretLen = 32

var errBadToken = errors.New("invalid session token")

// tokenEncoding decodes strictly: the unused low bits of the last character
// must be zero, so that each token has exactly one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Sessions issues and verifies session tokens: HMAC-SHA256-signed, expiring,
// carrying appid and openid. The WeChat session_key never enters a token.
type Sessions struct {
	secret   []byte
	previous [][]byte // still verified during a rotation
	ttl      time.Duration
	now      func() time.Time
}

// NewSessions returns a token issuer. secret must be at least MinSecretLen
// bytes; ttl is the tokens' lifetime.
func NewSessions(secret []byte, ttl time.Duration, now func() time.Time) (*Sessions, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("session secret: must be at least 32 bytes")
	}
	if ttl <= 0 {
		return nil, errors.New("session ttl: must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{secret: append([]byte(nil), secret...), ttl: ttl, now: now}, nil
}

type tokenPayload struct {
	AppID   string `json:"a"`
	OpenID  string `json:"o"`
	Issued  int64  `json:"iat"`
	Expires int64  `json:"exp"`
}

// Issue returns a new token for the user and its expiry.
func (s *Sessions) Issue(appID, openID string) (string, time.Time) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	payload, _ := json.Marshal(tokenPayload{AppID: appID, OpenID: openID, Issued: now.Unix(), Expires: exp.Unix()})
	body := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body)), exp
}

// AcceptPrevious makes Verify also accept tokens signed with each of the
// previous secrets (during a rotation of the session secret); Issue keeps
// signing with the current one.
func (s *Sessions) AcceptPrevious(secrets ...[]byte) error {
	for _, p := range secrets {
		if len(p) < MinSecretLen {
			return errors.New("previous session secret: must be at least 32 bytes")
		}
		s.previous = append(s.previous, append([]byte(nil), p...))
	}
	return nil
}

// signedBy reports whether sig is body's MAC under the current secret or
// a previous one.
func (s *Sessions) signedBy(body string, sig []byte) bool {
	if hmac.Equal(sig, s.mac(body)) {
		return true
	}
	for _, p := range s.previous {
		if hmac.Equal(sig, macWith(p, body)) {
			return true
		}
	}
	return false
}

func (s *Sessions) mac(body string) []byte { return macWith(s.secret, body) }

func macWith(secret []byte, body string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// Verify checks a token's signature (in constant time) and expiry and
// returns its session. Every failure is an unauthorized *Error that does
// not say which check failed.
func (s *Sessions) Verify(token string) (Session, error) {
	unauthorized := &Error{Code: CodeUnauthorized, Message: "invalid or expired session token"}
	if len(token) > 1024 || !strings.HasPrefix(token, tokenPrefix) || !tokenChars(token[len(tokenPrefix):]) {
		return Session{}, unauthorized
	}
	dot := strings.LastIndexByte(token, '.')
	if dot <= len(tokenPrefix) {
		return Session{}, unauthorized
	}
	body, sig := token[:dot], token[dot+1:]
	got, err := tokenEncoding.DecodeString(sig)
	if err != nil || !s.signedBy(body, got) {
		unauthorized.Err = errBadToken
		return Session{}, unauthorized
	}
	raw, err := tokenEncoding.DecodeString(body[len(tokenPrefix):])
	if err != nil {
		return Session{}, unauthorized
	}
	var p tokenPayload
	if err := json.Unmarshal(raw, &p); err != nil || p.OpenID == "" || p.AppID == "" {
		return Session{}, unauthorized
	}
	if !s.now().Before(time.Unix(p.Expires, 0)) {
		unauthorized.Err = errors.New("session token expired")
		return Session{}, unauthorized
	}
	return Session{AppID: p.AppID, OpenID: p.OpenID, Issued: time.Unix(p.Issued, 0), Expires: time.Unix(p.Expires, 0)}, nil
}

// tokenChars reports whether s holds only the characters of an issued
// token: unpadded base64url and the dot. (The base64 decoder skips
// newlines, which would let one token be written several ways.)
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
