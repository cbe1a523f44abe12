package boot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
)

func TestWithBundledConfig(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "bootstrap")
	bundled := filepath.Join(dir, ConfigFileName)
	if err := os.WriteFile(bundled, []byte("templates: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		exe  func() (string, error)
		want string
	}{
		{"Bundled", nil, func() (string, error) { return exe, nil }, bundled},
		{"ExplicitWins", map[string]string{"WXN_CONFIG": "/etc/wxnotify.yaml"}, func() (string, error) { return exe, nil }, "/etc/wxnotify.yaml"},
		{"NoFile", nil, func() (string, error) { return filepath.Join(empty, "bootstrap"), nil }, ""},
		{"NoExecutable", nil, func() (string, error) { return "", errors.New("unknown") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := withBundledConfig(func(k string) string { return tt.env[k] }, tt.exe)
			if got := getenv("WXN_CONFIG"); got != tt.want {
				t.Errorf("WXN_CONFIG: got %q, want %q", got, tt.want)
			}
			if got := getenv("WXN_STORE"); got != "" {
				t.Errorf("WXN_STORE: got %q, want it untouched", got)
			}
		})
	}
}

func TestHandlers(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{AppID: "wx0123456789abcdef", Secret: "s", APIBase: "http://127.0.0.1:1",
		SessionSecret: strings.Repeat("k", notify.MinSecretLen), SessionTTL: time.Hour}
	p, err := Build(cfg, st, Options{Function: "send"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name       string
		groups     []httpapi.Group
		wantInvoke bool
	}{
		{"Send", []httpapi.Group{httpapi.Send}, true},
		{"Login", []httpapi.Group{httpapi.Login}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Handlers(p, strings.ToLower(tt.name), tt.groups...)
			if (h.Invoke != nil) != tt.wantInvoke || h.Events != nil || h.Tick != nil {
				t.Errorf("got Invoke %v, Events %v, Tick %v; want Invoke %v only", h.Invoke != nil, h.Events != nil, h.Tick != nil, tt.wantInvoke)
			}
			rec := httptest.NewRecorder()
			h.HTTP.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("GET /healthz: got %d, want 200", rec.Code)
			}
		})
	}
}

// withFlush flushes the metrics after each handler returns, whatever the
// trigger, and leaves an absent handler absent.
func TestWithFlush(t *testing.T) {
	flushed := 0
	inner := 0
	h := withFlush(platform.Handlers{
		HTTP: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			if flushed != 0 {
				t.Error("flushed before the request was served")
			}
			inner++
		}),
		Events: func(context.Context, []platform.Event) ([]string, error) { inner++; return nil, nil },
		Tick:   func(context.Context, time.Time) error { inner++; return nil },
	}, func() { flushed++ })
	h.HTTP.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	_, _ = h.Events(context.Background(), nil)
	_ = h.Tick(context.Background(), time.Now())
	if inner != 3 || flushed != 3 {
		t.Fatalf("ran %d handlers, flushed %d times; want 3 and 3", inner, flushed)
	}
	if h.Invoke != nil {
		t.Fatal("withFlush made an Invoke handler the function does not have")
	}
}
