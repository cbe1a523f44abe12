package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"

	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/platform/platformtest"
)

// startSCF runs h as a function process would under SCF's Go1 runtime and
// returns a connected client. The server stops with the test.
func startSCF(t *testing.T, h platform.Handlers) (*platformtest.SCFClient, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"_LAMBDA_SERVER_PORT": port}
	go func() {
		done <- platform.Run(ctx, h, platform.Options{Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil after the context ended", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after the context ended")
		}
	})
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	c, err := platformtest.DialSCF(dctx, "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, "127.0.0.1:" + port
}

func TestSCFProtocol(t *testing.T) {
	h := platform.Handlers{
		HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("hello " + r.URL.Path + " " + r.Header.Get("X-Request-Id")))
		}),
		Invoke: func(ctx context.Context, p json.RawMessage) (any, error) {
			var in struct {
				Mode  string
				Sleep int
			}
			_ = json.Unmarshal(p, &in)
			switch in.Mode {
			case "fail":
				return nil, errors.New("refused")
			case "panic":
				panic("kaboom")
			}
			time.Sleep(time.Duration(in.Sleep) * time.Millisecond)
			d, _ := ctx.Deadline()
			return map[string]any{"requestId": platform.RequestID(ctx), "deadline": d.UnixMilli()}, nil
		},
	}
	c, _ := startSCF(t, h)

	t.Run("HTTP", func(t *testing.T) {
		resp, err := (&http.Client{Transport: &platformtest.SCFTransport{Client: c}}).Get("https://fn.example.com/v1/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello /v1/x ") || len(body) != len("hello /v1/x ")+36 {
			t.Errorf("got %d %q, want 200 and hello /v1/x with the invocation's request id", resp.StatusCode, body)
		}
	})
	t.Run("Invoke", func(t *testing.T) {
		deadline := time.Now().Add(7 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		out, err := c.Invoke(ctx, []byte(`{"mode":"ok"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			RequestID string
			Deadline  int64
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.RequestID) != 36 || got.Deadline/1000 != deadline.Unix() {
			t.Errorf("got %+v, want a request id and the deadline %d", got, deadline.UnixMilli())
		}
	})
	t.Run("Error", func(t *testing.T) {
		_, err := c.Invoke(context.Background(), []byte(`{"mode":"fail"}`))
		var se *platformtest.SCFError
		if !errors.As(err, &se) || se.Message != "refused" || se.Type != "errorString" || se.ShouldExit {
			t.Errorf("got %#v, want SCFError refused of type errorString", err)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		_, err := c.Invoke(context.Background(), []byte(`{"mode":"panic"}`))
		var se *platformtest.SCFError
		if !errors.As(err, &se) || se.Message != "kaboom" || !se.ShouldExit {
			t.Errorf("got %#v, want SCFError kaboom with ShouldExit", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		start := time.Now()
		for range 4 {
			wg.Go(func() {
				if _, err := c.Invoke(context.Background(), []byte(`{"sleep":200}`)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if d := time.Since(start); d > 700*time.Millisecond {
			t.Errorf("4 invocations of 200ms on one connection took %v, want them concurrent", d)
		}
	})
}

func TestSCFProtocolErrors(t *testing.T) {
	_, addr := startSCF(t, platform.Handlers{})
	c, err := rpc.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Call("Function.Nope", &messages.PingRequest{}, &messages.PingResponse{})
	if err == nil || !strings.Contains(err.Error(), "can't find service Function.Nope") {
		t.Errorf("unknown method: got %v, want net/rpc's error", err)
	}
	var resp messages.InvokeResponse
	req := &messages.InvokeRequest{Payload: []byte(`{}`), RequestId: "r1", ClientContext: []byte("{not json"),
		Deadline: messages.InvokeRequest_Timestamp{Seconds: time.Now().Add(time.Minute).Unix()}}
	if err := c.Call("Function.Invoke", req, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Payload != nil {
		t.Errorf("bad client context: got %+v, want an error answer", resp)
	}
	req.ClientContext = nil
	resp = messages.InvokeResponse{}
	if err := c.Call("Function.Invoke", req, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || !strings.Contains(resp.Error.Message, "no invoke handler") {
		t.Errorf("no core: got %+v, want the adapter's error", resp.Error)
	}
	// The connection still serves after errors.
	if err := c.Call("Function.Ping", &messages.PingRequest{}, &messages.PingResponse{}); err != nil {
		t.Errorf("ping after errors: %v", err)
	}
}
