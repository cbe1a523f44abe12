package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/trace/tracetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// tracedMux is the Consent group's mux of one app "shop", traced by tr.
func tracedMux(t *testing.T, tr *trace.Tracer) *httpapi.Mux {
	t.Helper()
	svc, _ := offlineService(t)
	api, err := httpapi.New(httpapi.Options{Apps: []httpapi.App{{ID: "shop", Service: svc}}, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	m := api.NewMux(httpapi.Consent)
	m.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	m.HandleFunc("GET /child", func(w http.ResponseWriter, r *http.Request) {
		_, s := tr.Start(r.Context(), "child", trace.KindInternal)
		s.End()
		w.WriteHeader(http.StatusNoContent)
	})
	return m
}

func TestServerSpans(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	tr, err := trace.New(trace.Options{Endpoint: c.Endpoint(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m := tracedMux(t, tr)
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	serve := func(method, path, traceparent string) int {
		req := httptest.NewRequest(method, path, nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
			req.Header.Set("tracestate", "rojo=1")
		}
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		return rec.Code
	}
	serve("GET", "/v1/apps/shop/templates", "00-"+traceID+"-"+spanID+"-01") // 401: no session
	serve("GET", "/child", "00-"+traceID+"-"+spanID+"-01")
	serve("GET", "/healthz", "00-00000000000000000000000000000000-"+spanID+"-01") // invalid: a new root
	serve("GET", "/boom", "")
	serve("BREW", "/nowhere/ntf_123", "")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}

	tmpl := c.Named("GET /v1/apps/{app}/templates")
	if len(tmpl) != 1 {
		t.Fatalf("spans: %+v", c.Spans())
	}
	s := tmpl[0]
	if s.Kind != 2 || s.TraceID != traceID || s.ParentSpanID != spanID || s.TraceState != "rojo=1" {
		t.Errorf("server span: %+v", s)
	}
	want := map[string]any{"http.request.method": "GET", "http.route": "/v1/apps/{app}/templates",
		"http.response.status_code": int64(401), "wxnotify.app": "shop"}
	for k, v := range want {
		if s.Attrs[k] != v {
			t.Errorf("%s = %v, want %v", k, s.Attrs[k], v)
		}
	}
	if s.StatusCode != 0 {
		t.Errorf("a 401 is no server error: status %d", s.StatusCode)
	}

	// The handler's spans are the server span's children.
	child, parent := c.Named("child"), c.Named("GET /child")
	if len(child) != 1 || len(parent) != 1 || child[0].ParentSpanID != parent[0].SpanID || child[0].TraceID != traceID ||
		parent[0].Attrs["http.response.status_code"] != int64(204) {
		t.Errorf("child %+v of %+v", child, parent)
	}

	if h := c.Named("GET /healthz"); len(h) != 1 || h[0].TraceID == traceID || h[0].ParentSpanID != "" {
		t.Errorf("an invalid traceparent must start a new trace: %+v", h)
	}
	if b := c.Named("GET /boom"); len(b) != 1 || b[0].Attrs["http.response.status_code"] != int64(500) || b[0].StatusCode != 2 {
		t.Errorf("a panic is a 500 with an error status: %+v", b)
	}
	// The unmatched route is named by its pattern, never its path; a
	// made-up method is _OTHER.
	if u := c.Named("_OTHER /"); len(u) != 1 || u[0].Attrs["http.response.status_code"] != int64(404) {
		t.Errorf("unmatched: %+v", c.Spans())
	}
	for _, s := range c.Spans() {
		for _, v := range s.Attrs {
			if v == "/nowhere/ntf_123" {
				t.Errorf("span %q carries the raw path", s.Name)
			}
		}
	}
}

// With tracing off nothing is exported: there is no tracer to export.
func TestServerSpansOff(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	m := tracedMux(t, nil)
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(c.Requests()) != 0 {
		t.Errorf("status %d, %d export requests", rec.Code, len(c.Requests()))
	}
}

// offlineService is a service of one template on a fresh bbolt store,
// whose WeChat is unreachable: for routes that never call it.
func offlineService(t *testing.T) (*notify.Service, store.Store) {
	t.Helper()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	wx, err := wechat.New(wechat.Config{AppID: testAppID, Secret: "s", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := notify.NewSessions([]byte(testSecret32), time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := notify.NewCatalog([]notify.Template{{Alias: "lead", ID: testTmplID, Keywords: []notify.Keyword{{Name: "thing1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := notify.New(notify.Options{AppID: testAppID, Store: bolt, WeChat: wx, Catalog: catalog, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	return svc, bolt
}
