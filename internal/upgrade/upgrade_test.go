package upgrade

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// TestUpgradeKeepsData loads the v1 layout's dump of each backend into a
// fresh store and checks that the current code reads it back and keeps
// the idempotency of every recorded send.
func TestUpgradeKeepsData(t *testing.T) {
	var exp Expect
	if err := readJSON(filepath.Join(fixtureDir, "expect.json"), &exp); err != nil {
		t.Fatal(err)
	}
	if exp.AppID != appID || len(exp.Users) == 0 || len(exp.Notifications) == 0 || len(exp.Batches) == 0 {
		t.Fatalf("expect.json describes nothing to check: %+v", exp)
	}
	for _, backend := range storeenv.Backends {
		for _, shape := range []string{"single", "apps"} {
			t.Run(backend+"/"+shape, func(t *testing.T) {
				upgradeBackend(t, backend, shape, exp)
			})
		}
	}
}

// upgradeBackend checks one backend's fixture under one configuration
// shape (see buildParts).
func upgradeBackend(t *testing.T, backend, shape string, exp Expect) {
	st := loadFixture(t, backend)
	wx := newFake(t)
	p := buildParts(t, st, wx, shape)
	if p.Service.AppID() != appID {
		t.Fatalf("the default app is %s, want the fixtures' %s", p.Service.AppID(), appID)
	}
	if shape == "apps" {
		checkOtherAppSeesNothing(t, p.App("customer").Service, exp)
	}
	checkReadBack(t, p.Service, exp)
	if _, err := st.Get(context.Background(), tokenKey()); err != nil {
		t.Errorf("the shared access token does not read back: %v", err)
	}
	checkRepeats(t, p.Service, wx, exp)
	checkNewSend(t, p.Service, wx, exp)
	checkScheduledBatch(t, p.Service, wx, exp)
}

// checkOtherAppSeesNothing: an app added by the upgrade sees none of the
// old app's users, notifications or batches.
func checkOtherAppSeesNothing(t *testing.T, other *notify.Service, exp Expect) {
	t.Helper()
	ctx := context.Background()
	if other.AppID() != otherAppID {
		t.Fatalf("customer's AppID %s", other.AppID())
	}
	for _, u := range exp.Users {
		if u.UserID != "" {
			if _, err := other.ResolveUserID(ctx, u.UserID); notify.CodeOf(err) != notify.CodeNotFound {
				t.Errorf("customer resolves %s: %v, want not_found", u.UserID, err)
			}
		}
		cs, err := other.Consents(ctx, u.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Credits != 0 || c.LongTerm {
				t.Errorf("customer sees a standing of crm's user: %+v", c)
			}
		}
	}
	for _, n := range exp.Notifications {
		if _, err := other.Notification(ctx, n.ID); notify.CodeOf(err) != notify.CodeNotFound {
			t.Errorf("customer reads crm's notification %s: %v, want not_found", n.ID, err)
		}
	}
	for _, b := range exp.Batches {
		if _, err := other.Batch(ctx, b.ID); notify.CodeOf(err) != notify.CodeNotFound {
			t.Errorf("customer reads crm's batch %s: %v, want not_found", b.ID, err)
		}
	}
}

