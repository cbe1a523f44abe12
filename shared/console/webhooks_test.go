package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// hostileHookURL is a webhook URL the Webhooks page must show as text.
const hostileHookURL = "https://x/" + hostileScript

// hookFixture is a fixture whose app has four webhooks: crm (every event)
// to a receiver answering 500, ok (sent outcomes) to one answering 204,
// signed with two secrets (a rotation), gone (skipped outcomes) to one
// answering 410 Gone, and evil, with a hostile URL, for unknown outcomes
// (none is made).
type hookFixture struct {
	*fixture
	secrets []string
}

func newHookFixture(tb testing.TB) *hookFixture {
	tb.Helper()
	receiver := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
		tb.Cleanup(srv.Close)
		return srv.URL + "/hook"
	}
	hooks := fmt.Sprintf(`webhooks:
  - id: crm
    url: %s
    events: ["*"]
  - id: ok
    url: %s
    events: [notification.sent, notification.delivered]
  - id: gone
    url: %s
    events: [notification.skipped]
  - id: evil
    url: "%s"
    events: [notification.unknown]
`, receiver(http.StatusInternalServerError), receiver(http.StatusNoContent), receiver(http.StatusGone), hostileHookURL)
	h := &hookFixture{}
	for range 5 {
		h.secrets = append(h.secrets, webhook.NewSecret())
	}
	env := map[string]string{"WXN_WEBHOOK_CRM_SECRET": h.secrets[0], "WXN_WEBHOOK_OK_SECRET": h.secrets[1],
		"WXN_WEBHOOK_OK_SECRET_PREVIOUS": h.secrets[2], "WXN_WEBHOOK_GONE_SECRET": h.secrets[3], "WXN_WEBHOOK_EVIL_SECRET": h.secrets[4]}
	h.fixture = newFixtureWith(tb, testConfig+hooks, env, boot.Options{WebhooksAllowPrivate: true, WebhookTimeout: 2 * time.Second})
	return h
}

// hookSeed is what seedHooks made.
type hookSeed struct {
	aliceOpenID string
	sent        notify.Notification // to alice: crm failed, ok delivered
	skipped     []notify.Notification
}

