package notify

import (
	"errors"
	"strings"
	"testing"
)

// TestIsAppRef pins what can name an app, in events and in routes: 1 to 64
// ASCII letters, digits, '-' or '_'.
func TestIsAppRef(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"sales", true}, {"wx1234567890abcdef", true}, {"a-b_C9", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"a b", false}, {"a/b", false}, {"é", false}, {"a.b", false},
	} {
		if got := IsAppRef(tc.s); got != tc.want {
			t.Errorf("IsAppRef(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestParseEventRefusesBadApp: an event's "app" that names no app is
// malformed (not retried), one that can is kept.
func TestParseEventRefusesBadApp(t *testing.T) {
	const rest = `"type":"lead.assigned","id":"ev-1","leadId":"L-1","assignee":"u1"`
	for _, app := range []string{`""`, `"a b"`, `"` + strings.Repeat("a", 65) + `"`, `7`} {
		if _, err := ParseEvent([]byte(`{` + rest + `,"app":` + app + `}`)); !errors.Is(err, ErrEventMalformed) {
			t.Errorf("app %s: got %v, want ErrEventMalformed", app, err)
		}
	}
	ev, err := ParseEvent([]byte(`{` + rest + `,"app":"sales"}`))
	if err != nil || ev.App != "sales" {
		t.Fatalf("app sales: got %+v, %v", ev, err)
	}
}
