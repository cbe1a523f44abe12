package boot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/version"
)

// NewTracer is the tracer the OTEL_EXPORTER_OTLP_* variables configure
// through getenv (the environment overlaid with the secret, whose
// OTEL_EXPORTER_OTLP_HEADERS may hold a collector's credentials), nil
// when none is (tracing off: no goroutine, no cost). It logs where spans
// go (the endpoint's host only) to log (nil: nowhere).
func NewTracer(getenv func(string) string, function string, log *slog.Logger) (*trace.Tracer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := trace.FromEnv(getenv, trace.Options{Function: function, Version: version.Get().Version, Logger: log})
	if err != nil || t == nil {
		return nil, err
	}
	endpoint := getenv(trace.EnvTracesEndpoint)
	if endpoint == "" {
		endpoint = getenv(trace.EnvEndpoint)
	}
	host := ""
	if u, err := url.Parse(endpoint); err == nil {
		host = u.Host
	}
	log.Info("tracing on: spans are exported with OTLP/HTTP (JSON)", slog.String("collector", host))
	return t, nil
}

// wechatSpans is the wechat.Config.StartCall of t: a client span per
// WeChat call, named by its API, the child of the span of the call's ctx;
// nil without a tracer.
func wechatSpans(t *trace.Tracer) func(ctx context.Context, api string) func(errcode int, err error) {
	if t == nil {
		return nil
	}
	return func(ctx context.Context, api string) func(int, error) {
		_, span := t.Start(ctx, api, trace.KindClient, trace.String("rpc.system", "wechat"), trace.String("rpc.method", api))
		return func(errcode int, err error) {
			if errcode != 0 {
				span.SetAttrs(trace.Int("wechat.errcode", int64(errcode)))
			}
			if err != nil {
				span.SetError(wechatFailure(errcode, err))
			}
			span.End()
		}
	}
}

// wechatFailure is a failed call's span status: the errcode, else the
// error (the wechat package's errors never carry a token or secret).
func wechatFailure(errcode int, err error) string {
	if errcode != 0 {
		return "wechat errcode " + strconv.Itoa(errcode)
	}
	return err.Error()
}

// startLeadSpan starts the consumer span of a lead event: named for the
// processing, with the message's id (messaging.message.id) and source, and
// a link to the traceparent the event's body carries at its top level (the
// producer's span), if any.
func startLeadSpan(ctx context.Context, t *trace.Tracer, e platform.Event) (context.Context, *trace.Span) {
	if t == nil {
		return ctx, nil
	}
	ctx, span := t.Start(ctx, "process lead event", trace.KindConsumer,
		trace.String("messaging.operation.type", "process"), trace.String("messaging.system", e.Source),
		trace.String("messaging.message.id", e.ID))
	var top struct {
		Traceparent string `json:"traceparent"`
		Tracestate  string `json:"tracestate"`
	}
	if json.Unmarshal(e.Body, &top) == nil && top.Traceparent != "" {
		if sc, ok := trace.FromHeaders(top.Traceparent, top.Tracestate); ok {
			span.AddLink(sc, trace.String("wxnotify.link", "lead event producer"))
		}
	}
	return ctx, span
}
