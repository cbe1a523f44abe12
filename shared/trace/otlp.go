package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// scopeName is the instrumentation scope of every span.
const scopeName = "github.com/wxnotify/wxnotify/shared/trace"

// The OTLP JSON mapping of ExportTraceServiceRequest (opentelemetry-proto,
// protobuf's JSON mapping: lowerCamelCase fields, enums as numbers, 64-bit
// integers as strings, trace and span ids as hex).
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name string `json:"name"`
	}
	otlpSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		TraceState        string         `json:"traceState,omitempty"`
		ParentSpanID      string         `json:"parentSpanId,omitempty"`
		Name              string         `json:"name"`
		Kind              int            `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []otlpKeyValue `json:"attributes,omitempty"`
		Links             []otlpLink     `json:"links,omitempty"`
		Status            *otlpStatus    `json:"status,omitempty"`
	}
	otlpLink struct {
		TraceID    string         `json:"traceId"`
		SpanID     string         `json:"spanId"`
		TraceState string         `json:"traceState,omitempty"`
		Attributes []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpStatus struct {
		Code    int    `json:"code"` // STATUS_CODE_ERROR = 2
		Message string `json:"message,omitempty"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		StringValue *string `json:"stringValue,omitempty"`
		IntValue    *string `json:"intValue,omitempty"`
	}
)

// statusError is OTLP's STATUS_CODE_ERROR.
const statusError = 2

func keyValues(attrs []Attr) []otlpKeyValue {
	if len(attrs) == 0 {
		return nil
	}
	kvs := make([]otlpKeyValue, len(attrs))
	for i, a := range attrs {
		kvs[i].Key = a.Key
		if a.IsInt {
			s := strconv.FormatInt(a.Int, 10)
			kvs[i].Value.IntValue = &s
		} else {
			s := a.Str
			kvs[i].Value.StringValue = &s
		}
	}
	return kvs
}

// encodeSpan maps an ended span; the span's lock guards what may still be
// changing (nothing once ended, but the race detector is told so).
func encodeSpan(s *Span) otlpSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := otlpSpan{
		TraceID: s.sc.TraceID.String(), SpanID: s.sc.SpanID.String(), TraceState: s.sc.State,
		Name: s.name, Kind: int(s.kind),
		StartTimeUnixNano: strconv.FormatInt(s.start.UnixNano(), 10),
		EndTimeUnixNano:   strconv.FormatInt(s.end.UnixNano(), 10),
		Attributes:        keyValues(s.attrs),
	}
	if s.parent.IsValid() {
		out.ParentSpanID = s.parent.String()
	}
	for _, l := range s.links {
		out.Links = append(out.Links, otlpLink{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(), TraceState: l.State,
			Attributes: keyValues(l.Attrs)})
	}
	if s.errored {
		out.Status = &otlpStatus{Code: statusError, Message: s.message}
	}
	return out
}

// export sends one batch to the collector.
func (t *Tracer) export(ctx context.Context, batch []*Span) error {
	spans := make([]otlpSpan, len(batch))
	for i, s := range batch {
		spans[i] = encodeSpan(s)
	}
	body, err := json.Marshal(otlpRequest{ResourceSpans: []otlpResourceSpans{{
		Resource:   otlpResource{Attributes: keyValues(t.resource)},
		ScopeSpans: []otlpScopeSpans{{Scope: otlpScope{Name: scopeName}, Spans: spans}},
	}}})
	if err != nil {
		return fmt.Errorf("trace export: encoding: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.opts.Endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("trace export: building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range t.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := t.opts.HTTPClient.Do(req)
	if err != nil {
		// Not the *url.Error itself: the endpoint's URL may carry a
		// credential.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("trace export of %d spans to %s: %w", len(batch), req.URL.Host, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("trace export of %d spans: the collector answered %s: %s", len(batch), resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
