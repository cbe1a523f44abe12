package boot

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// A batch of 100 workers keeps its connections to WeChat: the client's pool
// is sized from WXN_BATCH_WORKERS, so the fake WeChat accepts no more
// connections than the workers (and the few served beside them) for a
// batch of 1,000, whose sends take 5 ms each so that every worker is in
// flight at once. Sized for the default 32 instead, the pool would close
// the connections it cannot keep and dial them again, page after page.
func TestBatchReusesWeChatConnections(t *testing.T) {
	const workers, users = 100, 1000
	var accepted atomic.Int64
	front := func(h http.Handler) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "subscribe/send") {
				time.Sleep(5 * time.Millisecond) // WeChat's latency, so that the workers overlap
			}
			h.ServeHTTP(w, r)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	_, _, targets, parts := benchAppsFront(t, users, 1, false, map[string]string{
		"WXN_BATCH_WORKERS": "100", "WXN_BATCH_RATE": "100000", "WXN_BATCH_PAGE_SIZE": "200"}, front)
	ctx := context.Background()
	var recipients []notify.BatchRecipient
	for _, tg := range targets {
		if tg.app == "sales" {
			recipients = append(recipients, notify.BatchRecipient{OpenID: tg.openID})
		}
	}
	app := parts.App("sales")
	b, err := app.Service.CreateBatch(ctx, notify.BatchRequest{Template: "lead_assigned",
		Data: map[string]string{"thing1": "Acme", "character_string2": "B-1"}, Recipients: recipients})
	if err != nil {
		t.Fatal(err)
	}
	before := accepted.Load()
	for range 10 {
		if err := Tick(parts)(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if b, err = app.Service.Batch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if b.Status == notify.BatchDone {
			break
		}
	}
	if b.Status != notify.BatchDone || b.Sent != users {
		t.Fatalf("batch: %s, %d sent; want done, %d sent", b.Status, b.Sent, users)
	}
	dialled := accepted.Load() - before
	if limit := int64(workers + servedBesideBatch); dialled > limit {
		t.Errorf("the batch's %d sends dialled %d connections, want at most %d (%d workers + %d)", users, dialled, limit, workers, servedBesideBatch)
	}
	if dialled < workers/2 {
		t.Errorf("the batch's sends dialled %d connections: the workers did not overlap (want about %d)", dialled, workers)
	}
	t.Logf("%d sends by %d workers dialled %d connections (default pool: %d idle per host)", users, workers, dialled, wechat.DefaultMaxConns)
}
