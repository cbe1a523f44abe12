package platform

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/tencentyun/scf-go-lib/cloudfunction"
)

// The adapters are the platform libraries' handlers (the SCF one is not
// asserted in the package itself, so that binaries do not link net/rpc).
var (
	_ lambda.Handler        = (*Lambda)(nil)
	_ cloudfunction.Handler = (*SCF)(nil)
)

// seen is what a handler received.
type seen struct {
	Method     string
	Path       string
	RawPath    string
	RawQuery   string
	RequestURI string
	Host       string
	RemoteAddr string
	Proto      string
	Header     http.Header
	Body       []byte
	RequestID  string // runtime.RequestID of the request's context
}

// capture is an http.Handler that records every request and answers with
// respond (default: 200, empty body).
type capture struct {
	mu      sync.Mutex
	got     []seen
	respond func(w http.ResponseWriter, r *http.Request)
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, seen{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		RequestURI: r.RequestURI, Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto,
		Header: r.Header.Clone(), Body: body, RequestID: RequestID(r.Context()),
	})
	c.mu.Unlock()
	if c.respond != nil {
		c.respond(w, r)
	}
}

// only returns the one request the handler got.
func (c *capture) only(tb testing.TB) seen {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) != 1 {
		tb.Fatalf("got %d requests, want 1", len(c.got))
	}
	return c.got[0]
}

// moduleDir is where the go command keeps a dependency of this module.
func moduleDir(tb testing.TB, path string) string {
	tb.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		tb.Fatalf("go list -m %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// awsSample reads a sample event shipped with aws-lambda-go.
func awsSample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(moduleDir(tb, "github.com/aws/aws-lambda-go"), "events", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// testdata reads one of this package's fixtures.
func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// decode unmarshals b into a new T.
func decode[T any](tb testing.TB, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return v
}
