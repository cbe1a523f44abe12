package notify

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/trace/tracetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// A send's msgid mark carries the traceparent of the span of its context,
// and only then; sentMark reads it back, and reads a mark of either shape
// (or an old one) as a mark.
func TestSentMarkCarriesTraceparent(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, time.Now)
	svc, err := New(Options{AppID: "wxtrace", Store: bolt, WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions, PushConfigured: true})
	if err != nil {
		t.Fatal(err)
	}
	c := tracetest.NewCollector()
	defer c.Close()
	tr, err := trace.New(trace.Options{Endpoint: c.Endpoint(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	ctx, span := tr.Start(context.Background(), "POST /v1/notifications", trace.KindServer)
	const openID = "oTrace"

	svc.markSent(ctx, Notification{ID: "ntf_traced", OpenID: openID, Status: StatusSent, WeChat: WeChatResult{MsgID: "101"}})
	svc.markSent(context.Background(), Notification{ID: "ntf_plain", OpenID: openID, Status: StatusSent, WeChat: WeChatResult{MsgID: "102"}})
	it, err := bolt.Get(ctx, svc.sentMsgKey(openID, "101"))
	if err != nil || parseSentMark(it.Value) != (sentMarkValue{ID: "ntf_traced", Traceparent: span.Context().Traceparent()}) {
		t.Fatalf("traced mark: %q %v", it.Value, err)
	}
	if it, err := bolt.Get(ctx, svc.sentMsgKey(openID, "102")); err != nil || parseSentMark(it.Value) != (sentMarkValue{ID: "ntf_plain"}) {
		t.Fatalf("untraced mark: %q %v, want the notification id alone", it.Value, err)
	}
	// A mark of the shape before JSON ("<id> <traceparent>") reads the same.
	if _, err := bolt.Put(ctx, svc.sentMsgKey(openID, "104"), []byte("ntf_old "+span.Context().Traceparent()), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if marked, id, send, err := svc.sentMark(ctx, openID, "104"); err != nil || !marked || id != "ntf_old" || send.SpanID != span.Context().SpanID {
		t.Fatalf("old mark: %v %s %+v %v", marked, id, send, err)
	}
	for msgID, want := range map[string]trace.SpanContext{"101": span.Context(), "102": {}} {
		marked, id, send, err := svc.sentMark(ctx, openID, msgID)
		wantID := map[string]string{"101": "ntf_traced", "102": "ntf_plain"}[msgID]
		if err != nil || !marked || id != wantID || send.TraceID != want.TraceID || send.SpanID != want.SpanID {
			t.Errorf("sentMark(%s): %v %s %+v %v, want marked by %s with %+v", msgID, marked, id, send, err, wantID, want)
		}
	}
	if marked, _, _, err := svc.sentMark(ctx, openID, "103"); err != nil || marked {
		t.Errorf("no mark: %v %v", marked, err)
	}

	// The sent event of the traced send links the push's span to it.
	pctx, push := tr.Start(context.Background(), "POST /wechat/push", trace.KindServer)
	for _, msgID := range []string{"101", "102"} {
		ev := wechat.PushEvent{FromUserName: openID, CreateTime: time.Now().Unix(), Event: wechat.EventSubscribeSent,
			Items: []wechat.PushItem{{TemplateID: "tmpl-lead", MsgID: msgID, ErrorStatus: "success"}}}
		if err := svc.ApplyPush(pctx, ev); err != nil {
			t.Fatalf("push of %s: %v", msgID, err)
		}
	}
	push.End()
	span.End()
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := c.Named("POST /wechat/push")
	if len(spans) != 1 || len(spans[0].Links) != 1 || spans[0].Links[0].SpanID != span.Context().SpanID.String() {
		t.Fatalf("push span: %+v", spans)
	}
}