// seedHooks makes one sent notification and skips of unbound userIds,
// then runs the tick's deliveries until none is due: crm's are failed
// (500, retried later), ok's delivered, gone's dead (410: disabled).
func seedHooks(tb testing.TB, f *hookFixture, skips int) hookSeed {
	tb.Helper()
	ctx := context.Background()
	var s hookSeed
	res, err := f.svc.Login(ctx, f.fake.Login("alice"))
	if err != nil {
		tb.Fatal(err)
	}
	s.aliceOpenID = res.OpenID
	if _, err := f.fake.Subscribe(s.aliceOpenID, map[string]string{leadID: "accept"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.svc.RecordReport(ctx, s.aliceOpenID, notify.Report{Result: map[string]string{leadID: "accept"}, ID: "report-a"}); err != nil {
		tb.Fatal(err)
	}
	s.sent, err = f.svc.Send(ctx, notify.SendRequest{To: notify.Recipient{OpenID: s.aliceOpenID}, Template: "lead_assigned",
		Source: notify.FromAPI, Data: map[string]string{"thing1": "x", "character_string2": "L-1"}})
	if err != nil || s.sent.Status != notify.StatusSent {
		tb.Fatalf("seed send: %+v, %v; want sent", s.sent, err)
	}
	for i := range skips {
		n, err := f.svc.Send(ctx, notify.SendRequest{To: notify.Recipient{UserID: fmt.Sprintf("nobody-%d", i)}, Template: "lead_assigned",
			Source: notify.FromAPI, Data: map[string]string{"thing1": "x", "character_string2": "L-1"}})
		if err != nil || n.Status != notify.StatusSkipped {
			tb.Fatalf("seed skip: %+v, %v; want skipped", n, err)
		}
		s.skipped = append(s.skipped, n)
	}
	for range 20 {
		d, fl, err := f.svc.DeliverWebhooks(ctx, time.Time{})
		if err != nil {
			tb.Fatal(err)
		}
		if d+fl == 0 {
			return s
		}
	}
	tb.Fatal("the deliveries do not end")
	return s
}

// only returns the one delivery of sub, failing otherwise.
func only(tb testing.TB, f *hookFixture, sub string, status notify.DeliveryStatus) notify.WebhookDelivery {
	tb.Helper()
	p, err := f.svc.ListWebhookDeliveries(context.Background(), sub, status, "", 100)
	if err != nil || len(p.Deliveries) != 1 {
		tb.Fatalf("deliveries of %s (%s): %+v, %v; want one", sub, status, p.Deliveries, err)
	}
	return p.Deliveries[0]
}

var deliveryRow = regexp.MustCompile(`<tr class="delivery" data-id="(msg_[A-Za-z0-9]+)" data-status="([a-z]+)">`)

// The Webhooks page shows every subscription (hostile URL as text, no
// secret, the rotation, gone disabled by its 410) with its deliveries:
// status, attempts, last error, next attempt.
func TestWebhooksPage(t *testing.T) {
	f := newHookFixture(t)
	s := seedHooks(t, f, 1)
	ck := sessionCookie(t, f.fixture)
	a := do(t, "GET", f.url+"/console/apps/default/webhooks?lang=en", nil, "text/html", nil, ck)
	if a.status != http.StatusOK {
		t.Fatalf("webhooks page: got %d: %s", a.status, a.body)
	}
	for _, want := range []string{`id="hook-crm"`, `id="hook-ok"`, `id="hook-gone"`, `id="hook-evil"`,
		`<code class="hook-url">https://x/&lt;script&gt;alert(1)&lt;/script&gt;</code>`,
		`data-secrets="2">2: a rotation`, `data-secrets="1">1 (no rotation)`,
		`data-state="disabled"`, `<code>endpoint_gone</code>`, `/webhooks/gone/enable`, "HTTP 500", "webhook: endpoint answered 500",
		`<a href="/console/apps/default/notifications/` + s.sent.ID + `">` + s.sent.ID + `:sent</a>`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("webhooks page: no %q", want)
		}
	}
	if strings.Contains(a.body, hostileScript) {
		t.Error("webhooks page: the hostile URL is markup")
	}
	for i, sec := range f.secrets {
		if strings.Contains(a.body, sec) || strings.Contains(a.body, strings.TrimPrefix(sec, "whsec_")) {
			t.Errorf("webhooks page: shows secret %d", i)
		}
	}
	if strings.Count(a.body, `data-state="enabled"`) != 3 {
		t.Errorf("webhooks page: want 3 enabled subscriptions")
	}
	// crm: the consent change, the sent and the skipped outcome, failed
	// with a retry due; ok: delivered; gone: dead.
	got := map[string]string{}
	for _, m := range deliveryRow.FindAllStringSubmatch(a.body, -1) {
		got[m[1]] = m[2]
	}
	crm, err := f.svc.ListWebhookDeliveries(context.Background(), "crm", "", "", 100)
	if err != nil || len(crm.Deliveries) != 3 {
		t.Fatalf("crm deliveries: %+v, %v; want 3", crm.Deliveries, err)
	}
	for _, d := range crm.Deliveries {
		if d.Status != notify.DeliveryFailed || got[d.ID] != "failed" || d.NextAttempt.IsZero() {
			t.Errorf("crm delivery %s: %s, shown %q; want failed with a next attempt", d.ID, d.Status, got[d.ID])
		}
		if !strings.Contains(a.body, f.clockText(d.NextAttempt)) {
			t.Errorf("crm delivery %s: next attempt %s not shown", d.ID, d.NextAttempt)
		}
	}
	ok, gone := only(t, f, "ok", notify.DeliveryDelivered), only(t, f, "gone", notify.DeliveryDead)
	if got[ok.ID] != "delivered" || got[gone.ID] != "dead" || len(got) != 5 {
		t.Errorf("rows: got %v; want 3 failed, ok's %s delivered, gone's %s dead", got, ok.ID, gone.ID)
	}
	if m := regexp.MustCompile(`(?s)data-id="` + ok.ID + `".*?<td class="last-error">([^<]*)</td>`).FindStringSubmatch(a.body); m == nil || strings.TrimSpace(m[1]) != "" {
		t.Errorf("ok's delivered row: last error %q, want none", m)
	}
	// A replay form for ok's delivered one, none for the disabled gone's.
	if !strings.Contains(a.body, `/webhooks/ok/deliveries/`+ok.ID+`/replay`) || strings.Contains(a.body, `/deliveries/`+gone.ID+`/replay`) {
		t.Error("webhooks page: want a replay form for ok's delivery only")
	}
	// Chinese too.
	zh := do(t, "GET", f.url+"/console/apps/default/webhooks?lang=zh", nil, "text/html", nil, ck)
	if zh.status != http.StatusOK || !strings.Contains(zh.body, "已停用") || !strings.Contains(zh.body, "最近的投递") {
		t.Errorf("webhooks page in Chinese: got %d without its words", zh.status)
	}
}

func (f *hookFixture) clockText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// A subscription's page lists its deliveries 20 at a time, newest first,
// with a cursor to the next page and a status filter; bad input is 4xx.
func TestWebhookPagePaging(t *testing.T) {
	f := newHookFixture(t)
	seedHooks(t, f, 22) // crm: 24 deliveries (a consent change, a sent, 22 skipped)
	ck := sessionCookie(t, f.fixture)
	all, err := f.svc.ListWebhookDeliveries(context.Background(), "crm", "", "", 100)
	if err != nil || len(all.Deliveries) != 24 {
		t.Fatalf("crm deliveries: %d, %v; want 24", len(all.Deliveries), err)
	}
	var ids []string
	target := f.url + "/console/apps/default/webhooks/crm"
	for page := 0; target != ""; page++ {
		if page > 3 {
			t.Fatal("the pages do not end")
		}
		a := do(t, "GET", target, nil, "text/html", nil, ck)
		if a.status != http.StatusOK {
			t.Fatalf("page %d: got %d: %s", page, a.status, a.body)
		}
		rows := deliveryRow.FindAllStringSubmatch(a.body, -1)
		if page == 0 && len(rows) != 20 {
			t.Errorf("first page: %d rows, want 20", len(rows))
		}
		for _, m := range rows {
			ids = append(ids, m[1])
		}
		target = ""
		if m := regexp.MustCompile(`<a id="next" href="([^"]+)"`).FindStringSubmatch(a.body); m != nil {
			target = f.url + strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(ids) != 24 {
		t.Fatalf("pages: %d rows, want 24", len(ids))
	}
	for i, d := range all.Deliveries {
		if ids[i] != d.ID {
			t.Fatalf("row %d: %s, want %s (newest first, no repeat)", i, ids[i], d.ID)
		}
	}
	a := do(t, "GET", f.url+"/console/apps/default/webhooks/gone?status=dead", nil, "text/html", nil, ck)
	if n := len(deliveryRow.FindAllStringSubmatch(a.body, -1)); a.status != http.StatusOK || n != 20 {
		t.Errorf("gone?status=dead: got %d with %d rows, want 200 with 20", a.status, n)
	}
	a = do(t, "GET", f.url+"/console/apps/default/webhooks/gone?status=delivered", nil, "text/html", nil, ck)
	if n := len(deliveryRow.FindAllStringSubmatch(a.body, -1)); a.status != http.StatusOK || n != 0 {
		t.Errorf("gone?status=delivered: got %d with %d rows, want 200 with none", a.status, n)
	}
	for path, want := range map[string]int{
		"/webhooks/nope":                http.StatusNotFound,
		"/webhooks/crm?status=bogus":    http.StatusBadRequest,
		"/webhooks/crm?cursor=bogus":    http.StatusBadRequest,
		"/webhooks/crm?cursor=1%7Cx%3C": http.StatusBadRequest,
	} {
		a := do(t, "GET", f.url+"/console/apps/default"+path, nil, "application/json", nil, ck)
		if a.status != want || a.code() == "" {
			t.Errorf("GET %s: got %d %s, want %d with a code", path, a.status, a.body, want)
		}
	}
}

// auditOf returns the app's audit entries of action, newest first, as
// the audit page shows them: target and result.
func auditOf(t *testing.T, f *fixture, ck *http.Cookie, action string) []string {
	t.Helper()
	a := do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", nil, ck)
	re := regexp.MustCompile(`<tr data-action="` + action + `">(?:<td>[^<]*</td>){2}<td><code>[0-9a-f]+</code></td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td></tr>`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(a.body, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	return out
}

// Replaying a delivery takes the session's CSRF token from the console's
// own origin: refused without it, from another site, or cross-site; with
// it the delivery is queued again (pending) and the replay audited. A
// disabled subscription's delivery is refused (409) until the enable form
// is posted, both audited.
func TestReplayDelivery(t *testing.T) {
	f := newHookFixture(t)
	s := seedHooks(t, f, 1)
	ck := sessionCookie(t, f.fixture)
	a := do(t, "GET", f.url+"/console/apps/default/webhooks", nil, "text/html", nil, ck)
	m := csrfInput.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatal("webhooks page: no CSRF token")
	}
	token := m[1]
	wrong := "x" + token[1:]
	if wrong == token {
		wrong = "y" + token[1:]
	}
	ok := only(t, f, "ok", notify.DeliveryDelivered)
	replay := f.url + "/console/apps/default/webhooks/ok/deliveries/" + ok.ID + "/replay"
	same := map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}
	for _, c := range []struct {
		what   string
		form   url.Values
		header map[string]string
		code   string
	}{
		{"no token", url.Values{}, same, "csrf_invalid"},
		{"wrong token", url.Values{"csrf": {wrong}}, same, "csrf_invalid"},
		{"another origin", url.Values{"csrf": {token}}, map[string]string{"Origin": "https://evil.example"}, "origin_refused"},
		{"null origin", url.Values{"csrf": {token}}, map[string]string{"Origin": "null"}, "origin_refused"},
		{"cross-site", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, "origin_refused"},
	} {
		a := do(t, "POST", replay, c.form, "application/json", c.header, ck)
		if a.status != http.StatusForbidden || a.code() != c.code {
			t.Errorf("replay, %s: got %d %s, want 403 %s", c.what, a.status, a.body, c.code)
		}
	}
	if d := only(t, f, "ok", ""); d.Status != notify.DeliveryDelivered || d.Replays != 0 {
		t.Fatalf("after refused replays: %s, %d replays; want delivered, none", d.Status, d.Replays)
	}
	if got := auditOf(t, f.fixture, ck, "webhook_replay"); len(got) != 0 {
		t.Fatalf("audit after refusals: %v, want no replay", got)
	}
	// From the notification page's form: back there.
	a = do(t, "POST", replay, url.Values{"csrf": {token}, "from": {"notification:" + s.sent.ID}}, "text/html", same, ck)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/notifications/"+s.sent.ID {
		t.Fatalf("replay: got %d to %q: %s", a.status, a.header.Get("Location"), a.body)
	}
	if d := only(t, f, "ok", ""); d.Status != notify.DeliveryPending || d.Replays != 1 {
		t.Fatalf("after the replay: %s, %d replays; want pending, 1", d.Status, d.Replays)
	}
	if got := auditOf(t, f.fixture, ck, "webhook_replay"); len(got) != 1 || got[0] != "ok/"+ok.ID+" pending" {
		t.Fatalf("audit: %v, want [ok/%s pending]", got, ok.ID)
	}
	// The tick delivers it again: delivered, a second attempt.
	if d, _, err := f.svc.DeliverWebhooks(context.Background(), time.Time{}); err != nil || d != 1 {
		t.Fatalf("tick after the replay: delivered %d, %v; want 1", d, err)
	}
	if d := only(t, f, "ok", ""); d.Status != notify.DeliveryDelivered || len(d.Attempts) != 2 || d.Attempts[1].Number != 2 {
		t.Fatalf("replayed delivery: %+v, want delivered on attempt 2", d)
	}

	// gone is disabled: its dead delivery is refused, audited.
	gone := only(t, f, "gone", notify.DeliveryDead)
	goneReplay := f.url + "/console/apps/default/webhooks/gone/deliveries/" + gone.ID + "/replay"
	a = do(t, "POST", goneReplay, url.Values{"csrf": {token}}, "application/json", same, ck)
	if a.status != http.StatusConflict || a.code() != "conflict" {
		t.Fatalf("replay while disabled: got %d %s, want 409 conflict", a.status, a.body)
	}
	enable := f.url + "/console/apps/default/webhooks/gone/enable"
	if a := do(t, "POST", enable, url.Values{}, "application/json", same, ck); a.status != http.StatusForbidden || a.code() != "csrf_invalid" {
		t.Fatalf("enable without a token: got %d %s, want 403 csrf_invalid", a.status, a.body)
	}
	if a := do(t, "POST", enable, url.Values{"csrf": {token}}, "application/json", map[string]string{"Origin": "https://evil.example"}, ck); a.status != http.StatusForbidden {
		t.Fatalf("enable from another origin: got %d %s, want 403", a.status, a.body)
	}
	if st, err := f.svc.WebhookStatus(context.Background(), "gone"); err != nil || !st.Disabled {
		t.Fatalf("gone after refused enables: %+v, %v; want disabled", st, err)
	}
	a = do(t, "POST", enable, url.Values{"csrf": {token}, "from": {"webhooks"}}, "text/html", same, ck)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/webhooks" {
		t.Fatalf("enable: got %d to %q: %s", a.status, a.header.Get("Location"), a.body)
	}
	if st, err := f.svc.WebhookStatus(context.Background(), "gone"); err != nil || st.Disabled {
		t.Fatalf("gone after enable: %+v, %v; want enabled", st, err)
	}
	a = do(t, "POST", goneReplay, url.Values{"csrf": {token}}, "text/html", same, ck)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/webhooks/gone" {
		t.Fatalf("replay after enable: got %d to %q", a.status, a.header.Get("Location"))
	}
	if d := only(t, f, "gone", ""); d.Status != notify.DeliveryPending {
		t.Fatalf("gone's delivery after the replay: %s, want pending", d.Status)
	}
	want := []string{"gone/" + gone.ID + " pending", "gone/" + gone.ID + " webhook_disabled", "ok/" + ok.ID + " pending"}
	if got := auditOf(t, f.fixture, ck, "webhook_replay"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("replay audit: %v, want %v", got, want)
	}
	if got := auditOf(t, f.fixture, ck, "webhook_enable"); len(got) != 1 || got[0] != "gone enabled" {
		t.Errorf("enable audit: %v, want [gone enabled]", got)
	}
	// Unknown names: 404, audited with the code; never 500.
	for _, path := range []string{
		"/webhooks/nope/deliveries/" + ok.ID + "/replay",
		"/webhooks/ok/deliveries/msg_doesnotexist/replay",
		"/webhooks/ok/deliveries/" + url.PathEscape(hostileScript) + "/replay",
		"/webhooks/nope/enable",
	} {
		a := do(t, "POST", f.url+"/console/apps/default"+path, url.Values{"csrf": {token}}, "application/json", same, ck)
		if a.status != http.StatusNotFound || a.code() != "not_found" {
			t.Errorf("POST %s: got %d %s, want 404 not_found", path, a.status, a.body)
		}
	}
	want = append([]string{"ok/&lt;script&gt;alert(1)&lt;/script&gt; delivery_not_found", "ok/msg_doesnotexist delivery_not_found",
		"nope/" + ok.ID + " webhook_not_found"}, want...)
	if got := auditOf(t, f.fixture, ck, "webhook_replay"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("replay audit after refusals: %v, want %v", got, want)
	}
	if got := auditOf(t, f.fixture, ck, "webhook_enable"); strings.Join(got, ",") != "nope webhook_not_found,gone enabled" {
		t.Errorf("enable audit after refusals: %v", got)
	}
}

