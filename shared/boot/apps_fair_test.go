package boot

import (
	"context"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// tickDeadline gives a tick 1.5 s of work: the runner stops its margin (5 s
// by default) before the deadline.
func tickDeadline() time.Time { return time.Now().Add(5*time.Second + 1500*time.Millisecond) }

// One app's long batch does not starve another's: each app ticks at once
// under its own rate limit, so a short batch of the second app finishes in
// the tick in which the first app's batch, listed first, cannot.
func TestTickIsFairAcrossApps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a rate-limited tick of about a second")
	}
	const users = 60
	_, _, targets, parts := benchApps(t, users, 1, false, map[string]string{"WXN_BATCH_RATE": "20", "WXN_BATCH_PAGE_SIZE": "10"})
	ctx := context.Background()
	recipients := map[string][]notify.BatchRecipient{}
	for _, tg := range targets {
		recipients[tg.app] = append(recipients[tg.app], notify.BatchRecipient{OpenID: tg.openID})
	}
	create := func(app string, n int) notify.Batch {
		t.Helper()
		// targets[i] (i < 3) took the warm-up credit: each user keeps one.
		b, err := parts.App(app).Service.CreateBatch(ctx, notify.BatchRequest{Template: "lead_assigned",
			Data: map[string]string{"thing1": "Acme", "character_string2": "B-1"}, Recipients: recipients[app][:n]})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	long := create("sales", users)  // 3 s at 20/s
	short := create("customer", 10) // 0.5 s
	if err := Tick(parts)(ctx, tickDeadline()); err != nil {
		t.Fatal(err)
	}
	gotShort, err := parts.App("customer").Service.Batch(ctx, short.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gotShort.Status != notify.BatchDone || gotShort.Sent != 10 {
		t.Errorf("customer's short batch after one tick: %s, %d sent; want done, 10 sent", gotShort.Status, gotShort.Sent)
	}
	gotLong, err := parts.App("sales").Service.Batch(ctx, long.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gotLong.Status == notify.BatchDone || gotLong.Sent >= users {
		t.Errorf("sales's long batch after one tick: %s, %d sent; want it unfinished (20/s for 1.5 s)", gotLong.Status, gotLong.Sent)
	}
	// The next ticks finish it, with one message per recipient.
	for range 4 {
		if err := Tick(parts)(ctx, tickDeadline()); err != nil {
			t.Fatal(err)
		}
	}
	if gotLong, _ = parts.App("sales").Service.Batch(ctx, long.ID); gotLong.Status != notify.BatchDone || gotLong.Sent+gotLong.Skipped != users {
		t.Errorf("sales's batch after more ticks: %+v", gotLong)
	}
}
