package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

func newStore(tb testing.TB, opts ...dynamostore.Options) *dynamostore.Store {
	tb.Helper()
	client, table := newTable(tb)
	return dynamostore.New(client, table, opts...)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

// TestConformanceItemOnConditionFailure runs the suite as DynamoDB answers:
// a failed condition returns the item (ReturnValuesOnConditionCheckFailure),
// which dynalite does not do on its own.
func TestConformanceItemOnConditionFailure(t *testing.T) {
	client := proxiedClient(t, &proxy{returnItemOnFailure: true})
	storetest.Run(t, func(t *testing.T) store.Store {
		_, table := newTable(t)
		return dynamostore.New(client, table)
	})
}

// clock is a settable clock for the Store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.UnixMilli(1_700_000_000_123)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// rawItem reads an item's attributes as the table holds them.
func rawItem(tb testing.TB, client *dynamodb.Client, table string, k store.Key) map[string]types.AttributeValue {
	tb.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: k.Partition},
			"sk": &types.AttributeValueMemberS{Value: k.Sort},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		tb.Fatalf("GetItem(%v): %v", k, err)
	}
	return out.Item
}

// describe renders the non-key attributes as "name:type=value" in a fixed
// order, values of binary attributes omitted.
func describe(item map[string]types.AttributeValue) string {
	var parts []string
	for _, name := range []string{"v", "n", "ver", "expms", "ttl"} {
		switch av := item[name].(type) {
		case nil:
		case *types.AttributeValueMemberB:
			parts = append(parts, name+":B")
		case *types.AttributeValueMemberN:
			parts = append(parts, name+":N="+av.Value)
		default:
			parts = append(parts, fmt.Sprintf("%s:%T", name, av))
		}
	}
	return strings.Join(parts, " ")
}

func TestCounterEncoding(t *testing.T) {
	client, table := newTable(t)
	s := dynamostore.New(client, table)
	ctx := context.Background()
	tests := []struct {
		name, value, want string
	}{
		{"Zero", "0", "n:N=0 ver:N=1"},
		{"Positive", "42", "n:N=42 ver:N=1"},
		{"Negative", "-7", "n:N=-7 ver:N=1"},
		{"MaxInt64", "9223372036854775807", "n:N=9223372036854775807 ver:N=1"},
		{"MinInt64", "-9223372036854775808", "n:N=-9223372036854775808 ver:N=1"},
		{"LeadingZero", "007", "v:B ver:N=1"},
		{"NegativeZero", "-0", "v:B ver:N=1"},
		{"Plus", "+1", "v:B ver:N=1"},
		{"Space", " 1", "v:B ver:N=1"},
		{"Overflow", "9223372036854775808", "v:B ver:N=1"},
		{"Exponent", "1e3", "v:B ver:N=1"},
		{"Text", "abc", "v:B ver:N=1"},
		{"Empty", "", "v:B ver:N=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := store.Key{Partition: "enc", Sort: tc.name}
			if _, err := s.Put(ctx, k, []byte(tc.value), store.PutOptions{IfAbsent: true}); err != nil {
				t.Fatal(err)
			}
			if got := describe(rawItem(t, client, table, k)); got != tc.want {
				t.Errorf("stored attributes: got %q, want %q", got, tc.want)
			}
			it, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if string(it.Value) != tc.value {
				t.Errorf("Get: got %q, want %q", it.Value, tc.value)
			}
		})
	}
}

// TestAttributes follows one item's stored attributes through the writes
// that change their shape.
func TestAttributes(t *testing.T) {
	client, table := newTable(t)
	c := newClock()
	s := dynamostore.New(client, table, dynamostore.Options{Now: c.Now})
	ctx := context.Background()
	k := store.Key{Partition: "p", Sort: "s"}
	exp := c.Now().Add(time.Hour + 1) // 1ns past a millisecond boundary: truncated
	expMS := exp.UnixMilli()
	steps := []struct {
		name  string
		write func() error
		want  string
	}{
		{"PutText", func() error {
			_, err := s.Put(ctx, k, []byte("text"), store.PutOptions{})
			return err
		}, "v:B ver:N=1"},
		{"PutCounterWithExpiry", func() error {
			_, err := s.Put(ctx, k, []byte("5"), store.PutOptions{ExpiresAt: exp})
			return err
		}, fmt.Sprintf("n:N=5 ver:N=2 expms:N=%d ttl:N=%d", expMS, (expMS+999)/1000)},
		{"AddKeepsExpiry", func() error {
			_, err := s.Add(ctx, k, 2, 0, 10)
			return err
		}, fmt.Sprintf("n:N=7 ver:N=3 expms:N=%d ttl:N=%d", expMS, (expMS+999)/1000)},
		{"PutTextWithoutExpiry", func() error {
			_, err := s.Put(ctx, k, []byte("x"), store.PutOptions{IfVersion: 3})
			return err
		}, "v:B ver:N=4"},
		{"PutCounterWithoutExpiry", func() error {
			_, err := s.Put(ctx, k, []byte("-1"), store.PutOptions{})
			return err
		}, "n:N=-1 ver:N=5"},
	}
	for _, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := describe(rawItem(t, client, table, k)); got != step.want {
			t.Fatalf("%s: got %q, want %q", step.name, got, step.want)
		}
	}
}

