package notify

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
)

// Recorder is an Observer that keeps every call, safe for concurrent use
// (exported for the external tests).
type Recorder struct {
	mu       sync.Mutex
	outcomes []Outcome
	credits  []CreditChange
	pushes   []PushEvent
	steps    []BatchStep
}

func (r *Recorder) NotificationDone(o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, o)
}

func (r *Recorder) CreditsChanged(c CreditChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.credits = append(r.credits, c)
}

func (r *Recorder) PushApplied(p PushEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes = append(r.pushes, p)
}

func (r *Recorder) BatchProgress(b BatchStep) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, b)
}

// Outcomes returns the NotificationDone calls so far.
func (r *Recorder) Outcomes() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Outcome(nil), r.outcomes...)
}

// Credits returns the CreditsChanged calls so far.
func (r *Recorder) Credits() []CreditChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CreditChange(nil), r.credits...)
}

// Pushes returns the PushApplied calls so far.
func (r *Recorder) Pushes() []PushEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]PushEvent(nil), r.pushes...)
}

// Steps returns the BatchProgress calls so far.
func (r *Recorder) Steps() []BatchStep {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]BatchStep(nil), r.steps...)
}

// CreditCounts returns, per kind, how many CreditsChanged calls came and
// the sum of their N.
func (r *Recorder) CreditCounts() (calls map[CreditKind]int, sum map[CreditKind]int64) {
	calls, sum = map[CreditKind]int{}, map[CreditKind]int64{}
	for _, c := range r.Credits() {
		calls[c.Kind]++
		sum[c.Kind] += c.N
	}
	return calls, sum
}

// An ambiguous send reports unknown once (also when the reply of its
// record's write was lost and the sender recognised it on reading it
// back); the sweep then reports its settlement and the credit given back.
func TestObserverUnknownSettled(t *testing.T) {
	const openID = "oObs"
	rec := &Recorder{}
	svc, st, clock := flakyService(t, "wxobs", openID, rec)
	ctx := context.Background()
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"})
	if !st.lost {
		t.Fatal("no reply was lost: the test proves nothing")
	}
	outs := rec.Outcomes()
	if len(outs) != 1 {
		t.Fatalf("after the send: %d outcomes, want 1: %+v", len(outs), outs)
	}
	if o := outs[0]; o.Status != StatusUnknown || o.Reason != ReasonAmbiguous || o.NotificationID != n.ID ||
		o.Template != "lead" || o.TemplateID != "tmpl-lead" || o.Source != FromAPI || o.OpenIDHash != HashID(openID) ||
		o.UserIDHash != "" || o.Wasted || o.AppID != "wxobs" {
		t.Fatalf("unknown outcome: %+v", o)
	}
	calls, _ := rec.CreditCounts()
	if calls[CreditTaken] != 1 || calls[CreditGivenBack] != 0 {
		t.Fatalf("credits after the send: %v, want one taken", calls)
	}
	// A replay of the request answers the record: nothing new.
	if again, err := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"}); err != nil || again.ID != n.ID {
		t.Fatalf("replay: %v, %v", again.ID, err)
	}
	if got := len(rec.Outcomes()); got != 1 {
		t.Fatalf("after the replay: %d outcomes, want 1", got)
	}

	clock.Advance(11 * time.Minute)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	outs = rec.Outcomes()
	if len(outs) != 2 {
		t.Fatalf("after the sweep: %d outcomes, want 2: %+v", len(outs), outs)
	}
	if o := outs[1]; o.Status != StatusFailed || o.Reason != ReasonNotDelivered || o.NotificationID != n.ID || o.Duration != 11*time.Minute {
		t.Fatalf("settled outcome: %+v, want failed/not_delivered after 11m", o)
	}
	calls, sum := rec.CreditCounts()
	if calls[CreditTaken] != 1 || calls[CreditGivenBack] != 1 || sum[CreditGivenBack] != 1 {
		t.Fatalf("credits after the sweep: %v, want one taken and one given back", calls)
	}
	// A second sweep settles nothing and reports nothing.
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 0 {
		t.Fatalf("second sweep: got %d, %v", settled, err)
	}
	if len(rec.Outcomes()) != 2 || len(rec.Credits()) != 2 {
		t.Fatalf("second sweep reported: %+v %+v", rec.Outcomes(), rec.Credits())
	}
}

