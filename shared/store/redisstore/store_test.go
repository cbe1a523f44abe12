package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

// testClient returns a client of the test server, closed when tb ends. When
// the server does not answer, the test is skipped, or fails if $CI is true.
func testClient(tb testing.TB) *redis.Client {
	tb.Helper()
	return testredis.Client(tb)
}

// newTestStore returns a store under a fresh random prefix whose keys are
// deleted when tb ends, and the client it uses.
func newTestStore(tb testing.TB) (*Store, *redis.Client) {
	tb.Helper()
	client := testClient(tb)
	return New(client, testredis.Prefix(tb, client)), client
}

func TestConformance(t *testing.T) {
	testClient(t) // skips the whole suite at once without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := newTestStore(t)
		return s
	})
}

func mustPut(tb testing.TB, s *Store, k store.Key, v string, opts store.PutOptions) int64 {
	tb.Helper()
	ver, err := s.Put(context.Background(), k, []byte(v), opts)
	if err != nil {
		tb.Fatalf("Put(%v): %v", k, err)
	}
	return ver
}

func querySorts(tb testing.TB, s *Store, partition string) []string {
	tb.Helper()
	page, err := s.Query(context.Background(), store.Query{Partition: partition, Limit: store.MaxQueryLimit})
	if err != nil {
		tb.Fatalf("Query(%q): %v", partition, err)
	}
	var sorts []string
	for _, it := range page.Items {
		sorts = append(sorts, it.Key.Sort)
	}
	return sorts
}

func TestPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestStore(t)
	b, _ := newTestStore(t)
	k := store.Key{Partition: "user#o1", Sort: "profile"}
	mustPut(t, a, k, "in a", store.PutOptions{})

	if _, err := b.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get from the other prefix: got %v, want ErrNotFound", err)
	}
	if got := querySorts(t, b, k.Partition); len(got) != 0 {
		t.Fatalf("Query from the other prefix: got %q, want none", got)
	}
	if ver := mustPut(t, b, k, "in b", store.PutOptions{IfAbsent: true}); ver != 1 {
		t.Fatalf("Put IfAbsent in the other prefix: got version %d, want 1", ver)
	}
	if err := b.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	it, err := a.Get(ctx, k)
	if err != nil || string(it.Value) != "in a" {
		t.Fatalf("Get after the other prefix wrote and deleted: got %q, %v, want %q", it.Value, err, "in a")
	}
}

// hashTag returns the part of key that Redis Cluster hashes to pick a slot.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func TestKeys(t *testing.T) {
	s := New(nil, "app:")
	tests := []struct {
		partition, wantTag string
	}{
		{"user#o1", "user#o1"},
		{"a:b", "a:b"},
		{"a}", "a%7D"},
		{"a%7D", "a%257D"},
		{"}{", "%7D{"},
		{"{a}", "{a%7D"},
		{"%", "%25"},
		{"用户", "用户"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.partition, func(t *testing.T) {
			item, set := s.keys(store.Key{Partition: tc.partition, Sort: "}s{"})
			if got := hashTag(item); got != tc.wantTag {
				t.Errorf("hash tag of item key %q: got %q, want %q", item, got, tc.wantTag)
			}
			if got := hashTag(set); got != tc.wantTag {
				t.Errorf("hash tag of set key %q: got %q, want %q", set, got, tc.wantTag)
			}
			if want := "app:{" + tc.wantTag + "}:i:}s{"; item != want {
				t.Errorf("item key: got %q, want %q", item, want)
			}
			if other, ok := seen[set]; ok {
				t.Errorf("partitions %q and %q share the set key %q", tc.partition, other, set)
			}
			seen[set] = tc.partition
		})
	}
}

