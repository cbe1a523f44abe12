package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	scfevents "github.com/tencentyun/scf-go-lib/events"
	"github.com/tencentyun/scf-go-lib/functioncontext"
)

// SCF adapts a function's Handlers to Tencent Cloud SCF invocation
// payloads. Its Invoke method is a scf-go-lib cloudfunction.Handler.
type SCF struct {
	iv invoker
}

// NewSCF returns the Tencent Cloud SCF adapter of h.
func NewSCF(h Handlers, o Options) *SCF {
	o = o.withDefaults()
	return &SCF{iv: invoker{h: h, log: o.Logger, fn: o.Function}}
}

// Invoke decodes one SCF payload, runs the matching core and encodes its
// answer:
//
//   - Function URL and API Gateway requests (httpMethod, path, headers,
//     queryString, body, optional isBase64Encoded): HTTP, answered with
//     {statusCode, headers, body, isBase64Encoded}; repeated header fields,
//     Set-Cookie included, are joined with commas, as the answer carries one
//     value per name.
//   - timer events (Type "Timer"): Tick.
//   - CKafka batches: Events; any failure is an error, so the trigger
//     retries the batch (up to its retry setting).
//   - anything else: Invoke.
//
// Errors become SCF function errors; so does a payload whose core is nil.
func (t *SCF) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if fc, ok := functioncontext.FromContext(ctx); ok {
		ctx = withRequestID(ctx, fc.RequestID)
	}
	top, isObject, err := decodeObject(payload)
	if err != nil {
		return nil, err
	}
	if !isObject {
		return t.iv.invoke(ctx, payload)
	}
	switch {
	case member(top, "httpMethod") != "":
		return t.serveHTTP(ctx, payload)
	case member(top, "Type") == "Timer":
		return jsonNull, t.iv.tick(ctx, "timer")
	case isCKafka(top):
		return t.ckafka(ctx, payload)
	}
	return t.iv.invoke(ctx, payload)
}

func isCKafka(top map[string]json.RawMessage) bool {
	var records []map[string]json.RawMessage
	if json.Unmarshal(top["Records"], &records) != nil || len(records) == 0 {
		return false
	}
	for _, r := range records {
		if r["Ckafka"] == nil {
			return false
		}
	}
	return true
}

// tencentHTTPRequest is the API Gateway event, of which the Function URL
// event is a subset, with the base64 flag scf-go-lib leaves out.
type tencentHTTPRequest struct {
	scfevents.APIGatewayRequest
	IsBase64Encoded bool `json:"isBase64Encoded"`
}

func (t *SCF) serveHTTP(ctx context.Context, payload []byte) ([]byte, error) {
	if t.iv.h.HTTP == nil {
		return nil, errNoCore(kindHTTP)
	}
	var ev tencentHTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("runtime: decode the HTTP event: %w", err)
	}
	r, err := tencentRequest(ctx, ev, payload)
	if err != nil {
		return nil, err
	}
	rec := serve(t.iv.h.HTTP, r)
	header, cookies := rec.joinedHeader()
	if len(cookies) > 0 {
		header["Set-Cookie"] = strings.Join(cookies, ",")
	}
	body, isBase64 := rec.encodedBody()
	return json.Marshal(scfevents.APIGatewayResponse{StatusCode: rec.status, Headers: header,
		Body: body, IsBase64Encoded: isBase64})
}

// tencentRequest rebuilds the request the Function URL or API Gateway
// received. The client address comes from the request context (API
// Gateway) or the x-scf-remote-addr header (Function URL); the request id
// from the request context, else the invocation.
func tencentRequest(ctx context.Context, ev tencentHTTPRequest, payload []byte) (*http.Request, error) {
	body, err := requestBody(payload, ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Add(k, v)
	}
	sourceIP := ev.Context.SourceIP
	if sourceIP == "" {
		sourceIP = header.Get("X-Scf-Remote-Addr")
	}
	requestID := ev.Context.RequestID
	if requestID == "" {
		requestID = RequestID(ctx)
	}
	return httpRequest{
		method:    ev.Method,
		rawPath:   stripStage(escapePath(ev.Path), ev.Context.Stage),
		rawQuery:  encodeQueryString(ev.QueryString),
		header:    header,
		body:      body,
		sourceIP:  sourceIP,
		requestID: requestID,
	}.newRequest(ctx)
}

// encodeQueryString encodes the parameters in name order, values in the
// order sent; a parameter without a value ("?flag", which the event
// carries as true) is encoded bare.
func encodeQueryString(qs scfevents.APIGatewayQueryString) string {
	names := make([]string, 0, len(qs))
	for k := range qs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		vs := qs[k]
		if len(vs) == 0 {
			vs = []string{""}
		}
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			if v != "" || len(qs[k]) > 0 {
				b.WriteByte('=')
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}

func (t *SCF) ckafka(ctx context.Context, payload []byte) ([]byte, error) {
	var ev scfevents.CkafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("runtime: decode the CKafka event: %w", err)
	}
	raw := records(payload)
	batch := make([]Event, 0, len(ev.Records))
	for i, r := range ev.Records {
		m := r.Message
		e := Event{ID: fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset), Source: SourceCKafka, Body: []byte(m.Body)}
		if i < len(raw) {
			if msg, ok := rawMember(raw[i], "Ckafka"); ok {
				if b, ok := verbatim(msg, "msgBody"); ok {
					e.Body = b
				}
			}
		}
		batch = append(batch, e)
	}
	failed, err := t.iv.events(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("runtime: %d of %d CKafka messages failed; the batch will be retried", len(failed), len(batch))
	}
	return jsonNull, nil
}
