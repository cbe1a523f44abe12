package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// usersSeeded is what seedUsers made on top of seed.
type usersSeeded struct {
	seeded
	carolOpenID string // logged in, never bound, 1 credit of registration
}

// hostileAttr is a userId that breaks out of an attribute; it has spaces,
// so it is no userId and is refused, shown back in the search form.
const hostileAttr = `"><img src=x onerror=alert(1)>`

// seedUsers is seed plus bob bound to "bob-42" who rejected registration,
// and carol, who logged in without a binding and accepted registration
// once. After seed, alice (userId hostileScript) has 1 credit of
// lead_assigned left: 4 accepts, 3 sends (2 single, 1 of the done batch).
func seedUsers(tb testing.TB, f *fixture) usersSeeded {
	tb.Helper()
	ctx := context.Background()
	s := usersSeeded{seeded: seed(tb, f)}
	if _, err := f.svc.Bind(ctx, "bob-42", f.fake.Login("bob")); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.svc.RecordReport(ctx, s.bobOpenID, notify.Report{Result: map[string]string{regID: "reject"}, ID: "bob-reject"}); err != nil {
		tb.Fatal(err)
	}
	res, err := f.svc.Login(ctx, f.fake.Login("carol"))
	if err != nil {
		tb.Fatal(err)
	}
	s.carolOpenID = res.OpenID
	if _, err := f.svc.RecordReport(ctx, s.carolOpenID, notify.Report{Result: map[string]string{regID: "accept"}, ID: "carol-accept"}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// ledgerCell is the text of the ledger's cell k of the template alias.
func ledgerCell(t *testing.T, body, alias, k string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr data-alias="` + alias + `">(.*?)</tr>`).FindStringSubmatch(body)
	if row == nil {
		t.Fatalf("no ledger row of %s: %s", alias, body)
	}
	m := regexp.MustCompile(`<td data-k="` + k + `">([^<]*)</td>`).FindStringSubmatch(row[1])
	if m == nil {
		t.Fatalf("no %s cell in the ledger row of %s: %s", k, alias, row[1])
	}
	return html.UnescapeString(m[1])
}

var (
	eventRow = regexp.MustCompile(`<tr data-type="([a-z_]+)" data-status="([^"]*)"(?: data-notification="([^"]+)")?>`)
	nextLink = regexp.MustCompile(`id="next" href="([^"]+)"`)
)

