package boot

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// The tick deletes a bbolt store's expired items - records past their
// retention - at most once an hour, through the metrics wrapper.
func TestTickSweepsBolt(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	t.Cleanup(fake.Close)
	env := map[string]string{"WXN_WECHAT_APPID": fake.AppID(), "WXN_WECHAT_SECRET": fake.Secret(),
		"WXN_WECHAT_API_BASE": fake.URL(), "WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_RETENTION": "48h"}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != 48*time.Hour {
		t.Fatalf("WXN_RETENTION: got %s, want 48h", cfg.Retention)
	}
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	p, err := Build(cfg, bolt, Options{Function: "batch", Now: clock, Metrics: observe.Lines(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	put := func(sort string, expires time.Time) {
		t.Helper()
		if _, err := bolt.Put(ctx, store.Key{Partition: "sweep-test", Sort: sort}, []byte("v"), store.PutOptions{ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	live := func() int {
		t.Helper()
		n, err := bolt.Sweep(ctx) // what is left to sweep
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tick := Tick(p)
	put("expired-1", time.Now().Add(-time.Second))
	if err := tick(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	put("expired-2", time.Now().Add(-time.Second))
	if err := tick(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := live(); n != 1 {
		t.Fatalf("after two ticks within the hour: %d expired items left, want 1 (the second tick does not sweep)", n)
	}
	put("expired-3", time.Now().Add(-time.Second))
	now = now.Add(sweepEvery)
	if err := tick(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := live(); n != 0 {
		t.Fatalf("after a tick an hour later: %d expired items left, want 0", n)
	}
	if _, err := config.FromEnv(func(k string) string {
		if k == "WXN_RETENTION" {
			return "1h"
		}
		return env[k]
	}, true); err == nil || !strings.Contains(err.Error(), "WXN_RETENTION") {
		t.Fatalf("WXN_RETENTION=1h: %v, want an error naming it", err)
	}
}
