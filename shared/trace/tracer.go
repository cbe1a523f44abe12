package trace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Tracer.
type Options struct {
	// Endpoint is the URL spans are POSTed to (an OTLP/HTTP traces
	// endpoint, ".../v1/traces").
	Endpoint string
	// Headers are added to every export request (a collector's auth).
	Headers map[string]string
	// Service is the resource's service.name (default "wxnotify");
	// Function its faas.name, Version its service.version (both omitted
	// when empty).
	Service, Function, Version string
	// Timeout bounds one export request (default 3s).
	Timeout time.Duration
	// HTTPClient sends the exports; default a client of its own.
	HTTPClient *http.Client
	// MaxQueue bounds the ended spans waiting for export (default 2048):
	// a span ended with the queue full is dropped (and counted).
	MaxQueue int
	// MaxBatch bounds the spans of one export request (default 512).
	MaxBatch int
	// Interval is how often the background exporter sends what is queued
	// (default 5s); Flush sends at once.
	Interval time.Duration
	// Logger reports failed exports and dropped spans; default none.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Tracer starts spans and exports them in the background. A nil *Tracer
// is tracing off: Start returns nil spans. It is safe for concurrent use.
type Tracer struct {
	opts     Options
	resource []Attr
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	queue []*Span

	exportMu sync.Mutex // one export at a time, in order
	dropped  atomic.Uint64
	reported uint64 // dropped count last logged, under exportMu
	exported atomic.Uint64

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Defaults of Options.
const (
	defaultTimeout  = 3 * time.Second
	defaultMaxQueue = 2048
	defaultMaxBatch = 512
	defaultInterval = 5 * time.Second
	defaultService  = "wxnotify"
)

// New returns a Tracer exporting to o.Endpoint and starts its background
// exporter (stopped by Shutdown).
func New(o Options) (*Tracer, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("trace: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	if o.Service == "" {
		o.Service = defaultService
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = defaultMaxQueue
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	t := &Tracer{opts: o, now: o.Now, log: o.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.resource = []Attr{String("service.name", o.Service)}
	if o.Version != "" {
		t.resource = append(t.resource, String("service.version", o.Version))
	}
	if o.Function != "" {
		t.resource = append(t.resource, String("faas.name", o.Function))
	}
	go t.loop()
	return t, nil
}

// Start starts a span named name of kind in ctx: a child of the span ctx
// carries, else of its remote parent (ContextWithRemote), else the root
// of a new trace. A child keeps its parent's sampling decision; a root is
// sampled. The returned context carries the span. With a nil Tracer it
// returns ctx and a nil span.
func (t *Tracer) Start(ctx context.Context, name string, kind Kind, attrs ...Attr) (context.Context, *Span) {
	if t == nil {
		return ctx, nil
	}
	parent := parentOf(ctx)
	s := &Span{tracer: t, name: name, kind: kind, start: t.now()}
	if parent.IsValid() {
		s.sc = SpanContext{TraceID: parent.TraceID, Flags: parent.Flags, State: parent.State}
		s.parent = parent.SpanID
	} else {
		s.sc = SpanContext{TraceID: newTraceID(), Flags: FlagSampled}
	}
	s.sc.SpanID = newSpanID()
	if len(attrs) > 0 {
		s.SetAttrs(attrs...)
	}
	return ContextWithSpan(ctx, s), s
}

func newTraceID() TraceID {
	var id TraceID
	for !id.IsValid() {
		putUint64(id[:8], rand.Uint64())
		putUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() SpanID {
	var id SpanID
	for !id.IsValid() {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// enqueue queues an ended span, dropping it when the queue is full.
func (t *Tracer) enqueue(s *Span) {
	t.mu.Lock()
	if len(t.queue) >= t.opts.MaxQueue {
		t.mu.Unlock()
		t.dropped.Add(1)
		return
	}
	t.queue = append(t.queue, s)
	full := len(t.queue) >= t.opts.MaxBatch
	t.mu.Unlock()
	if full {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped is how many spans were dropped for a full queue.
func (t *Tracer) Dropped() uint64 {
	if t == nil {
		return 0
	}
	return t.dropped.Load()
}

// Exported is how many spans the collector accepted.
func (t *Tracer) Exported() uint64 {
	if t == nil {
		return 0
	}
	return t.exported.Load()
}

func (t *Tracer) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		case <-t.wake:
		}
		if err := t.Flush(context.Background()); err != nil {
			t.log.Warn("trace export failed", slog.String("err", err.Error()))
		}
	}
}

// Flush exports every queued span now, in batches of MaxBatch, and
// returns the first error (the spans of a failed batch are dropped: a
// collector that is down must not hold a function back). Nil Tracer:
// nothing.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.exportMu.Lock()
	defer t.exportMu.Unlock()
	var errs []error
	for {
		t.mu.Lock()
		n := min(len(t.queue), t.opts.MaxBatch)
		batch := t.queue[:n:n]
		t.queue = t.queue[n:]
		if len(t.queue) == 0 {
			t.queue = nil
		}
		t.mu.Unlock()
		if n == 0 {
			break
		}
		if err := t.export(ctx, batch); err != nil {
			errs = append(errs, err)
			break // the collector is unreachable: the rest waits for the next flush
		}
		t.exported.Add(uint64(n))
	}
	if d := t.dropped.Load(); d != t.reported {
		t.log.Warn("trace spans dropped: the export queue was full", slog.Uint64("dropped", d-t.reported),
			slog.Int("maxQueue", t.opts.MaxQueue))
		t.reported = d
	}
	return errors.Join(errs...)
}

// Shutdown stops the background exporter and flushes what is queued.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.once.Do(func() { close(t.stop) })
	<-t.done
	return t.Flush(ctx)
}

// The variables FromEnv reads: the standard ones of the OpenTelemetry
// SDKs.
const (
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvHeaders        = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTimeout        = "OTEL_EXPORTER_OTLP_TIMEOUT"
	EnvServiceName    = "OTEL_SERVICE_NAME"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// FromEnv returns the Tracer the environment configures, nil (tracing
// off) when neither OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the URL itself)
// nor OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, "/v1/traces" appended) is
// set, or when OTEL_SDK_DISABLED is true. OTEL_EXPORTER_OTLP_HEADERS are
// "key=value" pairs, comma-separated, values URL-encoded;
// OTEL_EXPORTER_OTLP_PROTOCOL may only be http/json;
// OTEL_EXPORTER_OTLP_TIMEOUT is in milliseconds; OTEL_SERVICE_NAME
// replaces service.name. o supplies the rest (Function, Version, Logger).
// Errors name the variable.
func FromEnv(getenv func(string) string, o Options) (*Tracer, error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return nil, nil
	}
	endpoint := strings.TrimSpace(getenv(EnvTracesEndpoint))
	if endpoint == "" {
		base := strings.TrimSpace(getenv(EnvEndpoint))
		if base == "" {
			return nil, nil
		}
		endpoint = strings.TrimRight(base, "/") + "/v1/traces"
	}
	o.Endpoint = endpoint
	if p := strings.TrimSpace(getenv(EnvProtocol)); p != "" && p != "http/json" {
		return nil, fmt.Errorf("%s=%s: wxnotify exports traces with OTLP/HTTP in JSON only: set http/json or leave it unset", EnvProtocol, p)
	}
	headers, err := ParseHeaders(getenv(EnvHeaders))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvHeaders, err)
	}
	o.Headers = headers
	if s := strings.TrimSpace(getenv(EnvTimeout)); s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of milliseconds", EnvTimeout, s)
		}
		o.Timeout = time.Duration(ms) * time.Millisecond
	}
	if s := strings.TrimSpace(getenv(EnvServiceName)); s != "" {
		o.Service = s
	}
	t, err := New(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpointVar(getenv), err)
	}
	return t, nil
}

func endpointVar(getenv func(string) string) string {
	if strings.TrimSpace(getenv(EnvTracesEndpoint)) != "" {
		return EnvTracesEndpoint
	}
	return EnvEndpoint
}

// ParseHeaders parses OTEL_EXPORTER_OTLP_HEADERS: "key=value" pairs,
// comma-separated, the values URL-encoded; empty pairs are skipped. The
// error never quotes a value (it may be a credential).
func ParseHeaders(s string) (map[string]string, error) {
	headers := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || !validHeaderName(k) {
			return nil, fmt.Errorf("pair %d is not key=value with a header name as key", i+1)
		}
		value, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("the value of %s is not URL-encoded text", k)
		}
		headers[k] = value
	}
	return headers, nil
}

func validHeaderName(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