func TestTrickyKeysStayDistinct(t *testing.T) {
	s, _ := newTestStore(t)
	keys := []store.Key{
		{Partition: "a", Sort: "}x"}, {Partition: "a}", Sort: "x"},
		{Partition: "a}:i:x", Sort: "y"}, {Partition: "a", Sort: "x}:i:y"},
		{Partition: "a%7D", Sort: "x"}, {Partition: "a:z", Sort: "x"},
		{Partition: "a", Sort: ":z"}, {Partition: "%", Sort: "%"},
	}
	for i, k := range keys {
		mustPut(t, s, k, strconv.Itoa(i), store.PutOptions{})
	}
	for i, k := range keys {
		it, err := s.Get(context.Background(), k)
		if err != nil || string(it.Value) != strconv.Itoa(i) || it.Version != 1 {
			t.Errorf("Get(%q): got %q v%d, %v; want %q v1", k, it.Value, it.Version, err, strconv.Itoa(i))
		}
	}
	if got, want := strings.Join(querySorts(t, s, "a"), "|"), ":z|x}:i:y|}x"; got != want {
		t.Errorf("Query(a): got %q, want %q", got, want)
	}
}

// pastMillis is a Unix-ms expiry one second in the past.
func pastMillis() int64 { return time.Now().Add(-time.Second).UnixMilli() }

func TestQueryRemovesDeadMembers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		expire func(tb testing.TB, client *redis.Client, item string)
	}{
		{"ExpiredByRedis", func(tb testing.TB, client *redis.Client, item string) {
			if err := client.PExpireAt(ctx, item, time.Now().Add(-time.Second)).Err(); err != nil {
				tb.Fatal(err)
			}
		}},
		{"NotYetDeletedByRedis", func(tb testing.TB, client *redis.Client, item string) {
			// As a replica or a busy server may leave it for a while.
			if err := client.HSet(ctx, item, "x", pastMillis()).Err(); err != nil {
				tb.Fatal(err)
			}
			if err := client.Persist(ctx, item).Err(); err != nil {
				tb.Fatal(err)
			}
		}},
		{"DeletedOutsideTheStore", func(tb testing.TB, client *redis.Client, item string) {
			if err := client.Del(ctx, item).Err(); err != nil {
				tb.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, client := newTestStore(t)
			live, dead := store.Key{Partition: "p", Sort: "a"}, store.Key{Partition: "p", Sort: "b"}
			mustPut(t, s, live, "live", store.PutOptions{})
			mustPut(t, s, dead, "dead", store.PutOptions{ExpiresAt: time.Now().Add(time.Hour)})
			item, set := s.keys(dead)
			tc.expire(t, client, item)

			if _, err := s.Get(ctx, dead); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get: got %v, want ErrNotFound", err)
			}
			if n, err := client.ZCard(ctx, set).Result(); err != nil || n != 2 {
				t.Fatalf("set size before Query: got %d, %v; want 2 (cleanup is lazy)", n, err)
			}
			if got := querySorts(t, s, "p"); strings.Join(got, ",") != "a" {
				t.Fatalf("Query: got %q, want [a]", got)
			}
			members, err := client.ZRange(ctx, set, 0, -1).Result()
			if err != nil || strings.Join(members, ",") != "a" {
				t.Fatalf("set after Query: got %q, %v; want [a]", members, err)
			}
			if ver := mustPut(t, s, dead, "again", store.PutOptions{IfAbsent: true}); ver != 1 {
				t.Fatalf("Put IfAbsent over the dead item: got version %d, want 1", ver)
			}
		})
	}
}

