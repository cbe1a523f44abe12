package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	scfevents "github.com/tencentyun/scf-go-lib/events"
	"github.com/tencentyun/scf-go-lib/functioncontext"
)

// scfContext is the context scf-go-lib gives an invocation.
func scfContext(requestID string) context.Context {
	return functioncontext.NewContext(context.Background(), &functioncontext.FunctionContext{RequestID: requestID})
}

func TestSCFHTTPFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    seen
	}{
		{"scf-function-url-request.json", seen{
			Method: "POST", Path: "/v1/session", RawQuery: "a=1&b=2&b=3&flag", RequestURI: "/v1/session?a=1&b=2&b=3&flag",
			Host: "1250000000-abcdefgh.ap-guangzhou.tencentscf.com", RemoteAddr: "203.0.113.7:0",
			Body: []byte(`{"code":"081xYz"}`), RequestID: "scf-invocation-1",
			Header: http.Header{"Accept": {"*/*"}, "Content-Length": {"17"}, "Content-Type": {"application/json"},
				"User-Agent": {"curl/8.5.0"}, "X-Scf-Remote-Addr": {"203.0.113.7"}, "X-Request-Id": {"scf-invocation-1"}},
		}},
		{"scf-apigw-request.json", seen{
			Method: "GET", Path: "/wechat/push", RawQuery: "echostr=hello+world&nonce=n1&signature=abc&timestamp=1700000000",
			RequestURI: "/wechat/push?echostr=hello+world&nonce=n1&signature=abc&timestamp=1700000000",
			Host:       "service-f94sy04v-1250000000.gz.apigw.tencentcs.com", RemoteAddr: "198.51.100.4:0",
			Body: []byte{}, RequestID: "scf-invocation-1",
			Header: http.Header{"Accept-Language": {"en-US,en,cn"}, "Accept": {"text/html,application/xml,application/json"},
				"User-Agent": {"User Agent String"}, "X-Request-Id": {"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			c := &capture{respond: richResponse}
			out, err := NewSCF(Handlers{HTTP: c}, Options{}).Invoke(scfContext("scf-invocation-1"), testdata(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			got := c.only(t)
			got.RawPath, got.Proto = "", ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request:\n got %+v\nwant %+v", got, tt.want)
			}
			resp := decode[scfevents.APIGatewayResponse](t, out)
			want := wantResponse{status: 201, body: []byte(`{"ok":true,"text":"中文"}`), header: map[string]string{
				"X-Multi":    "a,b",
				"Set-Cookie": "c1=v1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT,c2=v2; HttpOnly",
			}}
			checkResponse(t, want, resp.StatusCode, resp.Headers, resp.Body, resp.IsBase64Encoded)
		})
	}
}

// scfHTTPEvent marshals scf-go-lib's own request type.
func scfHTTPEvent(method, path string, edit func(*tencentHTTPRequest)) []byte {
	ev := tencentHTTPRequest{}
	ev.Method, ev.Path = method, path
	ev.Headers = map[string]string{"host": "fn.example.com"}
	if edit != nil {
		edit(&ev)
	}
	b, _ := json.Marshal(ev)
	return b
}

func TestSCFHTTPRequest(t *testing.T) {
	binary := []byte{0, 1, 2, 0xff}
	tests := []struct {
		name  string
		event []byte
		check func(t *testing.T, got seen)
	}{
		{"Base64Body", scfHTTPEvent("POST", "/wechat/push", func(ev *tencentHTTPRequest) {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(binary), true
		}), func(t *testing.T, got seen) {
			if !bytes.Equal(got.Body, binary) {
				t.Errorf("body: got %x, want %x", got.Body, binary)
			}
		}},
		{"DecodedPath", scfHTTPEvent("DELETE", "/v1/bindings/sales 42?", nil), func(t *testing.T, got seen) {
			if got.Path != "/v1/bindings/sales 42?" || got.RawPath != "/v1/bindings/sales%2042%3F" {
				t.Errorf("path: got %q raw %q, want %q raw %q", got.Path, got.RawPath, "/v1/bindings/sales 42?", "/v1/bindings/sales%2042%3F")
			}
		}},
		{"EncodedPath", scfHTTPEvent("DELETE", "/v1/bindings/a%2Fb", nil), func(t *testing.T, got seen) {
			if got.Path != "/v1/bindings/a/b" || got.RawPath != "/v1/bindings/a%2Fb" {
				t.Errorf("path: got %q raw %q, want /v1/bindings/a/b raw /v1/bindings/a%%2Fb", got.Path, got.RawPath)
			}
		}},
		{"StagePrefix", scfHTTPEvent("GET", "/release/v1/templates", func(ev *tencentHTTPRequest) {
			ev.Context.Stage = "release"
		}), func(t *testing.T, got seen) {
			if got.Path != "/v1/templates" {
				t.Errorf("path: got %q, want /v1/templates", got.Path)
			}
		}},
		{"RepeatedQuery", scfHTTPEvent("GET", "/q", func(ev *tencentHTTPRequest) {
			ev.QueryString = scfevents.APIGatewayQueryString{"b": {"x&y"}, "a": {"1", "2"}}
		}), func(t *testing.T, got seen) {
			if got.RawQuery != "a=1&a=2&b=x%26y" {
				t.Errorf("query: got %q, want a=1&a=2&b=x%%26y", got.RawQuery)
			}
		}},
		{"NoRequestContext", scfHTTPEvent("GET", "/healthz", nil), func(t *testing.T, got seen) {
			if got.Header.Get("X-Request-Id") != "scf-invocation-1" || got.RequestID != "scf-invocation-1" {
				t.Errorf("request id: got header %q context %q, want the invocation's", got.Header.Get("X-Request-Id"), got.RequestID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			if _, err := NewSCF(Handlers{HTTP: c}, Options{}).Invoke(scfContext("scf-invocation-1"), tt.event); err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.only(t))
		})
	}
}

func TestSCFHTTPResponse(t *testing.T) {
	for _, tt := range httpResponseCases {
		t.Run(tt.name, func(t *testing.T) {
			out, err := NewSCF(Handlers{HTTP: tt.handler}, Options{}).Invoke(context.Background(), scfHTTPEvent(tt.method, "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp := decode[scfevents.APIGatewayResponse](t, out)
			checkResponse(t, tt.want, resp.StatusCode, resp.Headers, resp.Body, resp.IsBase64Encoded)
		})
	}
}

func TestSCFTimer(t *testing.T) {
	payload := testdata(t, "scf-timer-event.json")
	if ev := decode[scfevents.TimerEvent](t, payload); ev.Type != "Timer" {
		t.Fatalf("the fixture is not a timer event: %+v", ev)
	}
	deadline := time.Now().Add(10 * time.Second).Truncate(time.Millisecond)
	ctx, cancel := context.WithDeadline(scfContext("r1"), deadline)
	defer cancel()
	var got time.Time
	h := Handlers{Tick: func(_ context.Context, d time.Time) error { got = d; return nil }}
	out, err := NewSCF(h, Options{}).Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(deadline) || string(out) != "null" {
		t.Errorf("got deadline %v and %s, want %v and null", got, out, deadline)
	}
}

func TestSCFCKafka(t *testing.T) {
	payload := testdata(t, "scf-ckafka-event.json")
	want := []Event{
		{ID: "wxnotify-leads/1/36", Source: SourceCKafka, Body: []byte(`{"id":"evt-7f3a","type":"lead.assigned"}`)},
		{ID: "wxnotify-leads/0/37", Source: SourceCKafka, Body: []byte(`{"id":"evt-7f3b","type":"lead.assigned"}`)},
	}
	tests := []struct {
		name    string
		failed  []string
		err     error
		wantErr string
	}{
		{"Done", nil, nil, ""},
		{"OneFailed", []string{"wxnotify-leads/0/37"}, nil, "1 of 2 CKafka messages failed"},
		{"BatchError", nil, errors.New("redis down"), "redis down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			h := Handlers{Events: func(_ context.Context, batch []Event) ([]string, error) {
				got = batch
				return tt.failed, tt.err
			}}
			out, err := NewSCF(h, Options{}).Invoke(scfContext("r1"), payload)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("events:\n got %+v\nwant %+v", got, want)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(out) != "null" {
				t.Errorf("got %s, %v; want null, nil", out, err)
			}
		})
	}
}

func TestSCFInvoke(t *testing.T) {
	var got json.RawMessage
	h := Handlers{Invoke: func(ctx context.Context, p json.RawMessage) (any, error) {
		got = p
		return map[string]string{"requestId": RequestID(ctx)}, nil
	}}
	for _, payload := range []string{
		`{"touser":"o1","templateId":"t1"}`,
		`{"type":"Timer","id":"evt-1"}`, // a lead event, not a timer: names are matched exactly
		`[1,2,3]`,
	} {
		t.Run(payload, func(t *testing.T) {
			out, err := NewSCF(h, Options{}).Invoke(scfContext("r-9"), []byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != payload || string(out) != `{"requestId":"r-9"}` {
				t.Errorf("got payload %s and answer %s, want %s and the request id", got, out, payload)
			}
		})
	}
}
