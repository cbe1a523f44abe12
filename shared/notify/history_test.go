package notify_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// listAll pages through ListNotifications with limit per page and returns
// the ids, failing on an id listed twice or a page over the limit.
func listAll(t *testing.T, svc *notify.Service, f notify.NotificationFilter, limit int) []notify.Notification {
	t.Helper()
	var out []notify.Notification
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 200 {
			t.Fatal("the list does not end")
		}
		p, err := svc.ListNotifications(context.Background(), f, cursor, limit)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		if len(p.Notifications) > limit {
			t.Fatalf("a page of %d, limit %d", len(p.Notifications), limit)
		}
		for _, n := range p.Notifications {
			if seen[n.ID] {
				t.Fatalf("list %+v: %s listed twice", f, n.ID)
			}
			seen[n.ID] = true
			out = append(out, n)
		}
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}

func ids(ns []notify.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// Every filter lists exactly the notifications whose outcome matches it,
// newest first, each once across pages.
func TestListNotificationsFilters(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 1000})
	ctx := context.Background()
	users := r.users(t, svc, 4, 2) // users 0 and 1 hold a credit
	if _, err := svc.Bind(ctx, "crm-1", r.fake.Login("user00001")); err != nil {
		t.Fatal(err)
	}
	var sent []notify.Notification
	send := func(to notify.Recipient, key string) {
		n, err := svc.Send(ctx, notify.SendRequest{To: to, Template: "lead_digest",
			Data: map[string]string{"thing1": "Acme", "number2": "1"}, IdempotencyKey: key})
		if err != nil && notify.CodeOf(err) != notify.CodeWeChatUnavailable {
			t.Fatalf("send %s: %v", key, err)
		}
		sent = append(sent, n)
	}
	send(notify.Recipient{OpenID: users[0]}, "a0") // sent
	send(notify.Recipient{OpenID: users[0]}, "a1") // skipped: no credit left
	send(notify.Recipient{UserID: "crm-1"}, "a2")  // sent, through the binding
	send(notify.Recipient{UserID: "nobody"}, "a3") // skipped: unbound
	send(notify.Recipient{OpenID: users[2]}, "a4") // skipped: no credit
	if err := r.fake.Inject(wechattest.Fault{API: wechattest.APISend, Count: 1, Errcode: 45009}); err != nil {
		t.Fatal(err)
	}
	r.grant(t, svc, users[3])
	send(notify.Recipient{OpenID: users[3]}, "a5") // failed: WeChat refused
	b, err := svc.CreateBatch(ctx, batchOf(users, "hist"))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if cur, _ := svc.Batch(ctx, b.ID); cur.Status == notify.BatchDone {
			break
		}
	}
	if cur, _ := svc.Batch(ctx, b.ID); cur.Status != notify.BatchDone {
		t.Fatalf("the batch is %s, want done", cur.Status)
	}

	all := listAll(t, svc, notify.NotificationFilter{}, 3)
	if len(all) != len(sent)+len(users) {
		t.Fatalf("all: %d notifications, want %d sends and %d batch sends", len(all), len(sent), len(users))
	}
	for _, n := range sent {
		if !slices.Contains(ids(all), n.ID) {
			t.Fatalf("all: %s (%s) missing", n.ID, n.Status)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("all: %s listed after an older one", all[i].ID)
		}
	}
	statuses := map[notify.Status]int{}
	for _, n := range all {
		statuses[n.Status]++
	}
	if statuses[notify.StatusSent] == 0 || statuses[notify.StatusSkipped] == 0 || statuses[notify.StatusFailed] == 0 {
		t.Fatalf("the rig should make every outcome, got %v", statuses)
	}

	cases := []struct {
		f    notify.NotificationFilter
		want func(notify.Notification) bool
	}{
		{notify.NotificationFilter{Status: notify.StatusSent}, func(n notify.Notification) bool { return n.Status == notify.StatusSent }},
		{notify.NotificationFilter{Status: notify.StatusSkipped}, func(n notify.Notification) bool { return n.Status == notify.StatusSkipped }},
		{notify.NotificationFilter{Status: notify.StatusFailed}, func(n notify.Notification) bool { return n.Status == notify.StatusFailed }},
		{notify.NotificationFilter{OpenID: users[0]}, func(n notify.Notification) bool { return n.OpenID == users[0] }},
		{notify.NotificationFilter{UserID: "crm-1"}, func(n notify.Notification) bool { return n.OpenID == users[1] }},
		{notify.NotificationFilter{UserID: "nobody"}, func(notify.Notification) bool { return false }},
		{notify.NotificationFilter{Template: "lead_digest"}, func(notify.Notification) bool { return true }},
		{notify.NotificationFilter{Template: leadTID, Status: notify.StatusSent}, func(n notify.Notification) bool { return n.Status == notify.StatusSent }},
		{notify.NotificationFilter{Batch: b.ID}, func(n notify.Notification) bool { return n.Source == notify.FromBatch }},
		{notify.NotificationFilter{Batch: b.ID, Status: notify.StatusSkipped}, func(n notify.Notification) bool {
			return n.Source == notify.FromBatch && n.Status == notify.StatusSkipped
		}},
		{notify.NotificationFilter{OpenID: users[0], Status: notify.StatusSkipped}, func(n notify.Notification) bool {
			return n.OpenID == users[0] && n.Status == notify.StatusSkipped
		}},
		{notify.NotificationFilter{Since: all[4].CreatedAt}, func(n notify.Notification) bool { return !n.CreatedAt.Before(all[4].CreatedAt) }},
		{notify.NotificationFilter{Until: all[4].CreatedAt}, func(n notify.Notification) bool { return n.CreatedAt.Before(all[4].CreatedAt) }},
		{notify.NotificationFilter{Since: all[7].CreatedAt, Until: all[2].CreatedAt}, func(n notify.Notification) bool {
			return !n.CreatedAt.Before(all[7].CreatedAt) && n.CreatedAt.Before(all[2].CreatedAt)
		}},
	}
	for _, c := range cases {
		var want []string
		for _, n := range all {
			if c.want(n) {
				want = append(want, n.ID)
			}
		}
		for _, limit := range []int{1, 2, 100} {
			got := ids(listAll(t, svc, c.f, limit))
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("filter %+v, limit %d: got %v, want %v", c.f, limit, got, want)
			}
		}
	}
}

