package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/version"
)

// checkoutRoot is the absolute path of the checkout this package is in.
func checkoutRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at the checkout root %s: %v", root, err)
	}
	return root
}

// goCommand is `go args...` run in dir with the test's environment, GOFLAGS
// replaced by goflags (the machine's own GOFLAGS, e.g. -buildvcs=false, must
// not decide what the test checks).
func goCommand(t *testing.T, dir, goflags string, args ...string) *exec.Cmd {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the CLI: %v", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
	return cmd
}

// runBinary runs bin with args and returns its stdout, failing on an error.
func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr: %s", bin, strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() != 0 {
		t.Fatalf("%s %s wrote to stderr: %q", bin, strings.Join(args, " "), errb.String())
	}
	return out.String()
}

// TestVersionNamesTheRevision builds the CLI with `go build` from this git
// checkout (VCS stamping on) and checks that `wxnotify version` and
// `wxnotify --version` print the commit it was built from.
func TestVersionNamesTheRevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to check the VCS stamp: %v", err)
	}
	root := checkoutRoot(t)
	headOut, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD in %s: %v (the test runs in a git checkout)", root, err)
	}
	head := strings.TrimSpace(string(headOut))
	dir := root
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && !fi.IsDir() {
		// A linked worktree (.git is a file): the go command's VCS stamping
		// looks for a .git directory and stamps nothing there, so build a
		// clone of the same commit instead.
		dir = filepath.Join(t.TempDir(), "clone")
		for _, args := range [][]string{
			{"clone", "-q", "--shared", "--no-checkout", root, dir},
			{"-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", head},
		} {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	bin := filepath.Join(t.TempDir(), "wxnotify")
	if out, err := goCommand(t, dir, "-buildvcs=true", "build", "-o", bin, "./cmd/wxnotify").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/wxnotify: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "--version"} {
		got := runBinary(t, bin, arg)
		if !strings.HasPrefix(got, "wxnotify ") || !strings.Contains(got, "(revision "+head[:12]) || strings.Count(got, "\n") != 1 {
			t.Fatalf("wxnotify %s: got %q, want one line naming the revision %s", arg, got, head[:12])
		}
	}
}

// TestBuildFromAnotherModule builds the CLI as a user's module that
// requires wxnotify would (go build github.com/wxnotify/wxnotify/cmd/wxnotify
// in a module of its own, wxnotify replaced by this checkout), and checks
// the version it reports is the required one.
func TestBuildFromAnotherModule(t *testing.T) {
	root := checkoutRoot(t)
	dir := t.TempDir()
	ours, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go [0-9.]+$`).Find(ours)
	if goLine == nil {
		t.Fatal("no go directive in the checkout's go.mod")
	}
	goMod := "module example.com/try\n\n" + string(goLine) + "\n\nrequire " + version.Module + " v0.0.0\n\nreplace " + version.Module + " => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wxnotify")
	// -mod=mod fills the scratch module's go.sum from the module cache (or
	// the module proxy) as a user's first build would.
	if out, err := goCommand(t, dir, "-mod=mod", "build", "-o", bin, version.Module+"/cmd/wxnotify").CombinedOutput(); err != nil {
		t.Fatalf("go build %s/cmd/wxnotify in a module requiring it: %v\n%s", version.Module, err, out)
	}
	if got := runBinary(t, bin, "version"); !strings.HasPrefix(got, "wxnotify v0.0.0 ") {
		t.Fatalf("wxnotify version built from example.com/try: got %q, want the required version v0.0.0", got)
	}
	if got := runBinary(t, bin, "help"); !strings.Contains(got, "version") {
		t.Fatalf("wxnotify help built from example.com/try does not list version: %q", got)
	}
}

// TestGoInstall installs the CLI with `go install ./cmd/wxnotify` into a
// temporary GOBIN and runs it.
func TestGoInstall(t *testing.T) {
	root := checkoutRoot(t)
	gobin := t.TempDir()
	cmd := goCommand(t, root, "-buildvcs=false", "install", "./cmd/wxnotify")
	cmd.Env = append(cmd.Env, "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOBIN=%s go install ./cmd/wxnotify: %v\n%s", gobin, err, out)
	}
	bin := filepath.Join(gobin, "wxnotify")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	if got := runBinary(t, bin, "--version"); !strings.HasPrefix(got, "wxnotify ") {
		t.Fatalf("installed wxnotify --version: got %q", got)
	}
}