// TestExpiredItemRestarts: an expired item, still in the table as DynamoDB
// TTL deletes late, is replaced by every kind of write at version 1.
func TestExpiredItemRestarts(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		write func(s store.Store, k store.Key) (int64, error)
		want  string
	}{
		{"Put", func(s store.Store, k store.Key) (int64, error) {
			return s.Put(ctx, k, []byte("new"), store.PutOptions{})
		}, "new"},
		{"PutIfAbsent", func(s store.Store, k store.Key) (int64, error) {
			return s.Put(ctx, k, []byte("new"), store.PutOptions{IfAbsent: true})
		}, "new"},
		{"PutCounter", func(s store.Store, k store.Key) (int64, error) {
			return s.Put(ctx, k, []byte("12"), store.PutOptions{})
		}, "12"},
		{"Add", func(s store.Store, k store.Key) (int64, error) {
			if _, err := s.Add(ctx, k, 3, 0, 10); err != nil {
				return 0, err
			}
			it, err := s.Get(ctx, k)
			return it.Version, err
		}, "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, table := newTable(t)
			c := newClock()
			s := dynamostore.New(client, table, dynamostore.Options{Now: c.Now})
			k := store.Key{Partition: "p", Sort: "s"}
			for range 3 {
				if _, err := s.Put(ctx, k, []byte("4"), store.PutOptions{ExpiresAt: c.Now().Add(time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			c.Advance(time.Minute)
			if raw := rawItem(t, client, table, k); raw == nil {
				t.Fatal("expired item gone from the table, want it kept as TTL deletes late")
			}
			ver, err := tc.write(s, k)
			if err != nil {
				t.Fatal(err)
			}
			if ver != 1 {
				t.Errorf("version: got %d, want 1", ver)
			}
			it, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if string(it.Value) != tc.want || it.Version != 1 || !it.ExpiresAt.IsZero() {
				t.Errorf("Get: got %q v%d exp %v, want %q v1 without expiry", it.Value, it.Version, it.ExpiresAt, tc.want)
			}
		})
	}
}

// TestQueryShortPages: expired items count towards the evaluated Limit, so
// pages may come back short or empty with a Next to go on from.
func TestQueryShortPages(t *testing.T) {
	client, table := newTable(t)
	c := newClock()
	s := dynamostore.New(client, table, dynamostore.Options{Now: c.Now})
	ctx := context.Background()
	for i := range 10 {
		var opts store.PutOptions
		if i < 8 {
			opts.ExpiresAt = c.Now().Add(time.Second)
		}
		if _, err := s.Put(ctx, store.Key{Partition: "p", Sort: fmt.Sprintf("r%02d", i)}, []byte("v"), opts); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Second)
	tests := []struct {
		name      string
		q         store.Query
		wantItems string
		wantNext  string
	}{
		{"AllExpired", store.Query{Partition: "p", Limit: 3}, "", "r03"},
		{"StillExpired", store.Query{Partition: "p", After: "r03", Limit: 3}, "", "r07"},
		{"Rest", store.Query{Partition: "p", After: "r07", Limit: 3}, "r08,r09", ""},
		{"ExactlyTheRest", store.Query{Partition: "p", After: "r07", Limit: 2}, "r08,r09", ""},
		{"FullPage", store.Query{Partition: "p", After: "r07", Limit: 1}, "r08", "r08"},
		{"MixedPrefix", store.Query{Partition: "p", Prefix: "r0", After: "r05", Limit: 3}, "r08,r09", "r09"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range page.Items {
				got = append(got, it.Key.Sort)
			}
			if strings.Join(got, ",") != tc.wantItems || page.Next != tc.wantNext {
				t.Errorf("got items %q next %q, want %q next %q", got, page.Next, tc.wantItems, tc.wantNext)
			}
		})
	}
}

// TestAddExtremes checks the condition's bounds, computed beyond int64,
// against store.AddInBounds.
func TestAddExtremes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name                 string
		start, delta, lo, hi int64
	}{
		{"MaxPlusOne", math.MaxInt64, 1, math.MinInt64, math.MaxInt64},
		{"MinMinusOne", math.MinInt64, -1, math.MinInt64, math.MaxInt64},
		{"MinPlusMax", math.MinInt64, math.MaxInt64, math.MinInt64, math.MaxInt64},
		{"MaxPlusMin", math.MaxInt64, math.MinInt64, math.MinInt64, math.MaxInt64},
		{"MinDeltaBelowZero", 0, math.MinInt64, math.MinInt64, 0},
		{"MinDeltaFromOne", 1, math.MinInt64, math.MinInt64, math.MaxInt64},
		{"MaxDeltaFromMinusOne", -1, math.MaxInt64, 0, math.MaxInt64},
		{"MaxDeltaFromOne", 1, math.MaxInt64, math.MinInt64, math.MaxInt64},
		{"ZeroWidthHit", 5, 0, 5, 5},
		{"ZeroWidthMiss", 5, 1, 5, 5},
		{"AlreadyOutside", 50, -1, 0, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := store.Key{Partition: "x", Sort: tc.name}
			if _, err := s.Put(ctx, k, store.FormatCounter(tc.start), store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			want, wantErr := store.AddInBounds(tc.start, tc.delta, tc.lo, tc.hi)
			got, err := s.Add(ctx, k, tc.delta, tc.lo, tc.hi)
			switch {
			case wantErr != nil && !errors.Is(err, store.ErrOutOfRange):
				t.Fatalf("Add(%d%+d in [%d, %d]): got %d, %v; want ErrOutOfRange", tc.start, tc.delta, tc.lo, tc.hi, got, err)
			case wantErr == nil && (err != nil || got != want):
				t.Fatalf("Add(%d%+d in [%d, %d]): got %d, %v; want %d", tc.start, tc.delta, tc.lo, tc.hi, got, err, want)
			}
			it, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if wantValue := string(store.FormatCounter(want)); string(it.Value) != wantValue {
				t.Errorf("Get: got %q, want %q", it.Value, wantValue)
			}
		})
	}
}