// loadFixture returns a fresh store of backend holding the v1 dump.
func loadFixture(t *testing.T, backend string) store.Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(fixtureDir, backend+".json")
	switch backend {
	case "bolt":
		var d BoltDump
		if err := readJSON(path, &d); err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(t.TempDir(), "wxnotify.db")
		if err := LoadBolt(db, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		st, err := boltstore.Open(db, boltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	case "redis":
		var d RedisDump
		if err := readJSON(path, &d); err != nil {
			t.Fatal(err)
		}
		client := testredis.Client(t)
		prefix := testredis.Prefix(t, client)
		if err := LoadRedis(ctx, client, prefix, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		return redisstore.New(client, prefix)
	default:
		var d DynamoDump
		if err := readJSON(path, &d); err != nil {
			t.Fatal(err)
		}
		client, _ := storeenv.DynamoClient(t)
		table := storeenv.DynamoTable(t, client)
		if err := LoadDynamo(ctx, client, table, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		return dynamostore.New(client, table)
	}
}

// checkReadBack reads every user, notification and batch of exp.
func checkReadBack(t *testing.T, svc *notify.Service, exp Expect) {
	t.Helper()
	ctx := context.Background()
	for _, u := range exp.Users {
		if u.UserID != "" {
			if got, err := svc.ResolveUserID(ctx, u.UserID); err != nil || got != u.OpenID {
				t.Errorf("binding %s: %q, %v; want %s", u.UserID, got, err, u.OpenID)
			}
		}
		if got, err := svc.User(ctx, u.OpenID); err != nil || got.OpenID != u.OpenID || got.UserID != u.UserID {
			t.Errorf("user %s: %+v, %v; want userId %q", u.Name, got, err, u.UserID)
		}
		credits, longTerm := standing(t, svc, u.OpenID)
		for id, want := range u.Credits {
			if credits[id] != want {
				t.Errorf("%s: %d credits for %s, want %d", u.Name, credits[id], id, want)
			}
		}
		for id, want := range u.LongTerm {
			if longTerm[id] != want {
				t.Errorf("%s: long-term acceptance of %s %v, want %v", u.Name, id, longTerm[id], want)
			}
		}
	}
	for _, e := range exp.Notifications {
		n, err := svc.Notification(ctx, e.ID)
		if err != nil {
			t.Errorf("notification %s: %v", e.Request.IdempotencyKey, err)
			continue
		}
		if string(n.Status) != e.Status || n.Reason != e.Reason || n.IdempotencyKey != e.Request.IdempotencyKey {
			t.Errorf("notification %s: %s/%s key %q, want %s/%s", e.ID, n.Status, n.Reason, n.IdempotencyKey, e.Status, e.Reason)
		}
	}
	for _, e := range exp.Batches {
		b, err := svc.Batch(ctx, e.ID)
		if err != nil {
			t.Errorf("batch %s: %v", e.IdempotencyKey, err)
			continue
		}
		if string(b.Status) != e.Status || batchCounters(b) != e.counters() || (!e.NotBefore.IsZero() && !b.NotBefore.Equal(e.NotBefore)) {
			t.Errorf("batch %s: %s %v due %s, want %s %v due %s", e.IdempotencyKey, b.Status, batchCounters(b), b.NotBefore, e.Status, e.counters(), e.NotBefore)
		}
	}
}

// checkRepeats repeats every recorded send and batch with its idempotency
// key: each answers its record, and nothing reaches WeChat.
func checkRepeats(t *testing.T, svc *notify.Service, wx *wechattest.Server, exp Expect) {
	t.Helper()
	ctx := context.Background()
	before := wx.Calls(wechattest.APISend)
	for _, e := range exp.Notifications {
		n, err := svc.Send(ctx, e.Request.request())
		if err != nil {
			t.Errorf("repeat %s: %v", e.Request.IdempotencyKey, err)
			continue
		}
		if n.ID != e.ID || string(n.Status) != e.Status || n.Reason != e.Reason {
			t.Errorf("repeat %s: %s %s/%s, want %s %s/%s", e.Request.IdempotencyKey, n.ID, n.Status, n.Reason, e.ID, e.Status, e.Reason)
		}
	}
	for _, e := range exp.Batches {
		b, err := svc.CreateBatch(ctx, notify.BatchRequest{Template: e.Template, Audience: e.Audience,
			Recipients: e.Recipients, NotBefore: e.NotBefore, IdempotencyKey: e.IdempotencyKey, Data: e.Data})
		if err != nil {
			t.Errorf("repeat batch %s: %v", e.IdempotencyKey, err)
			continue
		}
		if b.ID != e.ID || string(b.Status) != e.Status {
			t.Errorf("repeat batch %s: %s %s, want %s %s", e.IdempotencyKey, b.ID, b.Status, e.ID, e.Status)
		}
	}
	if got := wx.Calls(wechattest.APISend) - before; got != 0 {
		t.Errorf("repeating recorded sends made %d calls to WeChat, want 0", got)
	}
	checkReadBack(t, svc, exp) // no credit moved
}

// checkNewSend sends one new message to a user holding a credit: it goes
// out once and takes exactly one credit.
func checkNewSend(t *testing.T, svc *notify.Service, wx *wechattest.Server, exp Expect) {
	t.Helper()
	ctx := context.Background()
	u := userWithCredit(t, exp)
	if _, err := wx.Subscribe(u.OpenID, map[string]string{tmplLead: "accept"}); err != nil {
		t.Fatal(err)
	}
	req := notify.SendRequest{To: notify.Recipient{UserID: u.UserID}, Template: "registration", Source: notify.FromAPI,
		Data:           map[string]string{"thing4": "升级后", "date2": "2026-12-01", "character_string9": "L-9001"},
		IdempotencyKey: "after-upgrade-1"}
	before := wx.Delivered()
	for i := range 2 { // the second is a repeat
		n, err := svc.Send(ctx, req)
		if err != nil {
			t.Fatalf("new send #%d: %v", i+1, err)
		}
		if n.Status != notify.StatusSent || n.OpenID != u.OpenID {
			t.Fatalf("new send #%d: %s (%s) to %s, want sent to %s", i+1, n.Status, n.Reason, n.OpenID, u.OpenID)
		}
	}
	if got := wx.Delivered() - before; got != 1 {
		t.Errorf("the new send delivered %d messages, want 1", got)
	}
	if got := len(wx.Messages(u.OpenID)); got != 1 {
		t.Errorf("%s's inbox holds %d messages, want 1", u.Name, got)
	}
	credits, _ := standing(t, svc, u.OpenID)
	if want := u.Credits[tmplLead] - 1; credits[tmplLead] != want {
		t.Errorf("%s holds %d credits after the new send, want %d", u.Name, credits[tmplLead], want)
	}
}

// userWithCredit is the first bound user of exp holding a credit of the
// registration template.
func userWithCredit(t *testing.T, exp Expect) ExpectUser {
	t.Helper()
	for _, u := range exp.Users {
		if u.UserID != "" && u.Credits[tmplLead] > 0 {
			return u
		}
	}
	t.Fatal("expect.json has no bound user with a credit")
	return ExpectUser{}
}

// checkScheduledBatch moves the clock past the scheduled batch's time and
// runs the batches: each recipient holding a credit gets exactly one
// message, the others are skipped, and running again sends nothing more.
func checkScheduledBatch(t *testing.T, svc *notify.Service, wx *wechattest.Server, exp Expect) {
	t.Helper()
	ctx := context.Background()
	var e *ExpectBatch
	for i := range exp.Batches {
		if exp.Batches[i].Status == string(notify.BatchScheduled) {
			e = &exp.Batches[i]
		}
	}
	if e == nil {
		t.Fatal("expect.json has no scheduled batch")
	}
	inbox := map[string]int{} // openid -> messages before the run
	wantNew := map[string]int{}
	wantSent, wantSkipped := 0, 0
	for _, r := range e.Recipients {
		openID := r.OpenID
		if r.UserID != "" {
			var err error
			if openID, err = svc.ResolveUserID(ctx, r.UserID); err != nil {
				t.Fatalf("recipient %s: %v", r.UserID, err)
			}
		}
		inbox[openID] = len(wx.Messages(openID))
		if credits, _ := standing(t, svc, openID); credits[tmplLead] > 0 {
			wantSent++
			wantNew[openID] = 1
			if _, err := wx.Subscribe(openID, map[string]string{tmplLead: "accept"}); err != nil {
				t.Fatal(err)
			}
		} else {
			wantSkipped++
		}
	}
	if err := svc.RunBatches(ctx, wx.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b, err := svc.Batch(ctx, e.ID); err != nil || b.Status != notify.BatchScheduled {
		t.Fatalf("before its time the batch is %s (%v), want scheduled", b.Status, err)
	}
	wx.Advance(time.Until(e.NotBefore) + time.Minute)
	for range 2 { // the second run finds nothing to do
		if err := svc.RunBatches(ctx, wx.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := svc.Batch(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != notify.BatchDone || b.Sent != wantSent || b.Skipped != wantSkipped || b.Failed+b.Unknown != 0 {
		t.Errorf("scheduled batch: %s %v, want done with %d sent, %d skipped", b.Status, batchCounters(b), wantSent, wantSkipped)
	}
	for openID, n := range inbox {
		if got := len(wx.Messages(openID)) - n; got != wantNew[openID] {
			t.Errorf("%s got %d messages from the batch, want %d", openID, got, wantNew[openID])
		}
	}
	if wantSent == 0 {
		t.Error("no recipient of the scheduled batch holds a credit: the run proves nothing")
	}
}
