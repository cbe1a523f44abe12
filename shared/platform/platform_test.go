package platform

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// env is a fake environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want Platform
	}{
		{"Local", nil, Local},
		{"AWS", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, AWS},
		{"Tencent", map[string]string{"_LAMBDA_SERVER_PORT": "9000"}, Tencent},
		{"BothMeansAWS", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_LAMBDA_SERVER_PORT": "9000"}, AWS},
		{"Blank", map[string]string{"AWS_LAMBDA_RUNTIME_API": " ", "_LAMBDA_SERVER_PORT": ""}, Local},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Detect(env(tt.vars)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAddr(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"Default", nil, ":8080"},
		{"Port", map[string]string{"PORT": "9000"}, ":9000"},
		{"Addr", map[string]string{"WXN_ADDR": "127.0.0.1:7000", "PORT": "9000"}, "127.0.0.1:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Addr(env(tt.vars)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServeLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello "+r.URL.Path) })
	go func() { done <- serveListener(ctx, ln, h, Options{}.withDefaults()) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello /x" {
		t.Errorf("body: got %q, want %q", body, "hello /x")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after shutdown: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop")
	}
}

func TestRunLocal(t *testing.T) {
	t.Run("StopsWithContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h := Handlers{HTTP: http.NotFoundHandler()}
		if err := Run(ctx, h, Options{Getenv: env(nil), Addr: "127.0.0.1:0"}); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("NoHTTPCore", func(t *testing.T) {
		err := Run(context.Background(), Handlers{}, Options{Getenv: env(nil), Addr: "127.0.0.1:0"})
		if err == nil || !strings.Contains(err.Error(), "no HTTP handler") {
			t.Errorf("got %v, want an error about the missing HTTP handler", err)
		}
	})
	t.Run("BadAddress", func(t *testing.T) {
		err := Run(context.Background(), Handlers{HTTP: http.NotFoundHandler()}, Options{Getenv: env(nil), Addr: "256.0.0.1:1"})
		if err == nil {
			t.Error("got nil, want the listen error")
		}
	})
}
