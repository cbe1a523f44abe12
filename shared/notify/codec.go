package notify

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The hand-written encodings of the records a send writes (a notification
// twice: its claim and its outcome; its fingerprint): byte for byte what
// encoding/json writes for them (TestCodecMatchesEncodingJSON compares
// both on generated and hostile values), without its reflection, its sorted
// copy of every map's keys and the allocations of time.Time's MarshalJSON.
// A value the fast path does not cover (a time outside years 0-9999 or not
// in UTC) goes through encoding/json, which stays the reference.

// codecBufs are scratch buffers of the encodings; what an encoding returns
// is a copy of exactly its size, since the store may keep it.
var codecBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func encodeWith(f func([]byte) []byte) []byte {
	bp := codecBufs.Get().(*[]byte)
	b := f((*bp)[:0])
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= 64<<10 {
		*bp = b
		codecBufs.Put(bp)
	}
	return out
}

// fastTime reports whether t encodes as encoding/json would with
// appendJSONTime.
func fastTime(t time.Time) bool {
	return t.Location() == time.UTC && t.Year() >= 0 && t.Year() <= 9999
}

// marshalNotification is json.Marshal(n).
func marshalNotification(n Notification) ([]byte, error) {
	if !fastTime(n.CreatedAt) || !fastTime(n.UpdatedAt) || (!n.LeaseUntil.IsZero() && !fastTime(n.LeaseUntil)) {
		return json.Marshal(n)
	}
	return encodeWith(func(b []byte) []byte { return appendNotification(b, n) }), nil
}

func appendNotification(b []byte, n Notification) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, n.ID)
	if n.IdempotencyKey != "" {
		b = append(b, `,"idempotencyKey":`...)
		b = appendJSONString(b, n.IdempotencyKey)
	}
	b = append(b, `,"fingerprint":`...)
	b = appendJSONString(b, n.Fingerprint)
	b = append(b, `,"to":`...)
	b = appendRecipient(b, n.To)
	if n.OpenID != "" {
		b = append(b, `,"openid":`...)
		b = appendJSONString(b, n.OpenID)
	}
	b = append(b, `,"template":`...)
	b = appendJSONString(b, n.Template)
	b = append(b, `,"templateId":`...)
	b = appendJSONString(b, n.TemplateID)
	b = append(b, `,"data":`...)
	b = appendStringMap(b, n.Data)
	if n.Page != "" {
		b = append(b, `,"page":`...)
		b = appendJSONString(b, n.Page)
	}
	b = append(b, `,"miniprogramState":`...)
	b = appendJSONString(b, n.MiniprogramState)
	b = append(b, `,"lang":`...)
	b = appendJSONString(b, n.Lang)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, string(n.Source))
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(n.Status))
	if n.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, n.Reason)
	}
	if n.Field != "" {
		b = append(b, `,"field":`...)
		b = appendJSONString(b, n.Field)
	}
	if n.Retryable {
		b = append(b, `,"retryable":true`...)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(n.Attempts), 10)
	b = append(b, `,"wechat":{"errcode":`...)
	b = strconv.AppendInt(b, int64(n.WeChat.Errcode), 10)
	if n.WeChat.Errmsg != "" {
		b = append(b, `,"errmsg":`...)
		b = appendJSONString(b, n.WeChat.Errmsg)
	}
	if n.WeChat.MsgID != "" {
		b = append(b, `,"msgid":`...)
		b = appendJSONString(b, n.WeChat.MsgID)
	}
	b = append(b, '}')
	if !n.LeaseUntil.IsZero() {
		b = append(b, `,"leaseUntil":`...)
		b = appendJSONTime(b, n.LeaseUntil)
	}
	if n.Claim != "" {
		b = append(b, `,"claim":`...)
		b = appendJSONString(b, n.Claim)
	}
	b = append(b, `,"createdAt":`...)
	b = appendJSONTime(b, n.CreatedAt)
	b = append(b, `,"updatedAt":`...)
	b = appendJSONTime(b, n.UpdatedAt)
	return append(b, '}')
}

func appendRecipient(b []byte, r Recipient) []byte {
	b = append(b, '{')
	if r.UserID != "" {
		b = append(b, `"userId":`...)
		b = appendJSONString(b, r.UserID)
	}
	if r.OpenID != "" {
		if r.UserID != "" {
			b = append(b, ',')
		}
		b = append(b, `"openid":`...)
		b = appendJSONString(b, r.OpenID)
	}
	return append(b, '}')
}

// appendStringMap writes m as encoding/json does: null when nil, the keys
// sorted.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var small [8]string
	keys := small[:0]
	if len(m) > len(small) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONTime writes t as time.Time's MarshalJSON does, for a t that
// passes fastTime.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const jsonHex = "0123456789abcdef"

// appendJSONString writes s as encoding/json does by default: quoted, with
// <, > and & escaped (HTML-safe), invalid UTF-8 as U+FFFD, U+2028 and
// U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// marshalTimelineEvent is json.Marshal(ev).
func marshalTimelineEvent(ev TimelineEvent) ([]byte, error) {
	if !fastTime(ev.At) {
		return json.Marshal(ev)
	}
	return encodeWith(func(b []byte) []byte {
		b = append(b, `{"type":`...)
		b = appendJSONString(b, ev.Type)
		b = append(b, `,"at":`...)
		b = appendJSONTime(b, ev.At)
		b = append(b, `,"templateId":`...)
		b = appendJSONString(b, ev.TemplateID)
		for _, f := range [...]struct{ name, v string }{{`,"status":`, ev.Status}, {`,"source":`, string(ev.Source)},
			{`,"notification":`, ev.Notification}, {`,"reason":`, ev.Reason}} {
			if f.v != "" {
				b = append(b, f.name...)
				b = appendJSONString(b, f.v)
			}
		}
		if ev.Errcode != 0 {
			b = append(b, `,"errcode":`...)
			b = strconv.AppendInt(b, int64(ev.Errcode), 10)
		}
		if ev.MsgID != "" {
			b = append(b, `,"msgid":`...)
			b = appendJSONString(b, ev.MsgID)
		}
		return append(b, '}')
	}), nil
}

// appendFingerprintPayload writes what fingerprint hashes: the JSON of
// {to, t, data, page, state, lang} as encoding/json writes it.
func appendFingerprintPayload(b []byte, req SendRequest, tmplID string) []byte {
	b = append(b, `{"to":`...)
	b = appendRecipient(b, req.To)
	b = append(b, `,"t":`...)
	b = appendJSONString(b, tmplID)
	b = append(b, `,"data":`...)
	b = appendStringMap(b, req.Data)
	b = append(b, `,"page":`...)
	b = appendJSONString(b, req.Page)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, req.MiniprogramState)
	b = append(b, `,"lang":`...)
	b = appendJSONString(b, req.Lang)
	return append(b, '}')
}
