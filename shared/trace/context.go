// Package trace is wxnotify's tracer: spans in the OpenTelemetry data
// model, propagated with W3C Trace Context (the traceparent and tracestate
// headers) and exported with OTLP/HTTP in its JSON encoding to the
// collector the standard OTEL_EXPORTER_OTLP_* variables name.
//
// It is written against the wire formats rather than with the official
// OpenTelemetry SDK, whose OTLP exporter alone would double a function's
// binary (docs/observability.md#traces has the figures). It is off unless
// an endpoint is configured: a nil *Tracer starts nil spans, and every
// method of a nil *Span does nothing, so the code paths cost a nil check.
package trace

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TraceID is a trace's 16-byte id; all zeros is invalid.
type TraceID [16]byte

// SpanID is a span's 8-byte id; all zeros is invalid.
type SpanID [8]byte

// IsValid reports whether id is not all zeros.
func (id TraceID) IsValid() bool { return id != TraceID{} }

// IsValid reports whether id is not all zeros.
func (id SpanID) IsValid() bool { return id != SpanID{} }

// String is id in lowercase hex.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// String is id in lowercase hex.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// FlagSampled is the sampled bit of the trace flags.
const FlagSampled byte = 0x01

// SpanContext is what crosses a process boundary: the trace and span ids,
// the trace flags and the vendors' tracestate.
type SpanContext struct {
	TraceID TraceID
	SpanID  SpanID
	Flags   byte
	// State is the tracestate header as received (validated), "" when
	// none.
	State string
	// Remote: it came from another process (a header, a stored value).
	Remote bool
}

// IsValid reports whether both ids are valid.
func (sc SpanContext) IsValid() bool { return sc.TraceID.IsValid() && sc.SpanID.IsValid() }

// Sampled reports whether the sampled flag is set.
func (sc SpanContext) Sampled() bool { return sc.Flags&FlagSampled != 0 }

// Traceparent is sc as a version-00 traceparent header value
// ("00-<trace-id>-<parent-id>-<flags>"), or "" for an invalid sc.
func (sc SpanContext) Traceparent() string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], sc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], sc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{sc.Flags})
	return string(b[:])
}

// ErrTraceparent is the error of a traceparent that is not one.
var ErrTraceparent = errors.New("invalid traceparent")

// ParseTraceparent parses a traceparent header value by the rules of W3C
// Trace Context: version 00 is exactly four dash-separated fields of
// lowercase hex (2-32-16-2); a higher version is read by its first four
// fields when whatever follows starts with a dash; version ff, uppercase
// hex and all-zero ids are invalid. The result is Remote.
func ParseTraceparent(s string) (SpanContext, error) {
	s = strings.TrimSpace(s)
	if len(s) < 55 {
		return SpanContext{}, fmt.Errorf("%w: %d characters, want 55", ErrTraceparent, len(s))
	}
	version, ok := hexByte(s[0:2])
	if !ok || version == 0xff {
		return SpanContext{}, fmt.Errorf("%w: version %q", ErrTraceparent, s[0:2])
	}
	switch {
	case version == 0 && len(s) != 55:
		return SpanContext{}, fmt.Errorf("%w: version 00 has exactly 55 characters", ErrTraceparent)
	case len(s) > 55 && s[55] != '-':
		return SpanContext{}, fmt.Errorf("%w: a later version's extra fields start with '-'", ErrTraceparent)
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return SpanContext{}, fmt.Errorf("%w: fields are not dash-separated", ErrTraceparent)
	}
	var sc SpanContext
	if !lowerHex(sc.TraceID[:], s[3:35]) || !sc.TraceID.IsValid() {
		return SpanContext{}, fmt.Errorf("%w: trace-id %q", ErrTraceparent, s[3:35])
	}
	if !lowerHex(sc.SpanID[:], s[36:52]) || !sc.SpanID.IsValid() {
		return SpanContext{}, fmt.Errorf("%w: parent-id %q", ErrTraceparent, s[36:52])
	}
	flags, ok := hexByte(s[53:55])
	if !ok {
		return SpanContext{}, fmt.Errorf("%w: trace-flags %q", ErrTraceparent, s[53:55])
	}
	if version == 0 {
		flags &= FlagSampled // the other bits are unused in version 00
	}
	sc.Flags, sc.Remote = flags, true
	return sc, nil
}

