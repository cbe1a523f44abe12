package console_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// tsendConfig is the catalog of the test send tests: visit_booked rejects
// bad values (a thing, a time, a phone number), visit_note truncates them.
// The first's title and label are hostile.
const tsendConfig = `templates:
  - alias: visit_booked
    id: vis-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4
    title: "` + hostileImg + `"
    kind: one-time
    policy: reject
    keywords:
      - name: thing1
        label: "` + hostileScript + `"
      - name: time2
        label: 到访时间
      - name: phone_number3
        label: 电话
  - alias: visit_note
    id: vnt-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE
    title: 到访备注
    kind: one-time
    policy: truncate
    keywords:
      - name: thing1
      - name: character_string2
`

const (
	visitID    = "vis-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
	tsendUser  = "alice-1"
	longThing  = "深圳市前海国际供应链管理服务有限公司华南区分公司"
	cutThing   = "深圳市前海国际供应链管理服务有限公司华…"
	goodThing  = "某某科技有限公司"
	goodTime   = "2019年10月1日 15:01"
	goodPhone  = "+86-0766-66888866"
	tsendCodeL = "L-1001"
)

// tsendFixture is the dev wiring on tsendConfig with alice bound to
// tsendUser holding credits of visit_booked; it returns her openid.
func tsendFixture(t *testing.T, credits int) (*fixture, string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "tsend.yaml")
	if err := os.WriteFile(cfg, []byte(tsendConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, map[string]string{"WXN_CONFIG": cfg})
	ctx := context.Background()
	res, err := f.svc.Login(ctx, f.fake.Login("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Bind(ctx, tsendUser, f.fake.Login("alice")); err != nil {
		t.Fatal(err)
	}
	for i := range credits {
		if _, err := f.fake.Subscribe(res.OpenID, map[string]string{visitID: "accept"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RecordReport(ctx, res.OpenID, notify.Report{Result: map[string]string{visitID: "accept"},
			ID: "tsend-report-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	return f, res.OpenID
}

// credits is the openid's credits of visit_booked.
func credits(t *testing.T, f *fixture, openID string) int64 {
	t.Helper()
	tmpl, _ := f.svc.Catalog().Lookup("visit_booked")
	c, err := f.svc.Consent(context.Background(), openID, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return c.Credits
}

// fieldRow is the row of keyword kw in the test send page's table.
func fieldRow(t *testing.T, body, kw string) string {
	t.Helper()
	i := strings.Index(body, `<tr data-keyword="`+kw+`"`)
	if i < 0 {
		t.Fatalf("no row of %s in the page: %s", kw, body)
	}
	j := strings.Index(body[i:], "</tr>")
	return body[i : i+j]
}

var (
	keyInput  = regexp.MustCompile(`name="idempotencyKey" value="(console-test-[0-9a-f]{16})"`)
	notifLink = regexp.MustCompile(`id="notification-link" href="/console/apps/default/notifications/(ntf_[A-Za-z0-9_-]+)"`)
)

// tsendSession signs in and returns the session cookie and the CSRF token
// of the test send form of alias.
func tsendSession(t *testing.T, f *fixture, alias string) (*http.Cookie, string, answer) {
	t.Helper()
	session := sessionCookie(t, f)
	a := do(t, "GET", f.url+"/console/apps/default/templates/"+alias+"/test", nil, "text/html", nil, session)
	m := csrfInput.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		t.Fatalf("test send form of %s: got %d without a CSRF token: %s", alias, a.status, a.body)
	}
	return session, m[1], a
}

func TestTestSendCheckShowsTheRules(t *testing.T) {
	f, openID := tsendFixture(t, 2)
	session, token, form := tsendSession(t, f, "visit_booked")
	// The form: one input per keyword with its type and WeChat's rule,
	// userId, page and state; the hostile title and label as text.
	for _, want := range []string{`name="data.thing1"`, `name="data.time2"`, `name="data.phone_number3"`, `name="userId"`,
		`name="page"`, `name="miniprogramState"`, "20个以内字符", "17位以内,数字、符号", "&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(form.body, want) {
			t.Errorf("form: no %q", want)
		}
	}
	if strings.Contains(form.body, hostileScript) || strings.Contains(form.body, hostileImg) {
		t.Errorf("form: hostile text as markup")
	}
	// The templates page links to it.
	if a := do(t, "GET", f.url+"/console/apps/default/templates", nil, "text/html", nil, session); !strings.Contains(a.body,
		`href="/console/apps/default/templates/visit_booked/test"`) {
		t.Errorf("templates page: no link to the test send: %s", a.body)
	}

	sends, left := f.fake.Calls(wechattest.APISend), credits(t, f, openID)
	same := map[string]string{"Origin": f.url}
	check := f.url + "/console/apps/default/templates/visit_booked/test/check"
	a := do(t, "POST", check, url.Values{"csrf": {token}, "userId": {tsendUser}, "miniprogramState": {"developer"},
		"data.thing1": {longThing}, "data.time2": {"9:05"}, "data.phone_number3": {"0766-ABC"}}, "text/html", same, session)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<code id="error-code">bad_request</code>`) {
		t.Fatalf("check of bad values: got %d, want 400 bad_request on the page: %s", a.status, a.body)
	}
	for kw, rule := range map[string]string{
		"thing1":        "thing value has 24 characters, limit 20",
		"time2":         "time value is not a time HH:MM or HH:MM:SS",
		"phone_number3": "phone_number value must not contain letters",
	} {
		row := fieldRow(t, a.body, kw)
		if !strings.Contains(row, `data-result="failed"`) || !strings.Contains(row, `<code class="code">bad_request</code>`) ||
			!strings.Contains(row, `<code class="field">data.`+kw+`</code>`) || !strings.Contains(row, rule) {
			t.Errorf("check row %s: got %s, want refused with bad_request, data.%s and %q", kw, row, kw, rule)
		}
	}
	if strings.Contains(a.body, `id="send-form"`) {
		t.Errorf("check of bad values: a confirmation form, want none")
	}
	// The values come back in their inputs.
	if !strings.Contains(fieldRow(t, a.body, "time2"), `value="9:05"`) {
		t.Errorf("check: the posted time is not in its input")
	}

	// A good request: every field OK, a confirmation form with a key;
	// a page that is no page is the request's refusal.
	a = do(t, "POST", check, url.Values{"csrf": {token}, "userId": {tsendUser}, "data.thing1": {goodThing},
		"data.time2": {goodTime}, "data.phone_number3": {goodPhone}}, "text/html", same, session)
	if a.status != http.StatusOK || keyInput.FindStringSubmatch(a.body) == nil || strings.Count(a.body, `data-result="ok"`) != 3 {
		t.Errorf("check of good values: got %d, want 200, 3 OK and the confirmation form: %s", a.status, a.body)
	}
	a = do(t, "POST", check, url.Values{"csrf": {token}, "userId": {tsendUser}, "page": {"https://evil.example/x"},
		"data.thing1": {goodThing}, "data.time2": {goodTime}}, "text/html", same, session)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `id="request-problem"`) || !strings.Contains(a.body, `<code class="field">page</code>`) ||
		!strings.Contains(fieldRow(t, a.body, "phone_number3"), "missing value for keyword phone_number3") {
		t.Errorf("check of a bad page and a missing value: got %d, want 400 naming page and phone_number3: %s", a.status, a.body)
	}
	a = do(t, "POST", check, url.Values{"csrf": {token}, "data.thing1": {goodThing}}, "text/html", same, session)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<code class="field">to</code>`) {
		t.Errorf("check without userId: got %d, want 400 naming to: %s", a.status, a.body)
	}

	// Checking sent nothing and spent nothing.
	if got := f.fake.Calls(wechattest.APISend); got != sends {
		t.Errorf("checks called WeChat's send: %d calls, want %d", got, sends)
	}
	if got := credits(t, f, openID); got != left {
		t.Errorf("checks spent credits: %d left, want %d", got, left)
	}
	pg, err := f.svc.ListNotifications(context.Background(), notify.NotificationFilter{}, "", 10)
	if err != nil || len(pg.Notifications) != 0 {
		t.Errorf("checks made notifications: %v, %v", pg.Notifications, err)
	}

	// An unknown alias, or a template named by its WeChat id: not found.
	for _, path := range []string{"templates/nope/test", "templates/" + visitID + "/test"} {
		if a := do(t, "GET", f.url+"/console/apps/default/"+path, nil, "application/json", nil, session); a.status != 404 || a.code() != "not_found" {
			t.Errorf("GET %s: got %d %s, want 404 not_found", path, a.status, a.body)
		}
	}
	if a := do(t, "POST", f.url+"/console/apps/default/templates/nope/test/check", url.Values{"csrf": {token}}, "application/json", same, session); a.status != 404 {
		t.Errorf("check of an unknown alias: got %d, want 404", a.status)
	}
}

func TestTestSendTruncationPreview(t *testing.T) {
	f, _ := tsendFixture(t, 0)
	session, token, _ := tsendSession(t, f, "visit_note")
	a := do(t, "POST", f.url+"/console/apps/default/templates/visit_note/test/check", url.Values{"csrf": {token}, "userId": {tsendUser},
		"data.thing1": {longThing}, "data.character_string2": {"A 1"}}, "text/html", map[string]string{"Origin": f.url}, session)
	row := fieldRow(t, a.body, "thing1")
	if !strings.Contains(row, `data-result="truncated"`) || !strings.Contains(row, `<code class="send">`+cutThing+`</code>`) {
		t.Errorf("truncate policy, long thing: got %s, want the value truncated to %q", row, cutThing)
	}
	// A code is never cut: refused under truncate too.
	if row := fieldRow(t, a.body, "character_string2"); a.status != http.StatusBadRequest || !strings.Contains(row, `data-result="failed"`) ||
		!strings.Contains(row, "character_string value must not contain spaces") {
		t.Errorf("truncate policy, code with a space: got %d %s, want refused", a.status, row)
	}
	a = do(t, "POST", f.url+"/console/apps/default/templates/visit_note/test/check", url.Values{"csrf": {token}, "userId": {tsendUser},
		"data.thing1": {longThing}, "data.character_string2": {tsendCodeL}}, "text/html", map[string]string{"Origin": f.url}, session)
	if a.status != http.StatusOK || !strings.Contains(fieldRow(t, a.body, "thing1"), cutThing) || keyInput.FindStringSubmatch(a.body) == nil {
		t.Errorf("truncate policy, long thing and a good code: got %d, want 200 with the truncated value and a confirmation: %s", a.status, a.body)
	}
}

func TestTestSendSends(t *testing.T) {
	f, openID := tsendFixture(t, 2)
	session, token, _ := tsendSession(t, f, "visit_booked")
	same := map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}
	base := f.url + "/console/apps/default/templates/visit_booked/test"
	good := url.Values{"csrf": {token}, "userId": {tsendUser}, "miniprogramState": {"developer"}, "page": {"pages/visit/visit?id=7"},
		"data.thing1": {goodThing}, "data.time2": {goodTime}, "data.phone_number3": {goodPhone}}
	a := do(t, "POST", base+"/check", good, "text/html", same, session)
	m := keyInput.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		t.Fatalf("check: got %d without a confirmation form: %s", a.status, a.body)
	}
	key := m[1]
	// The confirmation form holds what was checked.
	for _, want := range []string{`<input type="hidden" name="data.time2" value="` + goodTime + `">`, `<input type="hidden" name="userId" value="` + tsendUser + `">`,
		`<input type="hidden" name="miniprogramState" value="developer">`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("confirmation form: no %q", want)
		}
	}
	sends, left := f.fake.Calls(wechattest.APISend), credits(t, f, openID)

	// Forged posts of the send form: refused, nothing sent.
	cookie := session.Value
	postForged(t, base+"/send", cookie)
	postForged(t, base+"/check", cookie)
	if got := f.fake.Calls(wechattest.APISend); got != sends {
		t.Errorf("forged posts sent: %d calls, want %d", got, sends)
	}

	// A send without a check's key, or with bad values: refused, shown.
	send := url.Values{}
	for k, v := range good {
		send[k] = v
	}
	a = do(t, "POST", base+"/send", send, "text/html", same, session)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<code class="field">idempotencyKey</code>`) {
		t.Errorf("send without a key: got %d, want 400 naming idempotencyKey: %s", a.status, a.body)
	}
	send.Set("idempotencyKey", key)
	send.Set("data.phone_number3", "0766-ABC")
	a = do(t, "POST", base+"/send", send, "text/html", same, session)
	if row := fieldRow(t, a.body, "phone_number3"); a.status != http.StatusBadRequest || !strings.Contains(row, "phone_number value must not contain letters") ||
		strings.Contains(a.body, `id="outcome"`) {
		t.Errorf("send of a bad value: got %d %s, want 400 with the rule and no outcome", a.status, row)
	}
	if got, gotLeft := f.fake.Calls(wechattest.APISend), credits(t, f, openID); got != sends || gotLeft != left {
		t.Errorf("refused sends: %d calls and %d credits, want %d and %d", got, gotLeft, sends, left)
	}

	// The confirmed send: sent through Send, a credit spent, linked.
	send.Set("data.phone_number3", goodPhone)
	a = do(t, "POST", base+"/send", send, "text/html", same, session)
	link := notifLink.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || link == nil || !strings.Contains(a.body, `id="outcome-status">sent</span>`) {
		t.Fatalf("send: got %d, want 200, sent, with a link to the notification: %s", a.status, a.body)
	}
	if got, gotLeft := f.fake.Calls(wechattest.APISend), credits(t, f, openID); got != sends+1 || gotLeft != left-1 {
		t.Errorf("send: %d calls and %d credits, want %d and %d", got, gotLeft, sends+1, left-1)
	}
	n, err := f.svc.Notification(context.Background(), link[1])
	if err != nil || n.Status != notify.StatusSent || n.IdempotencyKey != key || n.To.UserID != tsendUser || n.MiniprogramState != "developer" ||
		n.Page != "pages/visit/visit?id=7" || n.Data["time2"] != goodTime || n.Template != "visit_booked" {
		t.Errorf("the notification: got %+v, %v; want sent with the form's key and values", n, err)
	}
	msgs := f.fake.Messages(openID)
	if len(msgs) == 0 {
		t.Errorf("WeChat holds no message for alice")
	}
	// Posted again (a double click): the same notification, no new send.
	a = do(t, "POST", base+"/send", send, "text/html", same, session)
	if again := notifLink.FindStringSubmatch(a.body); again == nil || again[1] != link[1] || f.fake.Calls(wechattest.APISend) != sends+1 {
		t.Errorf("send posted twice: got %v and %d calls, want %s and %d", again, f.fake.Calls(wechattest.APISend), link[1], sends+1)
	}

	// The audit log: the refusals and the sends, with template, user,
	// notification and status.
	a = do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", nil, session)
	want := `<tr data-action="test_send">`
	if got := strings.Count(a.body, want); got != 4 {
		t.Errorf("audit: %d test_send entries, want 4 (2 refused, 2 sent): %s", got, a.body)
	}
	for _, cell := range []string{"<td>visit_booked · userId " + tsendUser + "</td><td>sent · <a href=\"/console/apps/default/notifications/" + link[1] + "\">" + link[1] + "</a></td>",
		"<td>visit_booked · userId " + tsendUser + "</td><td>bad_request</td>"} {
		if !strings.Contains(a.body, cell) {
			t.Errorf("audit: no %q", cell)
		}
	}

	// With no credit left after another send, the next is skipped, and
	// said so.
	if _, err := f.svc.Send(context.Background(), notify.SendRequest{To: notify.Recipient{UserID: tsendUser}, Template: "visit_booked",
		Data: map[string]string{"thing1": goodThing, "time2": goodTime, "phone_number3": goodPhone}, IdempotencyKey: "use-the-last"}); err != nil {
		t.Fatal(err)
	}
	a = do(t, "POST", base+"/check", good, "text/html", same, session)
	send.Set("idempotencyKey", keyInput.FindStringSubmatch(a.body)[1])
	a = do(t, "POST", base+"/send", send, "text/html", same, session)
	if a.status != http.StatusOK || !strings.Contains(a.body, `id="outcome-status">skipped</span>`) || !strings.Contains(a.body, `<dd id="outcome-reason">no_consent</dd>`) {
		t.Errorf("send without credit: got %d, want skipped no_consent: %s", a.status, a.body)
	}
}

func TestTestSendHostileData(t *testing.T) {
	f, _ := tsendFixture(t, 1)
	session, token, _ := tsendSession(t, f, "visit_note")
	a := do(t, "POST", f.url+"/console/apps/default/templates/visit_note/test/check", url.Values{"csrf": {token}, "userId": {hostileScript},
		"page": {hostileImg}, "data.thing1": {hostileScript}, "data.character_string2": {hostileImg}}, "text/html", map[string]string{"Origin": f.url}, session)
	if a.status != http.StatusBadRequest {
		t.Errorf("hostile check: got %d, want 400", a.status)
	}
	if strings.Contains(a.body, hostileScript) || strings.Contains(a.body, hostileImg) || strings.Contains(a.body, "<script>al") {
		t.Errorf("hostile check: the values as markup: %s", a.body)
	}
	for _, want := range []string{`value="&lt;script&gt;alert(1)&lt;/script&gt;"`, `value="&lt;img src=x onerror=alert(1)&gt;"`,
		`<code class="send">&lt;script&gt;alert(1)&lt;/s…</code>`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("hostile check: no %q in %s", want, a.body)
		}
	}
}
