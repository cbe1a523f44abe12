package notify

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"wxnotify/shared/store"
	"wxnotify/shared/store/boltstore"
	"wxnotify/shared/wechat"
)

// silentWeChat writes every send and never answers: the ambiguous outcome.
type silentWeChat struct{ calls int }

func (w *silentWeChat) Code2Session(context.Context, string) (wechat.Session, error) {
	return wechat.Session{}, errors.New("not used")
}

func (w *silentWeChat) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.calls++
	return wechat.SendResult{}, &wechat.TransportError{API: "subscribeMessage.send", Written: true, Err: errors.New("connection reset")}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newUnknownRig(t *testing.T) (*Service, *fakeClock, *silentWeChat) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := &fakeClock{t: time.Now()}
	wx := &silentWeChat{}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxunknown", Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, Now: clock.Now,
		PushConfigured: true, UnknownWindow: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return svc, clock, wx
}

func (s *Service) credits(t *testing.T, openID string) int64 {
	t.Helper()
	c, err := s.Consent(context.Background(), openID, Template{ID: "tmpl-lead", Alias: "lead"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Credits
}

func TestSweepUnknownClosesUndelivered(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	ctx := context.Background()
	const openID = "oUser1"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("2"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	if err != nil || n.Status != StatusUnknown {
		t.Fatalf("send: got %s, %v; want unknown", n.Status, err)
	}
	if got := svc.credits(t, openID); got != 1 {
		t.Fatalf("credits after the ambiguous send: got %d, want 1", got)
	}
	// Within the window nothing is closed: the sent event may still come.
	clock.Advance(9 * time.Minute)
	if closed, err := svc.SweepUnknown(ctx); err != nil || closed != 0 {
		t.Fatalf("sweep within the window: got %d, %v; want 0", closed, err)
	}
	clock.Advance(2 * time.Minute)
	if closed, err := svc.SweepUnknown(ctx); err != nil || closed != 1 {
		t.Fatalf("sweep after the window: got %d, %v; want 1", closed, err)
	}
	got, _ := svc.Notification(ctx, n.ID)
	if got.Status != StatusFailed || got.Reason != ReasonNotDelivered {
		t.Fatalf("notification: got %s/%s, want failed/not_delivered", got.Status, got.Reason)
	}
	if c := svc.credits(t, openID); c != 2 {
		t.Fatalf("credits after the sweep: got %d, want 2 (given back)", c)
	}
	if closed, err := svc.SweepUnknown(ctx); err != nil || closed != 0 {
		t.Fatalf("second sweep: got %d, %v; want 0", closed, err)
	}
}

func TestSweepUnknownLeavesSettledSends(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	ctx := context.Background()
	const openID = "oUser2"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	// WeChat delivered it after all: its sent event settles the send.
	clock.Advance(time.Minute)
	ev := wechat.PushEvent{FromUserName: openID, CreateTime: clock.Now().Unix(), Event: wechat.EventSubscribeSent,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", MsgID: "3395159288267931652", ErrorStatus: "success"}}}
	if err := svc.ApplyPush(ctx, ev); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if closed, err := svc.SweepUnknown(ctx); err != nil || closed != 0 {
		t.Fatalf("sweep: got %d, %v; want 0 (the send was settled)", closed, err)
	}
	got, _ := svc.Notification(ctx, n.ID)
	if got.Status != StatusSent || got.WeChat.MsgID != "3395159288267931652" {
		t.Fatalf("notification: got %s msgid %q, want sent", got.Status, got.WeChat.MsgID)
	}
	if c := svc.credits(t, openID); c != 0 {
		t.Fatalf("credits: got %d, want 0 (delivered)", c)
	}
}
