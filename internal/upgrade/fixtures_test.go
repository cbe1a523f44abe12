package upgrade

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// scheduledAt is when the scheduled batch is due: far enough ahead that it
// is still in the future whenever the test runs.
var scheduledAt = time.Date(2036, 12, 1, 0, 0, 0, 0, time.UTC)

// TestWriteFixtures runs the scenario on every backend with today's code
// and writes testdata/v1. It runs only with WXN_WRITE_FIXTURES=1: the
// fixtures are the v1 layout's truth, see the package documentation.
func TestWriteFixtures(t *testing.T) {
	if os.Getenv("WXN_WRITE_FIXTURES") != "1" {
		t.Skip("writes testdata/v1 only with WXN_WRITE_FIXTURES=1 (and only with the v1 layout's code)")
	}
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var first *Expect
	for _, backend := range storeenv.Backends {
		var exp Expect
		t.Run(backend, func(t *testing.T) {
			dump, e := generate(t, backend)
			if err := writeJSON(filepath.Join(fixtureDir, backend+".json"), dump); err != nil {
				t.Fatal(err)
			}
			exp = e
		})
		if t.Failed() {
			return
		}
		if exp.Layout == "" {
			t.Fatalf("%s was skipped: the fixtures need every backend (start Redis, run npm ci)", backend)
		}
		if first == nil {
			first = &exp
			continue
		}
		// The scenario is deterministic: every backend must end in the same
		// state, which expect.json then describes for all three.
		a, b := *first, exp
		a.GeneratedAt, b.GeneratedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s ended in another state than %s:\n%+v\n%+v", backend, storeenv.Backends[0], b, a)
		}
	}
	if err := writeJSON(filepath.Join(fixtureDir, "expect.json"), first); err != nil {
		t.Fatal(err)
	}
}

