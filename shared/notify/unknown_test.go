package notify

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// silentWeChat writes every send and never answers (the ambiguous
// outcome), except the calls given a msgid in answers, which it answers.
type silentWeChat struct {
	mu      sync.Mutex
	calls   int
	answers map[int]int64 // call number (from 1) -> msgid
}

func (w *silentWeChat) Code2Session(context.Context, string) (wechat.Session, error) {
	return wechat.Session{}, errors.New("not used")
}

func (w *silentWeChat) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if id, ok := w.answers[w.calls]; ok {
		return wechat.SendResult{MsgID: id}, nil
	}
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

func sentEvent(openID string, at time.Time, msgID string) wechat.PushEvent {
	return wechat.PushEvent{FromUserName: openID, CreateTime: at.Unix(), Event: wechat.EventSubscribeSent,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", MsgID: msgID, ErrorStatus: "success"}}}
}

func TestSweepUnknownSettlesWithSentEvent(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	ctx := context.Background()
	const openID = "oUser2"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	// WeChat delivered it after all: its sent event comes, twice.
	for range 2 {
		if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now(), "3395159288267931652")); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := svc.Notification(ctx, n.ID); got.Status != StatusUnknown {
		t.Fatalf("before the window: got %s, want unknown (a send in flight may own the event)", got.Status)
	}
	clock.Advance(time.Hour)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	got, _ := svc.Notification(ctx, n.ID)
	if got.Status != StatusSent || got.WeChat.MsgID != "3395159288267931652" {
		t.Fatalf("notification: got %s msgid %q, want sent", got.Status, got.WeChat.MsgID)
	}
	if c := svc.credits(t, openID); c != 0 {
		t.Fatalf("credits: got %d, want 0 (delivered)", c)
	}
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 0 {
		t.Fatalf("second sweep: got %d, %v; want 0", settled, err)
	}
}

// The sent event of a send that got its answer is never taken for an
// unknown send of the same user and template, even when it arrives before
// that send marked its msgid.
func TestSweepUnknownIgnoresEventsOfAnsweredSends(t *testing.T) {
	svc, clock, wx := newUnknownRig(t)
	wx.answers = map[int]int64{1: 111}
	ctx := context.Background()
	const openID = "oUser3"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("3"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The event of the answered send comes first (WeChat pushes as it answers).
	if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now(), "111")); err != nil {
		t.Fatal(err)
	}
	answered, err := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "a"}})
	if err != nil || answered.Status != StatusSent {
		t.Fatalf("answered send: got %s, %v", answered.Status, err)
	}
	lost, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "b"}})
	if lost.Status != StatusUnknown {
		t.Fatalf("ambiguous send: got %s", lost.Status)
	}
	clock.Advance(time.Hour)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	got, _ := svc.Notification(ctx, lost.ID)
	if got.Status != StatusFailed || got.Reason != ReasonNotDelivered {
		t.Fatalf("ambiguous send: got %s/%s msgid %q, want failed/not_delivered", got.Status, got.Reason, got.WeChat.MsgID)
	}
	if c := svc.credits(t, openID); c != 2 {
		t.Fatalf("credits: got %d, want 2 (one delivered, one given back)", c)
	}
}

// Two unknown sends, one delivered: one is settled sent with the event, the
// other closed, and the ledger ends where WeChat's count is.
func TestSweepUnknownPairsByCount(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	ctx := context.Background()
	const openID = "oUser4"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("5"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 2 {
		n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": fmt.Sprint(i)}})
		ids = append(ids, n.ID)
		clock.Advance(2 * time.Minute)
	}
	// An old event (before both calls) and the delivery of the second send.
	if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now().Add(-time.Hour), "7")); err != nil {
		t.Fatal(err)
	}
	if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now().Add(-2*time.Minute+time.Second), "9")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 2 {
		t.Fatalf("sweep: got %d, %v; want 2", settled, err)
	}
	first, _ := svc.Notification(ctx, ids[0])
	second, _ := svc.Notification(ctx, ids[1])
	if first.Status != StatusFailed || second.Status != StatusSent || second.WeChat.MsgID != "9" {
		t.Fatalf("got %s and %s (msgid %q), want failed and sent with msgid 9", first.Status, second.Status, second.WeChat.MsgID)
	}
	if c := svc.credits(t, openID); c != 4 {
		t.Fatalf("credits: got %d, want 4", c)
	}
}

