package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/httpapi"
)

// statsRow returns the fields of the stats table's row for day and
// template, nil when there is none.
func statsRow(out, day, tmpl string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == day && f[1] == tmpl {
			return f
		}
	}
	return nil
}

func TestStatsCommand(t *testing.T) {
	e := newEnv(t)
	b := e.bind("sales-42", "lena")
	token, openID := b.str("token"), b.str("openid")
	e.want(e.do("POST", "/v1/consents/shown", token, map[string]any{"templates": []string{leadID}}), 200)
	e.grant(token, openID, leadID, 2)
	got := e.cli("send", "--to", "userId:sales-42", "--template", "lead_assigned",
		"--data", "thing1=Acme Ltd", "--data", "character_string2=L-1001", "--data", "time3=2026-11-21 09:30", "--data", "thing4=官网")
	if got.code != exitOK {
		t.Fatalf("send: exit %d, %q", got.code, got.stderr)
	}
	e.fake.WaitPushes() // the popup and sent events have reached the server

	got = e.cli("stats")
	today := time.Now().UTC().Format(time.DateOnly)
	if got.code != exitOK || !strings.Contains(got.stdout, "consent funnel ") || !strings.Contains(got.stdout, "DAY") {
		t.Fatalf("stats: got exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	// DAY TEMPLATE SHOWN ACCEPTED REJECTED GRANTED SENT DELIVERED FAILED HELD WASTED WASTED% OUTSTANDING
	want := []string{today, "lead_assigned", "1", "2", "0", "2", "1", "1", "0", "0", "0", "0.0", "1"}
	if row := statsRow(got.stdout, today, "lead_assigned"); strings.Join(row, " ") != strings.Join(want, " ") {
		t.Fatalf("today's row: got %q, want %q\n%s", row, want, got.stdout)
	}
	if row := statsRow(got.stdout, "total", "lead_assigned"); strings.Join(row[2:], " ") != strings.Join(want[2:], " ") {
		t.Fatalf("total row: got %q, want %q", row, want[2:])
	}

	got = e.cli("stats", "--template", leadID, "--from", today, "--to", today, "--json")
	var body httpapi.StatsBody
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil || got.code != exitOK {
		t.Fatalf("--json: got exit %d, stdout %q: %v", got.code, got.stdout, err)
	}
	if body.From != today || len(body.Days) != 1 || len(body.Days[0].Templates) != 1 || body.Days[0].Templates[0].Sent != 1 ||
		body.Totals[0].Outstanding != 1 {
		t.Fatalf("--json: got %+v", body)
	}

	got = e.cli("stats", "--from", "2020-01-01", "--to", "2020-01-02")
	if got.code != exitOK || !strings.Contains(got.stdout, "no counts in this range") {
		t.Fatalf("empty range: got exit %d, stdout %q", got.code, got.stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stats", "--from", "2026-01-01", "--to", "2026-12-31"}, "wxnotify stats: 400 bad_request: from: the range is 365 days, at most 92"},
		{[]string{"stats", "--to", "today"}, "wxnotify stats: 400 bad_request: to: must be a date yyyy-mm-dd"},
		{[]string{"stats", "--template", "nope"}, "wxnotify stats: 400 bad_request: template: is not in the catalog"},
	} {
		got := e.cli(tc.args...)
		if got.code != exitFailure || !strings.Contains(got.stderr, tc.want) || got.stdout != "" {
			t.Fatalf("%v: got exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, got.code, got.stdout, got.stderr, tc.want)
		}
	}
	if got := e.cli("stats", "extra"); got.code != exitUsage {
		t.Fatalf("stats with an argument: got exit %d, want 2", got.code)
	}
}