// generate runs the scenario on a fresh store of backend and returns the
// raw dump of what the backend then holds, and what must read back.
func generate(t *testing.T, backend string) (any, Expect) {
	ctx := context.Background()
	wx := newFake(t)
	switch backend {
	case "bolt":
		path := filepath.Join(t.TempDir(), "wxnotify.db")
		st, err := boltstore.Open(path, boltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		exp := runScenario(t, buildParts(t, st, wx), wx)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		d, err := DumpBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		return d, exp
	case "redis":
		client := testredis.Client(t)
		prefix := testredis.Prefix(t, client)
		exp := runScenario(t, buildParts(t, redisstore.New(client, prefix), wx), wx)
		d, err := DumpRedis(ctx, client, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return d, exp
	default:
		client, _ := storeenv.DynamoClient(t)
		table := storeenv.DynamoTable(t, client)
		exp := runScenario(t, buildParts(t, dynamostore.New(client, table), wx), wx)
		d, err := DumpDynamo(ctx, client, table)
		if err != nil {
			t.Fatal(err)
		}
		return d, exp
	}
}

// scenarioUser is one WeChat user of the scenario: its name at the fake,
// its binding, and the popups it answers (template id -> accepts), by
// client report or by WeChat's popup event.
type scenarioUser struct {
	name, userID    string
	reports, popups map[string]int
}

var scenarioUsers = []scenarioUser{
	{name: "alice", userID: "u-alice", reports: map[string]int{tmplLead: 4, tmplStatus: 1}},
	{name: "bob", userID: "u-bob", reports: map[string]int{tmplDaily: 2}, popups: map[string]int{tmplLead: 1}},
	{name: "carol"}, // logged in, never bound, never asked
	{name: "dave", userID: "u-dave", reports: map[string]int{tmplLead: 3}},
}

// runScenario plays the scenario through the service and checks that each
// step ended as intended, so that the fixtures hold what they claim.
func runScenario(t *testing.T, p *boot.Parts, wx *wechattest.Server) Expect {
	t.Helper()
	ctx := context.Background()
	svc := p.Service
	openIDs := map[string]string{}
	for _, u := range scenarioUsers {
		openIDs[u.name] = login(t, svc, wx, u)
	}
	exp := Expect{Layout: "v1", AppID: appID}

	sends := []struct {
		rec    SendRecord
		fault  int // errcode the fake answers, 0: none
		status notify.Status
	}{
		{SendRecord{To: notify.Recipient{UserID: "u-alice"}, Template: "registration", Source: notify.FromAPI,
			Data: map[string]string{"thing4": "某某科技有限公司", "date2": "2026-11-21", "character_string9": "L-1001"},
			Page: "pages/clue/clue?id=L-1001", IdempotencyKey: "send-alice-1"}, 0, notify.StatusSent},
		{SendRecord{To: notify.Recipient{OpenID: openIDs["carol"]}, Template: "registration", Source: notify.FromAPI,
			Data:           map[string]string{"thing4": "某某科技", "date2": "2026-11-22", "character_string9": "L-1002"},
			IdempotencyKey: "send-carol-1"}, 0, notify.StatusSkipped},
		{SendRecord{To: notify.Recipient{UserID: "u-dave"}, Template: "registration", Source: notify.FromAPI,
			Data:           map[string]string{"thing4": "Acme", "date2": "2026-11-23", "character_string9": "L-1003"},
			IdempotencyKey: "send-dave-1"}, wechat.CodeInvalidData, notify.StatusFailed},
		{SendRecord{To: notify.Recipient{UserID: "u-bob"}, Template: "daily", Source: notify.FromAPI,
			Data: map[string]string{"thing1": "每日线索汇总", "number2": "7"}, IdempotencyKey: "send-bob-1"}, 0, notify.StatusSent},
	}
	for _, s := range sends {
		if s.fault != 0 {
			if err := wx.Inject(wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: s.fault}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := svc.Send(ctx, s.rec.request())
		if err != nil {
			t.Fatalf("send %s: %v", s.rec.IdempotencyKey, err)
		}
		if n.Status != s.status || !n.Final() {
			t.Fatalf("send %s: status %s (%s, final %v), want %s", s.rec.IdempotencyKey, n.Status, n.Reason, n.Final(), s.status)
		}
		exp.Notifications = append(exp.Notifications, ExpectNotification{ID: n.ID, Request: s.rec, Status: string(n.Status), Reason: n.Reason})
	}

	batches := []struct {
		req  notify.BatchRequest
		want notify.BatchStatus
	}{
		{notify.BatchRequest{Template: "registration", IdempotencyKey: "batch-done",
			Data:       map[string]string{"thing4": "某某科技有限公司", "date2": "2026-11-24"},
			Recipients: []notify.BatchRecipient{{UserID: "u-alice", Data: map[string]string{"character_string9": "L-2001"}}, {UserID: "u-dave", Data: map[string]string{"character_string9": "L-2002"}}, {OpenID: openIDs["carol"], Data: map[string]string{"character_string9": "L-2003"}}}}, notify.BatchDone},
		{notify.BatchRequest{Template: "daily", IdempotencyKey: "batch-consenting", Audience: notify.AudienceConsenting,
			Data: map[string]string{"thing1": "每周线索汇总", "number2": "12"}}, notify.BatchDone},
		{notify.BatchRequest{Template: "registration", IdempotencyKey: "batch-scheduled", NotBefore: scheduledAt,
			Data:       map[string]string{"thing4": "年度回顾", "date2": "2036-11-24", "character_string9": "L-3000"},
			Recipients: []notify.BatchRecipient{{UserID: "u-alice"}, {UserID: "u-bob"}, {UserID: "u-dave"}, {OpenID: openIDs["carol"]}}}, notify.BatchScheduled},
	}
	var ids []string
	for _, b := range batches {
		created, err := svc.CreateBatch(ctx, b.req)
		if err != nil {
			t.Fatalf("batch %s: %v", b.req.IdempotencyKey, err)
		}
		ids = append(ids, created.ID)
	}
	for range 5 {
		if err := svc.RunBatches(ctx, wx.Now().Add(time.Minute)); err != nil {
			t.Fatalf("run batches: %v", err)
		}
	}
	for i, b := range batches {
		got, err := svc.Batch(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != b.want {
			t.Fatalf("batch %s: status %s, want %s", b.req.IdempotencyKey, got.Status, b.want)
		}
		exp.Batches = append(exp.Batches, ExpectBatch{ID: got.ID, IdempotencyKey: got.IdempotencyKey, Template: b.req.Template,
			Data: b.req.Data, Audience: got.Audience, Recipients: b.req.Recipients, NotBefore: b.req.NotBefore, Status: string(got.Status),
			Total: got.Total, Sent: got.Sent, Skipped: got.Skipped, Failed: got.Failed, Unknown: got.Unknown})
	}
	if got := exp.Batches[0]; got.Sent != 2 || got.Skipped != 1 {
		t.Fatalf("batch-done: sent %d skipped %d, want 2 and 1", got.Sent, got.Skipped)
	}
	if got := exp.Batches[1]; got.Sent != 1 {
		t.Fatalf("batch-consenting: sent %d, want 1 (bob)", got.Sent)
	}

	for _, u := range scenarioUsers {
		credits, longTerm := standing(t, svc, openIDs[u.name])
		exp.Users = append(exp.Users, ExpectUser{Name: u.name, OpenID: openIDs[u.name], UserID: u.userID, Credits: credits, LongTerm: longTerm})
	}
	if !exp.Users[0].LongTerm[tmplStatus] {
		t.Fatal("alice's long-term acceptance did not count")
	}
	if exp.Users[1].Credits[tmplLead] != 1 {
		t.Fatalf("bob's popup event: %d credits, want 1", exp.Users[1].Credits[tmplLead])
	}
	if _, err := p.Store.Get(ctx, tokenKey()); err != nil {
		t.Fatalf("the shared access token is not stored: %v", err)
	}
	exp.GeneratedAt = time.Now().UTC().Truncate(time.Millisecond)
	return exp
}

// login logs u in (and binds it), then grants its consents: each accept at
// the fake, then reported by the mini program or pushed by WeChat.
func login(t *testing.T, svc *notify.Service, wx *wechattest.Server, u scenarioUser) string {
	t.Helper()
	ctx := context.Background()
	var res notify.LoginResult
	var err error
	if u.userID != "" {
		res, err = svc.Bind(ctx, u.userID, wx.Login(u.name))
	} else {
		res, err = svc.Login(ctx, wx.Login(u.name))
	}
	if err != nil {
		t.Fatalf("login %s: %v", u.name, err)
	}
	n := 0
	for id, count := range u.reports {
		for range count {
			n++
			if _, err := wx.Subscribe(res.OpenID, map[string]string{id: "accept"}); err != nil {
				t.Fatal(err)
			}
			ignored, err := svc.RecordReport(ctx, res.OpenID, notify.Report{Result: map[string]string{id: "accept"},
				ID: fmt.Sprintf("report-%s-%d", u.name, n)})
			if err != nil || len(ignored) > 0 {
				t.Fatalf("report of %s: %v (ignored %v)", u.name, err, ignored)
			}
		}
	}
	for id, count := range u.popups {
		for i := range count {
			if _, err := wx.Subscribe(res.OpenID, map[string]string{id: "accept"}); err != nil {
				t.Fatal(err)
			}
			ev := wechat.PushEvent{ToUserName: wx.OriginalID(), FromUserName: res.OpenID, CreateTime: wx.Now().Unix() + int64(i),
				MsgType: "event", Event: "subscribe_msg_popup_event",
				Items: []wechat.PushItem{{TemplateID: id, SubscribeStatus: "accept", PopupScene: "0"}}}
			if err := svc.ApplyPush(ctx, ev); err != nil {
				t.Fatalf("popup event of %s: %v", u.name, err)
			}
		}
	}
	return res.OpenID
}

// tokenKey is where the shared access token of the fixtures' app is stored.
func tokenKey() store.Key { return store.Key{Partition: wechat.TokenPartition, Sort: appID} }
