package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/trace"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

type ctxKey struct{}

// requestInfo collects what the request's log line reports.
type requestInfo struct {
	id            string
	openIDHash    string
	app           string
	wechatErrcode int
	err           error
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(ctxKey{}).(*requestInfo)
	return info
}

func requestID(r *http.Request) string {
	if info := infoFrom(r.Context()); info != nil {
		return info.id
	}
	return ""
}

// noteApp records the request's app for the log line.
func noteApp(r *http.Request, id string) {
	if info := infoFrom(r.Context()); info != nil {
		info.app = id
	}
}

// noteOpenID records the caller's openid (hashed) for the log line.
func noteOpenID(r *http.Request, openID string) {
	if info := infoFrom(r.Context()); info != nil {
		info.openIDHash = notify.HashID(openID)
	}
}

func newRequestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isToken(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		// API Gateway's ids are base64: '=', '+' and '/' occur.
		if !(c == '-' || c == '_' || c == '.' || c == '=' || c == '+' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// wrap adds to every route: a request id, the body limit, panic recovery,
// one JSON log line per request (no secrets, openids hashed) and, with
// tracing on, its server span (traced).
func (a *API) wrap(next http.Handler) http.Handler { return a.wrapLimit(next, MaxBodyBytes) }

// wrapLimit is wrap with another body limit.
func (a *API) wrapLimit(next http.Handler, maxBody int64) http.Handler {
	next = a.traced(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: newRequestID(r)}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
		w.Header().Set("X-Request-Id", info.id)
		rec := &statusRecorder{ResponseWriter: w}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, maxBody)
		}
		defer func() {
			if p := recover(); p != nil {
				info.err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				if rec.status == 0 {
					writeError(rec, r, &notify.Error{Code: notify.CodeInternal, Message: "internal error"})
				}
			}
			a.logRequest(r, info, rec.status, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

func (a *API) logRequest(r *http.Request, info *requestInfo, status int, latency time.Duration) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("requestId", info.id),
		slog.String("function", a.function),
		slog.String("method", r.Method),
		slog.String("route", routeOf(r)),
		slog.Int("status", status),
		slog.Float64("latencyMs", float64(latency.Microseconds())/1000),
	}
	if info.app != "" {
		attrs = append(attrs, slog.String("app", info.app))
	}
	if info.openIDHash != "" {
		attrs = append(attrs, slog.String("openid", info.openIDHash))
	}
	if info.wechatErrcode != 0 {
		attrs = append(attrs, slog.Int("wechatErrcode", info.wechatErrcode))
	}
	if info.err != nil && status >= 500 {
		attrs = append(attrs, slog.String("err", info.err.Error()))
	}
	a.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// routeOf is the matched route pattern, never the raw path (which may carry
// a userId or notification id).
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// traced returns next with a server span per request when tracing is on:
// the child of the request's W3C traceparent (an invalid or missing one
// starts a new trace; an invalid tracestate is dropped), named by the
// route pattern (never the raw path, which carries ids), with the
// attributes http.request.method, http.route, http.response.status_code
// and wxnotify.app, and carried in the request's context to what the
// handler calls (the WeChat client's spans are its children). It runs
// inside wrapLimit: it reads the status from wrapLimit's recorder and the
// app from its requestInfo, and a panic is its 500. With tracing off it
// is next itself: no cost at all.
func (a *API) traced(next http.Handler) http.Handler {
	if a.tracer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if sc, ok := trace.FromHeaders(r.Header.Get("traceparent"), r.Header.Get("tracestate")); ok {
			ctx = trace.ContextWithRemote(ctx, sc)
		}
		name, route := spanName(r)
		ctx, span := a.tracer.Start(ctx, name, trace.KindServer,
			trace.String("http.request.method", knownMethod(r.Method)), trace.String("http.route", route))
		completed := false
		defer func() {
			status := http.StatusOK
			if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
				status = rec.status
			}
			if !completed {
				status = http.StatusInternalServerError // a panic: wrapLimit answers 500
			}
			span.SetAttrs(trace.Int("http.response.status_code", int64(status)))
			if info := infoFrom(ctx); info != nil && info.app != "" {
				span.SetAttrs(trace.String("wxnotify.app", info.app))
			}
			if status >= 500 {
				span.SetError(http.StatusText(status))
			}
			span.End()
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
		completed = true
	})
}

// spanName is a request's span name ("POST /v1/notifications") and route
// ("/v1/notifications"), from the matched pattern.
func spanName(r *http.Request) (name, route string) {
	pattern := routeOf(r)
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return pattern, path
	}
	return knownMethod(r.Method) + " " + pattern, pattern
}

// knownMethod is method if it is one of HTTP's, else "_OTHER" (OpenTelemetry's
// convention: a client's made-up method must not name spans).
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "_OTHER"
}
