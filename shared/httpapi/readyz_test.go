package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/store"
)

// readyStore is a store whose Get fails, or hangs until its context ends.
type readyStore struct {
	store.Store
	fail, hang bool
	gets       atomic.Int64
}

func (s *readyStore) Get(ctx context.Context, key store.Key) (store.Item, error) {
	s.gets.Add(1)
	switch {
	case s.hang:
		<-ctx.Done()
		return store.Item{}, ctx.Err()
	case s.fail:
		return store.Item{}, errors.New("redis: connection refused")
	}
	return s.Store.Get(ctx, key)
}

func readyMux(t *testing.T, st store.Store) *httpapi.Mux {
	t.Helper()
	svc, bolt := offlineService(t)
	if rs, ok := st.(*readyStore); ok && rs.Store == nil {
		rs.Store = bolt
	}
	api, err := httpapi.New(httpapi.Options{Service: svc, Store: st, ReadyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return api.NewMux()
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		st         *readyStore
		wantStatus int
		wantCode   string
	}{
		{"NotFoundIsFine", &readyStore{}, 200, ""},
		{"StoreFails", &readyStore{fail: true}, 503, "store_unavailable"},
		{"StoreHangs", &readyStore{hang: true}, 503, "store_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := readyMux(t, tt.st)
			rec := httptest.NewRecorder()
			start := time.Now()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("answered after %v: the timeout did not bound the read", d)
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if n := tt.st.gets.Load(); n != 1 {
				t.Errorf("%d store reads, want 1", n)
			}
			var body struct {
				OK    bool `json:"ok"`
				Error struct{ Code, RequestID string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if tt.wantCode == "" {
				if !body.OK {
					t.Fatalf("body %s, want {\"ok\":true}", rec.Body)
				}
				return
			}
			if body.Error.Code != tt.wantCode || body.Error.RequestID == "" || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("got %s (Retry-After %q), want %s with a requestId and Retry-After", rec.Body,
					rec.Header().Get("Retry-After"), tt.wantCode)
			}
		})
	}
	t.Run("WrongMethod", func(t *testing.T) {
		rec := httptest.NewRecorder()
		readyMux(t, &readyStore{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
		// The mux answers a wrong method as not_found, naming the method.
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "method POST is not allowed") {
			t.Fatalf("POST /readyz: got %d %s, want 404 naming the method", rec.Code, rec.Body)
		}
	})
}
