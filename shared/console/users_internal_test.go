package console

import (
	"regexp"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestUsersMessages: every word users.html asks for is a message in both
// languages, and so are the domain values the Users pages translate.
func TestUsersMessages(t *testing.T) {
	b, err := templateFiles.ReadFile("templates/users.html")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.T "([a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
		keys[m[1]] = true
	}
	if len(keys) < 30 {
		t.Fatalf("found %d message keys in users.html, want the page's words", len(keys))
	}
	for _, k := range []string{"users", "act_user_unbind", "users_empty", "users_both", "users_bad_user_id", "users_bad_openid",
		"users_not_found", "users_notice_unbound", "users_bad_limit", "users_bad_cursor"} {
		keys[k] = true
	}
	for _, v := range []string{notify.TimelineConsent, notify.TimelineNotification, notify.TimelineSentEvent} {
		keys["ev_"+v] = true
	}
	for _, v := range []string{notify.StatusAccept, notify.StatusReject, notify.StatusBan, notify.StatusFilter} {
		keys["cs_"+v] = true
	}
	for _, v := range []notify.Source{notify.SourceReport, notify.SourceSettings, notify.SourcePopup, notify.SourceChange, notify.SourceSend} {
		keys["src_"+string(v)] = true
	}
	for k := range keys {
		m, ok := messages[k]
		if !ok || m[0] == "" || m[1] == "" {
			t.Errorf("message %q: got %q, want Chinese and English words", k, m)
		}
	}
}