// TestRoundTrips counts the requests of each operation: one in the common
// case, as the store contract promises.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	k := store.Key{Partition: "p", Sort: "s"}
	tests := []struct {
		name        string
		itemOnError bool // the server returns the item with a failed condition, as DynamoDB does
		setup, call func(s store.Store) error
		want        int
	}{
		{"Get", false, put("v"), func(s store.Store) error { _, err := s.Get(ctx, k); return err }, 1},
		{"Put", false, put("v"), put("w"), 1},
		{"PutNew", false, nil, put("w"), 1},
		{"PutIfAbsent", false, nil, func(s store.Store) error {
			_, err := s.Put(ctx, k, []byte("v"), store.PutOptions{IfAbsent: true})
			return err
		}, 1},
		{"PutIfVersion", false, put("v"), func(s store.Store) error {
			_, err := s.Put(ctx, k, []byte("w"), store.PutOptions{IfVersion: 1})
			return err
		}, 1},
		{"PutOverExpired", false, putExpired, put("w"), 2},
		{"Delete", false, put("v"), func(s store.Store) error { return s.Delete(ctx, k, store.DeleteOptions{IfVersion: 1}) }, 1},
		{"Query", false, put("v"), func(s store.Store) error {
			_, err := s.Query(ctx, store.Query{Partition: "p", Limit: 10})
			return err
		}, 1},
		{"QueryPastPrefix", false, put("v"), func(s store.Store) error {
			_, err := s.Query(ctx, store.Query{Partition: "p", Prefix: "a", After: "b", Limit: 10})
			return err
		}, 0},
		{"Add", false, put("1"), add(1), 1},
		{"AddNew", false, nil, add(1), 1},
		{"AddOutOfRange", false, put("10"), outOfRange, 2},
		{"AddOutOfRangeItemReturned", true, put("10"), outOfRange, 1},
		{"AddNotCounterItemReturned", true, put("text"), func(s store.Store) error {
			if _, err := s.Add(ctx, k, 1, 0, 10); !errors.Is(err, store.ErrNotCounter) {
				return fmt.Errorf("got %v, want ErrNotCounter", err)
			}
			return nil
		}, 1},
		{"AddOverExpired", false, putExpired, add(1), 3},
		{"AddOverExpiredItemReturned", true, putExpired, add(1), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &proxy{returnItemOnFailure: tc.itemOnError}
			client := proxiedClient(t, p)
			_, table := newTable(t)
			s := dynamostore.New(client, table)
			if tc.setup != nil {
				if err := tc.setup(s); err != nil {
					t.Fatal(err)
				}
			}
			before := p.requests.Load()
			if err := tc.call(s); err != nil {
				t.Fatal(err)
			}
			if got := p.requests.Load() - before; got != int64(tc.want) {
				t.Errorf("requests: got %d, want %d", got, tc.want)
			}
		})
	}
}

