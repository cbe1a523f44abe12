// Package tracetest is a fake OTLP/HTTP collector for tests: it decodes the
// JSON export requests it receives into spans.
package tracetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// Span is one exported span, decoded from the OTLP JSON mapping.
type Span struct {
	TraceID      string
	SpanID       string
	ParentSpanID string
	TraceState   string
	Name         string
	Kind         int
	Start, End   int64          // Unix nanoseconds
	Attrs        map[string]any // string or int64 values
	Links        []Link
	StatusCode   int
	Message      string
	// Resource are the attributes of the span's resource.
	Resource map[string]any
	// Scope is the instrumentation scope's name.
	Scope string
}

// Link is one link of an exported span.
type Link struct {
	TraceID, SpanID, TraceState string
	Attrs                       map[string]any
}

// Request is one export request as received.
type Request struct {
	Method, Path, ContentType string
	Header                    http.Header
}

// Collector is a fake OTLP/HTTP traces endpoint.
type Collector struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests []Request
	errs     []error
	// Status, when non-zero, is the status every request is answered
	// with (the spans are then not kept).
	status int
}

// NewCollector starts a collector; Close stops it.
func NewCollector() *Collector {
	c := &Collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	return c
}

// URL is the base URL (OTEL_EXPORTER_OTLP_ENDPOINT); Endpoint the traces
// endpoint.
func (c *Collector) URL() string      { return c.srv.URL }
func (c *Collector) Endpoint() string { return c.srv.URL + "/v1/traces" }

// Close stops the collector.
func (c *Collector) Close() { c.srv.Close() }

// Fail answers every later request with status (0: accept again).
func (c *Collector) Fail(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = status
}

// Spans are the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Requests are the export requests received so far.
func (c *Collector) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// Err is the first request the collector could not decode, or nil.
func (c *Collector) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	return nil
}

// Named returns the spans named name.
func (c *Collector) Named(name string) []Span {
	var out []Span
	for _, s := range c.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Header: r.Header.Clone()})
	if c.status != 0 {
		http.Error(w, "failing as told", c.status)
		return
	}
	spans, err := Decode(body)
	if err != nil {
		c.errs = append(c.errs, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.spans = append(c.spans, spans...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

type (
	jsonRequest struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []jsonKeyValue `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Scope struct {
					Name string `json:"name"`
				} `json:"scope"`
				Spans []jsonSpan `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	jsonSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		ParentSpanID      string         `json:"parentSpanId"`
		TraceState        string         `json:"traceState"`
		Name              string         `json:"name"`
		Kind              int            `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []jsonKeyValue `json:"attributes"`
		Links             []struct {
			TraceID    string         `json:"traceId"`
			SpanID     string         `json:"spanId"`
			TraceState string         `json:"traceState"`
			Attributes []jsonKeyValue `json:"attributes"`
		} `json:"links"`
		Status struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	}
	jsonKeyValue struct {
		Key   string `json:"key"`
		Value struct {
			StringValue *string `json:"stringValue"`
			IntValue    *string `json:"intValue"`
		} `json:"value"`
	}
)

// Decode decodes an ExportTraceServiceRequest in the OTLP JSON mapping,
// strictly: unknown fields, 64-bit integers that are not strings and
// attribute values of neither kind are errors.
func Decode(body []byte) ([]Span, error) {
	var req jsonRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decoding the export request: %w", err)
	}
	var out []Span
	for _, rs := range req.ResourceSpans {
		res, err := attrs(rs.Resource.Attributes)
		if err != nil {
			return nil, err
		}
		for _, ss := range rs.ScopeSpans {
			for _, js := range ss.Spans {
				s, err := span(js)
				if err != nil {
					return nil, err
				}
				s.Resource, s.Scope = res, ss.Scope.Name
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func span(js jsonSpan) (Span, error) {
	s := Span{TraceID: js.TraceID, SpanID: js.SpanID, ParentSpanID: js.ParentSpanID, TraceState: js.TraceState,
		Name: js.Name, Kind: js.Kind, StatusCode: js.Status.Code, Message: js.Status.Message}
	var err error
	if s.Start, err = strconv.ParseInt(js.StartTimeUnixNano, 10, 64); err != nil {
		return s, fmt.Errorf("span %q: startTimeUnixNano %q: %w", js.Name, js.StartTimeUnixNano, err)
	}
	if s.End, err = strconv.ParseInt(js.EndTimeUnixNano, 10, 64); err != nil {
		return s, fmt.Errorf("span %q: endTimeUnixNano %q: %w", js.Name, js.EndTimeUnixNano, err)
	}
	if s.Attrs, err = attrs(js.Attributes); err != nil {
		return s, fmt.Errorf("span %q: %w", js.Name, err)
	}
	for _, l := range js.Links {
		la, err := attrs(l.Attributes)
		if err != nil {
			return s, fmt.Errorf("span %q: link: %w", js.Name, err)
		}
		s.Links = append(s.Links, Link{TraceID: l.TraceID, SpanID: l.SpanID, TraceState: l.TraceState, Attrs: la})
	}
	return s, nil
}

func attrs(kvs []jsonKeyValue) (map[string]any, error) {
	m := map[string]any{}
	for _, kv := range kvs {
		switch {
		case kv.Value.StringValue != nil:
			m[kv.Key] = *kv.Value.StringValue
		case kv.Value.IntValue != nil:
			n, err := strconv.ParseInt(*kv.Value.IntValue, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: intValue %q: %w", kv.Key, *kv.Value.IntValue, err)
			}
			m[kv.Key] = n
		default:
			return nil, fmt.Errorf("attribute %q: neither stringValue nor intValue", kv.Key)
		}
	}
	return m, nil
}