func TestSetExpiry(t *testing.T) {
	ctx := context.Background()
	s, client := newTestStore(t)
	soon, later := time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	_, set := s.keys(store.Key{Partition: "p", Sort: "x"})
	steps := []struct {
		name string
		do   func() error
		want time.Time // zero: the set never expires
	}{
		{"FirstExpiring", func() error {
			_, err := s.Put(ctx, store.Key{Partition: "p", Sort: "a"}, nil, store.PutOptions{ExpiresAt: later})
			return err
		}, later},
		{"EarlierKeepsLater", func() error {
			_, err := s.Put(ctx, store.Key{Partition: "p", Sort: "b"}, nil, store.PutOptions{ExpiresAt: soon})
			return err
		}, later},
		{"PermanentPersists", func() error {
			_, err := s.Add(ctx, store.Key{Partition: "p", Sort: "c"}, 1, 0, 10)
			return err
		}, time.Time{}},
		{"ExpiringKeepsPersistent", func() error {
			_, err := s.Put(ctx, store.Key{Partition: "p", Sort: "d"}, nil, store.PutOptions{ExpiresAt: soon})
			return err
		}, time.Time{}},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ttl, err := client.PTTL(ctx, set).Result()
		if err != nil {
			t.Fatal(err)
		}
		if step.want.IsZero() {
			if ttl != -1 {
				t.Fatalf("%s: got set TTL %v, want none", step.name, ttl)
			}
			continue
		}
		if d := time.Until(step.want) - ttl; d < -time.Second || d > time.Second {
			t.Fatalf("%s: got set TTL %v, want about %v", step.name, ttl, time.Until(step.want))
		}
	}
}

func TestScriptsSurviveScriptFlush(t *testing.T) {
	ctx := context.Background()
	s, client := newTestStore(t)
	k := store.Key{Partition: "p", Sort: "s"}
	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { _, err := s.Put(ctx, k, []byte("v"), store.PutOptions{}); return err }},
		{"Get", func() error { _, err := s.Get(ctx, k); return err }},
		{"Query", func() error { _, err := s.Query(ctx, store.Query{Partition: "p", Limit: 1}); return err }},
		{"Add", func() error { _, err := s.Add(ctx, store.Key{Partition: "p", Sort: "n"}, 1, 0, 9); return err }},
		{"Delete", func() error { return s.Delete(ctx, k, store.DeleteOptions{}) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.call(); err != nil {
				t.Fatalf("%s after SCRIPT FLUSH: %v", c.name, err)
			}
		})
	}
}

