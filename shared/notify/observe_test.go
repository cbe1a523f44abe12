package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// obsClock is a clock the test moves.
type obsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *obsClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *obsClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// slowWeChat is WeChat taking callTime per send on the test's clock.
type slowWeChat struct {
	notify.WeChat
	clock    *obsClock
	callTime time.Duration
}

func (w slowWeChat) SendSubscribeMessage(ctx context.Context, req wechat.SendRequest) (wechat.SendResult, error) {
	w.clock.Advance(w.callTime)
	return w.WeChat.SendSubscribeMessage(ctx, req)
}

// observedService is the rig's send path reporting to rec; with clock,
// on that clock, every WeChat call taking callTime.
func (r *rig) observedService(tb testing.TB, rec notify.Observer, clock *obsClock, callTime time.Duration, opts notify.BatchOptions) *notify.Service {
	tb.Helper()
	cfg := wechat.Config{AppID: appID, Secret: r.fake.Secret(), BaseURL: r.fake.URL()}
	tokens, err := wechat.NewStoreTokenSource(r.st, cfg, wechat.TokenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Tokens = tokens
	client, err := wechat.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wx  notify.WeChat = client
		now func() time.Time
	)
	if clock != nil {
		wx, now = slowWeChat{WeChat: client, clock: clock, callTime: callTime}, clock.Now
	}
	sessions, _ := notify.NewSessions(make([]byte, 32), time.Hour, nil)
	svc, err := notify.New(notify.Options{AppID: appID, Store: r.st, WeChat: wx, Catalog: r.catalog, Sessions: sessions,
		Now: now, Batch: opts, Observer: rec})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

func (r *rig) inject(tb testing.TB, f wechattest.Fault) {
	tb.Helper()
	f.API, f.Count = wechattest.APISend, 1
	if err := r.fake.Inject(f); err != nil {
		tb.Fatal(err)
	}
}

// Each send of a known outcome reports it once with every field, and the
// credits it took and gave back.
func TestObserverSendOutcomes(t *testing.T) {
	const callTime = 3 * time.Second
	r := newRig(t, nil)
	rec := &notify.Recorder{}
	clock := &obsClock{t: time.Now()}
	svc := r.observedService(t, rec, clock, callTime, notify.BatchOptions{})
	ctx := context.Background()
	users := make([]string, 6)
	for i := range users {
		users[i] = r.fake.OpenID(fmt.Sprintf("obs%d", i))
	}
	for _, i := range []int{0, 2, 3, 4} {
		r.grant(t, svc, users[i])
	}
	// users[5] (known to WeChat) holds two credits in the ledger that
	// WeChat never gave.
	r.fake.Login("obs5")
	for range 2 {
		if _, err := svc.RecordReport(ctx, users[5], notify.Report{Result: map[string]string{leadTID: "accept"}}); err != nil {
			t.Fatal(err)
		}
	}
	if calls, sum := rec.CreditCounts(); calls[notify.CreditGranted] != 6 || sum[notify.CreditGranted] != 6 || len(rec.Credits()) != 6 {
		t.Fatalf("grants: %+v, want 6 granted", rec.Credits())
	}
	type want struct {
		status  notify.Status
		reason  string
		errcode int
		wasted  bool
		took    bool // WeChat was called
	}
	wants := []want{
		{notify.StatusSent, "", 0, false, true},
		{notify.StatusSkipped, notify.ReasonNoConsent, 0, false, false},
		{notify.StatusFailed, notify.ReasonInvalidData, 47003, false, true},
		{notify.StatusFailed, notify.ReasonRejected, 40037, false, true},
		{notify.StatusUnknown, notify.ReasonAmbiguous, 0, false, true},
		{notify.StatusSkipped, notify.ReasonNoConsent, 43101, true, true},
	}
	ids := make([]string, len(users))
	for i, o := range users {
		switch i {
		case 2:
			r.inject(t, wechattest.Fault{Errcode: 47003})
		case 3:
			r.inject(t, wechattest.Fault{Errcode: 40037})
		case 4:
			r.inject(t, wechattest.Fault{Drop: wechattest.DropAfterRead})
		}
		n, _ := svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: o}, Template: "lead_digest", Data: digestData})
		if n.Status != wants[i].status || n.Reason != wants[i].reason {
			t.Fatalf("user %d: got %s/%s, want %s/%s", i, n.Status, n.Reason, wants[i].status, wants[i].reason)
		}
		ids[i] = n.ID
	}
	outs := rec.Outcomes()
	if len(outs) != len(users) {
		t.Fatalf("got %d outcomes, want %d: %+v", len(outs), len(users), outs)
	}
	for i, o := range outs {
		w := wants[i]
		d := time.Duration(0)
		if w.took {
			d = callTime
		}
		if o.AppID != appID || o.NotificationID != ids[i] || o.Template != "lead_digest" || o.TemplateID != leadTID ||
			o.Status != w.status || o.Reason != w.reason || o.Errcode != w.errcode || o.Source != notify.FromAPI ||
			o.Wasted != w.wasted || o.Duration != d || o.OpenIDHash != notify.HashID(users[i]) || o.UserIDHash != "" {
			t.Errorf("outcome %d: got %+v, want %+v (duration %s)", i, o, w, d)
		}
	}
	calls, sum := rec.CreditCounts()
	// Taken: every user with a credit (0, 2, 3, 4, 5); given back: the two
	// refused (2, 3); the unknown send keeps its credit; the 43101 zeroes
	// the credit its take left.
	if calls[notify.CreditTaken] != 5 || sum[notify.CreditTaken] != 5 {
		t.Errorf("taken: %d calls (N %d), want 5", calls[notify.CreditTaken], sum[notify.CreditTaken])
	}
	if calls[notify.CreditGivenBack] != 2 || sum[notify.CreditGivenBack] != 2 {
		t.Errorf("given back: %d calls (N %d), want 2", calls[notify.CreditGivenBack], sum[notify.CreditGivenBack])
	}
	if calls[notify.CreditZeroed] != 1 || sum[notify.CreditZeroed] != 1 {
		t.Errorf("zeroed: %d calls (N %d), want 1 removing 1", calls[notify.CreditZeroed], sum[notify.CreditZeroed])
	}
	if calls[notify.CreditWithdrawn] != 0 {
		t.Errorf("withdrawn: %d calls, want none", calls[notify.CreditWithdrawn])
	}
}

