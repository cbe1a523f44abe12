package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/dispatch/dispatchtest"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// shardEnv are the batch settings of the shard tests: pages of 2, shards
// of 4 recipients.
var shardEnv = []string{"WXN_BATCH_PAGE_SIZE=2", "WXN_BATCH_SHARD_SIZE=4", "WXN_BATCH_RATE=1000"}

// seedBatch records, in the store of env, n users who accepted the first
// test template once, and a batch to them all; it closes the store before
// returning, so that the function's process can open it.
func seedBatch(t *testing.T, fake *wechattest.Server, env []string, n int) notify.Batch {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(cfgFile, testConfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"WXN_CONFIG": cfgFile}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := boot.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "seed", HTTPClient: fake.Client(), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	tmpl := testTemplates()[0]
	svc := parts.Service
	var to []notify.BatchRecipient
	for i := range n {
		user := fmt.Sprintf("user-%02d", i)
		res, err := svc.Bind(ctx, user, fake.Login(user))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fake.Subscribe(res.OpenID, map[string]string{tmpl.PriTmplID: "accept"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RecordReport(ctx, res.OpenID, notify.Report{Result: map[string]string{tmpl.PriTmplID: "accept"}}); err != nil {
			t.Fatal(err)
		}
		to = append(to, notify.BatchRecipient{OpenID: res.OpenID})
	}
	data := map[string]string{}
	for _, kw := range tmpl.Keywords {
		data[kw.Name] = kw.Example
	}
	b, err := svc.CreateBatch(ctx, notify.BatchRequest{Template: tmpl.PriTmplID, Data: data, Recipients: to})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batchStatus reads a batch through the batch function's route.
func batchStatus(t *testing.T, c *http.Client, id string) (status string, sent int) {
	t.Helper()
	var b struct {
		Status string `json:"status"`
		Sent   int    `json:"sent"`
	}
	if resp := call(t, c, "GET", "/v1/batches/"+id, apiKey, nil, &b); resp.StatusCode != 200 {
		t.Fatalf("GET /v1/batches/%s: %d", id, resp.StatusCode)
	}
	return b.Status, b.Sent
}

// TestLambdaBatchShards is the batch function's binary on the emulated
// Lambda Runtime API with a shard queue (a fake SQS that checks every
// SendMessageBatch's signature): the scheduled tick puts the 3 shards of a
// batch of 10 on the queue and sends nothing; the queue's delivery of them
// (one twice, beside a malformed message) sends each recipient once and
// reports no failure; the next tick ends the batch.
func TestLambdaBatchShards(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	q := dispatchtest.NewSQS()
	defer q.Close()
	env := append(functionEnv(fake, boltEnv(t)), shardEnv...)
	b := seedBatch(t, fake, env, 10)
	if b.Shards != 3 {
		t.Fatalf("batch of %d shards, want 3", b.Shards)
	}
	p := lambdaPlatform{}
	p.with(t, "batch", append(env, q.Env()...), func(c *http.Client, invoke invokeFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := invoke(ctx, p.tick()); err != nil {
			t.Fatalf("tick: %v (queue rejected %v)", err, q.Rejected())
		}
		msgs := q.Messages()
		if len(msgs) != 3 || fake.Delivered() != 0 {
			t.Fatalf("after the tick: %d shards queued, %d sent; want 3 and none", len(msgs), fake.Delivered())
		}
		payload, _ := p.queue(append(msgs, msgs[1], `{"wxnotifyShard":{"app":"x"}}`)...)
		out, err := invoke(ctx, payload)
		if err != nil {
			t.Fatalf("shard delivery: %v", err)
		}
		var answer struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
		}
		if err := json.Unmarshal(out, &answer); err != nil || len(answer.BatchItemFailures) != 0 {
			t.Fatalf("shard delivery answered %s, want no failures", out)
		}
		if got := fake.Delivered(); got != 10 {
			t.Fatalf("delivered %d, want 10 (each recipient once)", got)
		}
		if _, err := invoke(ctx, p.tick()); err != nil {
			t.Fatal(err)
		}
		if status, sent := batchStatus(t, c, b.ID); status != "done" || sent != 10 {
			t.Errorf("batch after its shards and a tick: %s, %d sent; want done, 10", status, sent)
		}
		if len(q.Messages()) != 3 {
			t.Errorf("queued %d shards in all, want 3", len(q.Messages()))
		}
	})
}

// TestSCFBatchShards is the same on SCF's Go1 runtime protocol, the shards
// going through (a fake of) SCF's asynchronous Invoke of the function
// itself, TC3-signed; the invocations' payloads are their ClientContext.
func TestSCFBatchShards(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	f := dispatchtest.NewSCF()
	defer f.Close()
	env := append(functionEnv(fake, boltEnv(t)), shardEnv...)
	b := seedBatch(t, fake, env, 10)
	p := scfPlatform{}
	p.with(t, "batch", append(env, f.Env()...), func(c *http.Client, invoke invokeFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := invoke(ctx, p.tick()); err != nil {
			t.Fatalf("tick: %v (SCF rejected %v)", err, f.Rejected())
		}
		inv := f.Invocations()
		if len(inv) != 3 || fake.Delivered() != 0 {
			t.Fatalf("after the tick: %d invocations, %d sent; want 3 and none", len(inv), fake.Delivered())
		}
		var shards []int
		for _, payload := range append(inv, inv[0]) {
			out, err := invoke(ctx, []byte(payload))
			if err != nil {
				t.Fatalf("invocation %s: %v", payload, err)
			}
			var res struct {
				Batch    string `json:"batch"`
				Shard    int    `json:"shard"`
				Rejected string `json:"rejected"`
			}
			if err := json.Unmarshal(out, &res); err != nil || res.Batch != b.ID || res.Rejected != "" {
				t.Fatalf("invocation %s answered %s", payload, out)
			}
			shards = append(shards, res.Shard)
		}
		slices.Sort(shards)
		if !slices.Equal(shards, []int{0, 0, 1, 2}) && !slices.Equal(shards, []int{0, 1, 1, 2}) && !slices.Equal(shards, []int{0, 1, 2, 2}) {
			t.Errorf("shards run: %v", shards)
		}
		if got := fake.Delivered(); got != 10 {
			t.Fatalf("delivered %d, want 10 (each recipient once)", got)
		}
		if _, err := invoke(ctx, p.tick()); err != nil {
			t.Fatal(err)
		}
		if status, sent := batchStatus(t, c, b.ID); status != "done" || sent != 10 {
			t.Errorf("batch after its shards and a tick: %s, %d sent; want done, 10", status, sent)
		}
	})
}
