package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/dispatch"
	"github.com/wxnotify/wxnotify/shared/dispatch/dispatchtest"
	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/notify"
)

func refs(n int) []notify.ShardRef {
	out := make([]notify.ShardRef, n)
	for i := range out {
		out[i] = notify.ShardRef{App: "wx0123456789abcdef", Batch: "bat_1", Shard: i}
	}
	return out
}

func bodies(rs []notify.ShardRef) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf(`{"wxnotifyShard":{"app":%q,"batch":%q,"shard":%d}}`, r.App, r.Batch, r.Shard)
	}
	return out
}

func newSQS(t *testing.T, f *dispatchtest.SQS, mod func(*dispatch.SQSConfig)) *dispatch.SQS {
	t.Helper()
	cfg := dispatch.SQSConfig{QueueURL: f.QueueURL(), Region: f.Region, HTTPClient: f.Client(), Backoff: time.Millisecond,
		Credentials: func() (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey, SessionToken: f.SessionToken}, nil
		}}
	if mod != nil {
		mod(&cfg)
	}
	q, err := dispatch.NewSQS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// TestSQSDispatch: 23 shards go in three calls of at most ten entries, each
// signed (checked by the fake) and of the JSON protocol's shape; every
// message is the shard's.
func TestSQSDispatch(t *testing.T) {
	f := dispatchtest.NewSQS()
	defer f.Close()
	q := newSQS(t, f, nil)
	rs := refs(23)
	if err := q.DispatchShards(context.Background(), rs); err != nil {
		t.Fatalf("DispatchShards: %v (rejected %v)", err, f.Rejected())
	}
	if got, want := sorted(f.Messages()), sorted(bodies(rs)); !slices.Equal(got, want) {
		t.Errorf("messages:\n got %v\nwant %v", got, want)
	}
	if f.Calls() != 3 {
		t.Errorf("calls: got %d, want 3 (10+10+3)", f.Calls())
	}
	for _, m := range f.Messages() {
		ref, ok, err := dispatch.Decode([]byte(m))
		if !ok || err != nil || ref.App != "wx0123456789abcdef" {
			t.Errorf("Decode(%s): %+v %v %v", m, ref, ok, err)
		}
	}
	if err := q.DispatchShards(context.Background(), nil); err != nil || f.Calls() != 3 {
		t.Errorf("no shards: %v, %d calls", err, f.Calls())
	}
}

// TestSQSRetries: a 5xx answer is retried as a whole, entries SQS reports
// failed on its side are sent again alone; what still fails after every
// attempt is an error.
func TestSQSRetries(t *testing.T) {
	t.Run("ServerError", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		f.FailCalls(2)
		if err := newSQS(t, f, nil).DispatchShards(context.Background(), refs(4)); err != nil {
			t.Fatalf("two 500s, then success: %v", err)
		}
		if f.Calls() != 3 || len(f.Messages()) != 4 {
			t.Errorf("calls %d, messages %d: want 3 and 4", f.Calls(), len(f.Messages()))
		}
	})
	t.Run("ServerErrorEveryTime", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		f.FailCalls(100)
		err := newSQS(t, f, nil).DispatchShards(context.Background(), refs(4))
		e, ok := errors.AsType[*dispatch.APIError](err)
		if !ok || e.Status != http.StatusInternalServerError || e.Code != "InternalFailure" || !e.Retryable {
			t.Fatalf("got %v, want the 500 InternalFailure", err)
		}
		if f.Calls() != dispatch.DefaultAttempts {
			t.Errorf("calls: got %d, want %d", f.Calls(), dispatch.DefaultAttempts)
		}
	})
	t.Run("PartialFailure", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		f.FailEntries(3)
		rs := refs(7)
		if err := newSQS(t, f, nil).DispatchShards(context.Background(), rs); err != nil {
			t.Fatalf("3 entries failed once: %v", err)
		}
		if got, want := sorted(f.Messages()), sorted(bodies(rs)); !slices.Equal(got, want) {
			t.Errorf("messages:\n got %v\nwant %v (each once)", got, want)
		}
		if f.Calls() != 2 {
			t.Errorf("calls: got %d, want 2 (the failed entries again)", f.Calls())
		}
	})
	t.Run("PartialFailureEveryTime", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		f.FailEntries(2 * dispatch.DefaultAttempts)
		err := newSQS(t, f, nil).DispatchShards(context.Background(), refs(2))
		if err == nil || !strings.Contains(err.Error(), "2 of the entries still failed") {
			t.Fatalf("got %v, want 2 entries failed", err)
		}
		if len(f.Messages()) != 0 || f.Calls() != dispatch.DefaultAttempts {
			t.Errorf("messages %d, calls %d: want 0 and %d", len(f.Messages()), f.Calls(), dispatch.DefaultAttempts)
		}
	})
	t.Run("NotRetried", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		q := newSQS(t, f, func(c *dispatch.SQSConfig) { c.QueueURL = f.URL + "/123456789012/other" })
		err := q.DispatchShards(context.Background(), refs(1))
		e, ok := errors.AsType[*dispatch.APIError](err)
		if !ok || e.Code != "QueueDoesNotExist" || e.Retryable || f.Calls() != 1 {
			t.Fatalf("got %v after %d calls, want QueueDoesNotExist at once", err, f.Calls())
		}
	})
	t.Run("BadSignature", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		q := newSQS(t, f, func(c *dispatch.SQSConfig) {
			c.Credentials = func() (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: "wrong", SessionToken: f.SessionToken}, nil
			}
		})
		err := q.DispatchShards(context.Background(), refs(1))
		if e, ok := errors.AsType[*dispatch.APIError](err); !ok || e.Code != "InvalidSignatureException" {
			t.Fatalf("got %v, want InvalidSignatureException", err)
		}
	})
	t.Run("NoCredentials", func(t *testing.T) {
		f := dispatchtest.NewSQS()
		defer f.Close()
		q := newSQS(t, f, func(c *dispatch.SQSConfig) {
			c.Credentials = func() (aws.Credentials, error) { return cloudauth.AWSFromEnv(func(string) string { return "" }) }
		})
		if err := q.DispatchShards(context.Background(), refs(1)); !errors.Is(err, cloudauth.ErrNoAWSCredentials) || f.Calls() != 0 {
			t.Fatalf("got %v, %d calls", err, f.Calls())
		}
	})
}

