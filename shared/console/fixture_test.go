package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/console"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const (
	testAPIKey   = "test-api-key-0123456789"
	testAdminKey = "test-admin-key-0123456789abcdef"
	testAppID    = "wxconsoletest000000"
	// Hostile text the pages must show as text.
	hostileScript = "<script>alert(1)</script>"
	hostileImg    = "<img src=x onerror=alert(1)>"
)

// testConfig is the single-app wxnotify.yaml of the tests: a template whose
// title and keyword label are hostile, as a careless `templates sync` or
// hand edit could make them.
const testConfig = `templates:
  - alias: lead_assigned
    id: muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4
    title: "` + hostileImg + `"
    kind: one-time
    policy: reject
    keywords:
      - name: thing1
        label: "` + hostileScript + `"
      - name: character_string2
        label: 线索编号
  - alias: registration
    id: zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE
    title: 注册成功通知
    kind: one-time
    policy: reject
    keywords:
      - name: date2
      - name: thing4
`

// fixture is the dev route group's server (every httpapi group, the
// console, the sandbox) on bbolt with a sandbox WeChat.
type fixture struct {
	url   string
	svc   *notify.Service
	fake  *wechattest.Server
	parts *boot.Parts
	now   func() time.Time
	clock *testClock
}

// testClock is the wall clock moved to 12:00 UTC of today (so that a test
// never straddles midnight), plus what advance added, for the service, the
// console and the fake.
type testClock struct {
	start, noon time.Time
	offset      atomic.Int64
}

func newTestClock() *testClock {
	start := time.Now()
	return &testClock{start: start, noon: start.UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)}
}

func (c *testClock) now() time.Time {
	return c.noon.Add(time.Since(c.start) + time.Duration(c.offset.Load()))
}

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func newFixture(tb testing.TB, env map[string]string) *fixture {
	return newFixtureWith(tb, testConfig, env, boot.Options{})
}

// newFixtureWith is newFixture with the configuration file and boot
// options given.
func newFixtureWith(tb testing.TB, cfgText string, env map[string]string, opts boot.Options) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "wxnotify.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		tb.Fatal(err)
	}
	vars := map[string]string{"WXN_CONFIG": cfgPath, "WXN_SESSION_SECRET": "test-session-secret-0123456789abcdef",
		"WXN_API_KEYS": testAPIKey, "WXN_ADMIN_KEYS": testAdminKey, "WXN_WECHAT_APPID": testAppID, "WXN_DATA_DIR": dir,
		"WXN_PUSH_ENABLED": "false"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] }, false)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newTestClock()
	now := clock.now
	fake := wechattest.NewServer(wechattest.Options{AppID: testAppID, Templates: sandbox.Templates(cfg.File), Now: now})
	tb.Cleanup(fake.Close)
	cfg.Secret, cfg.APIBase = fake.Secret(), fake.URL()
	st, err := boltstore.Open(filepath.Join(dir, "wxnotify.db"), boltstore.Options{NoSync: true, Now: now}) // expiry by the test's clock, as the console's
	if err != nil {
		tb.Fatal(err)
	}
	opts.Function, opts.Now = "consoletest", now
	parts, err := boot.Build(cfg, st, opts)
	if err != nil {
		_ = st.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = parts.Close() })
	con, err := console.FromParts(parts, now)
	if err != nil {
		tb.Fatal(err)
	}
	parts.API.SetConsole(con)
	mux := parts.API.NewMux(httpapi.AllGroups...)
	for _, rt := range sandbox.New(fake).Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return &fixture{url: ts.URL, svc: parts.Service, fake: fake, parts: parts, now: now, clock: clock}
}

// seeded is what seed made.
type seeded struct {
	aliceOpenID, bobOpenID string
	sentID                 string // the send with hostile data
	done, waiting, later   notify.Batch
}

// Template ids of testConfig.
const (
	leadID = "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
	regID  = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE"
)

// seed makes, on the default app: alice bound to a hostile userId with 4
// credits of lead_assigned; 2 sends to her (sent), one to an unbound userId
// and one to bob without consent (skipped); a batch run to its end (alice
// sent, an unbound userId skipped); a due batch not yet run (alice, bob)
// and one due in an hour. Today: 3 sent, 3 skipped.
func seed(tb testing.TB, f *fixture) seeded {
	tb.Helper()
	ctx := context.Background()
	var s seeded
	login := func(user string) notify.LoginResult {
		res, err := f.svc.Login(ctx, f.fake.Login(user))
		if err != nil {
			tb.Fatal(err)
		}
		return res
	}
	s.aliceOpenID = login("alice").OpenID
	s.bobOpenID = login("bob").OpenID
	if _, err := f.svc.Bind(ctx, hostileScript, f.fake.Login("alice")); err != nil {
		tb.Fatal(err)
	}
	for i := range 4 {
		if _, err := f.fake.Subscribe(s.aliceOpenID, map[string]string{leadID: "accept"}); err != nil {
			tb.Fatal(err)
		}
		if _, err := f.svc.RecordReport(ctx, s.aliceOpenID, notify.Report{Result: map[string]string{leadID: "accept"},
			ID: "report-" + string(rune('a'+i))}); err != nil {
			tb.Fatal(err)
		}
	}
	send := func(to notify.Recipient, key string, want notify.Status) notify.Notification {
		tb.Helper()
		n, err := f.svc.Send(ctx, notify.SendRequest{To: to, Template: "lead_assigned", IdempotencyKey: key, Source: notify.FromAPI,
			Data: map[string]string{"thing1": "<img src=x>", "character_string2": hostileScript}})
		if err != nil {
			tb.Fatal(err)
		}
		if n.Status != want {
			tb.Fatalf("seed send %q: got %s (%s), want %s", key, n.Status, n.Reason, want)
		}
		return n
	}
	s.sentID = send(notify.Recipient{UserID: hostileScript}, hostileImg, notify.StatusSent).ID
	send(notify.Recipient{UserID: hostileScript}, "second", notify.StatusSent)
	send(notify.Recipient{UserID: "nobody-1"}, "unbound", notify.StatusSkipped)
	send(notify.Recipient{OpenID: s.bobOpenID}, "no-consent", notify.StatusSkipped)

	batch := func(key string, notBefore time.Time, to ...notify.BatchRecipient) notify.Batch {
		tb.Helper()
		b, err := f.svc.CreateBatch(ctx, notify.BatchRequest{Template: "lead_assigned", IdempotencyKey: key, NotBefore: notBefore,
			Data: map[string]string{"thing1": "<img src=x>", "character_string2": hostileScript}, Recipients: to})
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	s.done = batch("done", time.Time{}, notify.BatchRecipient{UserID: hostileScript}, notify.BatchRecipient{UserID: "nobody-2"})
	if err := f.svc.RunBatches(ctx, f.now().Add(20*time.Second)); err != nil {
		tb.Fatal(err)
	}
	b, err := f.svc.Batch(ctx, s.done.ID)
	if err != nil || b.Status != notify.BatchDone || b.Sent != 1 || b.Skipped != 1 {
		tb.Fatalf("seed batch: got %+v, %v; want done, 1 sent, 1 skipped", b, err)
	}
	s.done = b
	s.waiting = batch("waiting", time.Time{}, notify.BatchRecipient{UserID: hostileScript}, notify.BatchRecipient{OpenID: s.bobOpenID})
	s.later = batch("later", f.now().Add(time.Hour), notify.BatchRecipient{UserID: hostileScript})
	return s
}

// client is an HTTP client that does not follow redirects.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
