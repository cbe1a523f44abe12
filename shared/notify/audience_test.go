package notify_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// itemReads counts the items a store hands out: each item of a query page
// and each Get that finds one.
type itemReads struct {
	store.Store
	items atomic.Int64
}

func (r *itemReads) Get(ctx context.Context, k store.Key) (store.Item, error) {
	it, err := r.Store.Get(ctx, k)
	if err == nil {
		r.items.Add(1)
	}
	return it, err
}

func (r *itemReads) Query(ctx context.Context, q store.Query) (store.Page, error) {
	p, err := r.Store.Query(ctx, q)
	r.items.Add(int64(len(p.Items)))
	return p, err
}

// hooked calls a hook before Get, Delete and Undo; the hook reports true
// when it fired, and is then disarmed (what it does goes to the store
// directly, not through it again).
type hooked struct {
	store.Store
	mu   sync.Mutex
	hook func(op string, k store.Key) bool
}

func (h *hooked) arm(f func(op string, k store.Key) bool) {
	h.mu.Lock()
	h.hook = f
	h.mu.Unlock()
}

func (h *hooked) before(op string, k store.Key) {
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f == nil {
		return
	}
	h.mu.Lock()
	h.hook = nil
	h.mu.Unlock()
	if !f(op, k) {
		h.arm(f)
	}
}

func (h *hooked) fired() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hook == nil
}

func (h *hooked) Get(ctx context.Context, k store.Key) (store.Item, error) {
	h.before("get", k)
	return h.Store.Get(ctx, k)
}

func (h *hooked) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	h.before("delete", k)
	return h.Store.Delete(ctx, k, o)
}

func (h *hooked) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	h.before("undo", k)
	return h.Store.Undo(ctx, k, id)
}

var digestData = map[string]string{"thing1": "Daily leads", "number2": "3"}

// grant gives openID one credit on both sides: WeChat's popup and the
// mini program's report.
func (r *rig) grant(tb testing.TB, svc *notify.Service, openID string) {
	tb.Helper()
	res, err := r.fake.Subscribe(openID, map[string]string{leadTID: "accept"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.RecordReport(context.Background(), openID, notify.Report{Result: map[string]string{leadTID: res[leadTID].(string)}}); err != nil {
		tb.Fatal(err)
	}
}

func sendOne(tb testing.TB, svc *notify.Service, openID string) notify.Notification {
	tb.Helper()
	n, err := svc.Send(context.Background(), notify.SendRequest{To: notify.Recipient{OpenID: openID}, Template: "lead_digest",
		Data: map[string]string{"thing1": "x", "number2": "1"}})
	if err != nil {
		tb.Fatalf("send: %v", err)
	}
	return n
}

// audienceBatch creates and runs an audience batch to its end.
func audienceBatch(tb testing.TB, svc *notify.Service) (created, done notify.Batch) {
	tb.Helper()
	ctx := context.Background()
	created, err := svc.CreateBatch(ctx, notify.BatchRequest{Template: "lead_digest", Audience: notify.AudienceConsenting, Data: digestData})
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		tb.Fatal(err)
	}
	done, err = svc.Batch(ctx, created.ID)
	if err != nil {
		tb.Fatal(err)
	}
	if done.Status != notify.BatchDone {
		tb.Fatalf("batch not done: %+v", done)
	}
	return created, done
}

// TestAudienceCostFollowsHolders: 1,000 users accepted once, 990 of them
// have spent their credit since; an audience batch counts, reads and sends
// to the 10 who hold one, at a cost that does not depend on the 990.
func TestAudienceCostFollowsHolders(t *testing.T) {
	const users, holders = 1000, 10
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, PageSize: 500})
	openIDs := r.users(t, svc, users, users)
	for _, o := range openIDs[holders:] {
		if n := sendOne(t, svc, o); n.Status != notify.StatusSent {
			t.Fatalf("spending send: %s %s", n.Status, n.Reason)
		}
	}
	counting := storetest.NewCounting(r.st)
	reads := &itemReads{Store: counting}
	measured := r.service(t, reads, notify.BatchOptions{Rate: 5000, PageSize: 500})
	created, done := audienceBatch(t, measured)
	c := counting.Counts()
	t.Logf("history %d, holders %d: total at creation %d; done sent %d skipped %d total %d; store calls %d (get %d, query %d, put %d, add %d, delete %d), items read %d",
		users, holders, created.Total, done.Sent, done.Skipped, done.Total, counting.Total(), c["get"], c["query"], c["put"], c["add"], c["delete"], reads.items.Load())
	if created.Total != holders || done.Sent != holders || done.Skipped != 0 || done.Total != holders {
		t.Fatalf("got total %d at creation, done %+v; want %d holders, all sent", created.Total, done, holders)
	}
	// Per holder: its send (claim, take, outcome), the prune of its last
	// credit (entries, ledger, delete), its share of the pages. Far below
	// one read per user in the history.
	if calls, items := counting.Total(), reads.items.Load(); calls > 12*holders || items > 8*holders {
		t.Fatalf("%d store calls and %d items read for %d holders: the cost follows the history", calls, items, holders)
	}
	for i, o := range openIDs { // the spending send's message, or the batch's
		if got := len(r.fake.Messages(o)); got != 1 {
			t.Fatalf("user %d: %d messages, want 1", i, got)
		}
	}
}