func TestUsersPage(t *testing.T) {
	f := newFixture(t, nil)
	s := seedUsers(t, f)
	session := sessionCookie(t, f)
	app := f.url + "/console/apps/default"
	getPage := func(path string) answer {
		t.Helper()
		return do(t, "GET", app+path, nil, "text/html", map[string]string{"Accept-Language": "en"}, session)
	}

	// The search form, in the nav, with labelled inputs.
	a := getPage("/users")
	if a.status != 200 || !strings.Contains(a.body, `<a href="/console/apps/default/users" class="on" aria-current="page">Users</a>`) ||
		!strings.Contains(a.body, `<label>userId <input name="userId" id="q-user-id"`) || !strings.Contains(a.body, `<html lang="en">`) {
		t.Fatalf("users: got %d without the nav entry, the labelled form or the lang: %s", a.status, a.body)
	}

	// A userId leads to its page; its hostile text is escaped there.
	a = getPage("/users?userId=" + url.QueryEscape(hostileScript))
	userPath := "/console/apps/default/users/" + url.PathEscape(hostileScript)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != userPath {
		t.Fatalf("search by userId: got %d to %q, want 303 to %s", a.status, a.header.Get("Location"), userPath)
	}
	a = do(t, "GET", f.url+userPath, nil, "text/html", map[string]string{"Accept-Language": "en"}, session)
	if a.status != 200 {
		t.Fatalf("user page: got %d: %s", a.status, a.body)
	}
	if strings.Contains(a.body, hostileScript) || !strings.Contains(a.body, `<code id="user-id">&lt;script&gt;alert(1)&lt;/script&gt;</code>`) {
		t.Errorf("user page: the hostile userId is not escaped")
	}
	if !strings.Contains(a.body, `<code class="openid">`+s.aliceOpenID+`</code>`) {
		t.Errorf("user page: no binding to alice's openid %s", s.aliceOpenID)
	}
	if got := ledgerCell(t, a.body, "lead_assigned", "credits"); got != "1" {
		t.Errorf("alice's lead_assigned credits: got %q, want 1 (4 accepts, 3 sends)", got)
	}
	if got := ledgerCell(t, a.body, "lead_assigned", "status"); got != "accept" {
		t.Errorf("alice's lead_assigned status: got %q, want accept", got)
	}
	if got := ledgerCell(t, a.body, "registration", "credits"); got != "0" {
		t.Errorf("alice's registration credits: got %q, want 0", got)
	}
	if got := ledgerCell(t, a.body, "registration", "status"); got != "never asked" {
		t.Errorf("alice's registration status: got %q, want never asked", got)
	}
	// The timeline: 3 sent outcomes, each linking to its notification,
	// and the 4 accepts, newest first.
	var types []string
	links := 0
	for _, m := range eventRow.FindAllStringSubmatch(a.body, -1) {
		types = append(types, m[1]+":"+m[2])
		if m[3] != "" && strings.Contains(a.body, `<a href="/console/apps/default/notifications/`+m[3]+`">`) {
			links++
		}
	}
	if got, want := strings.Join(types, ","), "notification:sent,notification:sent,notification:sent,consent:accept,consent:accept,consent:accept,consent:accept"; got != want {
		t.Errorf("timeline: got %s, want %s", got, want)
	}
	if links != 3 || !strings.Contains(a.body, `data-notification="`+s.sentID+`"`) {
		t.Errorf("timeline: got %d links to notifications, want 3, one to %s", links, s.sentID)
	}

	// Cursor paging: 3 events a page, the pages together are the timeline.
	var paged []string
	target := userPath + "?limit=3"
	for range 5 {
		a = do(t, "GET", f.url+target, nil, "text/html", nil, session)
		if a.status != 200 {
			t.Fatalf("timeline page %s: got %d", target, a.status)
		}
		for _, m := range eventRow.FindAllStringSubmatch(a.body, -1) {
			paged = append(paged, m[1]+":"+m[2])
		}
		next := nextLink.FindStringSubmatch(a.body)
		if next == nil {
			break
		}
		if !strings.Contains(a.body, `id="first"`) && len(paged) > 3 {
			t.Errorf("timeline page %s: no link to the first page", target)
		}
		target = html.UnescapeString(next[1])
	}
	if got := strings.Join(paged, ","); got != strings.Join(types, ",") {
		t.Errorf("timeline by pages of 3: got %s, want %s", got, strings.Join(types, ","))
	}

	// The openid of a bound user leads to the userId's page; an unbound
	// openid shows its own ledger.
	a = getPage("/users?openid=" + s.aliceOpenID)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != userPath {
		t.Errorf("search by alice's openid: got %d to %q, want 303 to %s", a.status, a.header.Get("Location"), userPath)
	}
	a = getPage("/users?openid=" + s.bobOpenID)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/apps/default/users/bob-42" {
		t.Errorf("search by bob's openid: got %d to %q, want 303 to bob-42", a.status, a.header.Get("Location"))
	}
	a = getPage("/users/bob-42")
	if got := ledgerCell(t, a.body, "registration", "status"); a.status != 200 || got != "reject" {
		t.Errorf("bob-42: got %d, registration %q, want 200 and reject", a.status, got)
	}
	a = getPage("/users?openid=" + s.carolOpenID)
	if a.status != 200 || !strings.Contains(a.body, `<code id="openid">`+s.carolOpenID+`</code>`) ||
		!strings.Contains(a.body, "No userId is bound to this openid.") {
		t.Fatalf("search by carol's openid: got %d without her ledger: %s", a.status, a.body)
	}
	if got := ledgerCell(t, a.body, "registration", "credits"); got != "1" {
		t.Errorf("carol's registration credits: got %q, want 1", got)
	}

	// Bad input: the form again with the problem and its code; hostile
	// input shown as text.
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/users?userId=&openid=", 400, "bad_request"},
		{"/users?userId=a&openid=b", 400, "bad_request"},
		{"/users?userId=" + url.QueryEscape(hostileAttr), 400, "bad_request"},
		{"/users?userId=" + url.QueryEscape(hostileImg), 400, "bad_request"},
		{"/users?openid=" + url.QueryEscape(hostileAttr), 400, "bad_request"},
		{"/users?userId=nobody-1", 404, "user_not_found"},
		{"/users?openid=oNeverSeen", 200, ""},
		{"/users/nobody-1", 404, "user_not_found"},
		{"/users/a%20b", 400, "bad_request"},
		{"/users/a%7Cb/unbind", 400, "bad_request"},
		{"/users/nobody-1/unbind", 404, "user_not_found"},
		{"/users/bob-42?cursor=xyz", 400, "bad_request"},
		{"/users/bob-42?limit=0", 400, "bad_request"},
		{"/users/bob-42?limit=101", 400, "bad_request"},
	} {
		a := getPage(tc.path)
		if a.status != tc.status || (tc.code != "" && !strings.Contains(a.body, `<code id="error-code">`+tc.code+`</code>`)) {
			t.Errorf("GET %s: got %d, want %d with %s on the page: %s", tc.path, a.status, tc.status, tc.code, a.body)
		}
		if strings.Contains(a.body, "<img src=x") || strings.Contains(a.body, `"><img`) || strings.Contains(a.body, hostileScript) {
			t.Errorf("GET %s: hostile input not escaped: %s", tc.path, a.body)
		}
	}
	a = getPage("/users?userId=" + url.QueryEscape(hostileAttr))
	if !strings.Contains(a.body, `value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"`) {
		t.Errorf("bad userId: the form does not show it back escaped: %s", a.body)
	}
	if !strings.Contains(a.body, "A userId is 1 to 128 bytes") {
		t.Errorf("bad userId: no message saying what a userId is")
	}
	// Chinese too.
	a = do(t, "GET", app+"/users?userId=", nil, "text/html", map[string]string{"Accept-Language": "zh-CN"}, session)
	if !strings.Contains(a.body, "请输入 userId 或 openid。") || !strings.Contains(a.body, `<html lang="zh-CN">`) {
		t.Errorf("users in Chinese: got no Chinese message: %s", a.body)
	}
}

