package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// newSandbox serves the sandbox routes of a fake that remembers keep login codes.
func newSandbox(tb testing.TB, keep wechattest.Retention) *httptest.Server {
	tb.Helper()
	fake, err := wechattest.New(wechattest.Options{Retention: keep})
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, rt := range sandbox.New(fake).Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return ts
}

func post(tb testing.TB, ts *httptest.Server, path, body string) (int, map[string]any) {
	tb.Helper()
	resp, err := ts.Client().Post(ts.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("POST %s: decode: %v", path, err)
	}
	return resp.StatusCode, out
}

// A code identifies its user in /sandbox/subscribe while the fake remembers
// it: the sandbox keeps no codes of its own, so its memory stays within the
// fake's retention.
func TestSubscribeByCodeWhileTheFakeRemembersIt(t *testing.T) {
	ts := newSandbox(t, wechattest.Retention{LoginCodes: 2})
	var codes []string
	for _, user := range []string{"alice", "bob", "carol"} {
		status, body := post(t, ts, "/sandbox/login", `{"user":"`+user+`"}`)
		if status != http.StatusOK {
			t.Fatalf("login %s: got status %d, want 200: %v", user, status, body)
		}
		codes = append(codes, body["code"].(string))
	}
	const choices = `"choices":{"zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE":"accept"}`
	tests := []struct {
		name string
		code string
		want int
	}{
		{"Remembered", codes[2], http.StatusOK},
		{"ForgottenByTheFake", codes[0], http.StatusBadRequest},
		{"Unknown", "nope", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, ts, "/sandbox/subscribe", `{"code":"`+tt.code+`",`+choices+`}`)
			if status != tt.want {
				t.Fatalf("got status %d, want %d: %v", status, tt.want, body)
			}
		})
	}
}
