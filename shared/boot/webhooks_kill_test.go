package boot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/webhook"
)

// killChildEnv makes the test binary, re-executed, play one process of
// TestWebhooksSurviveKill9: "send" or "deliver".
const killChildEnv = "WXN_TEST_KILL9_CHILD"

// killChildSends bounds the sends of the "send" child (it is killed
// long before).
const killChildSends = 500

// A process killed with SIGKILL after recording outcomes and before any
// tick delivered them loses none: restarted on the same bbolt data dir,
// the tick delivers each event exactly once. The first child sends in a
// loop and is killed mid-loop. The second ticks and is killed while its
// POSTs are in flight (the receiver holds them, unanswered). The third,
// its clock past the claims' lease, ticks until the outbox is empty and
// reports what the store holds; every event is answered 2xx once.
func TestWebhooksSurviveKill9(t *testing.T) {
	if mode := os.Getenv(killChildEnv); mode != "" {
		killChild(t, mode)
		return
	}
	secret := webhook.NewSecret()
	var (
		mu     sync.Mutex
		got    = map[string]int{} // webhook-id -> requests answered 200
		held   = map[string]int{} // webhook-id -> requests held unanswered
		hold   = false
		badSig int
	)
	inFlight := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if webhook.Verify(secret, r.Header, body, time.Now(), 0) != nil {
			badSig++
		}
		id := r.Header.Get(webhook.HeaderID)
		if hold {
			held[id]++
			mu.Unlock()
			select {
			case inFlight <- struct{}{}:
			default:
			}
			<-r.Context().Done() // never answered: the sender dies first
			return
		}
		got[id]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(mode string, offset time.Duration) (*exec.Cmd, *bufio.Scanner) {
		t.Helper()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWebhooksSurviveKill9$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+mode, "WXN_TEST_KILL9_DIR="+dir,
			"WXN_TEST_KILL9_URL="+srv.URL+"/hook", "WXN_TEST_KILL9_SECRET="+secret, "WXN_TEST_KILL9_OFFSET="+offset.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(out)
	}

	// The sender: killed after its 5th recorded outcome, mid-loop.
	sender, lines := start("send", 0)
	var sent []string
	for len(sent) < 5 && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "sent "); ok {
			sent = append(sent, id)
		}
	}
	if err := sender.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // the lines written before the signal landed
		if id, ok := strings.CutPrefix(lines.Text(), "sent "); ok {
			sent = append(sent, id)
		}
	}
	err := sender.Wait()
	ws, _ := sender.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || len(sent) < 5 || len(sent) >= killChildSends {
		t.Fatalf("sender: %v (%v), %d sends; want it killed by SIGKILL mid-loop", err, sender.ProcessState, len(sent))
	}
	mu.Lock()
	if len(got) != 0 {
		t.Fatalf("deliveries before the restart: %v", got)
	}
	mu.Unlock()

	// A restart on the same data dir, killed with its POSTs in flight.
	mu.Lock()
	hold = true
	mu.Unlock()
	interrupted, lines := start("deliver", 0)
	go func() {
		for lines.Scan() {
		}
	}()
	select {
	case <-inFlight:
	case <-ctx.Done():
		t.Fatal("no delivery attempt reached the receiver")
	}
	if err := interrupted.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := interrupted.Wait(); err == nil {
		t.Fatal("the interrupted deliverer exited by itself")
	}
	mu.Lock()
	hold = false
	heldIDs := len(held)
	mu.Unlock()

	// Another restart, its clock past the claims' lease, delivers.
	deliverer, lines := start("deliver", 2*time.Minute)
	var stored []string
	outbox := -1
	for lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "stored "); ok {
			stored = append(stored, id)
		}
		if n, ok := strings.CutPrefix(lines.Text(), "outbox "); ok {
			outbox, _ = strconv.Atoi(n)
		}
	}
	if err := deliverer.Wait(); err != nil {
		t.Fatalf("deliverer: %v", err)
	}
	if outbox != 0 || len(stored) < len(sent) {
		t.Fatalf("after the restart: outbox %d, %d notifications stored; want 0 and at least the %d sent", outbox, len(stored), len(sent))
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{}
	for _, id := range stored {
		want[webhook.DeliveryID(id+":skipped", "crm")] = true
	}
	for _, id := range sent {
		if !want[webhook.DeliveryID(id+":skipped", "crm")] {
			t.Errorf("%s was sent but is not stored", id)
		}
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want exactly once", id, got[id])
		}
	}
	for id := range held {
		if !want[id] {
			t.Errorf("held request %s is none of the events", id)
		}
	}
	if len(got) != len(want) || badSig != 0 || heldIDs == 0 {
		t.Errorf("%d webhook-ids delivered, %d stored, %d held; %d bad signatures", len(got), len(want), heldIDs, badSig)
	}
	t.Logf("%d outcomes reported before SIGKILL, %d stored, %d POSTs in flight at the second SIGKILL, each delivered once after the restart",
		len(sent), len(stored), heldIDs)
}

