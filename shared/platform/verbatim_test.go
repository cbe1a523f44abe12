package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// The bodies inside the platforms' envelopes (HTTP requests, SQS and
// CKafka messages) reach the handlers with the bytes that were sent, not
// as encoding/json decodes a string: it would replace bytes that are not
// UTF-8, and \u escapes of unpaired surrogates, with U+FFFD, and the JSON
// check behind could no longer refuse them. An unpaired surrogate is
// passed as its three-byte (WTF-8) form, which is not UTF-8 either.
func TestEnvelopeBodiesVerbatim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		literal string // the body as a JSON string literal in the envelope
		want    []byte
	}{
		{"InvalidBytes", "\"{\\\"a\\\":\\\"\xff\xfe\\\"}\"", []byte("{\"a\":\"\xff\xfe\"}")},
		{"LoneHighSurrogate", `"x\ud800y"`, []byte("x\xed\xa0\x80y")},
		{"LoneLowSurrogate", `"\udc00"`, []byte("\xed\xb0\x80")},
		{"HighThenNonLow", `"\ud83d\u0041"`, []byte("\xed\xa0\xbdA")},
		{"Pair", `"\ud83d\ude00"`, []byte("😀")},
		{"Escapes", `"\"\\\/\b\f\n\r\t\u00e9\u5b98"`, []byte("\"\\/\b\f\n\r\té官")},
		{"Plain", `"{\"code\":\"081\"}"`, []byte(`{"code":"081"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var decoded string
			if err := json.Unmarshal([]byte(tc.literal), &decoded); err != nil {
				t.Fatalf("the literal %s is not JSON: %v", tc.literal, err)
			}
			check := func(t *testing.T, what string, got []byte) {
				t.Helper()
				if !bytes.Equal(got, tc.want) {
					t.Errorf("%s: got %q, want %q", what, got, tc.want)
				}
			}
			t.Run("LambdaHTTP", func(t *testing.T) {
				ev := httpEvent("POST", "/v1/session", func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = "BODY" })
				c := &capture{}
				if _, err := NewLambda(Handlers{HTTP: c}, Options{}).Invoke(context.Background(), bytes.Replace(ev, []byte(`"BODY"`), []byte(tc.literal), 1)); err != nil {
					t.Fatal(err)
				}
				check(t, "body", c.only(t).Body)
			})
			t.Run("SCFHTTP", func(t *testing.T) {
				ev := scfHTTPEvent("POST", "/v1/session", func(ev *tencentHTTPRequest) { ev.Body = "BODY" })
				c := &capture{}
				if _, err := NewSCF(Handlers{HTTP: c}, Options{}).Invoke(scfContext("r1"), bytes.Replace(ev, []byte(`"BODY"`), []byte(tc.literal), 1)); err != nil {
					t.Fatal(err)
				}
				check(t, "body", c.only(t).Body)
			})
			t.Run("SQS", func(t *testing.T) {
				payload := bytes.Replace(awsSample(t, "sqs-event.json"), []byte(`"Message Body"`), []byte(tc.literal), 1)
				var got []Event
				h := Handlers{Events: func(_ context.Context, batch []Event) ([]string, error) { got = batch; return nil, nil }}
				if _, err := NewLambda(h, Options{}).Invoke(context.Background(), payload); err != nil {
					t.Fatal(err)
				}
				check(t, "message body", got[0].Body)
			})
			t.Run("CKafka", func(t *testing.T) {
				old := `"{\"id\":\"evt-7f3b\",\"type\":\"lead.assigned\"}"`
				payload := testdata(t, "scf-ckafka-event.json")
				if !bytes.Contains(payload, []byte(old)) {
					t.Fatalf("the fixture changed: no %s", old)
				}
				payload = bytes.Replace(payload, []byte(old), []byte(tc.literal), 1)
				var got []Event
				h := Handlers{Events: func(_ context.Context, batch []Event) ([]string, error) { got = batch; return nil, nil }}
				if _, err := NewSCF(h, Options{}).Invoke(scfContext("r1"), payload); err != nil {
					t.Fatal(err)
				}
				check(t, "second message body", got[1].Body)
				if want := `{"id":"evt-7f3a","type":"lead.assigned"}`; string(got[0].Body) != want {
					t.Errorf("first message body: got %q, want %q", got[0].Body, want)
				}
			})
			if strings.Contains(tc.name, "Surrogate") || strings.Contains(tc.name, "Invalid") || strings.Contains(tc.name, "NonLow") {
				if !strings.Contains(decoded, "\uFFFD") {
					t.Fatalf("encoding/json kept %q: the case tests nothing", decoded)
				}
			}
		})
	}
}

// FuzzUnquoteVerbatim: on any JSON string literal, unquoteVerbatim gives
// what encoding/json gives whenever that needed no replacement (the result
// is UTF-8), and otherwise bytes that are not UTF-8, so a replacement can
// never pass for valid text.
func FuzzUnquoteVerbatim(f *testing.F) {
	for _, s := range []string{`""`, `"a\"b\\c\/d"`, `"\u00e9\u5b98"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`,
		"\"\xff\"", `"\ud83d\u0041"`, `"\b\f\n\r\t"`, "\"\xed\xa0\x80\"", `"\ufffd"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var want string
		if json.Unmarshal(lit, &want) != nil {
			return
		}
		lit = bytes.Trim(lit, " \t\r\n") // as a json.RawMessage member is
		got := unquoteVerbatim(lit)
		if utf8.Valid(got) && string(got) != want {
			t.Fatalf("unquoteVerbatim(%q): got %q, want %q", lit, got, want)
		}
		if !utf8.Valid(got) && !strings.Contains(want, "\uFFFD") {
			t.Fatalf("unquoteVerbatim(%q): got %q, not UTF-8, where encoding/json replaced nothing (%q)", lit, got, want)
		}
	})
}