// Bad filters and cursors are field errors.
func TestListNotificationsBadInput(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{})
	now := time.Now()
	for _, c := range []struct {
		f      notify.NotificationFilter
		cursor string
		limit  int
		field  string
	}{
		{notify.NotificationFilter{}, "", 0, "limit"},
		{notify.NotificationFilter{}, "", notify.MaxNotificationListLimit + 1, "limit"},
		{notify.NotificationFilter{}, "nope", 20, "cursor"},
		{notify.NotificationFilter{Status: notify.StatusPending}, "", 20, "status"},
		{notify.NotificationFilter{Status: "done"}, "", 20, "status"},
		{notify.NotificationFilter{Template: "nope"}, "", 20, "template"},
		{notify.NotificationFilter{Batch: "x|y"}, "", 20, "batch"},
		{notify.NotificationFilter{OpenID: "o|x"}, "", 20, "openid"},
		{notify.NotificationFilter{UserID: "a b"}, "", 20, "userId"},
		{notify.NotificationFilter{Since: now, Until: now.Add(-time.Second)}, "", 20, "since"},
	} {
		_, err := svc.ListNotifications(context.Background(), c.f, c.cursor, c.limit)
		var e *notify.Error
		if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Field != c.field {
			t.Errorf("%+v cursor %q limit %d: got %v, want a bad request on %s", c.f, c.cursor, c.limit, err, c.field)
		}
	}
}
