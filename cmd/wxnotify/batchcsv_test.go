package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBatchCreateReportsEveryBadRow runs `batch create` on a CSV with
// several kinds of bad rows against a dev server: every problem is listed
// with its line and column, the exit status is 1, and the CLI sends nothing
// (the server accepts no connection), so no batch exists. A file the CLI
// finds good but whose data the template refuses gets the server's answer
// pointed at the row and column it came from, and no batch either.
func TestBatchCreateReportsEveryBadRow(t *testing.T) {
	e := newEnv(t)
	_, good := e.login("csv-good")
	dir := t.TempDir()
	file := filepath.Join(dir, "recipients.csv")
	csv := "openid,thing1,thing4\n" + // line 1
		good + ",Acme,官网\n" + // 2: good
		",Beta,官网\n" + // 3: no openid
		"o6 bad,Gamma,官网\n" + // 4: not an openid
		good + ",Delta\n" + // 5: a field short
		good + ",\xfe,官网\n" + // 6: not UTF-8
		good + ",\"Eps\"ilon,官网\n" // 7: bad quote
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"batch", "create", "--file", file, "--template", "lead_assigned",
		"--data", "character_string2=L-1", "--data", "time3=09:30"}
	before := e.conns.accepted.Load()
	got := e.cli(args...)
	if got.code != exitFailure || got.stdout != "" {
		t.Fatalf("got exit %d, stdout %q; want 1 and no batch id", got.code, got.stdout)
	}
	want := "wxnotify batch create: " + file + ": 5 problems on 5 lines; fix them and run again (no batch was created):\n" +
		"  line 3: no openid: give one\n" +
		"  line 4, column 1 (openid): \"o6 bad\" is not an openid (1 to 64 ASCII letters, digits, '-' and '_')\n" +
		"  line 5: 2 fields, the header has 3\n" +
		"  line 6, column 2 (thing1): is not valid UTF-8 (save the file as UTF-8)\n" +
		"  line 7, byte " + strconv.Itoa(len(good)+len(`,"Eps"`)) + ": extraneous or missing \" in quoted-field\n"
	if got.stderr != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", got.stderr, want)
	}
	if after := e.conns.accepted.Load(); after != before {
		t.Fatalf("the CLI connected to the server %d times for a bad file, want 0", after-before)
	}

	// Good for the CLI, refused by the template: time3 is a time, which no
	// policy truncates.
	_, other := e.login("csv-other")
	if err := os.WriteFile(file, []byte("openid,thing1,time3\n"+good+",Acme,09:30\n"+other+",Beta,25:99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args = []string{"batch", "create", "--file", file, "--template", "lead_assigned",
		"--data", "character_string2=L-1", "--data", "thing4=官网", "--idempotency-key", "csv-bad-data"}
	got = e.cli(args...)
	if got.code != exitFailure || !strings.Contains(got.stderr, file+": line 3, column 3 (time3): 400 ") ||
		!strings.Contains(got.stderr, "recipients[1].data.time3") || !strings.Contains(got.stderr, "no batch was created") {
		t.Fatalf("got exit %d, stderr %q; want the server's refusal pointed at line 3, column 3", got.code, got.stderr)
	}
	// The same idempotency key with a good file creates the batch now: the
	// refused one was not stored.
	if err := os.WriteFile(file, []byte("openid,thing1,time3\n"+good+",Acme,09:30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got = e.cli(args...)
	if got.code != exitOK || !strings.HasPrefix(got.stdout, "bat_") || !strings.Contains(got.stderr, " 1 recipients") {
		t.Fatalf("good file, same key: got exit %d, stdout %q, stderr %q; want a new batch of 1", got.code, got.stdout, got.stderr)
	}
}