func TestAddCounterText(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	tests := []struct {
		value   string
		delta   int64
		want    int64
		wantErr error
	}{
		{"0", 1, 1, nil},
		{"-9223372036854775808", 0, math.MinInt64, nil},
		{"-9223372036854775808", 1, math.MinInt64 + 1, nil},
		{"9223372036854775807", -1, math.MaxInt64 - 1, nil},
		{"9007199254740993", 2, 9007199254740995, nil}, // beyond a double's precision
		{"-0", 1, 0, store.ErrNotCounter},
		{"+1", 1, 0, store.ErrNotCounter},
		{"01", 1, 0, store.ErrNotCounter},
		{"-", 1, 0, store.ErrNotCounter},
		{"9223372036854775808", -1, 0, store.ErrNotCounter},
		{"-9223372036854775809", 1, 0, store.ErrNotCounter},
		{"１", 1, 0, store.ErrNotCounter},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%s%+d", tc.value, tc.delta), func(t *testing.T) {
			k := store.Key{Partition: "p", Sort: strconv.Itoa(i)}
			mustPut(t, s, k, tc.value, store.PutOptions{})
			got, err := s.Add(ctx, k, tc.delta, math.MinInt64, math.MaxInt64)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("Add(%q, %d): got %d, %v; want %d, %v", tc.value, tc.delta, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCurrentBounds(t *testing.T) {
	const minI, maxI = math.MinInt64, math.MaxInt64
	tests := []struct {
		name            string
		delta, min, max int64
		lo, hi          string
	}{
		{"Take", -1, 0, 100, "1", "101"},
		{"Give", 1, 0, 100, "-1", "99"},
		{"Read", 0, 0, 0, "0", "0"},
		{"Full", 1, minI, maxI, "-9223372036854775808", "9223372036854775806"},
		{"FullNegative", -1, minI, maxI, "-9223372036854775807", "9223372036854775807"},
		{"MinDelta", minI, minI, maxI, "0", "9223372036854775807"},
		{"MaxDelta", maxI, 0, maxI, "-9223372036854775807", "0"},
		{"Unreachable", maxI, minI, -2, "1", "0"},
		{"UnreachableNegative", minI, 1, maxI, "1", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := currentBounds(tc.delta, tc.min, tc.max)
			if lo != tc.lo || hi != tc.hi {
				t.Fatalf("currentBounds(%d, %d, %d): got [%s, %s], want [%s, %s]", tc.delta, tc.min, tc.max, lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

// countingHook counts the commands a client sends.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestValidationBeforeIO needs no server: bad input never reaches the client.
func TestValidationBeforeIO(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	})
	var hook countingHook
	client.AddHook(&hook)
	s := New(client, "x:")
	ctx := context.Background()
	bad := store.Key{Partition: "p\x00", Sort: "s"}
	ok := store.Key{Partition: "p", Sort: "s"}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"GetInvalidKey", func() error { _, err := s.Get(ctx, bad); return err }, store.ErrInvalidKey},
		{"PutInvalidKey", func() error { _, err := s.Put(ctx, bad, nil, store.PutOptions{}); return err }, store.ErrInvalidKey},
		{"PutTooLarge", func() error {
			_, err := s.Put(ctx, ok, make([]byte, store.MaxValueSize+1), store.PutOptions{})
			return err
		}, store.ErrTooLarge},
		{"DeleteInvalidKey", func() error { return s.Delete(ctx, bad, store.DeleteOptions{}) }, store.ErrInvalidKey},
		{"AddInvalidKey", func() error { _, err := s.Add(ctx, bad, 1, 0, 1); return err }, store.ErrInvalidKey},
		{"QueryInvalidPartition", func() error { _, err := s.Query(ctx, store.Query{Partition: "", Limit: 1}); return err }, store.ErrInvalidKey},
		{"GetCanceled", func() error { _, err := s.Get(canceled, ok); return err }, context.Canceled},
		{"AddCanceled", func() error { _, err := s.Add(canceled, ok, 1, 0, 1); return err }, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.Add(ctx, ok, 1, 2, 1); err == nil {
		t.Error("Add with min > max: got nil error, want one")
	}
	if _, err := s.Query(ctx, store.Query{Partition: "p", Limit: 0}); err == nil {
		t.Error("Query with limit 0: got nil error, want one")
	}
	if n := hook.n.Load(); n != 0 {
		t.Fatalf("commands sent: got %d, want 0", n)
	}
}

func TestDeadlineDuringCall(t *testing.T) {
	s, client := newTestStore(t)
	// Hold the server for a while, so the call outlives its deadline.
	if err := client.Do(context.Background(), "CLIENT", "PAUSE", 300, "ALL").Err(); err != nil {
		t.Skipf("the server refuses CLIENT PAUSE: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, store.Key{Partition: "p", Sort: "s"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past its deadline: got %v, want context.DeadlineExceeded", err)
	}
}

func TestOpen(t *testing.T) {
	client := testClient(t) // skips without a server
	prefix := "wxntest:" + rand.Text() + ":"
	t.Cleanup(func() { testredis.DeleteKeys(t, client, prefix) })
	ctx := context.Background()
	s, err := Open(testredis.URL(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	k := store.Key{Partition: "p", Sort: "s"}
	mustPut(t, s, k, "v", store.PutOptions{})
	if err := s.Delete(ctx, k, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, k); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Get after Close: got %v, want redis.ErrClosed", err)
	}

	if _, err := Open("http://127.0.0.1:6379", "x:"); err == nil {
		t.Fatal("Open of an http URL: got nil error, want one")
	}
}

func TestCloseLeavesBorrowedClient(t *testing.T) {
	s, client := newTestStore(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Ping after the store closed: got %v, want the client still open", err)
	}
}

// BenchmarkStore runs the store benchmark suite against Redis.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, _ := newTestStore(b)
		return s
	})
}
