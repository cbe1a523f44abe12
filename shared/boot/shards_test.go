package boot

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/dispatch"
	"github.com/wxnotify/wxnotify/shared/dispatch/dispatchtest"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// batchRig is the batch function's parts and handlers on bbolt with the
// fake WeChat, its shards dispatched as env says.
type batchRig struct {
	leadsRig
	h platform.Handlers
}

func newBatchRig(t *testing.T, extra []string) *batchRig {
	t.Helper()
	fake := wechattest.NewServer(wechattest.Options{AppID: "wxbatch", Templates: []wechattest.Template{{
		PriTmplID: leadTmplID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "character_string2"}, {Name: "time3"}, {Name: "thing4"}},
	}}})
	t.Cleanup(fake.Close)
	env := map[string]string{"WXN_WECHAT_APPID": "wxbatch", "WXN_WECHAT_SECRET": fake.Secret(), "WXN_WECHAT_API_BASE": fake.URL(),
		"WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": "0123456789abcdef",
		"WXN_BATCH_PAGE_SIZE": "2", "WXN_BATCH_SHARD_SIZE": "4", "WXN_BATCH_RATE": "1000"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.FromEnv(getenv, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(cfg, st, Options{Function: "batch", Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	h, err := BatchCore(parts)
	if err != nil {
		t.Fatal(err)
	}
	return &batchRig{leadsRig: leadsRig{parts: parts, fake: fake}, h: h}
}

// batch creates a batch to n salespeople, all with a credit: 3 shards of
// 4, 4 and 2.
func (r *batchRig) batch(t *testing.T, n int) notify.Batch {
	t.Helper()
	var to []notify.BatchRecipient
	for i := range n {
		to = append(to, notify.BatchRecipient{OpenID: r.salesperson(t, "sales-"+string(rune('a'+i)), 1)})
	}
	b, err := r.parts.Service.CreateBatch(context.Background(), notify.BatchRequest{Template: leadTmplID, Recipients: to,
		Data: map[string]string{"thing1": "Acme", "character_string2": "L1", "time3": "2026-11-21 09:30", "thing4": "new"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shardEvents(bodies ...string) []platform.Event {
	var evs []platform.Event
	for i, b := range bodies {
		evs = append(evs, platform.Event{ID: "msg-" + string(rune('0'+i)), Source: platform.SourceSQS, Body: []byte(b), Attempt: 1})
	}
	return evs
}

// TestBatchShardsThroughSQS: the tick hands the batch's shards to the
// queue and sends nothing itself; the queue's deliveries (one duplicated)
// send every recipient once; malformed messages and shards of an app the
// deployment does not have are acknowledged; the next tick ends the batch.
func TestBatchShardsThroughSQS(t *testing.T) {
	q := dispatchtest.NewSQS()
	defer q.Close()
	r := newBatchRig(t, q.Env())
	b := r.batch(t, 10)
	if b.Shards != 3 {
		t.Fatalf("batch of %d shards, want 3", b.Shards)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	if err := r.h.Tick(ctx, deadline); err != nil {
		t.Fatalf("tick: %v (rejected %v)", err, q.Rejected())
	}
	msgs := q.Messages()
	if len(msgs) != 3 || r.fake.Delivered() != 0 {
		t.Fatalf("tick: %d messages queued, %d sent; want 3 and none", len(msgs), r.fake.Delivered())
	}
	evs := shardEvents(append(msgs, msgs[0], `{"wxnotifyShard":{"app":"wxbatch","batch":"b"}}`, `{"hello":1}`,
		string(dispatch.Encode(notify.ShardRef{App: "wxother", Batch: b.ID, Shard: 0})))...)
	failed, err := r.h.Events(ctx, evs)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Events: failed %v, err %v; want none", failed, err)
	}
	if got := r.fake.Delivered(); got != 10 {
		t.Fatalf("delivered %d, want 10 (each recipient once)", got)
	}
	if err := r.h.Tick(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	final, err := r.parts.Service.Batch(ctx, b.ID)
	if err != nil || final.Status != notify.BatchDone || final.Sent != 10 {
		t.Fatalf("batch after the shards: %+v %v, want done with 10 sent", final, err)
	}
	if len(q.Messages()) != 3 {
		t.Errorf("a tick after the batch ended queued %d more", len(q.Messages())-3)
	}

	// A shard that fails (the store is gone) is reported, to come again.
	_ = r.parts.Store.Close()
	failed, err = r.h.Events(ctx, shardEvents(msgs[0]))
	if err != nil || len(failed) != 1 || failed[0] != "msg-0" {
		t.Fatalf("a failing shard: failed %v, err %v; want msg-0", failed, err)
	}
}

// TestBatchShardsQueueDown: a queue that refuses the shards fails the
// tick, and the next tick hands them over again.
func TestBatchShardsQueueDown(t *testing.T) {
	q := dispatchtest.NewSQS()
	defer q.Close()
	r := newBatchRig(t, q.Env())
	r.batch(t, 6)
	q.FailCalls(dispatch.DefaultAttempts)
	ctx := context.Background()
	err := r.h.Tick(ctx, time.Now().Add(30*time.Second))
	if e, ok := errors.AsType[*dispatch.APIError](err); !ok || e.Code != "InternalFailure" {
		t.Fatalf("tick with the queue down: got %v, want InternalFailure", err)
	}
	if err := r.h.Tick(ctx, time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := len(q.Messages()); got != 2 {
		t.Fatalf("the next tick queued %d, want the 2 shards", got)
	}
}

// TestBatchShardsThroughSCF: on SCF the tick invokes the function once per
// shard, asynchronously; the invocations (payload: the ClientContext) send
// the shards; a failed one is an error (SCF retries it), a malformed one
// is answered.
func TestBatchShardsThroughSCF(t *testing.T) {
	f := dispatchtest.NewSCF()
	defer f.Close()
	r := newBatchRig(t, f.Env())
	b := r.batch(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	if err := r.h.Tick(ctx, deadline); err != nil {
		t.Fatalf("tick: %v (rejected %v)", err, f.Rejected())
	}
	inv := f.Invocations()
	if len(inv) != 3 || r.fake.Delivered() != 0 {
		t.Fatalf("tick: %d invocations, %d sent; want 3 and none", len(inv), r.fake.Delivered())
	}
	for _, payload := range append(inv, inv[1]) {
		out, err := r.h.Invoke(ctx, json.RawMessage(payload))
		if err != nil {
			t.Fatalf("Invoke(%s): %v", payload, err)
		}
		if res, _ := out.(shardResult); res.Batch != b.ID || res.Rejected != "" {
			t.Errorf("Invoke(%s): %+v", payload, out)
		}
	}
	if got := r.fake.Delivered(); got != 10 {
		t.Fatalf("delivered %d, want 10", got)
	}
	for _, bad := range []string{`{"wxnotifyShard":{"app":"wxbatch"}}`, `{"touser":"x"}`} {
		out, err := r.h.Invoke(ctx, json.RawMessage(bad))
		if res, _ := out.(shardResult); err != nil || res.Rejected == "" {
			t.Errorf("Invoke(%s): %+v %v, want a rejection answered", bad, out, err)
		}
	}
	_ = r.parts.Store.Close()
	if _, err := r.h.Invoke(ctx, json.RawMessage(inv[0])); err == nil {
		t.Fatal("a failing shard: no error, SCF would not retry it")
	}
}

// TestBatchDispatchSettings: the dispatcher follows the settings, and a
// missing platform variable fails the build naming it.
func TestBatchDispatchSettings(t *testing.T) {
	base := map[string]string{"WXN_BATCH_DISPATCH": "scf", "TENCENTCLOUD_REGION": "ap-guangzhou"}
	b, err := config.FromEnv(func(k string) string { return base[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newDispatcher(b.Batch, func(k string) string { return base[k] }); err == nil || !strings.Contains(err.Error(), "SCF_FUNCTIONNAME") {
		t.Errorf("scf without SCF_FUNCTIONNAME: %v", err)
	}
	env := maps.Clone(base)
	env["SCF_FUNCTIONNAME"] = "wxnotify-batch"
	if d, err := newDispatcher(b.Batch, func(k string) string { return env[k] }); err != nil || d.(*dispatch.SCF).Endpoint() != "https://scf.tencentcloudapi.com/" {
		t.Errorf("scf: %v %v", d, err)
	}
	b.Batch = config.Batch{Dispatch: config.DispatchSQS, QueueURL: "https://sqs.ap-east-1.amazonaws.com/123456789012/q"}
	if d, err := newDispatcher(b.Batch, func(string) string { return "" }); err != nil || d.(*dispatch.SQS).Region() != "ap-east-1" {
		t.Errorf("sqs: %v %v", d, err)
	}
	if d, err := newDispatcher(config.Batch{Dispatch: config.DispatchLocal}, func(string) string { return "" }); err != nil || d != nil {
		t.Errorf("local: %v %v, want none", d, err)
	}
}