// A report-granted credit that no popup event confirms is reported
// granted, then withdrawn by SweepReports; a second sweep reports nothing.
func TestObserverReportWithdrawn(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	rec := &Recorder{}
	svc.observe = rec
	ctx := context.Background()
	if _, err := svc.RecordReport(ctx, "oW", Report{Result: map[string]string{"tmpl-lead": "accept"}, ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	// Its retry (same ID) is applied once: no second grant.
	if _, err := svc.RecordReport(ctx, "oW", Report{Result: map[string]string{"tmpl-lead": "accept"}, ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	calls, _ := rec.CreditCounts()
	if calls[CreditGranted] != 1 {
		t.Fatalf("granted: %d calls, want 1", calls[CreditGranted])
	}
	clock.Advance(svc.pairWindow + time.Second)
	if n, err := svc.SweepReports(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1", n, err)
	}
	if n, err := svc.SweepReports(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v; want 0", n, err)
	}
	calls, sum := rec.CreditCounts()
	if calls[CreditWithdrawn] != 1 || sum[CreditWithdrawn] != 1 || len(rec.Credits()) != 2 {
		t.Fatalf("credit changes: %+v, want granted then withdrawn", rec.Credits())
	}
	if c := rec.Credits()[1]; c.AppID != "wxunknown" || c.TemplateID != "tmpl-lead" {
		t.Fatalf("withdrawn change: %+v", c)
	}
}

// An unknown send settled with WeChat's sent event reports sent, with no
// credit given back; the sent event reports a changed push, its
// redelivery an unchanged one.
func TestObserverUnknownSettledWithSentEvent(t *testing.T) {
	svc, clock, _ := newUnknownRig(t)
	rec := &Recorder{}
	svc.observe = rec
	ctx := context.Background()
	const openID = "oSent"
	if _, err := svc.st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: openID}, Template: "lead", Data: map[string]string{"thing1": "x"}})
	for range 2 {
		if err := svc.ApplyPush(ctx, sentEvent(openID, clock.Now(), "3395159288267931652")); err != nil {
			t.Fatal(err)
		}
	}
	pushes := rec.Pushes()
	if len(pushes) != 2 || !pushes[0].Changed || pushes[1].Changed || pushes[0].Event != "subscribe_msg_sent_event" {
		t.Fatalf("pushes: %+v, want the sent event changed, then unchanged", pushes)
	}
	clock.Advance(time.Hour)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	outs := rec.Outcomes()
	if len(outs) != 2 || outs[0].Status != StatusUnknown || outs[1].Status != StatusSent || outs[1].NotificationID != n.ID ||
		outs[1].Errcode != 0 || outs[1].Duration != time.Hour {
		t.Fatalf("outcomes: %+v, want unknown then sent after 1h", outs)
	}
	calls, _ := rec.CreditCounts()
	if calls[CreditTaken] != 1 || calls[CreditGivenBack] != 0 || len(rec.Credits()) != 1 {
		t.Fatalf("credits: %+v, want one taken", rec.Credits())
	}
}

// A lead event's send reports its outcome once, with source event; the
// event's redelivery reports nothing more.
func TestObserverLeadEvent(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	rules, err := CompileRules([]RuleSpec{{Name: "r", Event: "lead.assigned", Template: "lead",
		To: RecipientPaths{OpenID: "data.openid"}, Fields: map[string]FieldSpec{"thing1": {Value: "new lead"}}}}, catalog)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, nil)
	rec := &Recorder{}
	svc, err := New(Options{AppID: "wxlead", Store: st, WeChat: &silentWeChat{answers: map[int]int64{1: 7}}, Catalog: catalog,
		Sessions: sessions, Rules: rules, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const openID = "oLead"
	if _, err := st.Put(ctx, svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := Event{ID: "ev-1", Type: "lead.assigned", Data: map[string]any{"openid": openID}}
	for range 2 {
		out, err := svc.HandleEvent(ctx, ev)
		if err != nil || len(out.Notifications) != 1 || out.Notifications[0].Status != StatusSent {
			t.Fatalf("event: %+v, %v; want one sent", out, err)
		}
	}
	outs := rec.Outcomes()
	if len(outs) != 1 || outs[0].Source != FromEvent || outs[0].Status != StatusSent || outs[0].OpenIDHash != HashID(openID) {
		t.Fatalf("outcomes: %+v, want one sent from the event", outs)
	}
	if calls, _ := rec.CreditCounts(); calls[CreditTaken] != 1 || len(rec.Credits()) != 1 {
		t.Fatalf("credits: %+v, want one taken", rec.Credits())
	}
	// An unbound userId: skipped, identified by the userId's hash.
	if n, err := svc.Send(ctx, SendRequest{To: Recipient{UserID: "u-nobody"}, Template: "lead", Data: map[string]string{"thing1": "x"}}); err != nil || n.Reason != ReasonUnboundUser {
		t.Fatalf("unbound send: %s/%s, %v", n.Status, n.Reason, err)
	}
	outs = rec.Outcomes()
	if len(outs) != 2 || outs[1].Reason != ReasonUnboundUser || outs[1].UserIDHash != HashID("u-nobody") || outs[1].OpenIDHash != "" {
		t.Fatalf("outcomes: %+v, want the unbound skip with the userId's hash", outs)
	}
}
