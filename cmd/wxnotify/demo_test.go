package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/httpapi"
)

// TestPrintedDemo runs the curl demo `wxnotify dev` prints, as a newcomer
// pastes it, and checks that the message arrives in the sandbox inbox: the
// banner cannot rot. With push on the sandbox's popup event grants the
// credit; with --push off the demo reports the popup as the mini program
// does.
func TestPrintedDemo(t *testing.T) {
	needDemoTools(t)
	for _, push := range []string{"on", "off"} {
		t.Run("Push"+strings.ToUpper(push[:1])+push[1:], func(t *testing.T) {
			e := newEnvPush(t, push)
			var banner bytes.Buffer
			e.srv.printBanner(&banner)
			var script []string
			for line := range strings.SplitSeq(banner.String(), "\n") {
				if strings.HasPrefix(line, "  ") {
					script = append(script, strings.TrimSpace(line))
				}
			}
			if len(script) != 5 {
				t.Fatalf("demo: got %d command lines, want 5:\n%s", len(script), banner.String())
			}
			out, err := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n")).CombinedOutput()
			if err != nil {
				t.Fatalf("demo failed: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 4 {
				t.Fatalf("demo output: got %d lines, want 4 answers:\n%s", len(lines), out)
			}
			for i, want := range []string{`"userId":"sales-42"`, `"accept"`, `"status":"sent"`, `"msgid":"`} {
				if !strings.Contains(lines[i], want) {
					t.Fatalf("demo answer %d: got %s, want it to contain %s", i+1, lines[i], want)
				}
			}
			if got := len(e.fake.Messages(e.fake.OpenID("alice"))); got != 1 {
				t.Fatalf("alice's inbox after the demo: got %d messages, want 1", got)
			}
			e.fake.WaitPushes()
			if pushed := len(e.fake.Pushes()) > 0; pushed != (push == "on") {
				t.Fatalf("pushes during the demo: got %d, want some only with push on", len(e.fake.Pushes()))
			}
		})
	}
}

// TestMiniprogramKitAgainstDevServer runs the mini-program kit's integration
// tests (clients/miniprogram) with Node against a real dev server, and
// against its login and consent functions each at its own URL, serving only
// its own routes as on Tencent Cloud (the kit's endpoints option).
func TestMiniprogramKitAgainstDevServer(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is needed for the mini-program kit's tests: %v", err)
		}
		t.Skipf("node not installed: %v", err)
	}
	e := newEnv(t)
	login := httptest.NewServer(e.srv.parts.API.NewMux(httpapi.Login))
	t.Cleanup(login.Close)
	consent := httptest.NewServer(e.srv.parts.API.NewMux(httpapi.Consent))
	t.Cleanup(consent.Close)
	cmd := exec.Command("node", "--test", "test/integration.test.js")
	cmd.Dir = "../../clients/miniprogram"
	cmd.Env = append(os.Environ(), "WXNOTIFY_URL="+e.url, "WXNOTIFY_API_KEY="+e.key,
		"WXNOTIFY_LOGIN_URL="+login.URL, "WXNOTIFY_CONSENT_URL="+consent.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test integration.test.js: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") || !strings.Contains(string(out), "# skipped 0") {
		t.Fatalf("integration tests did not all run and pass:\n%s", out)
	}
}

// needDemoTools skips t, or fails it under CI, without the tools a
// printed demo runs with.
func needDemoTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed to run the printed demo: %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}
