// Package secretstest runs local HTTP servers that speak the secret
// stores' APIs as package secrets uses them: AWS Secrets Manager's
// GetSecretValue (JSON protocol, Signature Version 4) and Tencent Cloud
// SSM's GetSecretValue (API 3.0, TC3-HMAC-SHA256). Each checks every
// request's signature with its own implementation of the provider's
// algorithm and answers as the provider does, its error shapes included,
// so that the loaders and the function binaries are tested against the
// protocol rather than against themselves.
package secretstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
)

// store holds the secrets of a fake and what it refuses.
type store struct {
	mu      sync.Mutex
	secrets map[string]string
	denied  map[string]bool
	calls   int
}

func newStore() store { return store{secrets: map[string]string{}, denied: map[string]bool{}} }

// Put sets the value of the secret id (its current version).
func (s *store) Put(id, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[id] = value
}

// Deny makes reads of id fail as a role without permission does.
func (s *store) Deny(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[id] = true
}

// Calls is the number of GetSecretValue requests received, valid or not.
func (s *store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *store) lookup(id string) (value string, found, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.denied[id] {
		return "", true, true
	}
	value, found = s.secrets[id]
	return value, found, false
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// authParams splits "ALG Credential=..., SignedHeaders=..., Signature=..."
func authParams(header, algorithm string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(header, algorithm+" ")
	if !ok {
		return nil, false
	}
	p := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, false
		}
		p[k] = v
	}
	return p, p["Credential"] != "" && p["SignedHeaders"] != "" && p["Signature"] != ""
}

// canonicalHeaders is "name:value\n" for each signed header, names as
// listed (lowercase, sorted by the signer), the host from r.Host.
func canonicalHeaders(r *http.Request, signed []string, lowerValues bool) string {
	var b strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		v = strings.Join(strings.Fields(v), " ")
		if lowerValues {
			v = strings.ToLower(v)
		}
		b.WriteString(h + ":" + v + "\n")
	}
	return b.String()
}