// The notification page shows the deliveries of the notification's
// events, found by their derived ids, and WeChat's sent event that
// confirmed the send, from the user's timeline.
func TestNotificationPageHooks(t *testing.T) {
	f := newHookFixture(t)
	s := seedHooks(t, f, 1)
	ck := sessionCookie(t, f.fixture)
	page := func(id string) string {
		t.Helper()
		a := do(t, "GET", f.url+"/console/apps/default/notifications/"+id+"?lang=en", nil, "text/html", nil, ck)
		if a.status != http.StatusOK {
			t.Fatalf("notification page: got %d: %s", a.status, a.body)
		}
		return a.body
	}
	rows := func(body string) map[string]string {
		got := map[string]string{}
		for _, m := range deliveryRow.FindAllStringSubmatch(body, -1) {
			got[m[1]] = m[2]
		}
		return got
	}
	body := page(s.sent.ID)
	crmSent := webhook.DeliveryID(s.sent.ID+":sent", "crm")
	okSent := webhook.DeliveryID(s.sent.ID+":sent", "ok")
	if got := rows(body); len(got) != 2 || got[crmSent] != "failed" || got[okSent] != "delivered" {
		t.Errorf("sent notification's deliveries: %v, want crm's %s failed and ok's %s delivered", got, crmSent, okSent)
	}
	if !strings.Contains(body, `<input type="hidden" name="from" value="notification:`+s.sent.ID+`">`) {
		t.Error("sent notification: the replay form does not lead back here")
	}
	if !strings.Contains(body, `id="no-sent-event"`) {
		t.Error("before WeChat's sent event: want none shown")
	}
	skipped := s.skipped[0]
	if got := rows(page(skipped.ID)); len(got) != 2 || got[webhook.DeliveryID(skipped.ID+":skipped", "crm")] != "failed" ||
		got[webhook.DeliveryID(skipped.ID+":skipped", "gone")] != "dead" {
		t.Errorf("skipped notification's deliveries: %v, want crm's failed and gone's dead", got)
	}

	// WeChat's sent event for the message: shown, with its time and status.
	f.clock.advance(3 * time.Second)
	at := f.now().Truncate(time.Second)
	err := f.svc.ApplyPush(context.Background(), wechat.PushEvent{ToUserName: "gh_test", FromUserName: s.aliceOpenID, CreateTime: at.Unix(),
		MsgType: "event", Event: wechat.EventSubscribeSent, Items: []wechat.PushItem{{TemplateID: leadID, MsgID: s.sent.WeChat.MsgID, ErrorStatus: "success"}}})
	if err != nil {
		t.Fatal(err)
	}
	body = page(s.sent.ID)
	if !strings.Contains(body, `<dd id="sent-event-at">`+f.clockText(at)+`</dd>`) || !strings.Contains(body, `<dd id="sent-event-status">success</dd>`) {
		t.Errorf("after WeChat's sent event: not shown: %s", body[strings.Index(body, `id="push-event"`):][:600])
	}
	if strings.Contains(page(skipped.ID), `id="sent-event-at"`) {
		t.Error("skipped notification: shows a sent event")
	}
}

// An app without webhooks: the page says so, the notification page has
// no webhook section.
func TestWebhooksPageWithoutWebhooks(t *testing.T) {
	f := newFixture(t, nil)
	ck := sessionCookie(t, f)
	a := do(t, "GET", f.url+"/console/apps/default/webhooks", nil, "text/html", nil, ck)
	if a.status != http.StatusOK || !strings.Contains(a.body, `id="no-webhooks"`) {
		t.Errorf("webhooks page without webhooks: got %d: %s", a.status, a.body)
	}
	if a := do(t, "GET", f.url+"/console/apps/default/webhooks/crm", nil, "application/json", nil, ck); a.status != http.StatusNotFound || a.code() != "not_found" {
		t.Errorf("a webhook of none: got %d %s, want 404 not_found", a.status, a.body)
	}
}
