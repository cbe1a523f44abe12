package console_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/console"
)

// listedRow is a row of a Markdown table whose first cell is a code span.
var listedRow = regexp.MustCompile("^\\| `([^`]+)` \\|")

// consoleRoutesListed is the first cell of each row of docs/api.md's
// "Console routes" table.
func consoleRoutesListed(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	in := false
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.TrimLeft(line, "# ") == "Console routes"
			continue
		}
		if m := listedRow.FindStringSubmatch(line); in && m != nil {
			listed = append(listed, m[1])
		}
	}
	if len(listed) == 0 {
		t.Fatal(`docs/api.md: got no "Console routes" table`)
	}
	return listed
}

// TestConsoleRoutesListed checks that docs/api.md's list of the console's
// routes is the patterns the console registers, each once.
func TestConsoleRoutesListed(t *testing.T) {
	f := newFixture(t, nil)
	con, err := console.FromParts(f.parts, f.now)
	if err != nil {
		t.Fatal(err)
	}
	served := con.Routes()
	listed := consoleRoutesListed(t)
	if len(served) < 10 {
		t.Fatalf("got routes %v, want every route of the console", served)
	}
	for _, r := range served {
		if !slices.Contains(listed, r) {
			t.Errorf("the console serves %q, but docs/api.md's Console routes do not list it", r)
		}
	}
	for _, r := range listed {
		if !slices.Contains(served, r) {
			t.Errorf("docs/api.md's Console routes list %q, but the console does not serve it", r)
		}
	}
	seen := map[string]bool{}
	for _, r := range listed {
		if seen[r] {
			t.Errorf("docs/api.md's Console routes list %q twice", r)
		}
		seen[r] = true
	}
}