// killChild is one process of TestWebhooksSurviveKill9 on the bbolt file
// of WXN_TEST_KILL9_DIR: "send" records outcomes in a loop, printing
// "sent <id>" after each; "deliver" ticks until the outbox is empty, then
// prints "stored <id>" per notification and "outbox <entries>".
func killChild(t *testing.T, mode string) {
	dir := os.Getenv("WXN_TEST_KILL9_DIR")
	yml := fmt.Sprintf(`templates:
  - {alias: hello, id: TMPL-HELLO, kind: one-time, keywords: [{name: thing1}]}
webhooks:
  - {id: crm, url: '%s', events: ["*"]}
`, os.Getenv("WXN_TEST_KILL9_URL"))
	path := filepath.Join(dir, "wxnotify.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WXN_CONFIG": path, "WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": "0123456789abcdef",
		"WXN_WECHAT_APPID": "wx00000000000000k9", "WXN_WECHAT_SECRET": "s", "WXN_WECHAT_API_BASE": "http://127.0.0.1:1",
		"WXN_WEBHOOK_CRM_SECRET": os.Getenv("WXN_TEST_KILL9_SECRET")}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "wxnotify.db"), boltstore.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	offset, err := time.ParseDuration(os.Getenv("WXN_TEST_KILL9_OFFSET"))
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(cfg, st, Options{Function: "batch", WebhooksAllowPrivate: true, WebhookTimeout: 5 * time.Second,
		Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	ctx := context.Background()
	svc := parts.Service
	switch mode {
	case "send":
		for i := range killChildSends {
			n, err := svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: fmt.Sprintf("oKill%d", i)}, Template: "hello",
				Data: map[string]string{"thing1": "x"}, IdempotencyKey: fmt.Sprintf("k%d", i)})
			if err != nil || n.Status != notify.StatusSkipped {
				t.Fatalf("send %d: %+v, %v", i, n, err)
			}
			fmt.Printf("sent %s\n", n.ID)
		}
		select {} // killed before any tick
	case "deliver":
		h, err := BatchCore(parts)
		if err != nil {
			t.Fatal(err)
		}
		outbox := store.Query{Partition: "ob|" + svc.AppID(), Limit: 1}
		for range 100 {
			if err := h.Tick(ctx, time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if p, err := parts.Store.Query(ctx, outbox); err != nil || len(p.Items) == 0 {
				break
			}
		}
		cursor := ""
		for {
			page, err := svc.ListNotifications(ctx, notify.NotificationFilter{}, cursor, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range page.Notifications {
				fmt.Printf("stored %s\n", n.ID)
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		p, err := parts.Store.Query(ctx, store.Query{Partition: "ob|" + svc.AppID(), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("outbox %d\n", len(p.Items))
	}
}
