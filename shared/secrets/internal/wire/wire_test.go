package wire

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpoint(t *testing.T) {
	base, host, err := Endpoint("https://ssm.tencentcloudapi.com//")
	if err != nil || base != "https://ssm.tencentcloudapi.com/" || host != "ssm.tencentcloudapi.com" {
		t.Fatalf("got %q %q %v", base, host, err)
	}
	for _, bad := range []string{"ftp://x", "secretsmanager.us-east-1.amazonaws.com", "https://", "://"} {
		if _, _, err := Endpoint(bad); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("Endpoint(%q): got %v, want a refusal", bad, err)
		}
	}
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, MaxAnswer+1))
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"ok":1}`))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/small", nil)
	status, body, err := Do(srv.Client(), req, "test call")
	if err != nil || status != http.StatusTeapot || string(body) != `{"ok":1}` {
		t.Fatalf("got %d %q %v", status, body, err)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/big", nil)
	if _, _, err := Do(srv.Client(), req, "test call"); err == nil || !strings.HasPrefix(err.Error(), "test call: answer larger than") {
		t.Fatalf("an answer over MaxAnswer: got %v", err)
	}
	srv.Close()
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/small", nil)
	if _, _, err := Do(srv.Client(), req, "test call"); err == nil || !strings.HasPrefix(err.Error(), "test call: ") {
		t.Fatalf("a server that is gone: got %v", err)
	}
}
