package refcheck_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/internal/refcheck"
)

// repoRoot is the directory of go.mod above this package.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestRepositoryReferences: every link, docs/ mention and cited test in
// the repository points at something that exists, and nothing names the
// design documents outside the repository.
func TestRepositoryReferences(t *testing.T) {
	problems, err := refcheck.Check(repoRoot(t), refcheck.Options{
		// The samples below break every rule on purpose.
		Skip: []string{"internal/refcheck/testdata"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestCheckFindsBadReferences feeds Check a tree with one of every kind of
// dead reference (testdata/bad), so that TestRepositoryReferences is known
// to be able to fail; testdata/bad.want lists the problems, one
// "file:line reference" a line.
func TestCheckFindsBadReferences(t *testing.T) {
	problems, err := refcheck.Check(filepath.Join("testdata", "bad"), refcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.File+":"+strconv.Itoa(p.Line)+" "+p.Ref)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "bad.want"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestCheckAcceptsGoodReferences: links to files, folders, headings
// (repeated, with code, in Chinese), URLs, links inside code, and cited
// tests that exist are no problem.
func TestCheckAcceptsGoodReferences(t *testing.T) {
	problems, err := refcheck.Check(filepath.Join("testdata", "good"), refcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("got problem %s, want none", p)
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ name, heading, want string }{
		{"Words", "Deploy to AWS", "deploy-to-aws"},
		{"Punctuation", "Store round trips (issue 2)", "store-round-trips-issue-2"},
		{"Code", "The `wxnotify dev` command", "the-wxnotify-dev-command"},
		{"Link", "See [the guide](guide.md)", "see-the-guide"},
		{"Chinese", "消息推送 (push)", "消息推送-push"},
		{"Underscore", "WXN_SECRETS_SOURCE", "wxn_secrets_source"},
		{"Hyphens", "G1 - no message", "g1---no-message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refcheck.Slug(tt.heading); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
