package trace_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/trace/tracetest"
)

func newTracer(t *testing.T, c *tracetest.Collector, o trace.Options) *trace.Tracer {
	t.Helper()
	o.Endpoint = c.Endpoint()
	if o.Interval == 0 {
		o.Interval = time.Hour // the tests flush
	}
	tr, err := trace.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func TestExportOTLPJSON(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr := newTracer(t, c, trace.Options{Function: "send", Version: "v1.2.3", Headers: map[string]string{"Authorization": "Bearer k"}})

	remote, err := trace.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err != nil {
		t.Fatal(err)
	}
	remote.State = "rojo=1"
	ctx := trace.ContextWithRemote(context.Background(), remote)
	ctx, server := tr.Start(ctx, "POST /v1/notifications", trace.KindServer, trace.String("http.request.method", "POST"))
	_, client := tr.Start(ctx, "subscribeMessage.send", trace.KindClient)
	client.SetAttrs(trace.Int("wechat.errcode", 43101))
	client.SetError("wechat errcode 43101")
	client.End()
	linked := trace.SpanContext{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, Flags: trace.FlagSampled}
	server.AddLink(linked, trace.String("wxnotify.link", "lead"))
	server.SetAttrs(trace.Int("http.response.status_code", 201))
	server.End()
	server.End()                               // once only
	server.SetAttrs(trace.String("late", "x")) // ignored once ended

	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := c.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/v1/traces" || reqs[0].ContentType != "application/json" ||
		reqs[0].Header.Get("Authorization") != "Bearer k" {
		t.Fatalf("requests: %+v", reqs)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	spans := c.Spans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %+v", len(spans), spans)
	}
	cs, ss := spans[0], spans[1]
	if ss.Name != "POST /v1/notifications" || ss.Kind != 2 || ss.TraceID != remote.TraceID.String() ||
		ss.ParentSpanID != remote.SpanID.String() || ss.TraceState != "rojo=1" {
		t.Errorf("server span: %+v", ss)
	}
	if ss.Attrs["http.request.method"] != "POST" || ss.Attrs["http.response.status_code"] != int64(201) || ss.Attrs["late"] != nil {
		t.Errorf("server attributes: %v", ss.Attrs)
	}
	if len(ss.Links) != 1 || ss.Links[0].TraceID != linked.TraceID.String() || ss.Links[0].SpanID != linked.SpanID.String() ||
		ss.Links[0].Attrs["wxnotify.link"] != "lead" {
		t.Errorf("server links: %+v", ss.Links)
	}
	if cs.Name != "subscribeMessage.send" || cs.Kind != 3 || cs.TraceID != ss.TraceID || cs.ParentSpanID != ss.SpanID ||
		cs.StatusCode != 2 || cs.Message != "wechat errcode 43101" || cs.Attrs["wechat.errcode"] != int64(43101) {
		t.Errorf("client span: %+v", cs)
	}
	if cs.Start <= 0 || cs.End < cs.Start || ss.End < cs.End {
		t.Errorf("times: client %d-%d, server %d-%d", cs.Start, cs.End, ss.Start, ss.End)
	}
	want := map[string]any{"service.name": "wxnotify", "service.version": "v1.2.3", "faas.name": "send"}
	for k, v := range want {
		if ss.Resource[k] != v {
			t.Errorf("resource %s = %v, want %v", k, ss.Resource[k], v)
		}
	}
	if ss.Scope == "" {
		t.Error("no instrumentation scope")
	}
}

func TestRootAndSampling(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr := newTracer(t, c, trace.Options{})
	_, root := tr.Start(context.Background(), "root", trace.KindInternal)
	if !root.Context().IsValid() || !root.Context().Sampled() {
		t.Fatalf("root: %+v", root.Context())
	}
	root.End()
	// An unsampled parent: the child is not recorded, but keeps the trace.
	unsampled, _ := trace.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	ctx := trace.ContextWithRemote(context.Background(), unsampled)
	_, child := tr.Start(ctx, "child", trace.KindServer)
	if child.Recording() || child.Context().TraceID != unsampled.TraceID || child.Context().Sampled() {
		t.Errorf("child of an unsampled parent: %+v recording %v", child.Context(), child.Recording())
	}
	child.End()
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := c.Spans()
	if len(spans) != 1 || spans[0].Name != "root" || spans[0].ParentSpanID != "" || spans[0].TraceID != root.Context().TraceID.String() {
		t.Errorf("spans: %+v", spans)
	}
}

func TestNilTracerAndSpan(t *testing.T) {
	var tr *trace.Tracer
	ctx := context.Background()
	got, s := tr.Start(ctx, "x", trace.KindServer)
	if got != ctx || s != nil {
		t.Fatalf("nil tracer started %v", s)
	}
	// Every method of a nil span is a no-op.
	s.SetAttrs(trace.String("k", "v"))
	s.AddLink(trace.SpanContext{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	s.SetError("x")
	s.End()
	if s.Context().IsValid() || s.Recording() || trace.FromContext(ctx) != nil {
		t.Error("nil span has a context")
	}
	if tr.Flush(ctx) != nil || tr.Shutdown(ctx) != nil || tr.Dropped() != 0 {
		t.Error("nil tracer flush")
	}
}

func TestQueueBoundDrops(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr := newTracer(t, c, trace.Options{MaxQueue: 3, MaxBatch: 100})
	for range 5 {
		_, s := tr.Start(context.Background(), "s", trace.KindInternal)
		s.End()
	}
	if tr.Dropped() != 2 {
		t.Errorf("dropped %d, want 2", tr.Dropped())
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Spans()); n != 3 || tr.Exported() != 3 {
		t.Errorf("exported %d (%d), want 3", n, tr.Exported())
	}
}

func TestBatchesAndBackgroundExport(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr := newTracer(t, c, trace.Options{MaxBatch: 4})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, s := tr.Start(context.Background(), "s", trace.KindInternal)
			s.End()
		})
	}
	wg.Wait()
	// A full batch wakes the background exporter; Flush sends the rest.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Spans()); n != 10 {
		t.Errorf("%d spans, want 10", n)
	}
	if n := len(c.Requests()); n < 3 {
		t.Errorf("%d requests for 10 spans in batches of 4, want at least 3", n)
	}
}