// A replay of a send with its idempotency key reports nothing more, and a
// retry of a retryable failure reports its own outcome.
func TestObserverIdempotentReplay(t *testing.T) {
	r := newRig(t, nil)
	rec := &notify.Recorder{}
	svc := r.observedService(t, rec, nil, 0, notify.BatchOptions{})
	ctx := context.Background()
	o := r.fake.OpenID("replay")
	r.grant(t, svc, o)
	req := notify.SendRequest{To: notify.Recipient{OpenID: o}, Template: "lead_digest", Data: digestData, IdempotencyKey: "k1"}
	r.inject(t, wechattest.Fault{Errcode: -1}) // busy: failed, retryable
	first, err := svc.Send(ctx, req)
	if first.Status != notify.StatusFailed || !first.Retryable || err == nil {
		t.Fatalf("first: %s retryable=%v err=%v, want a retryable failure", first.Status, first.Retryable, err)
	}
	second, err := svc.Send(ctx, req)
	if err != nil || second.Status != notify.StatusSent || second.ID != first.ID {
		t.Fatalf("retry: %s, %v; want sent", second.Status, err)
	}
	for range 3 {
		if again, err := svc.Send(ctx, req); err != nil || again.Status != notify.StatusSent || again.ID != first.ID {
			t.Fatalf("replay: %s, %v", again.Status, err)
		}
	}
	outs := rec.Outcomes()
	if len(outs) != 2 || outs[0].Status != notify.StatusFailed || outs[0].Reason != notify.ReasonUnavailable ||
		outs[0].Errcode != -1 || outs[1].Status != notify.StatusSent || outs[1].NotificationID != first.ID {
		t.Fatalf("outcomes: %+v, want failed (wechat_unavailable) then sent", outs)
	}
	calls, _ := rec.CreditCounts()
	if calls[notify.CreditTaken] != 2 || calls[notify.CreditGivenBack] != 1 {
		t.Fatalf("credits: %v, want taken twice, given back once", calls)
	}
}

