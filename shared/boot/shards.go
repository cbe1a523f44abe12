package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/dispatch"
	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
)

// newDispatcher is the ShardDispatcher WXN_BATCH_DISPATCH chooses: an SQS
// queue (WXN_BATCH_QUEUE_URL, on AWS), asynchronous invocations of the
// function itself (scf), or none (local: the tick's own runners). The
// credentials are the function role's, read from getenv at each dispatch.
func newDispatcher(b config.Batch, getenv func(string) string) (notify.ShardDispatcher, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
		DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: dispatch.DefaultConcurrency}}
	switch b.Dispatch {
	case config.DispatchSQS:
		q, err := dispatch.NewSQS(dispatch.SQSConfig{QueueURL: b.QueueURL, Endpoint: b.DispatchEndpoint, Region: cloudauth.AWSRegion(getenv),
			Credentials: func() (aws.Credentials, error) { return cloudauth.AWSFromEnv(getenv) }, HTTPClient: client})
		if err != nil {
			return nil, fmt.Errorf("WXN_BATCH_QUEUE_URL: %w", err)
		}
		return q, nil
	case config.DispatchSCF:
		d, err := dispatch.NewSCF(dispatch.SCFConfig{Function: getenv("SCF_FUNCTIONNAME"), Namespace: getenv("SCF_NAMESPACE"),
			Qualifier: getenv("SCF_FUNCTIONVERSION"), Region: getenv("TENCENTCLOUD_REGION"), Endpoint: b.DispatchEndpoint,
			Credentials: func() (cloudauth.TencentCredentials, error) { return cloudauth.TencentFromEnv(getenv) }, HTTPClient: client})
		if err != nil {
			return nil, fmt.Errorf("WXN_BATCH_DISPATCH=scf: %w", err)
		}
		return d, nil
	}
	return nil, nil
}

// shardApp is the app whose AppID a shard message names, or nil.
func shardApp(p *Parts, ref notify.ShardRef) *App {
	for _, a := range p.Apps {
		if a.Service.AppID() == ref.App {
			return a
		}
	}
	return nil
}

// errNotShard: a message that is no shard message, or names no app of
// the deployment. It is acknowledged: delivering it again cannot help.
var errNotShard = errors.New("not a shard of this deployment")

// runShard sends the shard a message names, by the app's service, until
// the invocation's deadline. An error wrapping errNotShard is for a
// message to acknowledge; any other for one to deliver again.
func runShard(ctx context.Context, p *Parts, body []byte) (notify.ShardRef, error) {
	ref, isShard, err := dispatch.Decode(body)
	switch {
	case !isShard:
		return ref, fmt.Errorf("%w: the batch function takes shard messages ({\"%s\":{\"app\":...,\"batch\":...,\"shard\":...}})", errNotShard, dispatch.Member)
	case err != nil:
		return ref, fmt.Errorf("%w: %w", errNotShard, err)
	}
	a := shardApp(p, ref)
	if a == nil {
		return ref, fmt.Errorf("%w: no app has the AppID %q", errNotShard, ref.App)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	return ref, a.Service.RunShard(ctx, ref, deadline)
}

// ShardEvents is the batch function's queue core (AWS: the shard queue's
// event source mapping): each message is a shard, sent in turn. A shard
// that failed is reported failed, so that SQS delivers it again after the
// visibility timeout (then to the dead-letter queue); a shard passed over
// (done, leased by another runner, its batch paused) is done. A message
// that is not a shard of this deployment is logged and acknowledged.
func ShardEvents(p *Parts) func(ctx context.Context, events []platform.Event) ([]string, error) {
	return func(ctx context.Context, events []platform.Event) ([]string, error) {
		var failed []string
		for _, e := range events {
			ref, err := runShard(ctx, p, e.Body)
			switch {
			case errors.Is(err, errNotShard):
				p.Logger.Error("shard message rejected", slog.String("message", e.ID), slog.String("source", e.Source), slog.String("err", err.Error()))
			case err != nil:
				p.Logger.Warn("shard failed, to be delivered again", slog.String("message", e.ID), slog.Int("attempt", e.Attempt),
					slog.String("batch", ref.Batch), slog.Int("shard", ref.Shard), slog.String("err", err.Error()))
				failed = append(failed, e.ID)
			default:
				p.Logger.Info("shard run", slog.String("message", e.ID), slog.String("batch", ref.Batch), slog.Int("shard", ref.Shard))
			}
		}
		return failed, nil
	}
}

// shardResult is the answer of a shard invocation.
type shardResult struct {
	Batch string `json:"batch,omitempty"`
	Shard int    `json:"shard"`
	// Rejected says why a message was acknowledged without a run.
	Rejected string `json:"rejected,omitempty"`
}

// ShardInvoke is the batch function's direct invocation core (SCF: the
// asynchronous invocations the tick makes, whose payload is the shard
// message). A shard that failed is an error, which SCF retries by the
// function's asynchronous retry setting; a malformed message or one of an
// app the deployment does not have is logged and answered, not retried.
func ShardInvoke(p *Parts) func(ctx context.Context, payload []byte) (any, error) {
	return func(ctx context.Context, payload []byte) (any, error) {
		ref, err := runShard(ctx, p, payload)
		switch {
		case errors.Is(err, errNotShard):
			p.Logger.Error("shard message rejected", slog.String("requestId", platform.RequestID(ctx)), slog.String("err", err.Error()))
			return shardResult{Batch: ref.Batch, Shard: ref.Shard, Rejected: err.Error()}, nil
		case err != nil:
			return nil, fmt.Errorf("batch %s shard %d: %w", ref.Batch, ref.Shard, err)
		}
		p.Logger.Info("shard run", slog.String("requestId", platform.RequestID(ctx)), slog.String("batch", ref.Batch), slog.Int("shard", ref.Shard))
		return shardResult{Batch: ref.Batch, Shard: ref.Shard}, nil
	}
}