func TestNewSQS(t *testing.T) {
	creds := func() (aws.Credentials, error) { return aws.Credentials{}, nil }
	q, err := dispatch.NewSQS(dispatch.SQSConfig{QueueURL: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", Credentials: creds, HTTPClient: http.DefaultClient})
	if err != nil || q.Endpoint() != "https://sqs.cn-north-1.amazonaws.com.cn/" || q.Region() != "cn-north-1" {
		t.Errorf("aws-cn queue: %v %v", q, err)
	}
	q, err = dispatch.NewSQS(dispatch.SQSConfig{QueueURL: "https://eu-west-1.queue.amazonaws.com/123456789012/q", Region: "us-east-1",
		Endpoint: "https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com", Credentials: creds, HTTPClient: http.DefaultClient})
	if err != nil || q.Endpoint() != "https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com/" || q.Region() != "eu-west-1" {
		t.Errorf("legacy queue URL with an endpoint: %v %v", q, err)
	}
	for _, bad := range []string{"", "sqs.us-east-1.amazonaws.com/1/q", "https://sqs.us-east-1.amazonaws.com/", "http://127.0.0.1:1/1/q"} {
		if _, err := dispatch.NewSQS(dispatch.SQSConfig{QueueURL: bad, Credentials: creds, HTTPClient: http.DefaultClient}); err == nil {
			t.Errorf("queue URL %q (no region): no error", bad)
		}
	}
}

func newSCF(t *testing.T, f *dispatchtest.SCF, mod func(*dispatch.SCFConfig)) *dispatch.SCF {
	t.Helper()
	cfg := dispatch.SCFConfig{Function: f.Function, Namespace: f.Namespace, Region: f.Region, Endpoint: f.URL, HTTPClient: f.Client(),
		Backoff: time.Millisecond, Credentials: func() (cloudauth.TencentCredentials, error) {
			return cloudauth.TencentCredentials{SecretID: f.SecretID, SecretKey: f.SecretKey, Token: f.Token}, nil
		}}
	if mod != nil {
		mod(&cfg)
	}
	d, err := dispatch.NewSCF(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSCFDispatch: one asynchronous Invoke per shard, signed (checked by
// the fake), its ClientContext the shard's message.
func TestSCFDispatch(t *testing.T) {
	f := dispatchtest.NewSCF()
	defer f.Close()
	rs := refs(20)
	if err := newSCF(t, f, nil).DispatchShards(context.Background(), rs); err != nil {
		t.Fatalf("DispatchShards: %v (rejected %v)", err, f.Rejected())
	}
	if got, want := sorted(f.Invocations()), sorted(bodies(rs)); !slices.Equal(got, want) {
		t.Errorf("invocations:\n got %v\nwant %v", got, want)
	}
	if f.Calls() != 20 {
		t.Errorf("calls: got %d, want 20", f.Calls())
	}
}

func TestSCFRetries(t *testing.T) {
	t.Run("InternalError", func(t *testing.T) {
		f := dispatchtest.NewSCF()
		defer f.Close()
		f.FailCalls(2)
		if err := newSCF(t, f, func(c *dispatch.SCFConfig) { c.Concurrency = 1 }).DispatchShards(context.Background(), refs(3)); err != nil {
			t.Fatalf("two InternalErrors: %v", err)
		}
		if f.Calls() != 5 || len(f.Invocations()) != 3 {
			t.Errorf("calls %d, invocations %d: want 5 and 3", f.Calls(), len(f.Invocations()))
		}
	})
	t.Run("InternalErrorEveryTime", func(t *testing.T) {
		f := dispatchtest.NewSCF()
		defer f.Close()
		f.FailCalls(100)
		err := newSCF(t, f, nil).DispatchShards(context.Background(), refs(2))
		e, ok := errors.AsType[*dispatch.APIError](err)
		if !ok || e.Code != "InternalError" || e.RequestID == "" || !strings.Contains(err.Error(), "shard 1 of batch bat_1") {
			t.Fatalf("got %v, want InternalError naming both shards", err)
		}
		if f.Calls() != 2*dispatch.DefaultAttempts {
			t.Errorf("calls: got %d, want %d", f.Calls(), 2*dispatch.DefaultAttempts)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		f := dispatchtest.NewSCF()
		defer f.Close()
		err := newSCF(t, f, func(c *dispatch.SCFConfig) { c.Function = "other" }).DispatchShards(context.Background(), refs(1))
		if e, ok := errors.AsType[*dispatch.APIError](err); !ok || e.Code != "ResourceNotFound.Function" || e.Retryable || f.Calls() != 1 {
			t.Fatalf("got %v after %d calls, want ResourceNotFound.Function at once", err, f.Calls())
		}
	})
	t.Run("BadSignature", func(t *testing.T) {
		f := dispatchtest.NewSCF()
		defer f.Close()
		d := newSCF(t, f, func(c *dispatch.SCFConfig) {
			c.Credentials = func() (cloudauth.TencentCredentials, error) {
				return cloudauth.TencentCredentials{SecretID: f.SecretID, SecretKey: "wrong", Token: f.Token}, nil
			}
		})
		err := d.DispatchShards(context.Background(), refs(1))
		if e, ok := errors.AsType[*dispatch.APIError](err); !ok || e.Code != "AuthFailure.SignatureFailure" {
			t.Fatalf("got %v, want AuthFailure.SignatureFailure", err)
		}
	})
	t.Run("ServerGone", func(t *testing.T) {
		f := dispatchtest.NewSCF()
		d := newSCF(t, f, nil)
		f.Close()
		if err := d.DispatchShards(context.Background(), refs(1)); err == nil || !strings.Contains(err.Error(), "scf Invoke") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestNewSCF(t *testing.T) {
	creds := func() (cloudauth.TencentCredentials, error) { return cloudauth.TencentCredentials{}, nil }
	d, err := dispatch.NewSCF(dispatch.SCFConfig{Function: "f", Region: "ap-shanghai", Credentials: creds, HTTPClient: http.DefaultClient})
	if err != nil || d.Endpoint() != "https://scf.tencentcloudapi.com/" {
		t.Errorf("defaults: %v %v", d, err)
	}
	for _, c := range []dispatch.SCFConfig{{Region: "r"}, {Function: "f"}, {Function: "f", Region: "r", Endpoint: "scf.internal"}} {
		c.Credentials, c.HTTPClient = creds, http.DefaultClient
		if _, err := dispatch.NewSCF(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestDecode(t *testing.T) {
	ref := notify.ShardRef{App: "wxapp", Batch: "bat_x", Shard: 3}
	got, ok, err := dispatch.Decode(dispatch.Encode(ref))
	if !ok || err != nil || got != ref {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
	for _, notShard := range []string{`{"touser":"x"}`, `[1]`, `"x"`, `null`, `not json`} {
		if _, ok, err := dispatch.Decode([]byte(notShard)); ok || err != nil {
			t.Errorf("%s: isShard %v err %v, want neither", notShard, ok, err)
		}
	}
	for _, bad := range []string{
		`{"wxnotifyShard":null}`,
		`{"wxnotifyShard":{"app":"a","batch":"b"}}`,
		`{"wxnotifyShard":{"app":"","batch":"b","shard":0}}`,
		`{"wxnotifyShard":{"app":"a","batch":"b","shard":-1}}`,
		`{"wxnotifyShard":{"app":"a","batch":"b","shard":4096}}`,
		`{"wxnotifyShard":{"app":"a","batch":"b","shard":1.5}}`,
		`{"wxnotifyShard":{"app":"a","batch":"b","shard":1,"x":1}}`,
		`{"wxnotifyShard":{"app":"a","batch":"b","shard":1},"more":1}`,
		`{"wxnotifyShard":"a"}`,
	} {
		if _, ok, err := dispatch.Decode([]byte(bad)); !ok || err == nil {
			t.Errorf("%s: isShard %v err %v, want a malformed shard message", bad, ok, err)
		}
	}
}
