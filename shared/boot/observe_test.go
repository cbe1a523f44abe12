package boot

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storeobs"
)

// recordingSink keeps the events it is given.
type recordingSink struct {
	mu     sync.Mutex
	events []observe.Event
}

func (s *recordingSink) Record(e observe.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func buildObserved(t *testing.T, o Options) *Parts {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{AppID: "wx0123456789abcdef", Secret: "s", APIBase: "http://127.0.0.1:1", Store: config.StoreBolt,
		SessionSecret: strings.Repeat("k", notify.MinSecretLen), SessionTTL: time.Hour}
	p, err := Build(cfg, st, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// readyz asks p's mux GET /readyz, which reads the store once.
func readyz(t *testing.T, p *Parts) {
	t.Helper()
	rec := httptest.NewRecorder()
	p.API.NewMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /readyz: got %d %s", rec.Code, rec.Body)
	}
}

// The platform picks the sink: EMF on Lambda, plain lines on SCF, none
// locally; the store is wrapped to report with its backend label.
func TestMetricsSinkByPlatform(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		emf  bool
		none bool
	}{
		{"Lambda", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "AWS_LAMBDA_FUNCTION_NAME": "send"}, true, false},
		{"SCF", map[string]string{"_LAMBDA_SERVER_PORT": "9000"}, false, false},
		{"Local", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := buildObserved(t, Options{Function: "send", Getenv: func(k string) string { return tt.env[k] }, MetricsOut: &out})
			if _, wrapped := p.Store.(*storeobs.Store); wrapped == tt.none {
				t.Fatalf("store wrapped: %v, want %v", wrapped, !tt.none)
			}
			if tt.none {
				if p.Metrics != nil {
					t.Fatalf("local: got a sink %T, want none", p.Metrics)
				}
				p.FlushMetrics() // no sink: nothing to do, no panic
				return
			}
			readyz(t, p)
			p.FlushMetrics()
			var line map[string]any
			if err := json.Unmarshal(out.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON line, got %q: %v", out.String(), err)
			}
			if line["backend"] != "bolt" || line["op"] != "get" || line["result"] != "not_found" {
				t.Fatalf("store line: %v", line)
			}
			if vs, _ := line[observe.StoreOpSeconds].([]any); len(vs) != 1 {
				t.Fatalf("store op values: %v, want 1", line[observe.StoreOpSeconds])
			}
			if _, emf := line["_aws"]; emf != tt.emf {
				t.Fatalf("_aws present: %v, want %v", emf, tt.emf)
			}
		})
	}
}

// A sink of the caller's (`wxnotify dev`'s) wins over the platform's.
func TestMetricsSinkOfCaller(t *testing.T) {
	sink := &recordingSink{}
	var out bytes.Buffer
	p := buildObserved(t, Options{Metrics: sink, MetricsOut: &out,
		Getenv: func(k string) string { return map[string]string{"AWS_LAMBDA_RUNTIME_API": "x"}[k] }})
	readyz(t, p)
	if out.Len() != 0 {
		t.Fatalf("the platform's sink wrote: %s", out.String())
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.events) != 1 || sink.events[0].Label("op") != "get" || sink.events[0].Label("backend") != "bolt" {
		t.Fatalf("events: %+v", sink.events)
	}
}