// A send WeChat never got, made before the user turned the template off:
// WeChat zeroed its count with that credit in it, so the sweep closes the
// send without giving the credit back, even after a new accept.
func TestSweepUnknownAfterRevokeGivesNothingBack(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	ctx := context.Background()
	const openID = "oUser5"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("2"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	clock.Advance(time.Second)
	off := wechat.PushEvent{FromUserName: openID, CreateTime: clock.Now().Unix(), Event: wechat.EventSubscribeChange,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", SubscribeStatus: "reject"}}}
	on := wechat.PushEvent{FromUserName: openID, CreateTime: clock.Now().Unix() + 1, Event: wechat.EventSubscribePopup,
		Items: []wechat.PushItem{{TemplateID: "tmpl-lead", SubscribeStatus: "accept"}}}
	for _, ev := range []wechat.PushEvent{off, on} {
		if err := svc.ApplyPush(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	if got, _ := svc.Notification(ctx, n.ID); got.Status != StatusFailed || got.Reason != ReasonNotDelivered {
		t.Fatalf("notification: got %s/%s, want failed/not_delivered", got.Status, got.Reason)
	}
	if c := svc.credits(t, openID); c != 1 {
		t.Fatalf("credits: got %d, want 1 (the new accept only)", c)
	}
}

// gateWeChat holds each send until release is closed, then fails it
// definitely (-1: WeChat did not take it).
type gateWeChat struct {
	calling chan struct{}
	release chan struct{}
}

func (w *gateWeChat) Code2Session(context.Context, string) (wechat.Session, error) {
	return wechat.Session{}, errors.New("not used")
}

func (w *gateWeChat) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.calling <- struct{}{}
	<-w.release
	return wechat.SendResult{}, &wechat.Error{API: "subscribeMessage.send", Code: -1, Msg: "system error"}
}

// zeroHook runs hook (once) just before the credits of a template are set
// to "0" (by a Put or in a Write).
type zeroHook struct {
	store.Store
	once sync.Once
	hook func()
}

func (z *zeroHook) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	if string(v) == "0" && strings.HasSuffix(k.Sort, "|n") {
		z.once.Do(z.hook)
	}
	return z.Store.Put(ctx, k, v, o)
}

// Write runs hook before a Write that sets the credits to "0" (a zeroing
// writes them with the consent record).
func (z *zeroHook) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	for _, op := range ops {
		if op.Kind == store.PutKind && string(op.Value) == "0" && strings.HasSuffix(op.Key.Sort, "|n") {
			z.once.Do(z.hook)
		}
	}
	return z.Store.Write(ctx, ops)
}

// A send that takes its credit while the user is turning the template off
// (between the revoke's first mark and the zeroing) and then fails: the
// zeroing took that credit with it, so it is not given back.
func TestGiveBackSkipsTheCreditARevokeTook(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	wx := &gateWeChat{calling: make(chan struct{}), release: make(chan struct{})}
	st := &zeroHook{Store: bolt}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, nil)
	svc, err := New(Options{AppID: "wxrevoke", Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, PushConfigured: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const openID = "oUser6"
	if _, err := bolt.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	sent := make(chan Notification, 1)
	st.hook = func() { // the revoke has written its first mark: the send takes the credit now
		go func() {
			n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
			sent <- n
		}()
		<-wx.calling
	}
	if err := svc.Revoke(ctx, openID, "tmpl-lead", SourceChange); err != nil {
		t.Fatal(err)
	}
	close(wx.release) // WeChat refuses the send after the zeroing
	if n := <-sent; n.Status != StatusFailed {
		t.Fatalf("send: got %s/%s, want failed", n.Status, n.Reason)
	}
	if c := svc.credits(t, openID); c != 0 {
		t.Fatalf("credits: got %d, want 0 (the revoke zeroed the credit the send took)", c)
	}
}

// answerWeChat blocks each send until release, then answers what answer
// says: a msgid (delivered) or an error.
type answerWeChat struct {
	calling chan struct{}
	release chan struct{}
	answer  func() (wechat.SendResult, error)
}

func (w *answerWeChat) Code2Session(context.Context, string) (wechat.Session, error) {
	return wechat.Session{}, errors.New("not used")
}

func (w *answerWeChat) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.calling <- struct{}{}
	<-w.release
	return w.answer()
}

func newInterruptRig(t *testing.T, wx WeChat) (*Service, *fakeClock) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := &fakeClock{t: time.Now()}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxinterrupt", Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, Now: clock.Now,
		PushConfigured: true, UnknownWindow: 10 * time.Minute, SendLease: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return svc, clock
}

