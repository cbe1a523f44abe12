package platformtest

import (
	"context"
	"errors"
	"net"
	"net/rpc"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"
)

// SCFClient invokes a function process as Tencent Cloud SCF's Go1 runtime
// does: net/rpc calls of Function.Ping and Function.Invoke on the port the
// process listens on (_LAMBDA_SERVER_PORT).
type SCFClient struct {
	rpc *rpc.Client
	// FunctionName, Namespace and Region fill every InvokeRequest.
	FunctionName, Namespace, Region string
	// Timeout sets each invocation's deadline when ctx has none; default 30
	// seconds.
	Timeout time.Duration
}

// SCFError is the error a function answered.
type SCFError struct {
	Type    string
	Message string
	// ShouldExit is set when the function panicked.
	ShouldExit bool
}

func (e *SCFError) Error() string { return e.Type + ": " + e.Message }

// DialSCF connects to a function process at addr, retrying until it
// listens and answers Function.Ping, or ctx ends.
func DialSCF(ctx context.Context, addr string) (*SCFClient, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c := &SCFClient{rpc: rpc.NewClient(conn), FunctionName: "wxnotify", Namespace: "default", Region: "ap-guangzhou"}
			if err = c.Ping(); err == nil {
				return c, nil
			}
			_ = c.Close()
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Ping calls Function.Ping.
func (c *SCFClient) Ping() error {
	return c.rpc.Call("Function.Ping", &messages.PingRequest{}, &messages.PingResponse{})
}

// Close closes the connection.
func (c *SCFClient) Close() error { return c.rpc.Close() }

// Invoke calls Function.Invoke with payload and returns the answer's
// payload, or an *SCFError when the function failed. The deadline is ctx's,
// else now plus Timeout.
func (c *SCFClient) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		deadline = time.Now().Add(timeout)
	}
	req := &messages.InvokeRequest{
		Payload:               payload,
		RequestId:             newID(),
		Deadline:              messages.InvokeRequest_Timestamp{Seconds: deadline.Unix(), Nanos: int64(deadline.Nanosecond())},
		InvokedFunctionUnique: "qcs::scf:" + c.Region + ":uin/100000000001:lam/" + c.FunctionName,
		Namespace:             c.Namespace,
		FunctionName:          c.FunctionName,
		FunctionVersion:       "$LATEST",
		MemoryLimitInMb:       128,
		TimeLimitInMs:         int32(time.Until(deadline).Milliseconds()),
		TencentcloudRegion:    c.Region,
		TencentcloudAppID:     "1250000000",
		TencentcloudUin:       "100000000001",
	}
	var resp messages.InvokeResponse
	call := c.rpc.Go("Function.Invoke", req, &resp, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.Error != nil {
		return nil, call.Error
	}
	if resp.Error != nil {
		return nil, &SCFError{Type: resp.Error.Type, Message: resp.Error.Message, ShouldExit: resp.Error.ShouldExit}
	}
	return resp.Payload, nil
}
