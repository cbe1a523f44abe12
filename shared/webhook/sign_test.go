package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

// The Standard Webhooks specification's published example (also in the
// test suites of its reference libraries).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// specSign is an independent signer written from the specification text,
// sharing no code with the package: the secret is the base64 after
// "whsec_", the signed content is "{id}.{timestamp}.{body}", the
// signature is "v1," and the base64 of its HMAC-SHA256.
func specSign(t *testing.T, secret, id string, ts int64, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("spec secret: %v", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// specVerify is the independent verifier: some space-separated v1 entry
// equals the expected signature.
func specVerify(t *testing.T, secret string, h http.Header, body string) bool {
	t.Helper()
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		t.Fatalf("timestamp header: %v", err)
	}
	want := specSign(t, secret, h.Get("webhook-id"), ts, body)
	for _, s := range strings.Split(h.Get("webhook-signature"), " ") {
		if s == want {
			return true
		}
	}
	return false
}

func TestSignMatchesSpecVector(t *testing.T) {
	if got := specSign(t, vecSecret, vecID, vecTS, vecBody); got != vecSig {
		t.Fatalf("independent signer gives %s, want %s: the test itself is wrong", got, vecSig)
	}
	got, err := webhook.Sign(vecSecret, vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("Sign = %s, want %s", got, vecSig)
	}
	// The reference libraries also take the secret without its prefix.
	bare, err := webhook.Sign(strings.TrimPrefix(vecSecret, "whsec_"), vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if err != nil || bare != vecSig {
		t.Fatalf("Sign without prefix = %s, %v", bare, err)
	}
}

func TestVerifySpecVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", vecID)
	h.Set("webhook-timestamp", strconv.Itoa(vecTS))
	h.Set("webhook-signature", "v1,bm9wZQ== v2,abc garbage "+vecSig)
	now := time.Unix(vecTS+60, 0)
	if err := webhook.Verify(vecSecret, h, []byte(vecBody), now, 0); err != nil {
		t.Fatalf("Verify(spec vector) = %v", err)
	}
	if err := webhook.Verify(vecSecret, h, []byte(`{"test": 2432232315}`), now, 0); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Fatalf("tampered body: %v", err)
	}
}

func TestSignAgreesWithIndependentImplementation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		secret := webhook.NewSecret()
		id := fmt.Sprintf("msg_%d_%x", i, r.Uint64())
		ts := time.Unix(r.Int64N(4e9), 0)
		body := make([]byte, r.IntN(300))
		for j := range body {
			body[j] = byte(r.UintN(256))
		}
		got, err := webhook.Sign(secret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		if want := specSign(t, secret, id, ts.Unix(), string(body)); got != want {
			t.Fatalf("case %d: Sign = %s, independent = %s", i, got, want)
		}
		h, err := webhook.Headers(id, ts, body, secret)
		if err != nil {
			t.Fatal(err)
		}
		if !specVerify(t, secret, h, string(body)) {
			t.Fatalf("case %d: independent verifier refuses Headers %v", i, h)
		}
		// And the other way: our verifier accepts what the independent
		// signer produced.
		h.Set("webhook-signature", specSign(t, secret, id, ts.Unix(), string(body)))
		if err := webhook.Verify(secret, h, body, ts, time.Minute); err != nil {
			t.Fatalf("case %d: Verify(independent signature) = %v", i, err)
		}
	}
}

func signedHeaders(t *testing.T, id string, ts time.Time, body string, secrets ...string) http.Header {
	t.Helper()
	h, err := webhook.Headers(id, ts, []byte(body), secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyRefusals(t *testing.T) {
	secret, other := webhook.NewSecret(), webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	body := `{"type":"notification.sent"}`
	good := signedHeaders(t, "msg_1", now, body, secret)
	without := func(name string) http.Header { h := good.Clone(); h.Del(name); return h }
	with := func(name, v string) http.Header { h := good.Clone(); h.Set(name, v); return h }
	cases := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{"valid", secret, good, body, now, 0, nil},
		{"wrong secret", other, good, body, now, 0, webhook.ErrNoMatchingSignature},
		{"tampered body", secret, good, body + " ", now, 0, webhook.ErrNoMatchingSignature},
		{"other id", secret, with("webhook-id", "msg_2"), body, now, 0, webhook.ErrNoMatchingSignature},
		{"other timestamp", secret, with("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10)), body, now, 0, webhook.ErrNoMatchingSignature},
		{"v2 only", secret, with("webhook-signature", strings.Replace(good.Get("webhook-signature"), "v1,", "v2,", 1)), body, now, 0, webhook.ErrNoMatchingSignature},
		{"no id", secret, without("webhook-id"), body, now, 0, webhook.ErrMissingHeaders},
		{"no timestamp", secret, without("webhook-timestamp"), body, now, 0, webhook.ErrMissingHeaders},
		{"no signature", secret, without("webhook-signature"), body, now, 0, webhook.ErrMissingHeaders},
		{"float timestamp", secret, with("webhook-timestamp", "1800000000.5"), body, now, 0, webhook.ErrInvalidTimestamp},
		{"too old, default 5 min", secret, good, body, now.Add(5*time.Minute + time.Second), 0, webhook.ErrTimestampTooOld},
		{"just in tolerance", secret, good, body, now.Add(5 * time.Minute), 0, nil},
		{"too new", secret, good, body, now.Add(-5*time.Minute - time.Second), 0, webhook.ErrTimestampTooNew},
		{"custom tolerance", secret, good, body, now.Add(20 * time.Second), 10 * time.Second, webhook.ErrTimestampTooOld},
		{"bad secret", "whsec_!!!", good, body, now, 0, webhook.ErrInvalidSecret},
		{"short key", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), good, body, now, 0, webhook.ErrInvalidSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(c.secret, c.h, []byte(c.body), c.now, c.tol)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldS, newS := webhook.NewSecret(), webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	both := signedHeaders(t, "msg_r", now, "{}", oldS, newS)
	if n := len(strings.Fields(both.Get("webhook-signature"))); n != 2 {
		t.Fatalf("two secrets give %d signatures", n)
	}
	for _, s := range []string{oldS, newS} {
		if err := webhook.Verify(s, both, []byte("{}"), now, 0); err != nil {
			t.Fatalf("a receiver knowing one secret refuses: %v", err)
		}
	}
	onlyOld := signedHeaders(t, "msg_r", now, "{}", oldS)
	if err := webhook.VerifyAny([]string{newS, oldS}, onlyOld, []byte("{}"), now, 0); err != nil {
		t.Fatalf("VerifyAny during rotation: %v", err)
	}
	if err := webhook.VerifyAny([]string{newS}, onlyOld, []byte("{}"), now, 0); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Fatalf("old signature with new secret only: %v", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secret %q has no whsec_ prefix", a)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) != 32 {
		t.Fatalf("secret key: %d bytes, %v", len(key), err)
	}
}

func TestSignBadInput(t *testing.T) {
	if _, err := webhook.Sign("", "msg", time.Now(), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("empty secret: %v", err)
	}
	if _, err := webhook.Sign(webhook.NewSecret(), "", time.Now(), nil); err == nil {
		t.Fatal("empty id signed")
	}
	if _, err := webhook.Headers("msg", time.Now(), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("no secrets: %v", err)
	}
	if err := webhook.VerifyAny(nil, http.Header{}, nil, time.Now(), 0); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("VerifyAny without secrets: %v", err)
	}
}
