package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs a command of the CLI against e's server, its URL and API key in
// the environment.
func (e *env) cli(args ...string) cliOut {
	e.t.Helper()
	return cliRun(e.t, map[string]string{"WXN_URL": e.url, "WXN_API_KEY": e.key}, "", args...)
}

func TestSendCommand(t *testing.T) {
	e := newEnv(t)
	b := e.bind("sales-42", "lena")
	e.grant(b.str("token"), b.str("openid"), leadID, 1)
	args := []string{"send", "--to", "userId:sales-42", "--template", "lead_assigned",
		"--data", "thing1=Acme Ltd", "--data", "character_string2=L-1001", "--data", "time3=2026-11-21 09:30", "--data", "thing4=官网",
		"--page", "pages/clue/clue?id=L-1001"}

	got := e.cli(args...)
	if got.code != exitOK || !strings.HasPrefix(got.stdout, "sent ntf_") || !strings.Contains(got.stdout, "(msgid ") {
		t.Fatalf("send: got exit %d, stdout %q, stderr %q; want 0 and sent with a msgid", got.code, got.stdout, got.stderr)
	}
	msgs := e.fake.Messages(b.str("openid"))
	if len(msgs) != 1 || msgs[0].Data["thing1"] != "Acme Ltd" || msgs[0].Page != "pages/clue/clue?id=L-1001" {
		t.Fatalf("inbox: got %+v, want the one message", msgs)
	}

	// The credit is spent: skipped, exit 1, and --json prints the body.
	got = e.cli(append(args, "--json")...)
	var body map[string]any
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil {
		t.Fatalf("--json: got %q, want the API's JSON body: %v", got.stdout, err)
	}
	if got.code != exitFailure || body["status"] != "skipped" || body["reason"] != "no_consent" {
		t.Fatalf("second send: got exit %d, body %v; want 1, skipped/no_consent", got.code, body)
	}

	tests := []struct {
		name string
		env  *env
		args []string
		want string
	}{
		{"InvalidData", e, []string{"send", "--to", "userId:sales-42", "--template", "lead_assigned", "--data", "thing1=x"},
			"wxnotify send: 400 bad_request: data.character_string2: missing value"},
		{"UnknownTemplate", e, []string{"send", "--to", "userId:sales-42", "--template", "nope", "--data", "thing1=x"},
			"400 bad_request"},
		{"WrongKey", e, []string{"send", "--to", "userId:sales-42", "--template", "lead_assigned", "--key", "wxn_wrong_key_0123456789"},
			"401 unauthorized: a valid API key is required (Authorization: Bearer <key>) (check --key or WXN_API_KEY)"},
		{"Unreachable", e, []string{"send", "--to", "userId:sales-42", "--template", "lead_assigned", "--url", "http://127.0.0.1:1"},
			"cannot reach wxnotify at http://127.0.0.1:1: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.env.cli(tc.args...)
			if got.code != exitFailure || !strings.Contains(got.stderr, tc.want) || got.stdout != "" {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want 1 and %q", got.code, got.stdout, got.stderr, tc.want)
			}
			if strings.Contains(got.stderr, "usage:") {
				t.Fatalf("a remote error printed the usage: %q", got.stderr)
			}
		})
	}
}

