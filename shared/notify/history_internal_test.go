package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

func historyService(t *testing.T, st store.Store, wx WeChat, clock *fakeClock) *Service {
	t.Helper()
	catalog, _ := NewCatalog([]Template{{Alias: "lead", ID: "tmpl-lead", Keywords: []Keyword{{Name: "thing1"}}}})
	sessions, _ := NewSessions(make([]byte, 32), time.Hour, clock.Now)
	svc, err := New(Options{AppID: "wxhist", Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions, Now: clock.Now,
		PushConfigured: true, UnknownWindow: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func historyBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// listIDs returns the ids of one page of up to 100 matching f.
func listIDs(t *testing.T, svc *Service, f NotificationFilter) []string {
	t.Helper()
	p, err := svc.ListNotifications(context.Background(), f, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range p.Notifications {
		out = append(out, n.ID+":"+string(n.Status))
	}
	return out
}

// partitionSize counts the live items of a partition.
func partitionSize(t *testing.T, st store.Store, partition string) int {
	t.Helper()
	p, err := st.Query(context.Background(), store.Query{Partition: partition, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Items)
}

func grantCredit(t *testing.T, st store.Store, svc *Service, openID string) {
	t.Helper()
	if _, err := st.Put(context.Background(), svc.creditsKey(openID, "tmpl-lead"), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A settled unknown send is listed once, under its final status; its
// unknown entry stays but no longer lists it.
func TestHistorySettledUnknownListedOnce(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	svc := historyService(t, st, &silentWeChat{}, clock)
	ctx := context.Background()
	grantCredit(t, st, svc, "oU")
	n, _ := svc.Send(ctx, SendRequest{To: Recipient{OpenID: "oU"}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"})
	if n.Status != StatusUnknown {
		t.Fatalf("send: %s, want unknown", n.Status)
	}
	if got, want := listIDs(t, svc, NotificationFilter{Status: StatusUnknown}), []string{n.ID + ":unknown"}; !slices.Equal(got, want) {
		t.Fatalf("unknown before the sweep: got %v, want %v", got, want)
	}
	clock.Advance(11 * time.Minute)
	if settled, err := svc.SweepUnknown(ctx); err != nil || settled != 1 {
		t.Fatalf("sweep: got %d, %v; want 1", settled, err)
	}
	want := []string{n.ID + ":failed"}
	for _, f := range []NotificationFilter{{}, {Status: StatusFailed}, {OpenID: "oU"}, {Template: "lead"}} {
		if got := listIDs(t, svc, f); !slices.Equal(got, want) {
			t.Errorf("%+v after the sweep: got %v, want %v", f, got, want)
		}
	}
	if got := listIDs(t, svc, NotificationFilter{Status: StatusUnknown}); len(got) != 0 {
		t.Errorf("unknown after the sweep: got %v, want none", got)
	}
	if partitionSize(t, st, svc.historyPartition()+"|s|unknown") != 1 {
		t.Error("the unknown entry should remain (it expires with the record)")
	}
}

// The reply of an outcome Write is lost: the sender recognises its
// outcome on reading the record back, and the history lists it once.
func TestHistoryLostReplyOfOutcomeWrite(t *testing.T) {
	lost := storetest.NewLostReplies(historyBolt(t))
	clock := &fakeClock{t: time.Now()}
	wx := &silentWeChat{answers: map[int]int64{1: 7}}
	svc := historyService(t, lost, wx, clock)
	grantCredit(t, lost, svc, "oL")
	lost.Reset(1, func(op string, k store.Key) bool { return op == "write" && strings.HasPrefix(k.Partition, "n|") })
	n, err := svc.Send(context.Background(), SendRequest{To: Recipient{OpenID: "oL"}, Template: "lead",
		Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"})
	if len(lost.Lost()) != 1 {
		t.Fatalf("lost replies: %v, want the outcome write's", lost.Lost())
	}
	if err != nil || n.Status != StatusSent {
		t.Fatalf("send: got %s, %v; want sent", n.Status, err)
	}
	want := []string{n.ID + ":sent"}
	for _, f := range []NotificationFilter{{}, {Status: StatusSent}, {OpenID: "oL"}} {
		if got := listIDs(t, svc, f); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", f, got, want)
		}
	}
	if c := partitionSize(t, lost, svc.historyPartition()); c != 1 {
		t.Errorf("%d entries in the history, want 1", c)
	}
}

// busyOnce answers "system busy" to its first send, then delivers.
type busyOnce struct {
	silentWeChat
	mu    sync.Mutex
	calls int
}

func (w *busyOnce) SendSubscribeMessage(context.Context, wechat.SendRequest) (wechat.SendResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.calls == 1 {
		return wechat.SendResult{}, &wechat.Error{Code: wechat.CodeBusy, Msg: "system busy", API: "subscribeMessage.send"}
	}
	return wechat.SendResult{MsgID: int64(w.calls)}, nil
}

// A retryable failure retried to success: the second outcome finds the
// entries the first wrote (all, template, user) and writes the rest; the
// notification is listed once, as sent.
func TestHistoryRetriedFailureListedOnce(t *testing.T) {
	st := historyBolt(t)
	clock := &fakeClock{t: time.Now()}
	svc := historyService(t, st, &busyOnce{}, clock)
	grantCredit(t, st, svc, "oR")
	req := SendRequest{To: Recipient{OpenID: "oR"}, Template: "lead", Data: map[string]string{"thing1": "x"}, IdempotencyKey: "k"}
	first, err := svc.Send(context.Background(), req)
	if CodeOf(err) != CodeWeChatUnavailable || first.Status != StatusFailed {
		t.Fatalf("first send: got %s, %v; want failed, wechat_unavailable", first.Status, err)
	}
	if got := listIDs(t, svc, NotificationFilter{Status: StatusFailed}); len(got) != 1 {
		t.Fatalf("failed after the first send: got %v, want it", got)
	}
	n, err := svc.Send(context.Background(), req)
	if err != nil || n.Status != StatusSent || n.ID != first.ID {
		t.Fatalf("retry: got %s %s, %v; want %s sent", n.ID, n.Status, err, first.ID)
	}
	want := []string{n.ID + ":sent"}
	for _, f := range []NotificationFilter{{}, {Status: StatusSent}, {OpenID: "oR"}, {Template: "tmpl-lead"}} {
		if got := listIDs(t, svc, f); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", f, got, want)
		}
	}
	if got := listIDs(t, svc, NotificationFilter{Status: StatusFailed}); len(got) != 0 {
		t.Errorf("failed after the retry: got %v, want none", got)
	}
}

// seedHistory writes count sent notifications and their history entries
// directly, in the layout writeOutcome uses, 12 notifications a Write.
func seedHistory(tb testing.TB, svc *Service, st store.Store, count int) {
	tb.Helper()
	base := time.Now().UTC().Add(-time.Hour)
	var ops []store.WriteOp
	flush := func() {
		if _, err := st.Write(context.Background(), ops); err != nil {
			tb.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range count {
		n := Notification{ID: fmt.Sprintf("ntf_seed%018d", i), Template: "lead", TemplateID: "tmpl-lead",
			OpenID: fmt.Sprintf("oSeed%d", i%7), To: Recipient{OpenID: fmt.Sprintf("oSeed%d", i%7)}, Status: StatusSent,
			Source: FromAPI, Attempts: 1, CreatedAt: base.Add(time.Duration(i) * time.Millisecond)}
		n.UpdatedAt = n.CreatedAt
		b, err := json.Marshal(n)
		if err != nil {
			tb.Fatal(err)
		}
		expires := n.CreatedAt.Add(svc.retention)
		ops = append(ops, store.WritePut(svc.notificationKey(n.ID), b, store.PutOptions{IfAbsent: true, ExpiresAt: expires}),
			store.WritePut(store.Key{Partition: svc.historyPartition(), Sort: listSort(n.CreatedAt, n.ID)}, []byte(n.ID),
				store.PutOptions{IfAbsent: true, ExpiresAt: expires}))
		if len(ops) >= 24 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// A page of 20 costs one query and 20 reads, with 100 notifications in
// the history as with 100,000.
func TestHistoryPageCost(t *testing.T) {
	for _, count := range []int{100, 100_000} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			if count > 1000 && testing.Short() {
				t.Skip("the 100,000-record history is skipped in -short mode")
			}
			bolt := historyBolt(t)
			counting := storetest.NewCounting(bolt)
			svc := historyService(t, counting, &silentWeChat{}, &fakeClock{t: time.Now()})
			seedHistory(t, svc, bolt, count)
			cursor, prev := "", ""
			for page := range 3 {
				before := counting.Counts()
				p, err := svc.ListNotifications(context.Background(), NotificationFilter{}, cursor, 20)
				if err != nil {
					t.Fatal(err)
				}
				after := counting.Counts()
				if q, g, total := after["query"]-before["query"], after["get"]-before["get"], counting.Total(); q != 1 || g != 20 ||
					total-sum(before) != 21 {
					t.Fatalf("page %d: %d queries, %d gets, %d calls; want 1, 20, 21", page, q, g, total-sum(before))
				}
				if len(p.Notifications) != 20 || p.Next == "" {
					t.Fatalf("page %d: %d notifications, next %q; want 20 and a cursor", page, len(p.Notifications), p.Next)
				}
				// Newest first: the seed's last notifications come first.
				if want := fmt.Sprintf("ntf_seed%018d", count-1-20*page); p.Notifications[0].ID != want || p.Notifications[0].ID == prev {
					t.Fatalf("page %d starts with %s, want %s", page, p.Notifications[0].ID, want)
				}
				prev, cursor = p.Notifications[0].ID, p.Next
			}
		})
	}
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}
