package main

import (
	"bytes"
	"context"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cliOut is what one run of the CLI did.
type cliOut struct {
	code           int
	stdout, stderr string
}

// cliRun runs the CLI's commands with env as the whole environment and
// stdin as standard input.
func cliRun(tb testing.TB, env map[string]string, stdin string, args ...string) cliOut {
	tb.Helper()
	var out, errb bytes.Buffer
	c := newCLI(&out, &errb, func(k string) string { return env[k] })
	c.stdin = strings.NewReader(stdin)
	code := c.run(context.Background(), args)
	return cliOut{code: code, stdout: out.String(), stderr: errb.String()}
}

func TestCommandHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"templates", "--help"}, "usage: wxnotify templates <subcommand>"},
		{[]string{"templates", "sync", "--help"}, "usage: wxnotify templates sync"},
		{[]string{"send", "--help"}, "usage: wxnotify send --to"},
		{[]string{"send", "-h"}, "usage: wxnotify send --to"},
		{[]string{"batch", "help"}, "usage: wxnotify batch <subcommand>"},
		{[]string{"batch", "create", "--help"}, "usage: wxnotify batch create --file"},
		{[]string{"batch", "watch", "bat_1", "--help"}, "usage: wxnotify batch watch ID"},
		{[]string{"batch", "cancel", "-help"}, "usage: wxnotify batch cancel ID"},
		{[]string{"batch", "pause", "-help"}, "usage: wxnotify batch pause ID"},
		{[]string{"batch", "resume", "-help"}, "usage: wxnotify batch resume ID"},
		{[]string{"consents", "--help"}, "usage: wxnotify consents <subcommand>"},
		{[]string{"consents", "show", "--help"}, "usage: wxnotify consents show"},
		{[]string{"stats", "--help"}, "usage: wxnotify stats"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			got := cliRun(t, nil, "", tc.args...)
			if got.code != exitOK || !strings.HasPrefix(got.stdout, tc.want) || got.stderr != "" {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want 0 and the usage %q on stdout", got.code, got.stdout, got.stderr, tc.want)
			}
			if !strings.Contains(got.stdout, "Exit status:") {
				t.Fatalf("usage without the exit codes: %q", got.stdout)
			}
		})
	}
	// The top-level usage lists every command and the exit codes.
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != exitOK {
		t.Fatalf("wxnotify --help: got exit %d, want 0", code)
	}
	for _, want := range []string{"templates", "send", "batch", "consents", "Exit status: 0 success, 1 failure"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("wxnotify --help: got %q, want it to mention %q", out.String(), want)
		}
	}
}

