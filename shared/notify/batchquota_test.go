package notify_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// quotaClock is a clock the test moves, shared by the service and the
// fake WeChat (whose daily quota follows it).
type quotaClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *quotaClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *quotaClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestQuotaReset(t *testing.T) {
	for in, want := range map[string]string{
		"2026-12-07T10:00:00Z": "2026-12-07T16:00:00Z", // 18:00 in Beijing
		"2026-12-07T15:59:59Z": "2026-12-07T16:00:00Z",
		"2026-12-07T16:00:00Z": "2026-12-08T16:00:00Z", // midnight in Beijing: the next one
		"2026-12-31T20:00:00Z": "2027-01-01T16:00:00Z",
	} {
		at, _ := time.Parse(time.RFC3339, in)
		if got := notify.QuotaReset(at).Format(time.RFC3339); got != want {
			t.Errorf("QuotaReset(%s) = %s, want %s", in, got, want)
		}
	}
}

// A batch that meets WeChat's daily quota (45009) waits for its reset at
// midnight in Beijing and goes on from the page it was in: over three days
// of a 12-message quota, 30 recipients get one message each, none twice,
// and no send is tried while the quota is spent.
func TestBatchWaitsForTheDailyQuota(t *testing.T) {
	clock := &quotaClock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	fake := wechattest.NewServer(wechattest.Options{AppID: appID, SendDailyQuota: 12, Now: clock.now, Templates: []wechattest.Template{{
		PriTmplID: leadTID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "number2"}},
	}}})
	t.Cleanup(fake.Close)
	r := newRig(t, bolt)
	r.fake = fake
	cfg := wechat.Config{AppID: appID, Secret: fake.Secret(), BaseURL: fake.URL()}
	tokens, err := wechat.NewStoreTokenSource(bolt, cfg, wechat.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = tokens
	wx, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := notify.NewSessions(make([]byte, 32), time.Hour, clock.now)
	svc, err := notify.New(notify.Options{AppID: appID, Store: bolt, WeChat: wx, Catalog: r.catalog, Sessions: sessions,
		Now: clock.now, Batch: notify.BatchOptions{Rate: 5000, Workers: 3, PageSize: 5}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	openIDs := r.users(t, svc, 30, 30)
	b, err := svc.CreateBatch(ctx, batchOf(openIDs, "quota-1"))
	if err != nil {
		t.Fatal(err)
	}
	tick := func() notify.Batch {
		t.Helper()
		if err := svc.RunBatches(ctx, clock.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Batch(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for day, wantDelivered := range []int{12, 24} {
		got := tick()
		reset := notify.QuotaReset(clock.now()).Add(time.Minute)
		if got.Status != notify.BatchRunning || !got.QuotaResetAt.Equal(reset) || got.LeaseOwner != "" {
			t.Fatalf("day %d: batch %+v, want running, waiting until %s, no lease", day, got, reset)
		}
		if fake.Delivered() != wantDelivered {
			t.Fatalf("day %d: %d delivered, want %d (the quota)", day, fake.Delivered(), wantDelivered)
		}
		// Checkpointed pages only: the page that met 45009 counts again.
		if done := got.Sent + got.Failed + got.Skipped + got.Unknown; done%5 != 0 || done > wantDelivered || got.Failed != 0 {
			t.Fatalf("day %d: counters %+v, want whole pages of sends only", day, got)
		}
		// Before the reset a tick sends nothing, not even a try.
		clock.set(reset.Add(-2 * time.Minute))
		before := fake.Delivered()
		if again := tick(); again.Sent != got.Sent || fake.Delivered() != before {
			t.Fatalf("day %d: a tick before the reset sent: %+v, %d delivered", day, again, fake.Delivered())
		}
		clock.set(reset)
	}
	done := tick()
	checkExactlyOnce(t, r, done, openIDs, 30)
}