// A send whose sender stopped after taking its credit (its lease ran out)
// is declared interrupted by its retry, and with push SweepUnknown settles
// it like any ambiguous send: WeChat never had it, so the credit comes
// back. Before, such a send stayed unknown with its credit spent.
func TestInterruptedSendSettledBySweep(t *testing.T) {
	wx := &answerWeChat{calling: make(chan struct{}), release: make(chan struct{})}
	svc, clock := newInterruptRig(t, wx)
	ctx := context.Background()
	const openID = "oDead"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	req := SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k-dead"}
	go func() { _, _ = svc.Send(ctx, req) }() // the sender that dies: never released
	<-wx.calling
	clock.Advance(31 * time.Second)
	n, err := svc.Send(ctx, req)
	if err != nil || n.Status != StatusUnknown || n.Reason != ReasonInterrupted {
		t.Fatalf("retry after the lease: got %s/%s %v, want unknown/interrupted", n.Status, n.Reason, err)
	}
	if c := svc.credits(t, openID); c != 0 {
		t.Fatalf("credits: got %d, want 0 (held by the interrupted send)", c)
	}
	clock.Advance(11 * time.Minute)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	got, _ := svc.Notification(ctx, n.ID)
	if got.Status != StatusFailed || got.Reason != ReasonNotDelivered {
		t.Fatalf("after the sweep: got %s/%s, want failed/not_delivered", got.Status, got.Reason)
	}
	if c := svc.credits(t, openID); c != 1 {
		t.Fatalf("credits after the sweep: got %d, want 1 (given back)", c)
	}
}

// A sender that was only slow - declared interrupted by a retry, then
// answered by WeChat - records its own outcome over the interruption, and
// the sweep leaves it alone: its credit stays spent.
func TestSlowSenderOutcomeReplacesInterrupted(t *testing.T) {
	wx := &answerWeChat{calling: make(chan struct{}), release: make(chan struct{}),
		answer: func() (wechat.SendResult, error) { return wechat.SendResult{MsgID: 77}, nil }}
	svc, clock := newInterruptRig(t, wx)
	ctx := context.Background()
	const openID = "oSlow"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	req := SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k-slow"}
	slow := make(chan Notification, 1)
	go func() {
		n, _ := svc.Send(ctx, req)
		slow <- n
	}()
	<-wx.calling
	clock.Advance(31 * time.Second)
	if n, err := svc.Send(ctx, req); err != nil || n.Reason != ReasonInterrupted {
		t.Fatalf("retry after the lease: got %s/%s %v, want interrupted", n.Status, n.Reason, err)
	}
	close(wx.release)
	if n := <-slow; n.Status != StatusSent {
		t.Fatalf("slow sender: got %s/%s, want sent", n.Status, n.Reason)
	}
	clock.Advance(11 * time.Minute)
	if _, err := svc.SweepUnknown(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Send(ctx, req)
	if got.Status != StatusSent || got.WeChat.MsgID != "77" {
		t.Fatalf("record: got %s/%s msgid %q, want sent with msgid 77", got.Status, got.Reason, got.WeChat.MsgID)
	}
	if c := svc.credits(t, openID); c != 0 {
		t.Fatalf("credits: got %d, want 0 (WeChat delivered it)", c)
	}
}

// flakyRecord loses the reply of the first Put (or Write) of a notification record
// that says unknown, then fails the next Get of it once: the sender
// cannot confirm its outcome.
type flakyRecord struct {
	store.Store
	mu            sync.Mutex
	lost, failGet bool
}

func (f *flakyRecord) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	ver, err := f.Store.Put(ctx, k, v, o)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && !f.lost && strings.HasPrefix(k.Partition, "n|") && strings.Contains(string(v), `"status":"unknown"`) {
		f.lost, f.failGet = true, true
		return 0, errors.New("reply lost")
	}
	return ver, err
}