func TestUnbindUser(t *testing.T) {
	f := newFixture(t, nil)
	s := seedUsers(t, f)
	session := sessionCookie(t, f)
	userPath := f.url + "/console/apps/default/users/" + url.PathEscape(hostileScript)
	en := map[string]string{"Accept-Language": "en"}

	// The user page leads to the confirmation, which says what happens.
	a := do(t, "GET", userPath, nil, "text/html", en, session)
	if !strings.Contains(a.body, `id="unbind" href="/console/apps/default/users/`+url.PathEscape(hostileScript)+`/unbind"`) {
		t.Fatalf("user page: no unbind link: %s", a.body)
	}
	a = do(t, "GET", userPath+"/unbind", nil, "text/html", en, session)
	m := csrfInput.FindStringSubmatch(a.body)
	if a.status != 200 || m == nil || !strings.Contains(a.body, `<code class="openid">`+s.aliceOpenID+`</code>`) ||
		!strings.Contains(a.body, "unbound_user") || strings.Contains(a.body, hostileScript) {
		t.Fatalf("unbind page: got %d without the token, the openid, the consequence or with the userId unescaped: %s", a.status, a.body)
	}
	token := m[1]

	// Refused without the token or from another site; the binding stays.
	postForged(t, userPath+"/unbind", session.Value)
	if b, err := f.svc.Binding(context.Background(), hostileScript); err != nil || b.OpenID != s.aliceOpenID {
		t.Fatalf("after forged unbinds: got %+v %v, want alice still bound", b, err)
	}

	// With the token from the console's origin: unbound, audited, and the
	// user page says so.
	same := map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}
	a = do(t, "POST", userPath+"/unbind", url.Values{"csrf": {token}}, "text/html", same, session)
	wantTo := "/console/apps/default/users/" + url.PathEscape(hostileScript) + "?notice=unbound"
	if a.status != http.StatusSeeOther || a.header.Get("Location") != wantTo {
		t.Fatalf("unbind: got %d to %q, want 303 to %s: %s", a.status, a.header.Get("Location"), wantTo, a.body)
	}
	if _, err := f.svc.Binding(context.Background(), hostileScript); notify.CodeOf(err) != notify.CodeUserNotFound {
		t.Errorf("after unbind: got %v, want user_not_found", err)
	}
	if u, err := f.svc.User(context.Background(), s.aliceOpenID); err != nil || u.UserID != "" {
		t.Errorf("after unbind: alice's record %+v %v, want no userId", u, err)
	}
	a = do(t, "GET", f.url+wantTo, nil, "text/html", en, session)
	if a.status != 200 || !strings.Contains(a.body, `id="notice"`) || !strings.Contains(a.body, "Unbound:") {
		t.Errorf("after unbind, the user page: got %d without the notice: %s", a.status, a.body)
	}
	if a := do(t, "GET", userPath, nil, "text/html", en, session); a.status != 404 {
		t.Errorf("after unbind, without the notice: got %d, want 404", a.status)
	}
	// Again: nothing to unbind, audited too.
	a = do(t, "POST", userPath+"/unbind", url.Values{"csrf": {token}}, "application/json", same, session)
	if a.status != http.StatusNotFound || a.code() != "user_not_found" {
		t.Errorf("unbind again: got %d %s, want 404 user_not_found", a.status, a.body)
	}
	a = do(t, "GET", f.url+"/console/apps/default/audit", nil, "text/html", en, session)
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"
	for _, want := range []string{
		`<tr data-action="user_unbind">`,
		"<td>" + escaped + "</td><td>user_not_found</td>",
		"<td>" + escaped + "</td><td>unbound</td>",
		"user unbind",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("audit: got no %q: %s", want, a.body)
		}
	}
	if strings.Count(a.body, `<tr data-action="user_unbind">`) != 2 {
		t.Errorf("audit: got %d user_unbind entries, want 2", strings.Count(a.body, `<tr data-action="user_unbind">`))
	}
	if strings.Contains(a.body, hostileScript) {
		t.Errorf("audit: the hostile userId is not escaped")
	}
}
