package platformtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"

	"github.com/wxnotify/wxnotify/shared/platform"
)

// poll plays a function process: it takes invocations from api and answers
// them with handle until ctx ends.
func poll(ctx context.Context, tb testing.TB, api *LambdaAPI, handle func(ctx context.Context, payload []byte) ([]byte, error)) {
	base := "http://" + api.Addr() + "/2018-06-01/runtime/invocation/"
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"next", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
		if id == "" || err != nil {
			tb.Errorf("next: request id %q, deadline %q", id, resp.Header.Get("Lambda-Runtime-Deadline-Ms"))
			return
		}
		ictx, cancel := context.WithDeadline(ctx, time.UnixMilli(ms))
		out, err := handle(ictx, payload)
		cancel()
		path := base + id + "/response"
		if err != nil {
			path, out = base+id+"/error", []byte(`{"errorType":"errorString","errorMessage":"`+err.Error()+`"}`)
		}
		r, err := http.Post(path, "application/json", bytes.NewReader(out))
		if err != nil {
			return
		}
		r.Body.Close()
		if r.StatusCode != http.StatusAccepted {
			tb.Errorf("POST %s: got %d, want 202", path, r.StatusCode)
		}
	}
}

func TestLambdaAPI(t *testing.T) {
	api := NewLambdaAPI(LambdaOptions{Timeout: 3 * time.Second})
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var deadline time.Time
	go poll(ctx, t, api, func(ctx context.Context, payload []byte) ([]byte, error) {
		deadline, _ = ctx.Deadline()
		if string(payload) == `"fail"` {
			return nil, errors.New("boom")
		}
		return append([]byte(`{"echo":`), append(payload, '}')...), nil
	})

	start := time.Now()
	resp, err := api.Invoke(ctx, []byte(`"hi"`))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Payload) != `{"echo":"hi"}` || resp.Error != nil || resp.RequestID == "" {
		t.Errorf("got %+v, want the echo, no error and a request id", resp)
	}
	if d := deadline.Sub(start); d < 2*time.Second || d > 4*time.Second {
		t.Errorf("deadline: %v after the invocation, want about 3s", d)
	}
	resp, err = api.Invoke(ctx, []byte(`"fail"`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Error.Message != "boom" || resp.Payload != nil {
		t.Errorf("got %+v, want the function error boom", resp)
	}
	if api.Polls() < 2 {
		t.Errorf("polls: got %d, want at least 2", api.Polls())
	}

	r, err := http.Post("http://"+api.Addr()+"/2018-06-01/runtime/invocation/nope/response", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown request id: got %d, want 400", r.StatusCode)
	}
	r, err = http.Post("http://"+api.Addr()+"/2018-06-01/runtime/init/error", "application/json",
		strings.NewReader(`{"errorType":"Config","errorMessage":"WXN_CONFIG: required"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if fe := api.InitError(); fe == nil || fe.Message != "WXN_CONFIG: required" {
		t.Errorf("init error: got %v, want the posted one", fe)
	}
}

func TestLambdaInvokeCancelled(t *testing.T) {
	api := NewLambdaAPI(LambdaOptions{})
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := api.Invoke(ctx, []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's error", err)
	}
}

// echoHTTP answers with what it received, as JSON.
var echoHTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Add("Set-Cookie", "b=2")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "cookie": r.Header.Get("Cookie"),
		"auth": r.Header.Get("Authorization"), "body": body, "remote": r.RemoteAddr, "host": r.Host,
	})
})

type echoed struct {
	Method, Path, Cookie, Auth, Remote, Host string
	Query                                    map[string][]string
	Body                                     []byte
}

// checkEcho sends one rich request through c. wantCookies is how many
// Set-Cookie fields arrive: SCF answers one value per header name.
func checkEcho(t *testing.T, c *http.Client, wantCookies int) {
	t.Helper()
	body := []byte{0, 1, 2, 0xff, 'x'}
	req, _ := http.NewRequest(http.MethodPost, "https://fn.example.com/v1/things/a%20b?x=1&x=2&y=", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer k")
	req.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	req.AddCookie(&http.Cookie{Name: "t", Value: "2"})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echoed
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := echoed{Method: "POST", Path: "/v1/things/a b", Cookie: "s=1; t=2", Auth: "Bearer k",
		Remote: ClientIP + ":0", Host: "fn.example.com", Query: map[string][]string{"x": {"1", "2"}, "y": {""}}, Body: body}
	if got.Method != want.Method || got.Path != want.Path || got.Cookie != want.Cookie || got.Auth != want.Auth ||
		got.Remote != want.Remote || got.Host != want.Host || !bytes.Equal(got.Body, want.Body) ||
		len(got.Query["x"]) != 2 || got.Query["x"][1] != "2" || len(got.Query["y"]) != 1 {
		t.Errorf("the function saw\n %+v\nwant\n %+v", got, want)
	}
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q, want 202 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := len(resp.Header.Values("Set-Cookie")); n != wantCookies {
		t.Errorf("Set-Cookie fields: got %d, want %d", n, wantCookies)
	}
}

func TestLambdaTransport(t *testing.T) {
	for _, url := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTPAPI", true: "FunctionURL"}[url], func(t *testing.T) {
			api := NewLambdaAPI(LambdaOptions{})
			defer api.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go poll(ctx, t, api, platform.NewLambda(platform.Handlers{HTTP: echoHTTP}, platform.Options{}).Invoke)
			checkEcho(t, &http.Client{Transport: &LambdaTransport{API: api, FunctionURL: url}}, 2)
		})
	}
	t.Run("FunctionError", func(t *testing.T) {
		api := NewLambdaAPI(LambdaOptions{})
		defer api.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go poll(ctx, t, api, platform.NewLambda(platform.Handlers{}, platform.Options{}).Invoke)
		resp, err := (&http.Client{Transport: &LambdaTransport{API: api}}).Get("https://fn.example.com/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 || !strings.Contains(resp.Header.Get("X-Function-Error"), "no http handler") {
			t.Errorf("got %d %q, want 500 and the function error", resp.StatusCode, resp.Header.Get("X-Function-Error"))
		}
	})
}

// Function is a stand-in for scf-go-lib's RPC receiver, serving the
// adapter over the same net/rpc methods.
type Function struct{ h *platform.SCF }

func (f *Function) Ping(_ *messages.PingRequest, resp *messages.PingResponse) error {
	*resp = messages.PingResponse{}
	return nil
}

func (f *Function) Invoke(req *messages.InvokeRequest, resp *messages.InvokeResponse) error {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(req.Deadline.Seconds, req.Deadline.Nanos))
	defer cancel()
	out, err := f.h.Invoke(ctx, req.Payload)
	if err != nil {
		resp.Error = &messages.InvokeResponse_Error{Message: err.Error(), Type: "errorString"}
		return nil
	}
	resp.Payload = out
	return nil
}

func TestSCFTransport(t *testing.T) {
	srv := rpc.NewServer()
	if err := srv.Register(&Function{h: platform.NewSCF(platform.Handlers{HTTP: echoHTTP}, platform.Options{})}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go srv.Accept(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialSCF(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkEcho(t, &http.Client{Transport: &SCFTransport{Client: c}}, 1)

	_, err = c.Invoke(ctx, []byte(`{"Type":"Timer"}`))
	var se *SCFError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "no tick handler") {
		t.Errorf("got %v, want the function's error", err)
	}
}
