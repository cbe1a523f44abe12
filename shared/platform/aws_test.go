package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// richResponse answers with what the platforms must carry intact: a
// status, a repeated header, two cookies and a body.
func richResponse(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	w.Header().Add("Set-Cookie", "c1=v1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
	w.Header().Add("Set-Cookie", "c2=v2; HttpOnly")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"ok":true,"text":"中文"}`))
}

func TestLambdaHTTPSamples(t *testing.T) {
	samples := []string{
		"apigw-v2-request-no-authorizer.json",
		"apigw-v2-request-iam.json",
		"apigw-v2-request-jwt-authorizer.json",
		"apigw-v2-request-lambda-authorizer.json",
		"lambda-urls-request.json",
	}
	for _, name := range samples {
		t.Run(name, func(t *testing.T) {
			payload := awsSample(t, name)
			ev := decode[events.APIGatewayV2HTTPRequest](t, payload)
			c := &capture{respond: richResponse}
			out, err := NewLambda(Handlers{HTTP: c}, Options{}).Invoke(context.Background(), payload)
			if err != nil {
				t.Fatal(err)
			}
			got := c.only(t)

			if got.Method != ev.RequestContext.HTTP.Method {
				t.Errorf("method: got %q, want %q", got.Method, ev.RequestContext.HTTP.Method)
			}
			if got.RawPath != ev.RawPath {
				t.Errorf("path: got %q, want %q", got.RawPath, ev.RawPath)
			}
			if got.RawQuery != ev.RawQueryString {
				t.Errorf("query: got %q, want %q", got.RawQuery, ev.RawQueryString)
			}
			for k, v := range ev.Headers {
				if strings.EqualFold(k, "host") {
					if got.Host != v {
						t.Errorf("host: got %q, want %q", got.Host, v)
					}
					continue
				}
				if g := got.Header.Values(k); len(g) != 1 || g[0] != v {
					t.Errorf("header %s: got %q, want [%q]", k, g, v)
				}
			}
			if want := strings.Join(ev.Cookies, "; "); got.Header.Get("Cookie") != want {
				t.Errorf("cookie: got %q, want %q", got.Header.Get("Cookie"), want)
			}
			if string(got.Body) != ev.Body {
				t.Errorf("body: got %q, want %q", got.Body, ev.Body)
			}
			if got.Header.Get("X-Request-Id") != ev.RequestContext.RequestID {
				t.Errorf("X-Request-Id: got %q, want %q", got.Header.Get("X-Request-Id"), ev.RequestContext.RequestID)
			}
			if host, _, _ := net.SplitHostPort(got.RemoteAddr); host != ev.RequestContext.HTTP.SourceIP {
				t.Errorf("remote address: got %q, want host %q", got.RemoteAddr, ev.RequestContext.HTTP.SourceIP)
			}

			resp := decode[events.APIGatewayV2HTTPResponse](t, out)
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("status: got %d, want 201", resp.StatusCode)
			}
			if resp.Headers["X-Multi"] != "a,b" {
				t.Errorf("X-Multi: got %q, want %q", resp.Headers["X-Multi"], "a,b")
			}
			wantCookies := []string{"c1=v1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "c2=v2; HttpOnly"}
			if !reflect.DeepEqual(resp.Cookies, wantCookies) {
				t.Errorf("cookies: got %q, want %q", resp.Cookies, wantCookies)
			}
			if _, ok := resp.Headers["Set-Cookie"]; ok {
				t.Errorf("Set-Cookie is in headers too: %q", resp.Headers["Set-Cookie"])
			}
			if resp.IsBase64Encoded || resp.Body != `{"ok":true,"text":"中文"}` {
				t.Errorf("body: got %q (base64 %v), want the JSON as is", resp.Body, resp.IsBase64Encoded)
			}
		})
	}
}

// httpEvent is a minimal HTTP API request for table tests.
func httpEvent(method, rawPath string, edit func(*events.APIGatewayV2HTTPRequest)) []byte {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: rawPath,
		Headers: map[string]string{"host": "api.example.com"}}
	ev.RequestContext.Stage = "$default"
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = rawPath
	ev.RequestContext.RequestID = "req-1"
	if edit != nil {
		edit(&ev)
	}
	b, _ := json.Marshal(ev)
	return b
}

func TestLambdaHTTPRequest(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe}
	tests := []struct {
		name  string
		event []byte
		check func(t *testing.T, got seen)
	}{
		{"Base64Body", httpEvent("POST", "/upload", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(binary), true
		}), func(t *testing.T, got seen) {
			if !bytes.Equal(got.Body, binary) {
				t.Errorf("body: got %x, want %x", got.Body, binary)
			}
		}},
		{"NamedStage", httpEvent("GET", "/prod/v1/templates", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.Stage = "prod"
		}), func(t *testing.T, got seen) {
			if got.Path != "/v1/templates" {
				t.Errorf("path: got %q, want /v1/templates", got.Path)
			}
		}},
		{"DefaultStage", httpEvent("GET", "/v1/templates", nil), func(t *testing.T, got seen) {
			if got.Path != "/v1/templates" || got.RequestURI != "/v1/templates" {
				t.Errorf("path: got %q (URI %q), want /v1/templates", got.Path, got.RequestURI)
			}
		}},
		{"EncodedPath", httpEvent("DELETE", "/v1/bindings/sales%2F42", nil), func(t *testing.T, got seen) {
			if got.Path != "/v1/bindings/sales/42" || got.RawPath != "/v1/bindings/sales%2F42" {
				t.Errorf("path: got %q raw %q, want /v1/bindings/sales/42 raw /v1/bindings/sales%%2F42", got.Path, got.RawPath)
			}
		}},
		{"RepeatedQuery", httpEvent("GET", "/wechat/push", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RawQueryString = "a=1&a=2&echostr=x%20y"
		}), func(t *testing.T, got seen) {
			if got.RawQuery != "a=1&a=2&echostr=x%20y" || got.RequestURI != "/wechat/push?a=1&a=2&echostr=x%20y" {
				t.Errorf("query: got %q (URI %q), want a=1&a=2&echostr=x%%20y", got.RawQuery, got.RequestURI)
			}
		}},
		{"QueryFromParameters", httpEvent("GET", "/x", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.QueryStringParameters = map[string]string{"b": "2", "a": "1 1"}
		}), func(t *testing.T, got seen) {
			if got.RawQuery != "a=1+1&b=2" {
				t.Errorf("query: got %q, want a=1+1&b=2", got.RawQuery)
			}
		}},
		{"NoBody", httpEvent("GET", "/healthz", nil), func(t *testing.T, got seen) {
			if len(got.Body) != 0 || got.Host != "api.example.com" || got.Header.Get("Host") != "" {
				t.Errorf("got body %q host %q header host %q, want empty, api.example.com, empty", got.Body, got.Host, got.Header.Get("Host"))
			}
		}},
		{"Protocol", httpEvent("GET", "/", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.HTTP.Protocol = "HTTP/2.0"
		}), func(t *testing.T, got seen) {
			if got.Proto != "HTTP/2.0" {
				t.Errorf("proto: got %q, want HTTP/2.0", got.Proto)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			if _, err := NewLambda(Handlers{HTTP: c}, Options{}).Invoke(context.Background(), tt.event); err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.only(t))
		})
	}
}

// wantResponse is the platform-neutral expectation of an HTTP answer.
type wantResponse struct {
	status   int
	header   map[string]string // must be present with these values
	absent   []string          // header names that must not be there
	body     []byte
	isBase64 bool
}

// httpResponseCases drive both adapters' response encoding.
var httpResponseCases = []struct {
	name    string
	method  string
	handler http.HandlerFunc
	want    wantResponse
}{
	{"JSON", "GET", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"a":1}`))
	}, wantResponse{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"a":1}`)}},
	{"Binary", "GET", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte{0x89, 'P', 'N', 'G', 0, 0xff})
	}, wantResponse{status: 200, header: map[string]string{"Content-Type": "image/png"},
		body: []byte{0x89, 'P', 'N', 'G', 0, 0xff}, isBase64: true}},
	{"TextNotUTF8", "GET", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte{'o', 'k', 0xff})
	}, wantResponse{status: 200, body: []byte{'o', 'k', 0xff}, isBase64: true}},
	{"Sniffed", "GET", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html><body>hi</body></html>"))
	}, wantResponse{status: 200, header: map[string]string{"Content-Type": "text/html; charset=utf-8"},
		body: []byte("<html><body>hi</body></html>")}},
	{"NoContent", "DELETE", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
			panic("a 204 accepted a body")
		}
	}, wantResponse{status: 204, absent: []string{"Content-Type"}}},
	{"HeaderAfterWriteHeader", "GET", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-After", "1")
	}, wantResponse{status: 202, header: map[string]string{"X-Before": "1"}, absent: []string{"X-After"}}},
	{"ImplicitOK", "GET", func(http.ResponseWriter, *http.Request) {},
		wantResponse{status: 200, absent: []string{"Content-Type"}}},
	{"Informational", "POST", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusConflict)
		w.WriteHeader(http.StatusTeapot)
	}, wantResponse{status: 409}},
	{"Head", "HEAD", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("not sent"))
	}, wantResponse{status: 200, header: map[string]string{"Content-Type": "text/plain"}}},
}

func checkResponse(t *testing.T, want wantResponse, status int, header map[string]string, body string, isBase64 bool) {
	t.Helper()
	if status != want.status {
		t.Errorf("status: got %d, want %d", status, want.status)
	}
	for k, v := range want.header {
		if header[k] != v {
			t.Errorf("header %s: got %q, want %q", k, header[k], v)
		}
	}
	for _, k := range want.absent {
		if _, ok := header[k]; ok {
			t.Errorf("header %s: got %q, want none", k, header[k])
		}
	}
	if isBase64 != want.isBase64 {
		t.Errorf("isBase64Encoded: got %v, want %v", isBase64, want.isBase64)
	}
	got := []byte(body)
	if isBase64 {
		var err error
		if got, err = base64.StdEncoding.DecodeString(body); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
	}
	if !bytes.Equal(got, want.body) {
		t.Errorf("body: got %q, want %q", got, want.body)
	}
}

func TestLambdaHTTPResponse(t *testing.T) {
	for _, tt := range httpResponseCases {
		t.Run(tt.name, func(t *testing.T) {
			out, err := NewLambda(Handlers{HTTP: tt.handler}, Options{}).Invoke(context.Background(), httpEvent(tt.method, "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp := decode[events.APIGatewayV2HTTPResponse](t, out)
			checkResponse(t, tt.want, resp.StatusCode, resp.Headers, resp.Body, resp.IsBase64Encoded)
		})
	}
}

func TestLambdaFunctionURLResponse(t *testing.T) {
	payload := awsSample(t, "lambda-urls-request.json")
	out, err := NewLambda(Handlers{HTTP: http.HandlerFunc(richResponse)}, Options{}).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["multiValueHeaders"]; ok {
		t.Errorf("a Function URL response has multiValueHeaders: %s", out)
	}
	resp := decode[events.LambdaFunctionURLResponse](t, out)
	if resp.StatusCode != http.StatusCreated || len(resp.Cookies) != 2 {
		t.Errorf("got status %d and %d cookies, want 201 and 2", resp.StatusCode, len(resp.Cookies))
	}
}

func TestLambdaSQS(t *testing.T) {
	payload := awsSample(t, "sqs-event.json")
	sample := decode[events.SQSEvent](t, payload)
	wantEvent := Event{ID: "MessageID_1", Source: SourceSQS, Body: []byte("Message Body"), Attempt: 2,
		Time: time.UnixMilli(1520621625029).UTC()}
	if sample.Records[0].MessageId != wantEvent.ID {
		t.Fatalf("the sample changed: messageId %q", sample.Records[0].MessageId)
	}
	tests := []struct {
		name    string
		failed  []string
		err     error
		want    string // the response, or "" when Invoke must fail
		wantErr string
	}{
		{"AllDone", nil, nil, `{"batchItemFailures":[]}`, ""},
		{"PartialFailure", []string{"MessageID_1"}, nil, `{"batchItemFailures":[{"itemIdentifier":"MessageID_1"}]}`, ""},
		{"BatchError", nil, errors.New("store down"), "", "store down"},
		{"UnknownID", []string{"nope"}, nil, "", "not in the batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			h := Handlers{Events: func(_ context.Context, batch []Event) ([]string, error) {
				got = batch
				return tt.failed, tt.err
			}}
			out, err := NewLambda(h, Options{}).Invoke(context.Background(), payload)
			if !reflect.DeepEqual(got, []Event{wantEvent}) {
				t.Errorf("events: got %+v, want %+v", got, []Event{wantEvent})
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("response: got %s, want %s", out, tt.want)
			}
		})
	}
}

func TestLambdaEventBridge(t *testing.T) {
	payload := awsSample(t, "autoscaling-event-launch-successful.json")
	sample := decode[events.EventBridgeEvent](t, payload)
	for _, tt := range []struct {
		name    string
		failed  []string
		wantErr bool
	}{{"Done", nil, false}, {"Failed", []string{sample.ID}, true}} {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			h := Handlers{Events: func(_ context.Context, batch []Event) ([]string, error) {
				got = batch
				return tt.failed, nil
			}}
			_, err := NewLambda(h, Options{}).Invoke(context.Background(), payload)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if len(got) != 1 {
				t.Fatalf("got %d events, want 1", len(got))
			}
			e := got[0]
			if e.ID != sample.ID || e.Source != SourceEventBridge || e.Type != "EC2 Instance Launch Successful" || !e.Time.Equal(sample.Time) {
				t.Errorf("event: got %+v", e)
			}
			var detail map[string]any
			if err := json.Unmarshal(e.Body, &detail); err != nil || detail["EC2InstanceId"] != "i-1234567890abcdef0" {
				t.Errorf("body: got %s (%v), want the event's detail", e.Body, err)
			}
		})
	}
}

func TestLambdaTick(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"SchedulerInput", ScheduleInput},
		{"ScheduledEvent", `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event",
			"source":"aws.events","account":"123456789012","time":"2026-11-21T09:30:00Z","region":"us-east-1",
			"resources":["arn:aws:events:us-east-1:123456789012:rule/tick"],"detail":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deadline := time.Now().Add(30 * time.Second).Truncate(time.Millisecond)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			var got time.Time
			h := Handlers{Tick: func(_ context.Context, d time.Time) error { got = d; return nil }}
			out, err := NewLambda(h, Options{}).Invoke(ctx, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(deadline) || string(out) != "null" {
				t.Errorf("got deadline %v and %s, want %v and null", got, out, deadline)
			}
		})
	}
	t.Run("Error", func(t *testing.T) {
		h := Handlers{Tick: func(context.Context, time.Time) error { return errors.New("boom") }}
		if _, err := NewLambda(h, Options{}).Invoke(context.Background(), []byte(ScheduleInput)); err == nil || err.Error() != "boom" {
			t.Errorf("error: got %v, want boom", err)
		}
	})
}