// A popup accept reports one credit granted and a changed push; its
// redelivery an unchanged push and nothing more; a change event that
// turns the template off a zeroing.
func TestObserverPopupRedelivery(t *testing.T) {
	r := newRig(t, nil)
	rec := &notify.Recorder{}
	svc := r.observedService(t, rec, nil, 0, notify.BatchOptions{})
	ctx := context.Background()
	o := r.fake.OpenID("popup")
	ev := popupEvent(o, time.Now().Unix())
	for range 2 {
		if err := svc.ApplyPush(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	credits, pushes := rec.Credits(), rec.Pushes()
	if len(credits) != 1 || credits[0] != (notify.CreditChange{AppID: appID, TemplateID: leadTID, Kind: notify.CreditGranted, N: 1}) {
		t.Fatalf("credits: %+v, want one granted", credits)
	}
	wantPush := []notify.PushEvent{
		{AppID: appID, Event: wechat.EventSubscribePopup, Changed: true},
		{AppID: appID, Event: wechat.EventSubscribePopup, Changed: false},
	}
	if len(pushes) != 2 || pushes[0] != wantPush[0] || pushes[1] != wantPush[1] {
		t.Fatalf("pushes: %+v, want %+v", pushes, wantPush)
	}
	off := wechat.PushEvent{FromUserName: o, CreateTime: time.Now().Unix() + 1, Event: wechat.EventSubscribeChange,
		Items: []wechat.PushItem{{TemplateID: leadTID, SubscribeStatus: "reject"}}}
	if err := svc.ApplyPush(ctx, off); err != nil {
		t.Fatal(err)
	}
	credits, pushes = rec.Credits(), rec.Pushes()
	if len(credits) != 2 || credits[1].Kind != notify.CreditZeroed || credits[1].N != 1 {
		t.Fatalf("credits: %+v, want a zeroing of the one credit", credits)
	}
	if len(pushes) != 3 || pushes[2] != (notify.PushEvent{AppID: appID, Event: wechat.EventSubscribeChange, Changed: true}) {
		t.Fatalf("pushes: %+v, want a changed change event", pushes)
	}
	if len(rec.Outcomes()) != 0 || len(rec.Steps()) != 0 {
		t.Fatal("push events reported outcomes or batch steps")
	}
}

// A batch reports one step per checkpointed page, whose counts add up to
// the batch's counters, the last one Done (one shard: the runner of the
// last page ends the batch); and one outcome per recipient.
func TestObserverBatchProgress(t *testing.T) {
	const k, withCredit, pageSize = 7, 4, 3
	r := newRig(t, nil)
	rec := &notify.Recorder{}
	svc := r.observedService(t, rec, nil, 0, notify.BatchOptions{PageSize: pageSize, Rate: 1000})
	ctx := context.Background()
	openIDs := r.users(t, svc, k, withCredit)
	created, err := svc.CreateBatch(ctx, batchOf(openIDs, "obs-batch"))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, err := svc.Batch(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, r, b, openIDs, withCredit)
	steps := rec.Steps()
	if len(steps) != (k+pageSize-1)/pageSize {
		t.Fatalf("got %d steps, want %d: %+v", len(steps), (k+pageSize-1)/pageSize, steps)
	}
	var sum notify.BatchStep
	for i, s := range steps {
		if s.AppID != appID || s.BatchID != b.ID || s.Done != (i == len(steps)-1) {
			t.Errorf("step %d: %+v", i, s)
		}
		if n := s.Sent + s.Skipped + s.Failed + s.Unknown; n != min(pageSize, k-i*pageSize) {
			t.Errorf("step %d counts %d recipients, want %d", i, n, min(pageSize, k-i*pageSize))
		}
		sum.Sent, sum.Skipped, sum.Failed, sum.Unknown = sum.Sent+s.Sent, sum.Skipped+s.Skipped, sum.Failed+s.Failed, sum.Unknown+s.Unknown
	}
	if sum.Sent != b.Sent || sum.Skipped != b.Skipped || sum.Failed != b.Failed || sum.Unknown != b.Unknown {
		t.Errorf("steps add up to %+v, the batch says %+v", sum, b)
	}
	outs := rec.Outcomes()
	sent := 0
	for _, o := range outs {
		if o.Source != notify.FromBatch {
			t.Errorf("outcome of source %q, want batch", o.Source)
		}
		if o.Status == notify.StatusSent {
			sent++
		}
	}
	if len(outs) != k || sent != withCredit {
		t.Errorf("got %d outcomes (%d sent), want %d (%d sent)", len(outs), sent, k, withCredit)
	}
	// Running again finds the batch done: nothing more.
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(rec.Steps()) != len(steps) || len(rec.Outcomes()) != k {
		t.Errorf("a second run reported more")
	}
}

// A popup event that confirms a client report changes nothing the
// observer counts: the report granted the credit.
func TestObserverPopupConfirmsReport(t *testing.T) {
	r := newRig(t, nil)
	rec := &notify.Recorder{}
	svc := r.observedService(t, rec, nil, 0, notify.BatchOptions{})
	ctx := context.Background()
	o := r.fake.OpenID("paired")
	if _, err := svc.RecordReport(ctx, o, notify.Report{Result: map[string]string{leadTID: "accept"}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.ApplyPush(ctx, popupEvent(o, time.Now().Unix())); err != nil {
		t.Fatal(err)
	}
	if credits := rec.Credits(); len(credits) != 1 || credits[0].Kind != notify.CreditGranted {
		t.Fatalf("credits: %+v, want the report's grant only", credits)
	}
	if pushes := rec.Pushes(); len(pushes) != 1 || pushes[0].Changed {
		t.Fatalf("pushes: %+v, want one unchanged", pushes)
	}
}
