package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/trace/tracetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const (
	traceAPIKey    = "trace-api-key-0123456789"
	tracePushToken = "trace-push-token"
	// The W3C Trace Context example ids.
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// traceRig is a deployment with push on the fake WeChat, its handlers
// flushed as the functions flush them (withFlush), traced by tracer (nil:
// off) through the OTEL_* environment getenv.
type traceRig struct {
	parts  *Parts
	fake   *wechattest.Server
	http   http.Handler
	events func(context.Context, []platform.Event) ([]string, error)
	openID string
}

func newTraceRig(t *testing.T, otel map[string]string) *traceRig {
	t.Helper()
	fake := wechattest.NewServer(wechattest.Options{AppID: "wxtrace", Templates: []wechattest.Template{{
		PriTmplID: leadTmplID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "character_string2"}, {Name: "time3"}, {Name: "thing4"}},
	}}})
	t.Cleanup(fake.Close)
	env := map[string]string{"WXN_WECHAT_APPID": "wxtrace", "WXN_WECHAT_SECRET": fake.Secret(), "WXN_WECHAT_API_BASE": fake.URL(),
		"WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": traceAPIKey, "WXN_WECHAT_PUSH_TOKEN": tracePushToken}
	for k, v := range otel {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.FromEnv(getenv, true)
	if err != nil {
		t.Fatal(err)
	}
	tracer, err := NewTracer(getenv, "send", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracer.Shutdown(context.Background()) })
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(cfg, st, Options{Function: "send", Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	h := Handlers(parts, "send", httpapi.AllGroups...)
	h.Events = LeadEvents(parts, parts.Logger)
	h = withFlush(h, parts.Flush)
	r := &traceRig{parts: parts, fake: fake, http: h.HTTP, events: h.Events}
	r.openID = (&leadsRig{parts: parts, fake: fake}).salesperson(t, "sales-42", 2)
	return r
}

// send is POST /v1/notifications to sales-42, with traceparent if not "".
func (r *traceRig) send(t *testing.T, traceparent string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"to": map[string]string{"userId": "sales-42"}, "template": "lead_assigned",
		"data": map[string]string{"thing1": "Acme Ltd", "character_string2": "L-1", "time3": "09:30", "thing4": "web"}})
	req := httptest.NewRequest(http.MethodPost, "/v1/notifications", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+traceAPIKey)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	rec := httptest.NewRecorder()
	r.http.ServeHTTP(rec, req)
	if rec.Code/100 != 2 || !strings.Contains(rec.Body.String(), `"sent"`) {
		t.Fatalf("send: %d %s", rec.Code, rec.Body)
	}
}

