package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/trace"
)

// allocsPerRequest is the allocations of serving one request with h.
func allocsPerRequest(h http.Handler) float64 {
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := &statusRecorder{ResponseWriter: httptest.NewRecorder()}
	return testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
}

// With tracing off the trace middleware is no middleware: a request costs
// the allocations it costs without it. With tracing on it costs more (the
// measure can tell).
func TestTracedOffAllocatesNothing(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	bare := allocsPerRequest(h)
	off := allocsPerRequest((&API{}).traced(h))
	if off != bare {
		t.Errorf("tracing off: %.0f allocations per request, %.0f without the middleware", off, bare)
	}
	tr, err := trace.New(trace.Options{Endpoint: "http://127.0.0.1:1/v1/traces", Interval: time.Hour, MaxQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	on := allocsPerRequest((&API{tracer: tr}).traced(h))
	if on <= bare {
		t.Errorf("tracing on: %.0f allocations per request, %.0f without: the measure sees nothing", on, bare)
	}
	t.Logf("allocations per request: %.0f without the middleware, %.0f tracing off, %.0f tracing on", bare, off, on)
}

func BenchmarkTraced(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tr, err := trace.New(trace.Options{Endpoint: "http://127.0.0.1:1/v1/traces", Interval: time.Hour, MaxQueue: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"none", h}, {"off", (&API{}).traced(h)}, {"on", (&API{tracer: tr}).traced(h)}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/healthz", nil)
			w := &statusRecorder{ResponseWriter: httptest.NewRecorder()}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}
