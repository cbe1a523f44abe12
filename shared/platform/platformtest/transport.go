package platformtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	scfevents "github.com/tencentyun/scf-go-lib/events"
)

// ClientIP is the client address the transports report to the function.
const ClientIP = "192.0.2.10"

// LambdaTransport sends each request to a function through a LambdaAPI, as
// API Gateway HTTP API (payload format 2.0) does, or as a Lambda Function URL
// when FunctionURL is set. A function error becomes a 500, as the gateway
// answers it.
type LambdaTransport struct {
	API         *LambdaAPI
	FunctionURL bool
}

// RoundTrip implements http.RoundTripper.
func (t *LambdaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := drain(r)
	if err != nil {
		return nil, err
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			for _, v := range vs {
				ev.Cookies = append(ev.Cookies, strings.Split(v, "; ")...)
			}
			continue
		}
		ev.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = hostOf(r)
	if len(body) > 0 {
		ev.Headers["content-length"] = fmt.Sprint(len(body))
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	ev.Body, ev.IsBase64Encoded = encodeBody(body)
	rc := &ev.RequestContext
	rc.AccountID, rc.APIID, rc.DomainName = "123456789012", "a1b2c3d4e5", hostOf(r)
	rc.RequestID = newID()
	rc.HTTP.Method, rc.HTTP.Path, rc.HTTP.Protocol = r.Method, r.URL.Path, "HTTP/1.1"
	rc.HTTP.SourceIP, rc.HTTP.UserAgent = ClientIP, r.UserAgent()
	if !t.FunctionURL {
		ev.RouteKey, rc.RouteKey, rc.Stage = "$default", "$default", "$default"
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	resp, err := t.API.Invoke(r.Context(), payload)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return gatewayError(r, resp.Error), nil
	}
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(resp.Payload, &out); err != nil {
		return nil, fmt.Errorf("platformtest: the function's answer is not an HTTP response: %w", err)
	}
	return response(r, out.StatusCode, out.Headers, out.Cookies, out.Body, out.IsBase64Encoded)
}

// SCFTransport sends each request to a function through an SCFClient as a
// Tencent Cloud Function URL does (binary bodies base64-encoded with
// isBase64Encoded, as API Gateway does). A function error becomes a 500.
type SCFTransport struct {
	Client *SCFClient
}

// RoundTrip implements http.RoundTripper.
func (t *SCFTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := drain(r)
	if err != nil {
		return nil, err
	}
	headers := map[string]string{"host": hostOf(r), "x-scf-remote-addr": ClientIP}
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if len(body) > 0 {
		headers["content-length"] = fmt.Sprint(len(body))
	}
	query := map[string]any{}
	for k, vs := range r.URL.Query() {
		if len(vs) == 1 {
			query[k] = vs[0]
		} else {
			query[k] = vs
		}
	}
	ev := map[string]any{"httpMethod": r.Method, "path": r.URL.Path, "headers": headers, "queryString": query}
	b, isBase64 := encodeBody(body)
	ev["body"] = b
	if isBase64 {
		ev["isBase64Encoded"] = true
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out, err := t.Client.Invoke(r.Context(), payload)
	var fe *SCFError
	if errors.As(err, &fe) {
		return gatewayError(r, &FunctionError{Type: fe.Type, Message: fe.Message}), nil
	}
	if err != nil {
		return nil, err
	}
	var resp scfevents.APIGatewayResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("platformtest: the function's answer is not an HTTP response: %w", err)
	}
	return response(r, resp.StatusCode, resp.Headers, nil, resp.Body, resp.IsBase64Encoded)
}

func drain(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

func hostOf(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// encodeBody carries UTF-8 text as is and anything else in base64.
func encodeBody(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

func response(r *http.Request, status int, headers map[string]string, cookies []string, body string, isBase64 bool) (*http.Response, error) {
	raw := []byte(body)
	if isBase64 {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("platformtest: the function's body is not valid base64: %w", err)
		}
	}
	h := make(http.Header, len(headers)+1)
	for k, v := range headers {
		h.Set(k, v)
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(raw)), ContentLength: int64(len(raw)), Request: r,
	}, nil
}

// gatewayError is the gateway's answer to a function error. The error is
// kept in the X-Function-Error header for tests to read.
func gatewayError(r *http.Request, fe *FunctionError) *http.Response {
	body := `{"message":"Internal Server Error"}`
	h := http.Header{"Content-Type": {"application/json"}, "X-Function-Error": {fe.Error()}}
	return &http.Response{Status: "500 Internal Server Error", StatusCode: 500, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}
}
