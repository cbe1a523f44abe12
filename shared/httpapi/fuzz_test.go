package httpapi

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// FuzzParseConsentReport: any body gives a report or a bad_request error,
// never a panic; a parsed report never carries the errMsg key, nor comes
// from a body that is not UTF-8.
func FuzzParseConsentReport(f *testing.F) {
	for _, seed := range []string{
		`{"errMsg":"requestSubscribeMessage:ok","zun-LzcQ":"accept"}`,
		`{"result":{"errMsg":"requestSubscribeMessage:ok","a":"reject"},"settings":{"mainSwitch":true,"itemSettings":{"a":"accept"}}}`,
		`{"result":{},"settings":null}`,
		`{"result":[1]}`,
		`{"a":"b","a":"c"}`,
		`[]`, `null`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseConsentReport(body)
		if err != nil {
			var e *notify.Error
			if !errors.As(err, &e) || e.Code != notify.CodeBadRequest {
				t.Fatalf("error %v is not a bad_request *notify.Error", err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("a body that is not UTF-8 gave a report: %+v", r)
		}
		if _, ok := r.Result["errMsg"]; ok {
			t.Fatal("errMsg kept as a template id")
		}
		if len(r.Result) > maxReportEntries {
			t.Fatalf("%d entries accepted, limit %d", len(r.Result), maxReportEntries)
		}
	})
}

// FuzzParseSendBody: any body gives a request or a bad_request error; one
// that is not UTF-8 gives the error (outside strings JSON is ASCII).
func FuzzParseSendBody(f *testing.F) {
	for _, seed := range []string{
		`{"to":{"userId":"sales-42"},"template":"lead_assigned","data":{"thing4":"Acme","n":{"value":"1"},"m":7},"page":"pages/a/a?id=1","idempotencyKey":"k"}`,
		`{"to":{"openid":"o1"},"template":"x","data":{"a":{"value":{"x":1}}}}`,
		`{"data":{"a":null}}`, `{"to":"x"}`, `{}`, `{"x":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := ParseSendBody(body)
		if err != nil {
			var e *notify.Error
			if !errors.As(err, &e) || e.Code != notify.CodeBadRequest {
				t.Fatalf("error %v is not a bad_request *notify.Error", err)
			}
		} else if !utf8.Valid(body) {
			t.Fatalf("ParseSendBody(%q): accepted a body that is not UTF-8", body)
		}
	})
}