func TestCommandUsageErrors(t *testing.T) {
	key := map[string]string{"WXN_API_KEY": "wxn_test_key_0123456789"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in stderr, before the usage
	}{
		{"SendWithoutTo", key, []string{"send", "--template", "t"}, "--to is required"},
		{"SendWithoutTemplate", key, []string{"send", "--to", "userId:u"}, "--template is required"},
		{"SendBadTo", key, []string{"send", "--to", "sales-42", "--template", "t"}, `--to: "sales-42" is not userId:ID or openid:OPENID`},
		{"SendEmptyTo", key, []string{"send", "--to", "openid:", "--template", "t"}, "is not userId:ID or openid:OPENID"},
		{"SendDataWithoutEquals", key, []string{"send", "--data", "thing1"}, `"thing1" is not key=value`},
		{"SendDataEmptyKey", key, []string{"send", "--data", "=x"}, "has an empty key"},
		{"SendDataTwice", key, []string{"send", "--data", "a=1", "--data", "a=2"}, `key "a" given twice`},
		{"SendUnknownFlag", key, []string{"send", "--bogus"}, "flag provided but not defined: -bogus"},
		{"SendExtraArgument", key, []string{"send", "--to", "userId:u", "--template", "t", "extra"}, `unexpected argument "extra"`},
		{"SendNoKey", nil, []string{"send", "--to", "userId:u", "--template", "t"}, "no API key: pass --key or set WXN_API_KEY"},
		{"SendBadURL", key, []string{"send", "--to", "userId:u", "--template", "t", "--url", "ftp://x"}, `--url: "ftp://x" is not an http(s) URL`},
		{"BatchNoSubcommand", key, []string{"batch"}, "a subcommand is required"},
		{"BatchUnknownSubcommand", key, []string{"batch", "frob"}, `unknown subcommand "frob"`},
		{"CreateWithoutFile", key, []string{"batch", "create", "--template", "t"}, "--file or --audience is required"},
		{"CreateFileAndAudience", key, []string{"batch", "create", "--file", "r.csv", "--audience", "consenting", "--template", "t"}, "not both"},
		{"CreateBadAudience", key, []string{"batch", "create", "--audience", "all", "--template", "t"}, `"all" is not consenting`},
		{"CreateWithoutTemplate", key, []string{"batch", "create", "--file", "r.csv"}, "--template is required"},
		{"CreateBadNotBefore", key, []string{"batch", "create", "--not-before", "tomorrow"}, `"tomorrow" is not an RFC 3339 time`},
		{"WatchWithoutID", key, []string{"batch", "watch"}, "missing argument"},
		{"WatchTwoIDs", key, []string{"batch", "watch", "bat_1", "bat_2"}, `unexpected argument "bat_2"`},
		{"WatchFastInterval", key, []string{"batch", "watch", "bat_1", "--interval", "10ms"}, "--interval: 10ms is below 100ms"},
		{"WatchBadInterval", key, []string{"batch", "watch", "bat_1", "--interval", "soon"}, `invalid value "soon" for flag -interval`},
		{"CancelWithoutID", key, []string{"batch", "cancel"}, "missing argument"},
		{"ConsentsNoSubcommand", key, []string{"consents"}, "a subcommand is required"},
		{"ShowWithoutUser", key, []string{"consents", "show"}, "--user or --openid is required"},
		{"ShowUserAndOpenID", key, []string{"consents", "show", "--user", "u", "--openid", "o"}, "not both"},
		{"TemplatesNoSubcommand", nil, []string{"templates"}, "a subcommand is required"},
		{"SyncWithoutCredentials", nil, []string{"templates", "sync"}, "WXN_WECHAT_APPID and WXN_WECHAT_SECRET are required"},
		{"SyncBadTokenFree", map[string]string{"WXN_WECHAT_TOKEN_FREE": "maybe"}, []string{"templates", "sync"}, `WXN_WECHAT_TOKEN_FREE: "maybe"`},
		{"SyncBadAPIBase", map[string]string{"WXN_WECHAT_APPID": "wx1", "WXN_WECHAT_SECRET": "s", "WXN_WECHAT_API_BASE": "nope"},
			[]string{"templates", "sync"}, `WXN_WECHAT_API_BASE: "nope" is not an http(s) URL`},
		{"SyncArgument", nil, []string{"templates", "sync", "wxnotify.yaml"}, `unexpected argument "wxnotify.yaml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cliRun(t, tc.env, "", tc.args...)
			if got.code != exitUsage {
				t.Fatalf("exit code: got %d, want %d (stderr %q)", got.code, exitUsage, got.stderr)
			}
			msg, usage, _ := strings.Cut(got.stderr, "\n\n")
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(usage, "usage: wxnotify") || got.stdout != "" {
				t.Fatalf("got stderr %q and stdout %q, want %q followed by the usage, nothing on stdout", got.stderr, got.stdout, tc.want)
			}
		})
	}
}

func TestParseSend(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want sendRequest
		json bool
	}{
		{"UserID", []string{"--to", "userId:sales-42", "--template", "lead_assigned", "--data", "thing1=Acme Ltd"},
			sendRequest{To: recipient{UserID: "sales-42"}, Template: "lead_assigned", Data: map[string]string{"thing1": "Acme Ltd"}}, false},
		{"OpenIDAnyCase", []string{"--to=OPENID:o6_bm", "--template=t"},
			sendRequest{To: recipient{OpenID: "o6_bm"}, Template: "t", Data: map[string]string{}}, false},
		{"ValuesKeepEqualsAndMayBeEmpty", []string{"--to", "userid:u", "--template", "t", "--data", "thing1=a=b", "--data", "thing2="},
			sendRequest{To: recipient{UserID: "u"}, Template: "t", Data: map[string]string{"thing1": "a=b", "thing2": ""}}, false},
		{"Everything", []string{"--json", "--to", "userId:u", "--template", "t", "--page", "pages/a?id=1", "--state", "trial",
			"--lang", "en_US", "--idempotency-key", "k-1", "--data", "time3=2026-11-21 09:30"},
			sendRequest{To: recipient{UserID: "u"}, Template: "t", Data: map[string]string{"time3": "2026-11-21 09:30"},
				Page: "pages/a?id=1", MiniprogramState: "trial", Lang: "en_US", IdempotencyKey: "k-1"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			c := newCLI(&bytes.Buffer{}, &errb, func(string) string { return "" })
			o, code, ok := c.parseSend(tc.args)
			if !ok {
				t.Fatalf("got exit %d (%s), want the command line accepted", code, errb.String())
			}
			if !reflect.DeepEqual(o.req, tc.want) || o.json != tc.json {
				t.Fatalf("got %+v json %v, want %+v json %v", o.req, o.json, tc.want, tc.json)
			}
		})
	}
}

func TestParseBatchCreate(t *testing.T) {
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		args []string
		file string
		want batchRequest
	}{
		{"File", []string{"--file", "r.csv", "--template", "digest"}, "r.csv", batchRequest{Template: "digest"}},
		{"Audience", []string{"--audience", "consenting", "--template", "digest", "--data", "thing1=Daily", "--not-before", "2026-11-22T09:00:00+08:00",
			"--idempotency-key", "digest-1"}, "",
			batchRequest{Template: "digest", Audience: "consenting", Data: map[string]string{"thing1": "Daily"}, NotBefore: &at, IdempotencyKey: "digest-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			c := newCLI(&bytes.Buffer{}, &errb, func(string) string { return "" })
			o, code, ok := c.parseBatchCreate(tc.args)
			if !ok {
				t.Fatalf("got exit %d (%s), want the command line accepted", code, errb.String())
			}
			if o.file != tc.file {
				t.Fatalf("file: got %q, want %q", o.file, tc.file)
			}
			if (o.req.NotBefore == nil) != (tc.want.NotBefore == nil) || o.req.NotBefore != nil && !o.req.NotBefore.Equal(*tc.want.NotBefore) {
				t.Fatalf("notBefore: got %v, want %v", o.req.NotBefore, tc.want.NotBefore)
			}
			o.req.NotBefore, tc.want.NotBefore = nil, nil
			if !reflect.DeepEqual(o.req, tc.want) {
				t.Fatalf("got %+v, want %+v", o.req, tc.want)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantPos  []string
		wantFlag string
	}{
		{"FlagsFirst", []string{"--interval", "2s", "bat_1"}, []string{"bat_1"}, "2s"},
		{"FlagsAfter", []string{"bat_1", "--interval", "2s"}, []string{"bat_1"}, "2s"},
		{"Between", []string{"a", "--interval=3s", "b"}, []string{"a", "b"}, "3s"},
		{"DoubleDash", []string{"--", "--interval", "x"}, []string{"--interval", "x"}, ""},
		{"DoubleDashAfterArgument", []string{"a", "--", "-b"}, []string{"a", "-b"}, ""},
		{"None", nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			interval := fs.String("interval", "", "")
			pos, err := parseInterspersed(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tc.wantPos) || *interval != tc.wantFlag {
				t.Fatalf("got %q and --interval %q, want %q and %q", pos, *interval, tc.wantPos, tc.wantFlag)
			}
		})
	}
}

func TestDescribeNotification(t *testing.T) {
	sent := notification{ID: "ntf_1", Status: "sent"}
	sent.WeChat.MsgID = "3395159288267931652"
	failed := notification{ID: "ntf_2", Status: "failed", Reason: "invalid_data", Field: "data.thing1"}
	failed.WeChat.Errcode, failed.WeChat.Errmsg = 47003, "argument invalid!"
	tests := []struct {
		name string
		n    notification
		want string
	}{
		{"Sent", sent, "sent ntf_1 (msgid 3395159288267931652)"},
		{"Skipped", notification{ID: "ntf_3", Status: "skipped", Reason: "no_consent"},
			"skipped ntf_3: no_consent - the user has no unused acceptance of this template; ask in the mini program"},
		{"Failed", failed, "failed ntf_2: invalid_data data.thing1 (WeChat errcode 47003: argument invalid!)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeNotification(tc.n); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	running := func(sent, skipped int) batchState {
		return batchState{ID: "bat_1", Status: "running", Total: 100, Sent: sent, Skipped: skipped}
	}

	t.Run("Terminal", func(t *testing.T) {
		var out bytes.Buffer
		p := &progress{w: &out, tty: true, now: clock, columns: func() int { return 200 }}
		p.show(running(10, 0))
		now = now.Add(2 * time.Second)
		p.show(running(40, 10))
		p.end()
		want := "\r\x1b[Kbat_1 running [##----------------------]  10% 10/100  sent 10 skipped 0 failed 0 unknown 0" +
			"\r\x1b[Kbat_1 running [############------------]  50% 50/100  sent 40 skipped 10 failed 0 unknown 0  20.0/s ETA 3s\n"
		if got := out.String(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	t.Run("Plain", func(t *testing.T) {
		var out bytes.Buffer
		p := &progress{w: &out, now: clock}
		p.show(batchState{ID: "bat_1", Status: "scheduled", Total: 100, NotBefore: now.Add(time.Minute)})
		p.show(running(0, 0))
		p.show(running(0, 0)) // no change: no line
		now = now.Add(time.Second)
		p.show(running(30, 0))
		p.show(batchState{ID: "bat_1", Status: "done", Total: 100, Sent: 90, Failed: 10})
		p.end()
		want := "bat_1 scheduled 0/100 (0%) sent 0 skipped 0 failed 0 unknown 0  starts in 1m0s\n" +
			"bat_1 running 0/100 (0%) sent 0 skipped 0 failed 0 unknown 0\n" +
			"bat_1 running 30/100 (30%) sent 30 skipped 0 failed 0 unknown 0  30.0/s ETA 2s\n" +
			"bat_1 done 100/100 (100%) sent 90 skipped 0 failed 10 unknown 0\n"
		if got := out.String(); got != want {
			t.Fatalf("got:\n%s\nwant:\n%s", got, want)
		}
	})
}
