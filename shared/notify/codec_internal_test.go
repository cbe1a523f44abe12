package notify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The strings the generated values are made of: plain text, what JSON
// escapes, what encoding/json escapes to be HTML-safe, invalid UTF-8,
// U+2028/U+2029, CJK.
var codecPieces = []string{"", "a", "ntf_01J", "线索日报", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\b", "\f",
	"\n", "\r", "\t", "\x7f", "\xff", "\xc3", "\xe2\x80", "\u2028", "\u2029", "\U0001F600", "é", " ", "/", "'", "\ufffd"}

func codecString(r *rand.Rand) string {
	var b []byte
	for range r.IntN(6) {
		b = append(b, codecPieces[r.IntN(len(codecPieces))]...)
	}
	return string(b)
}

func codecTime(r *rand.Rand) time.Time {
	switch r.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(r.Int64N(1<<34), 0).UTC()
	case 2:
		return time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC() // nanoseconds, trailing zeros trimmed
	}
	return time.Now().UTC() // with a monotonic reading
}

func codecMap(r *rand.Rand) map[string]string {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	m := map[string]string{}
	for range r.IntN(12) { // beyond appendStringMap's 8 on the stack
		m[codecString(r)] = codecString(r)
	}
	return m
}

func codecNotification(r *rand.Rand) Notification {
	return Notification{ID: codecString(r), IdempotencyKey: codecString(r), Fingerprint: codecString(r),
		To: Recipient{UserID: codecString(r), OpenID: codecString(r)}, OpenID: codecString(r), Template: codecString(r),
		TemplateID: codecString(r), Data: codecMap(r), Page: codecString(r), MiniprogramState: codecString(r),
		Lang: codecString(r), Source: SourceKind(codecString(r)), Status: Status(codecString(r)), Reason: codecString(r),
		Field: codecString(r), Retryable: r.IntN(2) == 0, Attempts: r.IntN(5) - 1,
		WeChat:     WeChatResult{Errcode: r.IntN(90000) - 2, Errmsg: codecString(r), MsgID: codecString(r)},
		LeaseUntil: codecTime(r), Claim: codecString(r), CreatedAt: codecTime(r), UpdatedAt: codecTime(r)}
}

// TestCodecMatchesEncodingJSON: the hand-written encodings write what
// encoding/json writes, byte for byte, so that records stay what every
// version of the code reads and fingerprints what earlier ones stored.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 6))
	for i := range 20000 {
		n := codecNotification(r)
		if i%3 == 0 { // the common shape: empty optional fields
			n.IdempotencyKey, n.To.UserID, n.Page, n.Reason, n.Field, n.Claim = "", "", "", "", "", ""
		}
		want, _ := json.Marshal(n)
		got, err := marshalNotification(n)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("notification %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}
		req := SendRequest{To: n.To, Data: n.Data, Page: n.Page, MiniprogramState: n.MiniprogramState, Lang: n.Lang}
		if got, want := appendFingerprintPayload(nil, req, n.TemplateID), fingerprintJSON(req, n.TemplateID); !bytes.Equal(got, want) {
			t.Fatalf("fingerprint payload %d:\n got %s\nwant %s", i, got, want)
		}
		ev := TimelineEvent{Type: codecString(r), At: codecTime(r), TemplateID: codecString(r), Status: codecString(r),
			Source: Source(codecString(r)), Notification: codecString(r), Reason: codecString(r), Errcode: r.IntN(3) * (r.IntN(90000) - 2),
			MsgID: codecString(r)}
		want, _ = json.Marshal(ev)
		if got, err := marshalTimelineEvent(ev); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("timeline event %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}
	}
}

// TestCodecFallsBack: what the fast path does not cover is encoding/json's
// (a time in another zone; a year it refuses, with its error).
func TestCodecFallsBack(t *testing.T) {
	n := Notification{ID: "ntf_1", CreatedAt: time.Date(2026, 12, 7, 8, 0, 0, 0, time.FixedZone("CST", 8*3600)), UpdatedAt: time.Now()}
	want, _ := json.Marshal(n)
	if got, err := marshalNotification(n); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %s (%v), want %s", got, err, want)
	}
	n.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := marshalNotification(n); err == nil {
		t.Fatal("a year past 9999 encoded, want encoding/json's error")
	}
	ev := TimelineEvent{At: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := marshalTimelineEvent(ev); err == nil {
		t.Fatal("a year before 0 encoded, want encoding/json's error")
	}
	// The fingerprint is the hash of encoding/json's payload.
	req := SendRequest{To: Recipient{OpenID: "o<&>"}, Data: map[string]string{"thing1": "a\u2028b"}, Page: "p", MiniprogramState: "formal", Lang: "zh_CN"}
	if got, want := fingerprint(req, Template{ID: "tmpl"}), fingerprintOf(fingerprintJSON(req, "tmpl")); got != want {
		t.Fatalf("fingerprint %s, want %s", got, want)
	}
}

// fingerprintJSON is the payload fingerprint hashes, as encoding/json
// writes it (the reference of appendFingerprintPayload).
func fingerprintJSON(req SendRequest, tmplID string) []byte {
	b, _ := json.Marshal(struct {
		To    Recipient         `json:"to"`
		T     string            `json:"t"`
		Data  map[string]string `json:"data"`
		Page  string            `json:"page"`
		State string            `json:"state"`
		Lang  string            `json:"lang"`
	}{req.To, tmplID, req.Data, req.Page, req.MiniprogramState, req.Lang})
	return b
}

func fingerprintOf(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:16])
}

// TestListSortMatchesSprintf: the list's sort keys are what they were
// (fmt's %016d) for every time a record can have.
func TestListSortMatchesSprintf(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 7))
	for i := range 20000 {
		at := time.UnixMicro(r.Int64N(maxListMicros + 1))
		if i == 0 {
			at = time.UnixMicro(0)
		} else if i == 1 {
			at = time.UnixMicro(maxListMicros)
		}
		id := codecString(r)
		if got, want := listSort(at, id), fmt.Sprintf("%016d|%s", maxListMicros-at.UnixMicro(), id); got != want {
			t.Fatalf("listSort(%v) = %q, want %q", at, got, want)
		}
	}
}
