package trace

import (
	"context"
	"sync"
	"time"
)

// Kind is a span's kind, numbered as OTLP's SpanKind.
type Kind int

// The span kinds.
const (
	KindInternal Kind = 1
	KindServer   Kind = 2
	KindClient   Kind = 3
	KindProducer Kind = 4
	KindConsumer Kind = 5
)

// Attr is a span or link attribute: a string or an integer.
type Attr struct {
	Key   string
	Str   string
	Int   int64
	IsInt bool
}

// String is a string attribute.
func String(key, value string) Attr { return Attr{Key: key, Str: value} }

// Int is an integer attribute.
func Int(key string, value int64) Attr { return Attr{Key: key, Int: value, IsInt: true} }

// Link points from a span to another span's context (of this trace or
// another), e.g. the message or the send it handles.
type Link struct {
	SpanContext
	Attrs []Attr
}

// maxAttrs and maxLinks bound what one span keeps.
const (
	maxAttrs = 64
	maxLinks = 32
)

// Span is one operation of a trace. A nil *Span is a valid span that
// records nothing: every method does nothing, so code starts and ends spans
// the same way with tracing off. A Span is safe for concurrent use.
type Span struct {
	tracer *Tracer
	name   string
	kind   Kind
	sc     SpanContext
	parent SpanID
	start  time.Time

	mu      sync.Mutex
	end     time.Time
	ended   bool
	attrs   []Attr
	links   []Link
	errored bool
	message string
}

// Context is the span's own context: its trace and span id, for a
// traceparent that makes the next hop its child. The zero SpanContext for
// a nil span.
func (s *Span) Context() SpanContext {
	if s == nil {
		return SpanContext{}
	}
	return s.sc
}

// Recording reports whether the span will be exported: it is sampled.
func (s *Span) Recording() bool { return s != nil && s.sc.Sampled() }

// SetAttrs sets attributes (a key set again is added again; the exporter
// keeps the last).
func (s *Span) SetAttrs(attrs ...Attr) {
	if !s.Recording() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.attrs = append(s.attrs, attrs[:min(len(attrs), maxAttrs-len(s.attrs))]...)
	}
}

// AddLink links the span to sc; an invalid sc is ignored.
func (s *Span) AddLink(sc SpanContext, attrs ...Attr) {
	if !s.Recording() || !sc.IsValid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended && len(s.links) < maxLinks {
		s.links = append(s.links, Link{SpanContext: sc, Attrs: attrs})
	}
}

// SetError marks the span failed, with a message (no personal data: it is
// exported).
func (s *Span) SetError(message string) {
	if !s.Recording() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.errored, s.message = true, message
	}
}

// End ends the span and queues it for export; later calls do nothing.
func (s *Span) End() {
	if !s.Recording() {
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, s.tracer.now()
	s.mu.Unlock()
	s.tracer.enqueue(s)
}

type spanKey struct{}

// ContextWithSpan returns ctx carrying s: the parent of spans started in
// it.
func ContextWithSpan(ctx context.Context, s *Span) context.Context {
	return context.WithValue(ctx, spanKey{}, s)
}

// FromContext is the span ctx carries, or nil.
func FromContext(ctx context.Context) *Span {
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}

// parentOf is the span context a span started in ctx descends from: the
// span ctx carries, else its remote parent; invalid when neither.
func parentOf(ctx context.Context) SpanContext {
	if s := FromContext(ctx); s != nil {
		return s.sc
	}
	sc, _ := remoteFrom(ctx)
	return sc
}