// pushSent is WeChat's plaintext push of the sent event of the last
// message to sales-42, as POST /wechat/push.
func (r *traceRig) pushSent(t *testing.T) {
	t.Helper()
	msgs := r.fake.Messages(r.openID)
	if len(msgs) == 0 {
		t.Fatal("no message sent")
	}
	ev := wechat.PushEvent{ToUserName: "gh_trace", FromUserName: r.openID, CreateTime: time.Now().Unix(), MsgType: "event",
		Event: wechat.EventSubscribeSent, Items: []wechat.PushItem{{TemplateID: leadTmplID,
			MsgID: strconv.FormatInt(msgs[len(msgs)-1].MsgID, 10), ErrorStatus: "success"}}}
	body, err := wechat.MarshalPushEvent(ev, true)
	if err != nil {
		t.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "nonce-"+strconv.Itoa(len(msgs))
	req := httptest.NewRequest(http.MethodPost, "/wechat/push?timestamp="+ts+"&nonce="+nonce+"&signature="+
		wechat.Signature(tracePushToken, ts, nonce), bytes.NewReader(body))
	rec := httptest.NewRecorder()
	r.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
}

func one(t *testing.T, c *tracetest.Collector, name string) tracetest.Span {
	t.Helper()
	spans := c.Named(name)
	if len(spans) != 1 {
		for _, s := range c.Spans() {
			t.Logf("span %s %s/%s parent %s", s.Name, s.TraceID, s.SpanID, s.ParentSpanID)
		}
		t.Fatalf("%d spans %q, want 1", len(spans), name)
	}
	return spans[0]
}

// A request's traceparent is the parent of its server span, whose child is
// the WeChat send's client span; WeChat's push of the sent event links to
// the send; a lead event is a consumer span linked to its body's
// traceparent. Every request and delivery is flushed as it ends.
func TestTracesEndToEnd(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	r := newTraceRig(t, map[string]string{trace.EnvEndpoint: c.URL(), trace.EnvServiceName: "wxnotify-test"})

	r.send(t, "00-"+callerTraceID+"-"+callerSpanID+"-01")
	// Flushed after the request: no Flush, no Shutdown yet.
	server := one(t, c, "POST /v1/notifications")
	if server.Kind != int(trace.KindServer) || server.TraceID != callerTraceID || server.ParentSpanID != callerSpanID ||
		server.Attrs["http.response.status_code"] == nil || server.Attrs["http.route"] != "/v1/notifications" {
		t.Errorf("server span: %+v", server)
	}
	if server.Resource["service.name"] != "wxnotify-test" || server.Resource["faas.name"] != "send" {
		t.Errorf("resource: %v", server.Resource)
	}
	client := one(t, c, "subscribeMessage.send")
	if client.Kind != int(trace.KindClient) || client.TraceID != callerTraceID || client.ParentSpanID != server.SpanID ||
		client.StatusCode != 0 || client.Start < server.Start || client.End > server.End {
		t.Errorf("client span %+v of server span %s", client, server.SpanID)
	}
	// The token fetch the send needed is the send request's too.
	if tok := one(t, c, "auth.getStableAccessToken"); tok.TraceID != callerTraceID || tok.ParentSpanID != server.SpanID {
		t.Errorf("token span: %+v", tok)
	}

	r.pushSent(t)
	push := one(t, c, "POST /wechat/push")
	if push.TraceID == callerTraceID || push.ParentSpanID != "" {
		t.Errorf("WeChat's push carries no traceparent: a trace of its own, got %+v", push)
	}
	if len(push.Links) != 1 || push.Links[0].TraceID != callerTraceID || push.Links[0].SpanID != server.SpanID {
		t.Errorf("the push settling the send links to it (%s/%s): %+v", callerTraceID, server.SpanID, push.Links)
	}

	// A lead event whose body carries the producer's traceparent.
	producer := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	var body map[string]any
	_ = json.Unmarshal(leadEvent("evt-1", "lead.assigned", "sales-42"), &body)
	body["traceparent"] = producer
	raw, _ := json.Marshal(body)
	failed, err := r.events(context.Background(), []platform.Event{sqs("msg-1", raw)})
	if err != nil || len(failed) != 0 {
		t.Fatalf("lead event: %v %v", failed, err)
	}
	lead := one(t, c, "process lead event")
	if lead.Kind != int(trace.KindConsumer) || lead.Attrs["messaging.message.id"] != "msg-1" || lead.Attrs["wxnotify.event.id"] != "evt-1" ||
		lead.Attrs["messaging.system"] != platform.SourceSQS || lead.ParentSpanID != "" {
		t.Errorf("lead span: %+v", lead)
	}
	if len(lead.Links) != 1 || lead.Links[0].TraceID != "0af7651916cd43dd8448eb211c80319c" || lead.Links[0].SpanID != "b7ad6b7169203331" {
		t.Errorf("lead links: %+v", lead.Links)
	}
	sends := c.Named("subscribeMessage.send")
	if len(sends) != 2 || sends[1].ParentSpanID != lead.SpanID || sends[1].TraceID != lead.TraceID {
		t.Errorf("the lead's send is its child: %+v", sends)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if tr := r.parts.Tracer; tr.Dropped() != 0 || tr.Exported() != uint64(len(c.Spans())) {
		t.Errorf("dropped %d, exported %d of %d", tr.Dropped(), tr.Exported(), len(c.Spans()))
	}
}

// Tracing off (no endpoint, whatever else of OTEL_* is set): no tracer,
// and a send, its push and a lead event export nothing.
func TestTracesOff(t *testing.T) {
	c := tracetest.NewCollector()
	defer c.Close()
	r := newTraceRig(t, map[string]string{trace.EnvHeaders: "Authorization=Bearer%20x", trace.EnvServiceName: "x"})
	if r.parts.Tracer != nil {
		t.Fatal("a tracer without an endpoint")
	}
	r.send(t, "00-"+callerTraceID+"-"+callerSpanID+"-01")
	r.pushSent(t)
	if _, err := r.events(context.Background(), []platform.Event{sqs("m1", leadEvent("evt-1", "lead.assigned", "sales-42"))}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Requests()); n != 0 {
		t.Errorf("%d export requests with tracing off", n)
	}
	if got := r.fake.Calls(wechattest.APISend); got != 2 {
		t.Errorf("%d sends, want 2", got)
	}
}
