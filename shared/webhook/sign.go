package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret: the rest is the base64
// (standard alphabet, padded) of the key bytes.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the
// verifier's clock, either way, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Key sizes the Standard Webhooks specification recommends.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
	newKeyBytes = 32
)

// maxSignatures bounds how many entries of a webhook-signature header are
// examined, so a hostile header cannot make verification expensive.
const maxSignatures = 16

// Verification and signing errors.
var (
	ErrInvalidSecret       = errors.New("webhook: invalid signing secret")
	ErrMissingHeaders      = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp    = errors.New("webhook: webhook-timestamp is not an integer of Unix seconds")
	ErrTimestampTooOld     = errors.New("webhook: webhook-timestamp is too old")
	ErrTimestampTooNew     = errors.New("webhook: webhook-timestamp is too far in the future")
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// NewSecret returns a fresh signing secret: "whsec_" and the base64 of
// 32 random bytes.
func NewSecret() string {
	key := make([]byte, newKeyBytes)
	// crypto/rand.Read never returns an error (it crashes the program
	// if the system's randomness is unavailable).
	_, _ = rand.Read(key)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// decodeSecret returns the key bytes of a secret, like the Standard
// Webhooks reference libraries: the "whsec_" prefix is stripped if
// present and the rest is base64-decoded. The key must be 24 to 64 bytes.
func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not whsec_ followed by base64", ErrInvalidSecret)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

// mac computes the HMAC-SHA256 of "{id}.{timestamp}.{body}".
func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the signature "v1,<base64 HMAC-SHA256>" of one message
// under one secret, as it appears in a webhook-signature header.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("webhook: sign: empty message id")
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

// Headers returns the three Standard Webhooks headers of one message. With
// several secrets (during a rotation) webhook-signature lists one
// signature per secret, separated by spaces.
func Headers(id string, ts time.Time, body []byte, secrets ...string) (http.Header, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret", ErrInvalidSecret)
	}
	sigs := make([]string, 0, len(secrets))
	for i, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		sigs = append(sigs, sig)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h, nil
}

// Verify checks a received webhook against one secret: the headers are
// present, the timestamp is within tolerance of now (DefaultTolerance if
// tolerance is not positive) and one of the v1 signatures of the header
// matches, compared in constant time.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return VerifyAny([]string{secret}, h, body, now, tolerance)
}

// VerifyAny is Verify with several accepted secrets, for a receiver in the
// middle of a secret rotation: any signature matching any secret passes.
func VerifyAny(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret", ErrInvalidSecret)
	}
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		k, err := decodeSecret(s)
		if err != nil {
			return fmt.Errorf("secret %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	id, tsText, sigHeader := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigHeader == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if err := checkTimestamp(unix, now, tolerance); err != nil {
		return err
	}
	given := parseSignatures(sigHeader)
	matched := 0
	for _, k := range keys {
		want := mac(k, id, unix, body)
		for _, g := range given {
			// Every pair is compared in constant time and the loop does
			// not stop early, so timing does not tell which one matched.
			if hmac.Equal(want, g) {
				matched++
			}
		}
	}
	if matched == 0 {
		return ErrNoMatchingSignature
	}
	return nil
}

// checkTimestamp refuses a timestamp further than tolerance from now.
func checkTimestamp(unix int64, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tol := int64(tolerance / time.Second)
	nowUnix := now.Unix()
	switch {
	case unix < nowUnix-tol:
		return ErrTimestampTooOld
	case unix > nowUnix+tol:
		return ErrTimestampTooNew
	}
	return nil
}

// parseSignatures returns the decoded MACs of the v1 entries of a
// webhook-signature header; other versions and malformed entries are
// ignored, as the specification asks.
func parseSignatures(header string) [][]byte {
	var out [][]byte
	for i, entry := range strings.Fields(header) {
		if i >= maxSignatures {
			break
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(raw) != sha256.Size {
			continue
		}
		out = append(out, raw)
	}
	return out
}