func TestFlushCollectorDown(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr := newTracer(t, c, trace.Options{})
	c.Fail(http.StatusServiceUnavailable)
	_, s := tr.Start(context.Background(), "s", trace.KindInternal)
	s.End()
	err := tr.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("flush to a failing collector: %v", err)
	}
	// The failed batch is gone: the next flush has nothing to send.
	c.Fail(0)
	if err := tr.Flush(context.Background()); err != nil || len(c.Spans()) != 0 {
		t.Errorf("after a failed export: %v, %d spans", err, len(c.Spans()))
	}
}

func TestFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, e := range []func(string) string{
		env(),
		env(trace.EnvHeaders, "a=b", trace.EnvServiceName, "x"),
		env(trace.EnvEndpoint, "http://collector:4318", trace.EnvSDKDisabled, "true"),
	} {
		tr, err := trace.FromEnv(e, trace.Options{})
		if tr != nil || err != nil {
			t.Errorf("tracing on without an endpoint: %v %v", tr, err)
		}
	}
	c := tracetest.NewCollector()
	defer c.Close()
	for _, e := range []func(string) string{
		env(trace.EnvEndpoint, c.URL()+"/"),
		env(trace.EnvTracesEndpoint, c.Endpoint(), trace.EnvEndpoint, "http://elsewhere.invalid"),
	} {
		tr, err := trace.FromEnv(e, trace.Options{})
		if err != nil || tr == nil {
			t.Fatalf("FromEnv: %v", err)
		}
		_, s := tr.Start(context.Background(), "s", trace.KindInternal)
		s.End()
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if reqs := c.Requests(); len(reqs) != 2 || reqs[0].Path != "/v1/traces" || reqs[1].Path != "/v1/traces" {
		t.Errorf("requests: %+v", reqs)
	}
	tr, err := trace.FromEnv(env(trace.EnvEndpoint, c.URL(), trace.EnvHeaders, "Authorization=Basic%20dXNlcg==, x-tenant = t1",
		trace.EnvServiceName, "wx-prod", trace.EnvTimeout, "500", trace.EnvProtocol, "http/json"), trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := tr.Start(context.Background(), "s", trace.KindInternal)
	s.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := c.Requests()[2]
	if last.Header.Get("Authorization") != "Basic dXNlcg==" || last.Header.Get("X-Tenant") != "t1" {
		t.Errorf("headers: %v", last.Header)
	}
	if sp := c.Spans(); sp[len(sp)-1].Resource["service.name"] != "wx-prod" {
		t.Errorf("service.name: %v", sp[len(sp)-1].Resource)
	}

	for _, tc := range []struct {
		env  func(string) string
		want string
	}{
		{env(trace.EnvEndpoint, "collector:4318"), trace.EnvEndpoint},
		{env(trace.EnvTracesEndpoint, "ftp://collector/v1/traces"), trace.EnvTracesEndpoint},
		{env(trace.EnvEndpoint, c.URL(), trace.EnvProtocol, "grpc"), "http/json"},
		{env(trace.EnvEndpoint, c.URL(), trace.EnvHeaders, "novalue"), trace.EnvHeaders},
		{env(trace.EnvEndpoint, c.URL(), trace.EnvHeaders, "bad header=x"), trace.EnvHeaders},
		{env(trace.EnvEndpoint, c.URL(), trace.EnvHeaders, "k=%zz"), trace.EnvHeaders},
		{env(trace.EnvEndpoint, c.URL(), trace.EnvTimeout, "10s"), trace.EnvTimeout},
	} {
		tr, err := trace.FromEnv(tc.env, trace.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
		if tr != nil {
			t.Error("a tracer with an error")
		}
	}
	// The error never quotes a header value: it may be a credential.
	_, err = trace.FromEnv(env(trace.EnvEndpoint, c.URL(), trace.EnvHeaders, "Authorization=secret%zz"), trace.Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("header error: %v", err)
	}
}

// A collector that cannot be reached is an error naming its host, never
// its URL (which may carry a credential).
func TestFlushUnreachable(t *testing.T) {
	tr, err := trace.New(trace.Options{Endpoint: "http://user:s3cret@127.0.0.1:1/v1/traces?token=s3cret", Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	_, s := tr.Start(context.Background(), "s", trace.KindInternal)
	s.End()
	err = tr.Flush(context.Background())
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("flush to nowhere: %v", err)
	}
}
