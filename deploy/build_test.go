// Package deploy_test checks the deployment: the function binaries run end
// to end under the platforms' own invoke protocols (emulated by
// shared/platform/platformtest), template.yaml and serverless.yml agree with
// the code, and the binaries' size and cold start stay in budget.
package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// root is the repository root, relative to this package.
const root = ".."

// functions are the binaries the tests run.
var functions = []string{"login", "consent", "send", "wxpush", "leads", "batch", "console"}

// built holds the binaries of this test run, built once.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildAll builds every function with the tool `make build` uses (for this
// machine's architecture, bundling testConfig) and the empty aws-lambda-go
// function with the same flags.
func buildAll() (string, error) {
	dir, err := os.MkdirTemp("", "wxnotify-deploy-test-")
	if err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "wxnotify.yaml")
	if err := os.WriteFile(cfg, testConfig(), 0o644); err != nil {
		return dir, err
	}
	args := append([]string{"run", "./internal/dist", "-out", dir, "-cloud", "aws", "-goarch", "native", "-config", cfg}, functions...)
	if err := run(exec.Command("go", args...)); err != nil {
		return dir, err
	}
	empty := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags", "-s -w",
		"-o", filepath.Join(dir, "aws", "emptyfn", "bootstrap"), "./deploy/testdata/emptyfn")
	empty.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	return dir, run(empty)
}

func run(cmd *exec.Cmd) error {
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
	}
	return nil
}

// binary returns the path of a function's bootstrap (or "emptyfn"'s).
func binary(tb testing.TB, function string) string {
	tb.Helper()
	if goruntime.GOOS != "linux" {
		tb.Skip("the function binaries are built for linux")
	}
	built.once.Do(func() { built.dir, built.err = buildAll() })
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return filepath.Join(built.dir, "aws", function, "bootstrap")
}

// testTemplates are the fake WeChat's one-time templates, which testConfig
// puts in the catalog.
func testTemplates() []wechattest.Template {
	var ts []wechattest.Template
	for _, t := range wechattest.DefaultTemplates() {
		if t.Type == wechattest.OneTime {
			ts = append(ts, t)
		}
	}
	return ts
}

// testConfig is the wxnotify.yaml bundled with the test binaries.
func testConfig() []byte {
	var b strings.Builder
	b.WriteString("templates:\n")
	for i, t := range testTemplates() {
		fmt.Fprintf(&b, "  - alias: t%d\n    id: %s\n    title: %s\n    kind: one-time\n    policy: reject\n    keywords:\n", i, t.PriTmplID, t.Title)
		for _, kw := range t.Keywords {
			fmt.Fprintf(&b, "      - name: %s\n", kw.Name)
		}
	}
	return []byte(b.String())
}
