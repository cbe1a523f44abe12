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
		// This file's sample trees break every rule on purpose.
		Skip: []string{"internal/refcheck/refcheck_test.go"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The sample trees below are written by the tests rather than kept as files:
// they name documents that exist nowhere on purpose, and the repository's
// own text must not. md spells a Markdown file name and up the parent
// directory, so that no such name stands in this file either.
func md(name string) string { return name + ".md" }

const up = ".."

// badTree has one of every kind of dead reference.
func badTree() map[string]string {
	return map[string]string{
		md("README"): "# Sample\n\n" +
			"A link to a missing file: [gone](docs/" + md("gone") + ").\n" +
			"A link to a missing heading: [setup](docs/" + md("guide") + "#no-such-heading).\n" +
			"A link to a missing heading here: [top](#nowhere).\n" +
			"A link out of the repository: [shared](" + up + "/" + md("outside") + ").\n" +
			"The contract is in " + md("API") + ", see " + md("DESIGN") + " section 6 and " + up + "/shared/" + md("WECHAT") + ".\n" +
			"The proof is `TestNoSuchTest` and `FuzzNoSuchTarget/Seed`.\n" +
			"Prose naming docs/" + md("missing") + " and docs/" + md("guide") + "#wrong-anchor.\n" +
			"[ref]: docs/" + md("absent") + "\n",
		"code.go":             "package sample\n\n// Handler serves the routes of docs/" + md("nothing") + " (see " + md("STYLE") + ").\nfunc Handler() {}\n",
		"docs/" + md("guide"): "# Guide\n\n## Set up\n",
		"docs/openapi.yaml": "# The contract is docs/" + md("api") + ".\ninfo:\n  description: |\n" +
			"    See [the guide](" + md("guide") + "#set-up) and [the other](" + md("other") + ").\n",
	}
}

// badWant are badTree's problems, "file:line reference" each.
func badWant() []string {
	return []string{
		"README.md:3 docs/" + md("gone"),
		"README.md:4 docs/" + md("guide") + "#no-such-heading",
		"README.md:5 #nowhere",
		"README.md:6 " + up + "/" + md("outside"),
		"README.md:7 " + md("API"),
		"README.md:7 " + md("DESIGN"),
		"README.md:7 " + up + "/shared/",
		"README.md:7 " + md("WECHAT"),
		"README.md:8 TestNoSuchTest",
		"README.md:8 FuzzNoSuchTarget",
		"README.md:9 docs/" + md("missing"),
		"README.md:9 docs/" + md("guide") + "#wrong-anchor",
		"README.md:10 docs/" + md("absent"),
		"code.go:3 docs/" + md("nothing"),
		"code.go:3 " + md("STYLE"),
		"docs/openapi.yaml:1 docs/" + md("api"),
		"docs/openapi.yaml:4 " + md("other"),
	}
}

// goodTree has links to files, folders, headings (repeated, with code, in
// Chinese), URLs, links inside code, and cited tests that exist.
func goodTree() map[string]string {
	guide := "docs/" + md("guide")
	return map[string]string{
		"shared/" + md("x"): "# Shared\n",
		md("README"): "# Sample\n\n" +
			"[guide](" + guide + "), [set up](" + guide + "#set-up), [again](" + guide + "#set-up-1),\n" +
			"[code](" + guide + "#the-wxnotify-dev-command), [中文](" + guide + "#消息推送-push), [here](#sample),\n" +
			"[a folder](docs), [web](https://example.com/DESIGN), [mail](mailto:a@example.com).\n" +
			"Prose naming " + guide + "#set-up and " + guide + ".\n" +
			"The proof is `TestReal` and `TestReal/Sub`.\n\n" +
			"```\n[not a link](" + md("missing") + ") DESIGN\n```\n\n" +
			"`[not a link either](" + md("missing") + ")`\n",
		"real_test.go": "package sample\n\nimport \"testing\"\n\nfunc TestReal(t *testing.T) {}\n",
		guide: "# Guide\n\n## Set up\n\n## Set up\n\n## The `wxnotify dev` command\n\n## 消息推送 (push)\n\n" +
			"```\n# not a heading\n```\n\nSee [the shared page](" + up + "/shared/" + md("x") + "#shared).\n",
	}
}

// writeTree writes files (path: content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestCheckFindsBadReferences feeds Check a tree with one of every kind of
// dead reference, so that TestRepositoryReferences is known to be able to
// fail.
func TestCheckFindsBadReferences(t *testing.T) {
	problems, err := refcheck.Check(writeTree(t, badTree()), refcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.File+":"+strconv.Itoa(p.Line)+" "+p.Ref)
	}
	want := badWant()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestCheckAcceptsGoodReferences: nothing in goodTree is a problem.
func TestCheckAcceptsGoodReferences(t *testing.T) {
	problems, err := refcheck.Check(writeTree(t, goodTree()), refcheck.Options{})
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
		{"Link", "See [the guide](" + md("guide") + ")", "see-the-guide"},
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