func TestBatchCommands(t *testing.T) {
	e := newEnv(t)
	var rows []string
	var openIDs []string
	for i := range 3 {
		token, openID := e.login(fmt.Sprintf("csv-user-%d", i))
		if i < 2 {
			e.grant(token, openID, leadID, 1)
		}
		openIDs = append(openIDs, openID)
		rows = append(rows, fmt.Sprintf("%s,Lead %d,", openID, i))
	}
	// The last row overrides a shared value.
	rows[2] += "线下活动"
	file := filepath.Join(t.TempDir(), "recipients.csv")
	if err := os.WriteFile(file, []byte("openid,thing1,thing4\n"+strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	create := []string{"batch", "create", "--file", file, "--template", "lead_assigned",
		"--data", "character_string2=L-1", "--data", "time3=09:30", "--data", "thing4=官网", "--idempotency-key", "csv-1"}
	got := e.cli(create...)
	id := strings.TrimSpace(got.stdout)
	if got.code != exitOK || !strings.HasPrefix(id, "bat_") || !strings.Contains(got.stderr, "3 recipients") {
		t.Fatalf("create: got exit %d, stdout %q, stderr %q; want 0, the id alone on stdout", got.code, got.stdout, got.stderr)
	}
	if again := e.cli(create...); strings.TrimSpace(again.stdout) != id {
		t.Fatalf("same idempotency key: got %q, want %s", again.stdout, id)
	}

	got = e.cli("batch", "watch", id, "--interval", "100ms")
	lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
	last := lines[len(lines)-1]
	if got.code != exitOK || last != id+" done 3/3 (100%) sent 2 skipped 1 failed 0 unknown 0" {
		t.Fatalf("watch: got exit %d, stdout %q, stderr %q; want 0 ending with the done line", got.code, got.stdout, got.stderr)
	}
	for i, line := range lines {
		if strings.Contains(line, "\r") || strings.Contains(line, "\x1b") || i > 0 && line == lines[i-1] {
			t.Fatalf("watch without a terminal: got %q, want one plain line per change", got.stdout)
		}
	}
	if got := e.fake.Messages(openIDs[1]); len(got) != 1 || got[0].Data["thing1"] != "Lead 1" || got[0].Data["thing4"] != "官网" {
		t.Fatalf("recipient 1: got %+v, want its row's data over the shared data", got)
	}

	// A batch for later, cancelled: watch then exits 1.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	got = e.cli("batch", "create", "--file", file, "--template", "lead_assigned", "--not-before", later,
		"--data", "character_string2=L-2", "--data", "time3=10:30", "--data", "thing4=官网")
	id2 := strings.TrimSpace(got.stdout)
	if got.code != exitOK {
		t.Fatalf("create for later: got exit %d, stderr %q", got.code, got.stderr)
	}
	// Paused, resumed, paused again, then cancelled while paused.
	for _, step := range []struct{ verb, status string }{{"pause", "paused"}, {"resume", "scheduled"}, {"pause", "paused"}} {
		got = e.cli("batch", step.verb, id2)
		if want := id2 + " " + step.status + ": 0 of 3 done (sent 0, skipped 0, failed 0, unknown 0)\n"; got.code != exitOK || got.stdout != want {
			t.Fatalf("batch %s: got exit %d, stdout %q, stderr %q; want %q", step.verb, got.code, got.stdout, got.stderr, want)
		}
	}
	if got = e.cli("batch", "pause", id); got.code != exitFailure || !strings.Contains(got.stderr, "batch_finished") {
		t.Fatalf("pause of a done batch: got exit %d, stderr %q; want 1 naming batch_finished", got.code, got.stderr)
	}
	got = e.cli("batch", "cancel", id2)
	if got.code != exitOK || got.stdout != id2+" cancelled: 0 of 3 done (sent 0, skipped 0, failed 0, unknown 0)\n" {
		t.Fatalf("cancel: got exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	got = e.cli("batch", "cancel", id)
	if got.code != exitOK || got.stdout != id+" was already done: 3 of 3 done (sent 2, skipped 1, failed 0, unknown 0)\n" {
		t.Fatalf("cancel of a done batch: got exit %d, stdout %q", got.code, got.stdout)
	}
	got = e.cli("batch", "watch", id2)
	if got.code != exitFailure || !strings.HasPrefix(got.stdout, id2+" cancelled 0/3") {
		t.Fatalf("watch of a cancelled batch: got exit %d, stdout %q; want 1", got.code, got.stdout)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"WatchUnknown", []string{"batch", "watch", "bat_nope"}, "wxnotify batch watch: 404 not_found"},
		{"CancelUnknown", []string{"batch", "cancel", "bat_nope"}, "wxnotify batch cancel: 404 not_found"},
		{"MissingFile", []string{"batch", "create", "--file", filepath.Join(t.TempDir(), "none.csv"), "--template", "lead_assigned"},
			"none.csv: no such file or directory"},
		{"InvalidRecipientData", []string{"batch", "create", "--file", file, "--template", "lead_assigned"},
			"400 bad_request: recipients[0].data.character_string2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.cli(tc.args...)
			if got.code != exitFailure || !strings.Contains(got.stderr, tc.want) {
				t.Fatalf("got exit %d, stderr %q; want 1 and %q", got.code, got.stderr, tc.want)
			}
		})
	}
}

func TestBatchCreateFromStdin(t *testing.T) {
	e := newEnv(t)
	_, openID := e.login("stdin-user")
	got := cliRun(t, map[string]string{"WXN_URL": e.url, "WXN_API_KEY": e.key}, "openid,thing1\n"+openID+",Acme\n",
		"batch", "create", "--file", "-", "--template", "lead_assigned", "--json",
		"--data", "character_string2=L-1", "--data", "time3=09:30", "--data", "thing4=官网")
	var body map[string]any
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil || got.code != exitOK || body["total"] != 1.0 {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want 0 and the JSON body of a batch of 1", got.code, got.stdout, got.stderr)
	}
}

func TestConsentsShowCommand(t *testing.T) {
	e := newEnv(t)
	b := e.bind("sales-42", "lena")
	e.grant(b.str("token"), b.str("openid"), leadID, 2)
	openID := b.str("openid")

	got := e.cli("consents", "show", "--user", "sales-42")
	if got.code != exitOK {
		t.Fatalf("show: got exit %d, stderr %q", got.code, got.stderr)
	}
	lines := strings.Split(got.stdout, "\n")
	if lines[0] != "user sales-42 (openid "+openID+")" || !strings.HasPrefix(lines[1], "TEMPLATE") {
		t.Fatalf("show: got %q, want the user line and the table header", got.stdout)
	}
	var lead []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "lead_assigned" {
			lead = f
		}
	}
	if len(lead) < 6 || lead[1] != "one-time" || lead[2] != "accept" || lead[3] != "2" || lead[5] != "no" {
		t.Fatalf("lead_assigned row: got %q, want one-time, accept, 2 credits, no prompt", lead)
	}

	got = e.cli("consents", "show", "--openid", openID, "--json")
	var body ledger
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil || got.code != exitOK {
		t.Fatalf("--json: got exit %d, stdout %q: %v", got.code, got.stdout, err)
	}
	credits := int64(-1)
	for _, c := range body.Consents {
		if c.TemplateID == leadID {
			credits = c.Credits
		}
	}
	if body.OpenID != openID || body.UserID != "sales-42" || credits != 2 {
		t.Fatalf("--openid --json: got %+v, want sales-42's ledger with 2 credits", body)
	}

	got = e.cli("consents", "show", "--user", "nobody")
	if got.code != exitFailure || !strings.Contains(got.stderr, "404 not_found: userId: no WeChat user is bound to this userId") {
		t.Fatalf("unbound user: got exit %d, stderr %q", got.code, got.stderr)
	}
}