func TestLambdaInvoke(t *testing.T) {
	echo := Handlers{Invoke: func(_ context.Context, p json.RawMessage) (any, error) {
		return map[string]json.RawMessage{"got": p}, nil
	}}
	tests := []struct {
		name    string
		h       Handlers
		payload string
		want    string
		wantErr string
	}{
		{"Object", echo, `{"touser":"o1","type":"Timer","wxnotify":"tick","extra":1}`,
			`{"got":{"touser":"o1","type":"Timer","wxnotify":"tick","extra":1}}`, ""},
		{"NotAnObject", echo, `"hello"`, `{"got":"hello"}`, ""},
		{"InvalidJSON", echo, `{"touser":`, "", "not valid JSON"},
		{"CoreError", Handlers{Invoke: func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("nope") }},
			`{}`, "", "nope"},
		{"NoInvokeCore", Handlers{}, `{"touser":"o1"}`, "", "no invoke handler"},
		{"NoHTTPCore", Handlers{}, string(httpEvent("GET", "/", nil)), "", "no http handler"},
		{"NoEventsCore", Handlers{}, `{"Records":[{"messageId":"1","eventSource":"aws:sqs","body":"x"}]}`, "", "no events handler"},
		{"NoTickCore", Handlers{}, ScheduleInput, "", "no tick handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := NewLambda(tt.h, Options{}).Invoke(context.Background(), []byte(tt.payload))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got %s, want %s", out, tt.want)
			}
		})
	}
	t.Run("RESTPayload", func(t *testing.T) {
		_, err := NewLambda(echo, Options{}).Invoke(context.Background(), awsSample(t, "apigw-request.json"))
		if err == nil || !strings.Contains(err.Error(), "payload format 1.0") {
			t.Errorf("error: got %v, want one about payload format 1.0", err)
		}
	})
}

func TestLambdaRequestID(t *testing.T) {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"})
	var got string
	h := Handlers{Invoke: func(ctx context.Context, _ json.RawMessage) (any, error) {
		got = RequestID(ctx)
		return nil, nil
	}}
	if _, err := NewLambda(h, Options{}).Invoke(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
		t.Errorf("RequestID: got %q, want the Lambda request id", got)
	}
}