// Write is Put for the outcome writes, which record the notification (op
// 0) with its history entries.
func (f *flakyRecord) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	vers, err := f.Store.Write(ctx, ops)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && !f.lost && len(ops) > 0 && strings.HasPrefix(ops[0].Key.Partition, "n|") &&
		strings.Contains(string(ops[0].Value), `"status":"unknown"`) {
		f.lost, f.failGet = true, true
		return nil, errors.New("reply lost")
	}
	return vers, err
}

func (f *flakyRecord) Get(ctx context.Context, k store.Key) (store.Item, error) {
	f.mu.Lock()
	fail := f.failGet && strings.HasPrefix(k.Partition, "n|")
	if fail {
		f.failGet = false
	}
	f.mu.Unlock()
	if fail {
		return store.Item{}, errors.New("read failed")
	}
	return f.Store.Get(ctx, k)
}

// An ambiguous send whose unknown outcome was written but not confirmed (the
// reply lost, the read after it failed) is still offered to SweepUnknown:
// the soak found such sends left unknown for good, their credit spent.
func TestUnconfirmedUnknownIsStillSwept(t *testing.T) {
	const openID = "oFlaky"
	svc, st, clock := flakyService(t, "wxflaky", openID, nil)
	ctx := context.Background()
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"})
	if !st.lost {
		t.Fatal("no reply was lost: the test proves nothing")
	}
	clock.Advance(11 * time.Minute)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	got, _ := svc.Notification(ctx, n.ID)
	if got.Status != StatusFailed || got.Reason != ReasonNotDelivered || svc.credits(t, openID) != 1 {
		t.Fatalf("after the sweep: got %s/%s with %d credits, want failed/not_delivered and the credit back", got.Status, got.Reason, svc.credits(t, openID))
	}
}

// flakyService is a service with push on a store whose record writes can
// lose their reply (flakyRecord), a fake clock, a WeChat that never answers,
// and one credit of the template "lead" for openID.
func flakyService(t *testing.T, appID, openID string, obs Observer) (*Service, *flakyRecord, *fakeClock) {
	t.Helper()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	st := &flakyRecord{Store: bolt}
	clock := &fakeClock{t: time.Now()}
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: appID, Store: st, WeChat: &silentWeChat{}, Catalog: catalog, Sessions: sessions,
		Now: clock.Now, PushConfigured: true, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Put(context.Background(), svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return svc, st, clock
}

// Two unknown sends made at the same moment and one sent event in both
// their windows: the event settles one of them, never both, also when two
// sweeps run at once (the decision and the event's claim are one
// conditional Write).
func TestSweepUnknownClaimsEachEventOnce(t *testing.T) {
	for round := range 10 {
		svc, clock, _ := newUnknownRig(t)
		ctx := context.Background()
		const openID = "oTwice"
		if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("2"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range 2 {
			n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": fmt.Sprint(i)}})
			if n.Status != StatusUnknown {
				t.Fatalf("send %d: %s, want unknown", i, n.Status)
			}
			ids = append(ids, n.ID)
		}
		if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now(), "77")); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if _, err := svc.SweepUnknown(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		sent, failed := 0, 0
		for _, id := range ids {
			n, err := svc.Notification(ctx, id)
			switch {
			case err != nil:
				t.Fatal(err)
			case n.Status == StatusSent && n.WeChat.MsgID == "77":
				sent++
			case n.Status == StatusFailed && n.Reason == ReasonNotDelivered:
				failed++
			}
		}
		if sent != 1 || failed != 1 {
			t.Fatalf("round %d: %d sent with the event, %d not delivered; want 1 and 1", round, sent, failed)
		}
		if c := svc.credits(t, openID); c != 1 {
			t.Fatalf("round %d: credits %d, want 1 (the undelivered send's given back)", round, c)
		}
	}
}