// hexByte decodes two lowercase hex digits.
func hexByte(s string) (byte, bool) {
	var b [1]byte
	return b[0], lowerHex(b[:], s)
}

// lowerHex decodes s (lowercase hex only, as the spec requires) into dst.
func lowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// maxTracestate bounds a kept tracestate: the spec lets a vendor drop a
// longer one.
const (
	maxTracestate        = 512
	maxTracestateMembers = 32
)

// ParseTracestate validates a tracestate header value: at most 32
// comma-separated list members "key=value" with the spec's key and value
// characters, no key twice, empty members allowed. It returns the value
// with the optional whitespace around members removed, or an error (a
// caller then drops the tracestate and keeps the traceparent).
func ParseTracestate(s string) (string, error) {
	if len(s) > maxTracestate {
		return "", fmt.Errorf("tracestate: longer than %d characters", maxTracestate)
	}
	var members []string
	var keys []string
	for m := range strings.SplitSeq(s, ",") {
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		key, value, ok := strings.Cut(m, "=")
		if !ok || !validKey(key) || !validValue(value) {
			return "", fmt.Errorf("tracestate: invalid list member %q", m)
		}
		for _, k := range keys {
			if k == key {
				return "", fmt.Errorf("tracestate: key %q twice", key)
			}
		}
		keys, members = append(keys, key), append(members, m)
	}
	if len(members) > maxTracestateMembers {
		return "", fmt.Errorf("tracestate: more than %d list members", maxTracestateMembers)
	}
	return strings.Join(members, ","), nil
}

// validKey: simple-key, or tenant-id "@" system-id; lowercase letters,
// digits and _ - * /, starting with a letter (a tenant id also with a
// digit).
func validKey(k string) bool {
	tenant, system, multi := strings.Cut(k, "@")
	if !multi {
		return len(k) <= 256 && keyPart(k, false)
	}
	return len(tenant) <= 241 && len(system) <= 14 && keyPart(tenant, true) && keyPart(system, false)
}

func keyPart(s string, digitFirst bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		lower, digit := c >= 'a' && c <= 'z', c >= '0' && c <= '9'
		if i == 0 && !lower && !(digitFirst && digit) {
			return false
		}
		if !lower && !digit && c != '_' && c != '-' && c != '*' && c != '/' {
			return false
		}
	}
	return true
}

// validValue: 1 to 256 printable ASCII characters except ',' and '=', not
// ending in a space.
func validValue(v string) bool {
	if v == "" || len(v) > 256 || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}

// FromHeaders is the remote span context of a request's traceparent and
// tracestate headers; ok is false when the traceparent is missing or
// invalid (the request then starts a new trace). An invalid tracestate is
// dropped.
func FromHeaders(traceparent, tracestate string) (sc SpanContext, ok bool) {
	if traceparent == "" {
		return SpanContext{}, false
	}
	sc, err := ParseTraceparent(traceparent)
	if err != nil {
		return SpanContext{}, false
	}
	if tracestate != "" {
		sc.State, _ = ParseTracestate(tracestate)
	}
	return sc, true
}

type remoteKey struct{}

// ContextWithRemote returns ctx with sc as the parent of the next span
// started in it that has no span of its own to descend from.
func ContextWithRemote(ctx context.Context, sc SpanContext) context.Context {
	return context.WithValue(ctx, remoteKey{}, sc)
}

// remoteFrom is the remote parent ContextWithRemote put in ctx.
func remoteFrom(ctx context.Context) (SpanContext, bool) {
	sc, ok := ctx.Value(remoteKey{}).(SpanContext)
	return sc, ok
}
