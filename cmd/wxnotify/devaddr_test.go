package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cleanEnv is the test's environment without wxnotify's and WeChat's
// variables, so that a dev server started from it runs the sandbox with its
// defaults.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXN_") && !strings.HasPrefix(kv, "WECHAT_") && !strings.HasPrefix(kv, "WXNOTIFY_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestDevTakenPort runs `make dev ARGS="--addr ADDR --data DIR"` on a port
// the test holds open: the flags reach wxnotify dev, which says in one line
// that the address is in use and which flag picks another, and the exit
// status is non-zero. Then the built binary alone: its whole stderr is that
// line, with no stack of errors.
func TestDevTakenPort(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("make is needed for make dev: %v", err)
		}
		t.Skipf("make not installed: %v", err)
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	want := "wxnotify dev: " + addr + " is in use; pick another with --addr (e.g. --addr 127.0.0.1:8081)\n"

	dir := t.TempDir()
	bin := filepath.Join(dir, "wxnotify")
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(name string, args ...string) (code int, stderr string) {
		t.Helper()
		var errb bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = checkoutRoot(t)
		cmd.Env = cleanEnv()
		cmd.Stderr = &errb
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%s %s did not stop: the port was not found taken? stderr %q", name, strings.Join(args, " "), errb.String())
		}
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, errb.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), errb.String()
		}
		t.Fatalf("%s: %v", name, err)
		return 0, ""
	}

	code, stderr := run("make", "-s", "dev", "ARGS=--addr "+addr+" --data "+data, "DEVBIN="+bin)
	if code == 0 || !strings.HasPrefix(stderr, want) {
		t.Fatalf("make dev on a taken port: got exit %d, stderr %q; want non-zero and first %q", code, stderr, want)
	}
	if rest := strings.TrimPrefix(stderr, want); strings.Count(rest, "\n") > 1 || strings.Contains(rest, "exit status") || strings.Contains(rest, "goroutine") {
		t.Fatalf("make dev on a taken port: after the message, got %q; want at most make's own line", rest)
	}
	code, stderr = run(bin, "dev", "--addr", addr, "--data", data)
	if code != 1 || stderr != want {
		t.Fatalf("wxnotify dev on a taken port: got exit %d, stderr %q; want 1 and only %q", code, stderr, want)
	}
}

// TestListenErrors: the other addresses dev cannot listen on get one line
// naming --addr too.
func TestListenErrors(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"nope", "--addr nope: address nope: missing port in address (give host:port, e.g. 127.0.0.1:8080)"},
		{"127.0.0.1:99999", "--addr 127.0.0.1:99999: address 99999: invalid port"},
	} {
		_, err := startDev(context.Background(), devOptions{addr: tc.addr, dataDir: t.TempDir(), getenv: func(string) string { return "" }})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("--addr %s: got %v, want one line starting %q", tc.addr, err, tc.want)
		}
	}
}
