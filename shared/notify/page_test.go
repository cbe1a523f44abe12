package notify_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// A page with a leading "/" is validated, fingerprinted and sent in one
// form, without it: WeChat refuses "/pages/..." (41030) after the credit
// was taken, while the same page without the slash is one of the app's.
func TestPageSentInTheFormItWasValidated(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	fake := wechattest.NewServer(wechattest.Options{AppID: appID, Pages: []string{"pages/clue/clue"},
		Templates: []wechattest.Template{{PriTmplID: leadTID, Title: "线索分配通知", Type: 2, Keywords: []wechattest.Keyword{{Name: "thing1"}}}}})
	t.Cleanup(fake.Close)
	cfg := wechat.Config{AppID: appID, Secret: fake.Secret(), BaseURL: fake.URL()}
	if cfg.Tokens, err = wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	wx, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	catalog, _ := notify.NewCatalog([]notify.Template{{Alias: "lead", ID: leadTID, Keywords: []notify.Keyword{{Name: "thing1"}}}})
	sessions, _ := notify.NewSessions(make([]byte, 32), time.Hour, nil)
	svc, err := notify.New(notify.Options{AppID: appID, Store: st, WeChat: wx, Catalog: catalog, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	openID := fake.OpenID("pat")
	for range 2 {
		res, err := fake.Subscribe(openID, map[string]string{leadTID: "accept"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RecordReport(ctx, openID, notify.Report{Result: map[string]string{leadTID: res[leadTID].(string)}}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(page, key string) notify.Notification {
		n, err := svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: openID}, Template: "lead",
			Data: map[string]string{"thing1": "Acme"}, Page: page, IdempotencyKey: key})
		if err != nil {
			t.Fatalf("send %q: %v", page, err)
		}
		return n
	}
	n := send("/pages/clue/clue?id=L-1", "page-1")
	if n.Status != notify.StatusSent || n.Page != "pages/clue/clue?id=L-1" {
		t.Fatalf("send with a leading slash: got %s/%s page %q, want sent with page pages/clue/clue?id=L-1", n.Status, n.Reason, n.Page)
	}
	if msgs := fake.Messages(openID); len(msgs) != 1 || msgs[0].Page != "pages/clue/clue?id=L-1" {
		t.Fatalf("WeChat got %+v, want one message to pages/clue/clue?id=L-1", msgs)
	}
	// The two spellings are one payload for the idempotency key.
	if again := send("pages/clue/clue?id=L-1", "page-1"); again.ID != n.ID || len(fake.Messages(openID)) != 1 {
		t.Fatalf("the same key without the slash: got %s, want the first notification and no second message", again.ID)
	}
	if fake.Credits(openID, leadTID) != 1 {
		t.Fatalf("WeChat's count: got %d, want 1", fake.Credits(openID, leadTID))
	}
}