func put(v string) func(store.Store) error {
	return func(s store.Store) error {
		_, err := s.Put(context.Background(), store.Key{Partition: "p", Sort: "s"}, []byte(v), store.PutOptions{})
		return err
	}
}

func putExpired(s store.Store) error {
	_, err := s.Put(context.Background(), store.Key{Partition: "p", Sort: "s"}, []byte("5"),
		store.PutOptions{ExpiresAt: time.Now().Add(-time.Second)})
	return err
}

func add(delta int64) func(store.Store) error {
	return func(s store.Store) error {
		_, err := s.Add(context.Background(), store.Key{Partition: "p", Sort: "s"}, delta, 0, 10)
		return err
	}
}

func outOfRange(s store.Store) error {
	if _, err := s.Add(context.Background(), store.Key{Partition: "p", Sort: "s"}, 1, 0, 10); !errors.Is(err, store.ErrOutOfRange) {
		return fmt.Errorf("got %v, want ErrOutOfRange", err)
	}
	return nil
}

func TestCreateTableTwice(t *testing.T) {
	client, table := newTable(t)
	if err := dynamostore.CreateTable(context.Background(), client, table); err != nil {
		t.Fatalf("CreateTable on an existing table: got %v, want nil", err)
	}
}

func TestNewClient(t *testing.T) {
	_, endpoint := dynamoClient(t) // starts dynalite
	closed, err := storeenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nowhere := fmt.Sprintf("http://127.0.0.1:%d", closed)
	tests := []struct {
		name, endpoint, env string
		wantErr             bool
	}{
		{"Argument", endpoint, "", false},
		{"Environment", "", endpoint, false},
		{"EnvironmentNowhere", "", nowhere, true},
		{"ArgumentOverEnvironment", endpoint, nowhere, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lambdaEnv(t)
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", tc.env)
			client, err := dynamostore.NewClient(tc.endpoint, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.ListTables(context.Background(), &dynamodb.ListTablesInput{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("ListTables: got error %v, want error %t", err, tc.wantErr)
			}
		})
	}
}

// lambdaEnv sets the environment Lambda gives a function, with dynalite's
// credentials, and clears the other sources NewClient reads.
func lambdaEnv(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "",
		"AWS_ACCESS_KEY_ID": "AKIDDYNALITE", "AWS_SECRET_ACCESS_KEY": "dynalite", "AWS_SESSION_TOKEN": "session",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": "",
	} {
		t.Setenv(k, v)
	}
}

func TestNewClientRefusesAMissingRegionOrCredentials(t *testing.T) {
	for _, unset := range [][]string{{"AWS_REGION"}, {"AWS_ACCESS_KEY_ID"}, {"AWS_SECRET_ACCESS_KEY"}} {
		t.Run(unset[0], func(t *testing.T) {
			lambdaEnv(t)
			t.Setenv(unset[0], "")
			if _, err := dynamostore.NewClient("http://127.0.0.1:1"); err == nil {
				t.Fatalf("NewClient without %s: got nil error", unset[0])
			}
		})
	}
	t.Run("DefaultRegion", func(t *testing.T) {
		lambdaEnv(t)
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
		client, err := dynamostore.NewClient("http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		if got := client.Options().Region; got != "eu-west-1" {
			t.Fatalf("region: got %q, want eu-west-1", got)
		}
	})
}

// TestNewClientContainerCredentials signs with credentials from the
// container credentials endpoint (SnapStart, containers) when the
// environment has no keys.
func TestNewClientContainerCredentials(t *testing.T) {
	_, endpoint := dynamoClient(t)
	var served atomic.Int32
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "container-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"secret","Token":"tok","Expiration":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer creds.Close()
	lambdaEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token")
	client, err := dynamostore.NewClient(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	got, err := client.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != "AKIDCONTAINER" || served.Load() != 1 {
		t.Fatalf("credentials %q, endpoint served %d times; want AKIDCONTAINER, once (cached)", got.AccessKeyID, served.Load())
	}
}

func TestCloseKeepsClient(t *testing.T) {
	client, table := newTable(t)
	if err := dynamostore.New(client, table).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamostore.New(client, table).Put(context.Background(), store.Key{Partition: "p", Sort: "s"}, nil, store.PutOptions{}); err != nil {
		t.Fatalf("Put through the client of a closed Store: got %v, want nil", err)
	}
}

// BenchmarkStore runs the store benchmark suite.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b) })
}
