package platform

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"
	"github.com/tencentyun/scf-go-lib/functioncontext"
)

// The SCF Go1 runtime talks to a function process with Go's net/rpc: gob
// streams of a request header, a body, a response header and a body, with
// the methods Function.Ping and Function.Invoke of scf-go-lib's
// cloudfunction package. This file serves that protocol directly rather
// than through net/rpc's server, whose reflective method lookup keeps every
// method of every type in the binary (about 10 MB more per function).

// rpcRequest and rpcResponse are net/rpc's Request and Response on the wire
// (gob matches fields by name).
type rpcRequest struct {
	ServiceMethod string
	Seq           uint64
}

type rpcResponse struct {
	ServiceMethod string
	Seq           uint64
	Error         string
}

// scfHandler is what Function.Invoke calls: the SCF adapter.
type scfHandler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// serveSCF answers SCF's invocations on ln until ctx ends.
func serveSCF(ctx context.Context, ln net.Listener, h scfHandler, o Options) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	o.Logger.Debug("listening", "platform", Tencent, "function", o.Function, "addr", ln.Addr().String())
	for {
		conn, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveSCFConn(ctx, conn, h)
		}()
	}
}

// serveSCFConn serves one connection as net/rpc's ServeConn does: requests
// are read in order and answered as they finish.
func serveSCFConn(ctx context.Context, conn net.Conn, h scfHandler) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	dec := gob.NewDecoder(bufio.NewReader(conn))
	w := &scfWriter{buf: bufio.NewWriter(conn)}
	w.enc = gob.NewEncoder(w.buf)
	var calls sync.WaitGroup
	defer calls.Wait()
	for {
		var req rpcRequest
		if err := dec.Decode(&req); err != nil {
			return // EOF or a broken stream: net/rpc drops the connection too
		}
		switch req.ServiceMethod {
		case "Function.Ping":
			var args messages.PingRequest
			if err := dec.Decode(&args); err != nil {
				return
			}
			w.write(req, "", &messages.PingResponse{})
		case "Function.Invoke":
			var args messages.InvokeRequest
			if err := dec.Decode(&args); err != nil {
				return
			}
			calls.Add(1)
			go func() {
				defer calls.Done()
				w.write(req, "", invokeSCF(h, &args))
			}()
		default:
			if err := dec.DecodeValue(reflect.Value{}); err != nil { // discard the body
				return
			}
			w.write(req, "rpc: can't find service "+req.ServiceMethod, struct{}{})
		}
	}
}

// scfWriter serializes answers on a connection.
type scfWriter struct {
	mu  sync.Mutex
	buf *bufio.Writer
	enc *gob.Encoder
}

func (w *scfWriter) write(req rpcRequest, errMsg string, body any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	resp := rpcResponse{ServiceMethod: req.ServiceMethod, Seq: req.Seq, Error: errMsg}
	if w.enc.Encode(&resp) == nil && w.enc.Encode(body) == nil {
		_ = w.buf.Flush()
	}
}

// invokeSCF runs one invocation as scf-go-lib's Function.Invoke does: the
// context has the request's deadline and its FunctionContext; an error or a
// panic is answered in the response's Error.
func invokeSCF(h scfHandler, req *messages.InvokeRequest) (resp *messages.InvokeResponse) {
	resp = &messages.InvokeResponse{}
	defer func() {
		if p := recover(); p != nil {
			resp.Payload = nil
			resp.Error = &messages.InvokeResponse_Error{Message: fmt.Sprint(p), Type: typeName(p),
				StackTrace: stackFrames(), ShouldExit: true}
		}
	}()
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(req.Deadline.Seconds, req.Deadline.Nanos))
	defer cancel()
	fc := &functioncontext.FunctionContext{
		RequestID: req.RequestId, InvokedFunctionUnique: req.InvokedFunctionUnique, Namespace: req.Namespace,
		FunctionName: req.FunctionName, FunctionVersion: req.FunctionVersion, MemoryLimitInMb: req.MemoryLimitInMb,
		TimeLimitInMs: req.TimeLimitInMs, TencentcloudRegion: req.TencentcloudRegion,
		TencentcloudAppID: req.TencentcloudAppID, TencentcloudUin: req.TencentcloudUin, FunctionTrace: req.FunctionTrace,
	}
	if len(req.ClientContext) > 0 {
		if err := json.Unmarshal(req.ClientContext, &fc.ClientContext); err != nil {
			resp.Error = errorResponse(err)
			return resp
		}
	}
	if req.Environment != "" {
		if err := json.Unmarshal([]byte(req.Environment), &fc.Environment); err != nil {
			resp.Error = errorResponse(err)
			return resp
		}
	}
	out, err := h.Invoke(functioncontext.NewContext(ctx, fc), req.Payload)
	if err != nil {
		resp.Error = errorResponse(err)
		return resp
	}
	resp.Payload = out
	return resp
}

func errorResponse(err error) *messages.InvokeResponse_Error {
	return &messages.InvokeResponse_Error{Message: err.Error(), Type: typeName(err)}
}

// typeName names an error's type as scf-go-lib does: "errorString" for an
// *errors.errorString.
func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return ""
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// stackFrames is the panicking goroutine's stack, one frame per function.
func stackFrames() []*messages.InvokeResponse_Error_StackFrame {
	var frames []*messages.InvokeResponse_Error_StackFrame
	lines := strings.Split(strings.TrimSpace(string(debug.Stack())), "\n")
	for i := 1; i+1 < len(lines); i += 2 {
		label := strings.TrimSpace(lines[i])
		path := strings.TrimSpace(lines[i+1])
		if k := strings.LastIndex(path, " +0x"); k > 0 {
			path = path[:k]
		}
		var line int32
		if j := strings.LastIndex(path, ":"); j > 0 {
			if _, err := fmt.Sscanf(path[j+1:], "%d", &line); err == nil {
				path = path[:j]
			}
		}
		frames = append(frames, &messages.InvokeResponse_Error_StackFrame{Path: path, Line: line, Label: label})
	}
	return frames
}
