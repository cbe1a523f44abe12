package trace

import (
	"errors"
	"strings"
	"testing"
)

// The examples of W3C Trace Context (https://www.w3.org/TR/trace-context/).
const (
	specTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	specSpanID  = "00f067aa0ba902b7"
)

func TestParseTraceparentValid(t *testing.T) {
	for _, tc := range []struct {
		in      string
		sampled bool
		flags   byte
	}{
		{"00-" + specTraceID + "-" + specSpanID + "-01", true, 0x01},
		{"00-" + specTraceID + "-" + specSpanID + "-00", false, 0x00},
		// Version 00 knows only the sampled flag: the other bits are cleared.
		{"00-" + specTraceID + "-" + specSpanID + "-09", true, 0x01},
		{"00-" + specTraceID + "-" + specSpanID + "-08", false, 0x00},
		// A later version is read by its version-00 fields.
		{"01-" + specTraceID + "-" + specSpanID + "-01", true, 0x01},
		{"cc-" + specTraceID + "-" + specSpanID + "-01-what-the-future-will-be-like", true, 0x01},
		// Optional whitespace around the header value.
		{" 00-" + specTraceID + "-" + specSpanID + "-01\t", true, 0x01},
	} {
		sc, err := ParseTraceparent(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if sc.TraceID.String() != specTraceID || sc.SpanID.String() != specSpanID || sc.Sampled() != tc.sampled || sc.Flags != tc.flags || !sc.Remote {
			t.Errorf("%q: got %s %s flags %02x remote %v", tc.in, sc.TraceID, sc.SpanID, sc.Flags, sc.Remote)
		}
	}
}

func TestParseTraceparentInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"00",
		"00-" + specTraceID + "-" + specSpanID, // no flags
		"00-" + specTraceID + "-" + specSpanID + "-01-",                        // version 00 with more
		"00-" + specTraceID + "-" + specSpanID + "-01-extra",                   // version 00 with more
		"ff-" + specTraceID + "-" + specSpanID + "-01",                         // version ff is invalid
		"0g-" + specTraceID + "-" + specSpanID + "-01",                         // not hex
		"00-" + strings.ToUpper(specTraceID) + "-" + specSpanID + "-01",        // uppercase trace id
		"00-" + specTraceID + "-" + strings.ToUpper(specSpanID) + "-01",        // uppercase parent id
		"00-" + specTraceID + "-" + specSpanID + "-0A",                         // uppercase flags
		"00-00000000000000000000000000000000-" + specSpanID + "-01",            // all-zero trace id
		"00-" + specTraceID + "-0000000000000000-01",                           // all-zero parent id
		"00_" + specTraceID + "_" + specSpanID + "_01",                         // wrong delimiters
		"00-" + specTraceID[:31] + "-" + specSpanID + "0-01",                   // shifted fields
		"00-" + specTraceID + "-" + specSpanID + "-0x",                         // flags not hex
		"cc-" + specTraceID + "-" + specSpanID + "-01.what-the-future-will-be", // later version, extra not after '-'
		"00-" + specTraceID[:30] + "zz-" + specSpanID + "-01",                  // trace id not hex
		"00-" + specTraceID + "-" + specSpanID[:15] + "g-01",                   // parent id not hex
		"00-" + specTraceID + "-" + specSpanID + "-01x",                        // 56 characters
	} {
		sc, err := ParseTraceparent(in)
		if err == nil {
			t.Errorf("%q: accepted as %s", in, sc.Traceparent())
			continue
		}
		if !errors.Is(err, ErrTraceparent) {
			t.Errorf("%q: error %v is not ErrTraceparent", in, err)
		}
	}
}

func TestTraceparentFormat(t *testing.T) {
	in := "00-" + specTraceID + "-" + specSpanID + "-01"
	sc, err := ParseTraceparent(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Traceparent(); got != in {
		t.Errorf("Traceparent() = %q, want %q", got, in)
	}
	sc.Flags = 0
	if got := sc.Traceparent(); got != "00-"+specTraceID+"-"+specSpanID+"-00" {
		t.Errorf("unsampled: %q", got)
	}
	if got := (SpanContext{SpanID: sc.SpanID}).Traceparent(); got != "" {
		t.Errorf("invalid context formats as %q, want empty", got)
	}
	// Every id the tracer makes formats to a traceparent that parses back.
	for range 100 {
		sc := SpanContext{TraceID: newTraceID(), SpanID: newSpanID(), Flags: FlagSampled}
		back, err := ParseTraceparent(sc.Traceparent())
		if err != nil || back.TraceID != sc.TraceID || back.SpanID != sc.SpanID || back.Flags != sc.Flags {
			t.Fatalf("%s: round trip %v %v", sc.Traceparent(), back, err)
		}
	}
}

func TestParseTracestate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{" rojo=00f067aa0ba902b7 ,\tcongo=t61rcWkgMzE ", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{"rojo=1,,congo=2", "rojo=1,congo=2"}, // empty members are allowed
		{"fw529a3039@dt=ZGQ4NjIyNWQtYTU3OC00YmU0LTg3ZmMtZjBiYzNlNGQ5ZmI3", "fw529a3039@dt=ZGQ4NjIyNWQtYTU3OC00YmU0LTg3ZmMtZjBiYzNlNGQ5ZmI3"},
		{"a_b-c*d/e=x y", "a_b-c*d/e=x y"},
		{"", ""},
	} {
		got, err := ParseTracestate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	many := make([]string, 33)
	for i := range many {
		many[i] = "k" + strings.Repeat("a", i) + "=v"
	}
	for _, in := range []string{
		"Rojo=1",                        // uppercase key
		"1rojo=1",                       // a simple key starts with a letter
		"rojo",                          // no value
		"rojo=",                         // empty value
		"rojo=a,rojo=b",                 // a key twice
		"rojo=a=b",                      // '=' in the value
		"rojo=\x01",                     // control character
		"@dt=1",                         // empty tenant
		"t@=1",                          // empty system
		"t@systemidistoolong=1",         // a system id has at most 14 characters
		strings.Join(many, ","),         // 33 members
		"k=" + strings.Repeat("v", 600), // too long
	} {
		if got, err := ParseTracestate(in); err == nil {
			t.Errorf("%q: accepted as %q", in, got)
		}
	}
}

func TestFromHeaders(t *testing.T) {
	tp := "00-" + specTraceID + "-" + specSpanID + "-01"
	sc, ok := FromHeaders(tp, "rojo=1, congo=2")
	if !ok || sc.TraceID.String() != specTraceID || sc.State != "rojo=1,congo=2" {
		t.Errorf("valid headers: %+v %v", sc, ok)
	}
	// An invalid tracestate is dropped, the traceparent kept.
	if sc, ok := FromHeaders(tp, "Bad=1"); !ok || sc.State != "" || sc.SpanID.String() != specSpanID {
		t.Errorf("invalid tracestate: %+v %v", sc, ok)
	}
	// An invalid traceparent: no parent (and no tracestate).
	if sc, ok := FromHeaders("00-"+strings.Repeat("0", 32)+"-"+specSpanID+"-01", "rojo=1"); ok || sc.IsValid() {
		t.Errorf("invalid traceparent: %+v %v", sc, ok)
	}
	if _, ok := FromHeaders("", ""); ok {
		t.Error("no header: a parent")
	}
}