// audienceEntries lists the sort keys of the template's audience index.
func (r *rig) audienceEntries(tb testing.TB) []string {
	tb.Helper()
	page, err := r.st.Query(context.Background(), store.Query{Partition: "aud|" + appID + "|" + leadTID, Limit: store.MaxQueryLimit})
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, it := range page.Items {
		out = append(out, it.Key.Sort)
	}
	return out
}

// TestAudienceLegacyEntries: an index written by the earlier layout (one
// entry "<openid>" per user who ever accepted, never pruned) still reaches
// every holder; the stale entries are pruned by the first batch that meets
// them and are not counted, and the next batch counts the holders only.
func TestAudienceLegacyEntries(t *testing.T) {
	const users, holders = 20, 8
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, PageSize: 3})
	openIDs := r.users(t, svc, users, users)
	for _, o := range openIDs[holders:] {
		sendOne(t, svc, o)
	}
	// What the earlier version left: every user, under the bare openid.
	ctx := context.Background()
	for _, sk := range r.audienceEntries(t) {
		if err := r.st.Delete(ctx, store.Key{Partition: "aud|" + appID + "|" + leadTID, Sort: sk}, store.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range openIDs {
		if _, err := r.st.Put(ctx, store.Key{Partition: "aud|" + appID + "|" + leadTID, Sort: o}, []byte("1"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One legacy holder accepts again: the new credit touches the old entry.
	r.grant(t, svc, openIDs[0])
	if got := r.audienceEntries(t); len(got) != users {
		t.Fatalf("index after a grant on a legacy entry: %d entries, want %d", len(got), users)
	}
	created, done := audienceBatch(t, svc)
	if created.Total != users || done.Sent != holders || done.Skipped != 0 || done.Total != holders {
		t.Fatalf("first batch: total %d at creation, done %+v; want %d counted, %d sent, total %d", created.Total, done, users, holders, holders)
	}
	for i, o := range openIDs { // the spending send's message, or the batch's
		if got := len(r.fake.Messages(o)); got != 1 {
			t.Fatalf("user %d: %d messages, want 1", i, got)
		}
	}
	// Only user 0 still holds a credit (it had two); the others were pruned, by their
	// last credit's send or by the batch that met them without one.
	if got := r.audienceEntries(t); len(got) != 1 || got[0] != openIDs[0] {
		t.Fatalf("index after the batch: %v, want only %s", got, openIDs[0])
	}
	r.grant(t, svc, openIDs[5])
	created, done = audienceBatch(t, svc)
	if created.Total != 2 || done.Sent != 2 || done.Total != 2 {
		t.Fatalf("second batch: total %d at creation, done %+v; want 2", created.Total, done)
	}
	if got := r.audienceEntries(t); len(got) != 0 {
		t.Fatalf("index after every credit is spent: %v, want empty", got)
	}
}

// TestAudienceGrantRacesPrune: a credit granted while the send of the last
// one prunes the user never leaves the user out of the index.
func TestAudienceGrantRacesPrune(t *testing.T) {
	isAud := func(k store.Key) bool { return strings.HasPrefix(k.Partition, "aud|") }
	isCredit := func(k store.Key) bool { return strings.HasSuffix(k.Sort, "|n") }
	for _, tc := range []struct {
		name string
		at   func(op string, k store.Key) bool
	}{
		// The prune read the entry and a ledger of 0; the grant comes before
		// its delete: the delete, conditional on the entry's version, fails.
		{"BetweenLedgerReadAndDelete", func(op string, k store.Key) bool { return op == "delete" && isAud(k) }},
		// The grant comes between the prune's read of the entries and of
		// the ledger: the ledger holds a credit, nothing is deleted.
		{"BetweenEntriesAndLedgerRead", func(op string, k store.Key) bool { return op == "get" && isCredit(k) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			h := &hooked{Store: r.st}
			svc := r.service(t, h, notify.BatchOptions{Rate: 5000})
			other := r.service(t, r.st, notify.BatchOptions{Rate: 5000}) // another instance, granting
			u := r.fake.OpenID("racer")
			r.grant(t, svc, u)
			h.arm(func(op string, k store.Key) bool {
				if !tc.at(op, k) {
					return false
				}
				r.grant(t, other, u)
				return true
			})
			if n := sendOne(t, svc, u); n.Status != notify.StatusSent {
				t.Fatalf("send: %s %s", n.Status, n.Reason)
			}
			if !h.fired() {
				t.Fatal("the grant was never interleaved: the send did not prune")
			}
			created, done := audienceBatch(t, other)
			if created.Total != 1 || done.Sent != 1 {
				t.Fatalf("the holder granted during the prune: total %d, done %+v; want them sent to", created.Total, done)
			}
			if got := len(r.fake.Messages(u)); got != 2 {
				t.Fatalf("%d messages, want 2 (the send and the batch)", got)
			}
		})
	}
}

// TestAudienceGiveBackNotes: a credit given back after another send pruned
// the user (that send took the last credit meanwhile) puts the user back.
func TestAudienceGiveBackNotes(t *testing.T) {
	r := newRig(t, nil)
	h := &hooked{Store: r.st}
	svc := r.service(t, h, notify.BatchOptions{Rate: 5000})
	other := r.service(t, r.st, notify.BatchOptions{Rate: 5000})
	u := r.fake.OpenID("giver")
	r.grant(t, svc, u)
	r.grant(t, svc, u)
	if err := r.fake.Inject(wechattest.Fault{API: wechattest.APISend, Errcode: 40003, Count: 1}); err != nil {
		t.Fatal(err)
	}
	// Send A is refused (a definite failure: its credit is given back);
	// before its give-back, send B takes the last credit and prunes.
	h.arm(func(op string, k store.Key) bool {
		if op != "undo" {
			return false
		}
		if n := sendOne(t, other, u); n.Status != notify.StatusSent {
			t.Errorf("send B: %s %s", n.Status, n.Reason)
		}
		if got := r.audienceEntries(t); len(got) != 0 {
			t.Errorf("send B did not prune: %v", got)
		}
		return true
	})
	if n := sendOne(t, svc, u); n.Status != notify.StatusFailed {
		t.Fatalf("send A: %s %s, want failed", n.Status, n.Reason)
	}
	if !h.fired() {
		t.Fatal("send A gave nothing back")
	}
	created, done := audienceBatch(t, other)
	if created.Total != 1 || done.Sent != 1 {
		t.Fatalf("the credit given back: total %d, done %+v; want it sent", created.Total, done)
	}
}

// TestAudienceLongTerm: a long-term template's audience is the users whose
// acceptance stands; one who turns it off (a kept reject) leaves the index,
// the others stay after every message.
func TestAudienceLongTerm(t *testing.T) {
	const ltID = "long-term-tmpl-id"
	r := newRig(t, nil)
	r.fake = wechattest.NewServer(wechattest.Options{AppID: appID, Templates: []wechattest.Template{{
		PriTmplID: ltID, Title: "服务进度提醒", Type: wechattest.LongTerm,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "number2"}},
	}}})
	t.Cleanup(r.fake.Close)
	catalog, err := notify.NewCatalog([]notify.Template{{Alias: "lead_digest", ID: ltID, Kind: notify.LongTerm,
		Keywords: []notify.Keyword{{Name: "thing1"}, {Name: "number2"}}}})
	if err != nil {
		t.Fatal(err)
	}
	r.catalog = catalog
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, PageSize: 2})
	ctx := context.Background()
	var openIDs []string
	for i := range 5 {
		o := r.fake.OpenID(fmt.Sprintf("lt%d", i))
		res, err := r.fake.Subscribe(o, map[string]string{ltID: "accept"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RecordReport(ctx, o, notify.Report{Result: map[string]string{ltID: res[ltID].(string)}}); err != nil {
			t.Fatal(err)
		}
		openIDs = append(openIDs, o)
	}
	for _, o := range openIDs[3:] { // turned off, "always keep this choice"
		if err := r.fake.Unsubscribe(o, ltID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RecordReport(ctx, o, notify.Report{Settings: &notify.Settings{ItemSettings: map[string]string{ltID: "reject"}}}); err != nil {
			t.Fatal(err)
		}
	}
	ltEntries := func() int {
		page, err := r.st.Query(ctx, store.Query{Partition: "aud|" + appID + "|" + ltID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	if got := ltEntries(); got != 3 {
		t.Fatalf("index: %d entries, want the 3 users who kept it on", got)
	}
	for round := 1; round <= 2; round++ {
		created, done := audienceBatch(t, svc)
		if created.Total != 3 || done.Sent != 3 || done.Total != 3 {
			t.Fatalf("batch %d: total %d at creation, done %+v; want 3 sent", round, created.Total, done)
		}
	}
	for i, o := range openIDs {
		want := 2
		if i >= 3 {
			want = 0
		}
		if got := len(r.fake.Messages(o)); got != want {
			t.Fatalf("user %d: %d messages, want %d", i, got, want)
		}
	}
	if got := ltEntries(); got != 3 {
		t.Fatalf("index after the batches: %d entries, want 3", got)
	}
}
