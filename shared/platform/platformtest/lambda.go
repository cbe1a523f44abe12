package platformtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LambdaAPI emulates the AWS Lambda Runtime API for function processes.
// Start one with NewLambdaAPI, give its Addr to a process as
// AWS_LAMBDA_RUNTIME_API, and call Invoke. It is safe for concurrent use.
type LambdaAPI struct {
	srv     *httptest.Server
	queue   chan *invocation
	timeout time.Duration

	mu        sync.Mutex
	pending   map[string]*invocation
	initError *FunctionError
	nexts     int
}

// invocation is one Invoke waiting for its answer.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Response
}

// Response is a function's answer to one invocation.
type Response struct {
	// RequestID is the Lambda-Runtime-Aws-Request-Id the invocation had.
	RequestID string
	// Payload is what the function posted to /response.
	Payload []byte
	// Error is what the function posted to /error; nil on success.
	Error *FunctionError
}

// FunctionError is the body of /error and /init/error.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// LambdaOptions configure a LambdaAPI.
type LambdaOptions struct {
	// Timeout is the function's configured timeout: each invocation's
	// deadline is this far after it is handed out. Default 30 seconds.
	Timeout time.Duration
}

// NewLambdaAPI starts a Runtime API on a local port. Close it when done.
func NewLambdaAPI(o LambdaOptions) *LambdaAPI {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	a := &LambdaAPI{queue: make(chan *invocation, 64), timeout: o.Timeout, pending: map[string]*invocation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", a.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", a.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", a.error)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", a.initErr)
	a.srv = httptest.NewServer(mux)
	return a
}

// Addr is the host:port to set as AWS_LAMBDA_RUNTIME_API.
func (a *LambdaAPI) Addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// Close stops the API; processes polling it see their connection fail.
func (a *LambdaAPI) Close() {
	a.srv.CloseClientConnections()
	a.srv.Close()
}

// Polls is how many times a process asked for the next invocation; a
// process that has started and is ready has polled at least once.
func (a *LambdaAPI) Polls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nexts
}

// InitError is what a process posted to /init/error, nil if nothing.
func (a *LambdaAPI) InitError() *FunctionError {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.initError
}

// Invoke hands payload to the next process that polls and waits for its
// answer. It fails when ctx ends first.
func (a *LambdaAPI) Invoke(ctx context.Context, payload []byte) (Response, error) {
	inv := &invocation{id: newID(), payload: payload, done: make(chan Response, 1)}
	a.mu.Lock()
	a.pending[inv.id] = inv
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.pending, inv.id)
		a.mu.Unlock()
	}()
	select {
	case a.queue <- inv:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	select {
	case r := <-inv.done:
		return r, nil
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

func (a *LambdaAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.nexts++
	a.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-a.queue:
	case <-r.Context().Done():
		return
	}
	inv.deadline = time.Now().Add(a.timeout)
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:wxnotify")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(inv.payload)
}

func (a *LambdaAPI) take(w http.ResponseWriter, r *http.Request) (*invocation, []byte, bool) {
	a.mu.Lock()
	inv := a.pending[r.PathValue("id")]
	a.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if inv == nil || err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorType":"InvalidRequestID","errorMessage":"unknown or finished request id"}`)
		return nil, nil, false
	}
	w.WriteHeader(http.StatusAccepted)
	return inv, body, true
}

func (a *LambdaAPI) response(w http.ResponseWriter, r *http.Request) {
	if inv, body, ok := a.take(w, r); ok {
		inv.answer(Response{RequestID: inv.id, Payload: body})
	}
}

func (a *LambdaAPI) error(w http.ResponseWriter, r *http.Request) {
	if inv, body, ok := a.take(w, r); ok {
		fe := &FunctionError{}
		if err := json.Unmarshal(body, fe); err != nil {
			fe = &FunctionError{Type: "Runtime.InvalidError", Message: string(body)}
		}
		inv.answer(Response{RequestID: inv.id, Error: fe})
	}
}

func (inv *invocation) answer(r Response) {
	select {
	case inv.done <- r:
	default: // answered twice: the first answer counts, as on Lambda
	}
}

func (a *LambdaAPI) initErr(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fe := &FunctionError{}
	if err := json.Unmarshal(body, fe); err != nil {
		fe = &FunctionError{Type: "Runtime.InvalidError", Message: string(body)}
	}
	a.mu.Lock()
	a.initError = fe
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// newID is a request id shaped like Lambda's (a UUID).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
