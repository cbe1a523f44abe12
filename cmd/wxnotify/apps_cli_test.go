package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// pathRecorder is an API that records the method and path of every request
// and answers each with answer.
type pathRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (p *pathRecorder) paths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// recordingAPI starts a server recording the requests' paths (escaped, as
// sent) and answering them with answer.
func recordingAPI(tb testing.TB, answer func(w http.ResponseWriter, r *http.Request)) (*pathRecorder, string) {
	tb.Helper()
	rec := &pathRecorder{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.calls = append(rec.calls, r.Method+" "+r.URL.EscapedPath())
		rec.mu.Unlock()
		answer(w, r)
	}))
	tb.Cleanup(ts.Close)
	return rec, ts.URL
}

// okAnswer answers each API call with a body its command accepts as a
// success.
func okAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/notifications"):
		_, _ = w.Write([]byte(`{"id":"n1","status":"sent"}`))
	case strings.HasSuffix(r.URL.Path, "/consents"):
		_, _ = w.Write([]byte(`{"openid":"o1","consents":[]}`))
	case r.Method == "POST":
		_, _ = w.Write([]byte(`{"id":"b1","status":"scheduled","total":1}`))
	case r.Method == "DELETE":
		_, _ = w.Write([]byte(`{"id":"b1","status":"cancelled","total":1}`))
	default:
		_, _ = w.Write([]byte(`{"id":"b1","status":"done","total":1,"sent":1}`))
	}
}

// apiCommands are the commands that call the API, each with the path it
// calls on the short routes (under /v1/).
var apiCommands = []struct {
	args []string
	path string
}{
	{[]string{"send", "--to", "userId:u1", "--template", "lead"}, "POST /v1/notifications"},
	{[]string{"batch", "create", "--audience", "consenting", "--template", "lead"}, "POST /v1/batches"},
	{[]string{"batch", "watch", "b1"}, "GET /v1/batches/b1"},
	{[]string{"batch", "cancel", "b1"}, "DELETE /v1/batches/b1"},
	{[]string{"batch", "pause", "b1"}, "POST /v1/batches/b1/pause"},
	{[]string{"batch", "resume", "b1"}, "POST /v1/batches/b1/resume"},
	{[]string{"consents", "show", "--user", "u 1"}, "GET /v1/users/u%201/consents"},
	{[]string{"consents", "show", "--openid", "o1"}, "GET /v1/openids/o1/consents"},
}

// TestCLIAppRoutes: with --app (or WXN_APP; --app wins) every API command
// calls /v1/apps/<id>/...; without, the short routes of the default app.
func TestCLIAppRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, app string
		env       map[string]string
		flags     []string
	}{
		{"Default", "", nil, nil},
		{"Flag", "sales", nil, []string{"--app", "sales"}},
		{"Env", "customer-cn", map[string]string{"WXN_APP": "customer-cn"}, nil},
		{"FlagOverEnv", "sales", map[string]string{"WXN_APP": "customer-cn"}, []string{"--app=sales"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range apiCommands {
				rec, url := recordingAPI(t, okAnswer)
				env := map[string]string{"WXN_URL": url, "WXN_API_KEY": "test-key-0123456789"}
				for k, v := range tc.env {
					env[k] = v
				}
				got := cliRun(t, env, "", append(append([]string(nil), cmd.args...), tc.flags...)...)
				if got.code != exitOK {
					t.Fatalf("%v: exit %d, stderr %q", cmd.args, got.code, got.stderr)
				}
				want := cmd.path
				if tc.app != "" {
					want = strings.Replace(want, " /v1/", " /v1/apps/"+tc.app+"/", 1)
				}
				if p := rec.paths(); len(p) != 1 || p[0] != want {
					t.Fatalf("%v: requests %q, want [%q]", cmd.args, p, want)
				}
			}
		})
	}
}

