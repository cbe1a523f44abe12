package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/shared/store"
)

// A Write is one command (the script), and leaves the partition sets and
// TTLs as the single-item scripts do.
func TestWriteLayout(t *testing.T) {
	ctx := context.Background()
	s, client := newTestStore(t)
	var hook countingHook
	client.AddHook(&hook)
	a, b, c := store.Key{Partition: "p", Sort: "a"}, store.Key{Partition: "p", Sort: "b"}, store.Key{Partition: "q", Sort: "c"}
	mustPut(t, s, c, "c", store.PutOptions{})
	later := time.Now().Add(time.Hour)
	// The first EVALSHA of a script may meet NOSCRIPT and EVAL it.
	if _, err := s.Write(ctx, []store.WriteOp{store.WriteCheck(a, 0)}); err != nil {
		t.Fatal(err)
	}
	before := hook.n.Load()
	if _, err := s.Write(ctx, []store.WriteOp{
		store.WritePut(a, []byte("a"), store.PutOptions{ExpiresAt: later}),
		store.WritePut(b, []byte("b"), store.PutOptions{ExpiresAt: later}),
		store.WriteDelete(c, store.DeleteOptions{}),
	}); err != nil {
		t.Fatal(err)
	}
	if n := hook.n.Load() - before; n != 1 {
		t.Fatalf("commands of one Write: got %d, want 1", n)
	}
	item, set := s.keys(a)
	for _, k := range []string{item, set} {
		ttl, err := client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(later) - ttl; d < -time.Second || d > time.Second {
			t.Fatalf("TTL of %s: got %v, want about %v", k, ttl, time.Until(later))
		}
	}
	if got := querySorts(t, s, "p"); len(got) != 2 {
		t.Fatalf("members of p: got %v, want [a b]", got)
	}
	_, setQ := s.keys(c)
	if n, err := client.Exists(ctx, setQ).Result(); err != nil || n != 0 {
		t.Fatalf("set of q after its last item was deleted: exists %d, %v; want 0", n, err)
	}
	// A permanent Put makes the set permanent again.
	if _, err := s.Write(ctx, []store.WriteOp{store.WritePut(b, []byte("b"), store.PutOptions{})}); err != nil {
		t.Fatal(err)
	}
	if ttl, err := client.PTTL(ctx, set).Result(); err != nil || ttl != -1 {
		t.Fatalf("set TTL after a permanent Put: got %v, %v; want none", ttl, err)
	}
	itemB, _ := s.keys(b)
	if ttl, err := client.PTTL(ctx, itemB).Result(); err != nil || ttl != -1 {
		t.Fatalf("item TTL after a permanent Put: got %v, %v; want none", ttl, err)
	}
}

// On a cluster client, a Write across partitions is refused before any
// command is sent; bad input is refused before I/O on any client.
func TestWriteValidationBeforeIO(t *testing.T) {
	ctx := context.Background()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	var hook countingHook
	for _, c := range []redis.UniversalClient{cluster, single} {
		c.AddHook(&hook)
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	a, b := store.Key{Partition: "p", Sort: "a"}, store.Key{Partition: "q", Sort: "b"}
	_, err := New(cluster, "x:").Write(ctx, []store.WriteOp{store.WriteCheck(a, 0), store.WriteCheck(b, 0)})
	if !errors.Is(err, store.ErrInvalidWrite) {
		t.Fatalf("Write across partitions on a cluster: got %v, want ErrInvalidWrite", err)
	}
	_, err = New(single, "x:").Write(ctx, []store.WriteOp{store.WriteCheck(a, 0), store.WriteCheck(a, 1)})
	if !errors.Is(err, store.ErrInvalidWrite) {
		t.Fatalf("Write with a duplicate key: got %v, want ErrInvalidWrite", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := New(single, "x:").Write(canceled, []store.WriteOp{store.WriteCheck(a, 0)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with canceled ctx: got %v, want context.Canceled", err)
	}
	if n := hook.n.Load(); n != 0 {
		t.Fatalf("commands sent: got %d, want 0", n)
	}
}
