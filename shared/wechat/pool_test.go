package wechat_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// dialsDuringRounds runs rounds of workers concurrent sends through a
// client built with the default HTTP client and maxConns, against a server
// that answers a round only once all its sends have arrived (so every
// worker holds a connection at once), and returns the connections the
// server accepted.
func dialsDuringRounds(t *testing.T, maxConns, workers, rounds int) int64 {
	t.Helper()
	var (
		accepted atomic.Int64
		mu       sync.Mutex
		arrived  int
		release  = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == workers {
			arrived = 0
			close(release)
			release = make(chan struct{})
			mu.Unlock()
		} else {
			wait := release
			mu.Unlock()
			<-wait
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","msgid":1}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	wx, err := wechat.New(wechat.Config{AppID: "wxpool", BaseURL: srv.URL, Tokens: wechat.StaticToken("tok"), MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	for range rounds {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				if _, err := wx.SendSubscribeMessage(context.Background(), sendRequest()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	return accepted.Load()
}

// TestDefaultClientKeepsMaxConns: sized for 100 concurrent calls, the
// default client dials 100 connections for 5 rounds of 100 sends and
// reuses them; sized for the default 32, it closes the 68 it cannot keep
// after every round and dials them again.
func TestDefaultClientKeepsMaxConns(t *testing.T) {
	const workers, rounds = 100, 5
	if got := dialsDuringRounds(t, workers, workers, rounds); got != workers {
		t.Errorf("MaxConns %d: %d connections for %d rounds of %d concurrent sends, want %d", workers, got, rounds, workers, workers)
	}
	churn := int64(workers + (rounds-1)*(workers-wechat.DefaultMaxConns))
	if got := dialsDuringRounds(t, 0, workers, rounds); got < churn {
		t.Errorf("default MaxConns (%d): %d connections, want at least %d (the pool keeps %d after each round)", wechat.DefaultMaxConns, got, churn, wechat.DefaultMaxConns)
	}
}