// TestCLIAppRefused: an --app or WXN_APP that is not an app id is a usage
// error naming where it came from, and no request is made.
func TestCLIAppRefused(t *testing.T) {
	rec, url := recordingAPI(t, okAnswer)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		flags []string
		want  string
	}{
		{"Upper", nil, []string{"--app", "Sales"}, `--app: "Sales" is not an app id`},
		{"Slash", nil, []string{"--app", "sales/../x"}, `--app: "sales/../x" is not an app id`},
		{"Digit", nil, []string{"--app", "1sales"}, `is not an app id`},
		{"Env", map[string]string{"WXN_APP": "sales_cn"}, nil, `$WXN_APP: "sales_cn" is not an app id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range apiCommands {
				env := map[string]string{"WXN_URL": url, "WXN_API_KEY": "test-key-0123456789"}
				for k, v := range tc.env {
					env[k] = v
				}
				got := cliRun(t, env, "", append(append([]string(nil), cmd.args...), tc.flags...)...)
				if got.code != exitUsage || !strings.Contains(got.stderr, tc.want) {
					t.Fatalf("%v: exit %d, stderr %q; want 2 and %q", cmd.args, got.code, got.stderr, tc.want)
				}
			}
		})
	}
	if p := rec.paths(); len(p) != 0 {
		t.Fatalf("refused command lines made requests: %q", p)
	}
}

// TestCLIAppErrors: the server's app_not_found and app_forbidden answers
// are one clear line on stderr, saying which app and where it came from,
// with exit 1.
func TestCLIAppErrors(t *testing.T) {
	answer := func(status int, code, msg string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg, "requestId": "r-1"}})
		}
	}
	for _, tc := range []struct {
		name          string
		status        int
		code, message string
		env           map[string]string
		flags         []string
		want          string
	}{
		{"NotFound", 404, "app_not_found", "no such app", nil, []string{"--app", "shop"},
			`404 app_not_found: no such app (app "shop" from --app: the server has no such app; check --app or WXN_APP) [request r-1]`},
		{"Forbidden", 403, "app_forbidden", "this API key does not act for this app", map[string]string{"WXN_APP": "sales"}, nil,
			`403 app_forbidden: this API key does not act for this app (the API key does not act for app "sales" from $WXN_APP: use a key of WXN_API_KEYS or of that app's own keys) [request r-1]`},
		{"ForbiddenDefault", 403, "app_forbidden", "this API key does not act for this app", nil, nil,
			`403 app_forbidden: this API key does not act for this app (the API key does not act for the default app: pass --app with the app it is for) [request r-1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range apiCommands {
				_, url := recordingAPI(t, answer(tc.status, tc.code, tc.message))
				env := map[string]string{"WXN_URL": url, "WXN_API_KEY": "test-key-0123456789"}
				for k, v := range tc.env {
					env[k] = v
				}
				got := cliRun(t, env, "", append(append([]string(nil), cmd.args...), tc.flags...)...)
				name := strings.Join(cmd.args[:1], "")
				if cmd.args[0] == "batch" || cmd.args[0] == "consents" {
					name = cmd.args[0] + " " + cmd.args[1]
				}
				want := "wxnotify " + name + ": " + tc.want + "\n"
				if got.code != exitFailure || got.stderr != want {
					t.Fatalf("%v: exit %d, stderr %q; want 1 and %q", cmd.args, got.code, got.stderr, want)
				}
			}
		})
	}
}

// TestCLIAppVerbose: -v says which app the requests are for, when one is.
func TestCLIAppVerbose(t *testing.T) {
	_, url := recordingAPI(t, okAnswer)
	env := map[string]string{"WXN_URL": url, "WXN_API_KEY": "test-key-0123456789"}
	got := cliRun(t, env, "", "send", "--to", "userId:u1", "--template", "lead", "--app", "sales", "-v")
	if got.code != exitOK || !strings.Contains(got.stderr, "for app sales (from --app)") {
		t.Fatalf("exit %d, stderr %q; want the app named", got.code, got.stderr)
	}
	got = cliRun(t, env, "", "send", "--to", "userId:u1", "--template", "lead", "-v")
	if want := "(from $WXN_URL) with the API key from $WXN_API_KEY\n"; got.code != exitOK || !strings.HasSuffix(got.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want no app named, ending %q", got.code, got.stderr, want)
	}
}
