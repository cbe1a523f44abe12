package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// funnelSeed is what seedOutcomes adds to seed, and the counts the
// overview and the stats page must show for lead_assigned.
type funnelSeed struct {
	seeded
	yesterday, today string // yyyy-mm-dd
}

// seedOutcomes runs seed (today: 4 accepts granting 4 credits, 3 sent, 3
// held) and adds sends of known outcomes:
//
//   - yesterday: 2 accepts (2 credits), 1 sent, 1 failed with 45009;
//   - today: 5 popups shown, 1 reject, 2 failed with 45009, 1 failed with
//     40003, and 1 wasted (WeChat answers 43101 while the ledger has a
//     credit).
//
// Today: sent 3, skipped 4 (held 3, wasted 1), failed 3, taken 4.
// The 7 days: shown 5, accepted 6, rejected 1, granted 6, taken 5, sent 4,
// skipped 4, failed 4 (45009: 3, 40003: 1), wasted rate 1/5 = 20.0%,
// outstanding 1.
func seedOutcomes(tb testing.TB, f *fixture) funnelSeed {
	tb.Helper()
	ctx := context.Background()
	fs := funnelSeed{seeded: seed(tb, f)}
	fs.today = f.now().UTC().Format(time.DateOnly)
	alice, bob := fs.aliceOpenID, fs.bobOpenID
	send := func(key string, fault int, want notify.Status) {
		tb.Helper()
		if fault != 0 {
			if err := f.fake.Inject(wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: fault}); err != nil {
				tb.Fatal(err)
			}
		}
		n, _ := f.svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: alice}, Template: "lead_assigned", IdempotencyKey: key,
			Source: notify.FromAPI, Data: map[string]string{"thing1": "x", "character_string2": "1"}})
		if n.Status != want || (fault != 0 && want == notify.StatusFailed && n.WeChat.Errcode != fault) {
			tb.Fatalf("seed send %q: got %s (%s, errcode %d), want %s", key, n.Status, n.Reason, n.WeChat.Errcode, want)
		}
	}
	report := func(openID, status, id string) {
		tb.Helper()
		if _, err := f.fake.Subscribe(openID, map[string]string{leadID: status}); err != nil {
			tb.Fatal(err)
		}
		if _, err := f.svc.RecordReport(ctx, openID, notify.Report{Result: map[string]string{leadID: status}, ID: id}); err != nil {
			tb.Fatal(err)
		}
	}

	f.clock.advance(-24 * time.Hour)
	fs.yesterday = f.now().UTC().Format(time.DateOnly)
	report(alice, "accept", "y-1")
	report(alice, "accept", "y-2")
	send("y-sent", 0, notify.StatusSent)
	send("y-45009", 45009, notify.StatusFailed)
	f.clock.advance(24 * time.Hour)

	for range 5 {
		if _, err := f.svc.RecordShown(ctx, alice, notify.Shown{Templates: []string{leadID}}); err != nil {
			tb.Fatal(err)
		}
	}
	report(bob, "reject", "b-1")
	send("t-45009-1", 45009, notify.StatusFailed)
	send("t-45009-2", 45009, notify.StatusFailed)
	send("t-40003", 40003, notify.StatusFailed)
	send("t-43101", 43101, notify.StatusSkipped)
	return fs
}
