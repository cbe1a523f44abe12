// Package refcheck finds references in the repository's text that point at
// nothing: Markdown links to missing files or headings, mentions of
// docs/*.md files that do not exist, test names cited in the docs that no
// test defines, and mentions of the design documents the project started
// from, which live outside the repository and which its users never see.
//
// Its test runs the checks on the repository itself, so a renamed heading
// or a removed file fails `go test` instead of leaving a dead link.
package refcheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one reference that points at nothing.
type Problem struct {
	File string // slash-separated, relative to the root
	Line int    // from 1
	Ref  string // the reference as written
	Why  string // what is missing, and what to do
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Ref, p.Why)
}

// Options tune Check.
type Options struct {
	// Skip lists slash-separated paths, relative to the root, of files or
	// directories not to read (besides .git, node_modules and dist, which
	// are never read).
	Skip []string
}

// skipDirs are never read, wherever they are: version control, installed
// packages, wxnotify dev's data. skipRootDirs are skipped at the root only:
// the build output (internal/dist is source).
var (
	skipDirs     = []string{".git", "node_modules", ".wxnotify"}
	skipRootDirs = []string{"dist"}
)

var (
	// outside matches mentions of files that exist only outside the
	// repository: the starting design documents (upper case: the
	// repository's own docs/api.md and docs/design.md are lower case) and
	// the folder they live in.
	outside = regexp.MustCompile(`\b(?:DESIGN|API|WECHAT|STYLE)\.md\b|\.\./shared/|/work/share[d]\b`)
	// docsMention matches a path under docs/ with its optional anchor.
	docsMention = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])(docs/[A-Za-z0-9_./-]*[A-Za-z0-9_])(#[\p{L}\p{N}_-]+)?`)
	// mdLink matches an inline Markdown link or image: [text](target "title").
	mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// mdRefDef matches a reference definition: [label]: target.
	mdRefDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	// citedTest matches a test, fuzz target or benchmark named in backticks,
	// optionally with a subtest.
	citedTest = regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z0-9_][A-Za-z0-9_]*)(?:/[^`]*)?`")
	// definedTest matches the definition of a test function.
	definedTest = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	scheme      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// file is one text file of the tree.
type file struct {
	rel  string // slash-separated
	text string
}

// Check reads every text file under root and returns the references that
// point at nothing, sorted by file and line:
//
//   - a relative Markdown link (in .md files, and in the descriptions of
//     .yaml files) whose file does not exist, or whose #anchor is not a
//     heading of the Markdown file it names (GitHub's anchor rules);
//   - a mention of docs/<path> (in any text file: Go comments, YAML,
//     Markdown prose) that does not exist, or whose #anchor is missing;
//   - a mention of the starting design documents (the upper-case DESIGN,
//     API, WECHAT and STYLE .md files) or of the folder outside the
//     repository that holds them;
//   - a test, fuzz target or benchmark named in backticks in a Markdown
//     file that no _test.go file defines.
func Check(root string, opts Options) ([]Problem, error) {
	files, err := readTree(root, opts.Skip)
	if err != nil {
		return nil, err
	}
	c := checker{root: root, anchors: map[string]map[string]bool{}, tests: map[string]bool{}}
	for _, f := range files {
		if strings.HasSuffix(f.rel, "_test.go") {
			for _, m := range definedTest.FindAllStringSubmatch(f.text, -1) {
				c.tests[m[1]] = true
			}
		}
	}
	for _, f := range files {
		c.file(f)
	}
	slices.SortFunc(c.problems, func(a, b Problem) int {
		if a.File != b.File {
			return strings.Compare(a.File, b.File)
		}
		return a.Line - b.Line
	})
	return c.problems, nil
}

type checker struct {
	root     string
	anchors  map[string]map[string]bool // per Markdown file (slash path): its heading anchors
	tests    map[string]bool            // test functions defined anywhere
	problems []Problem
}

// report records a problem once, although a Markdown link to docs/ is
// both a link and a mention.
func (c *checker) report(f file, line int, ref, why string) {
	p := Problem{File: f.rel, Line: line, Ref: ref, Why: why}
	if !slices.ContainsFunc(c.problems, func(q Problem) bool { return q.File == p.File && q.Line == p.Line && q.Ref == p.Ref }) {
		c.problems = append(c.problems, p)
	}
}

func (c *checker) file(f file) {
	isMD := strings.HasSuffix(f.rel, ".md")
	isYAML := strings.HasSuffix(f.rel, ".yaml") || strings.HasSuffix(f.rel, ".yml")
	inFence := false
	for i, line := range strings.Split(f.text, "\n") {
		n := i + 1
		scan := line
		if isMD || isYAML {
			scan = withoutInsideLinks(f, line)
		}
		for _, m := range outside.FindAllString(scan, -1) {
			c.report(f, n, m, "names a file outside the repository, which users do not have: "+
				"point at the repository's own docs (docs/design.md, docs/api.md, docs/wechat.md)")
		}
		for _, m := range docsMention.FindAllStringSubmatch(line, -1) {
			c.target(f, n, m[1]+m[2], strings.TrimSuffix(m[1], "."), strings.TrimPrefix(m[2], "#"), true)
		}
		if isMD {
			if isFence(line) {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			prose := stripCodeSpans(line)
			c.links(f, n, prose)
			if m := mdRefDef.FindStringSubmatch(prose); m != nil {
				c.link(f, n, m[1])
			}
			for _, m := range citedTest.FindAllStringSubmatch(line, -1) {
				if !c.tests[m[1]] {
					c.report(f, n, m[1], "no _test.go file defines it: cite a test that exists")
				}
			}
		}
		if isYAML {
			c.links(f, n, line)
		}
	}
}

// withoutInsideLinks blanks the targets of the line's relative Markdown
// links that stay inside the repository (a link from docs/ up to shared/,
// say), which are checked as links, not as mentions of the folder outside.
func withoutInsideLinks(f file, line string) string {
	return mdLink.ReplaceAllStringFunc(line, func(link string) string {
		target := mdLink.FindStringSubmatch(link)[1]
		p, _, _ := strings.Cut(target, "#")
		if p == "" || scheme.MatchString(p) || strings.HasPrefix(p, "/") {
			return link
		}
		if rel := path.Join(path.Dir(f.rel), p); rel == ".." || strings.HasPrefix(rel, "../") {
			return link
		}
		return strings.Replace(link, target, "", 1)
	})
}

// links checks the Markdown links of one line.
func (c *checker) links(f file, line int, text string) {
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		c.link(f, line, m[1])
	}
}

// link checks one link target, relative to f's directory.
func (c *checker) link(f file, line int, target string) {
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return // a URL: not a repository file
	}
	p, anchor, _ := strings.Cut(target, "#")
	if p == "" {
		c.target(f, line, target, f.rel, anchor, false)
		return
	}
	if strings.HasPrefix(p, "/") {
		c.report(f, line, target, "an absolute path: link relative to this file")
		return
	}
	if q, err := unescapePath(p); err == nil {
		p = q
	}
	c.target(f, line, target, path.Join(path.Dir(f.rel), p), anchor, false)
}

// target checks that the file rel (slash path from the root) exists and,
// for a Markdown file, that anchor (without '#', may be empty) is one of
// its headings. mention tells a bare docs/ mention from a link.
func (c *checker) target(f file, line int, ref, rel, anchor string, mention bool) {
	if rel == ".." || strings.HasPrefix(rel, "../") {
		c.report(f, line, ref, "points outside the repository")
		return
	}
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		why := "no such file in the repository"
		if mention {
			why = "no such file in the repository: fix the path or the file's name"
		}
		c.report(f, line, ref, why)
		return
	}
	if anchor == "" || info.IsDir() || !strings.HasSuffix(rel, ".md") {
		return
	}
	anchors, err := c.anchorsOf(rel)
	if err != nil {
		c.report(f, line, ref, err.Error())
		return
	}
	if !anchors[anchor] {
		c.report(f, line, ref, fmt.Sprintf("%s has no heading with the anchor #%s", rel, anchor))
	}
}

func (c *checker) anchorsOf(rel string) (map[string]bool, error) {
	if a, ok := c.anchors[rel]; ok {
		return a, nil
	}
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	a := Anchors(string(b))
	c.anchors[rel] = a
	return a, nil
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// isFence reports whether a Markdown line opens or closes a code fence.
func isFence(line string) bool {
	trimmed := strings.TrimSpace(line)
	return strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")
}

// Anchors returns the anchors GitHub gives the headings of a Markdown
// document (and explicit <a name> / <a id> anchors): the heading's text,
// lower-cased, without characters other than letters, digits, marks,
// underscores, hyphens and spaces, spaces made hyphens; a repeated anchor
// gets -1, -2, ... Headings inside fenced code blocks do not count.
func Anchors(md string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	inFence := false
	for line := range strings.SplitSeq(md, "\n") {
		if isFence(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := Slug(m[2])
		if n, ok := seen[slug]; ok {
			seen[slug] = n + 1
			out[slug+"-"+strconv.Itoa(n+1)] = true
			continue
		}
		seen[slug] = 0
		out[slug] = true
	}
	return out
}

// Slug is GitHub's anchor for a heading's Markdown text.
func Slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripCodeSpans blanks the `code spans` of a line, whose text is not a link.
func stripCodeSpans(line string) string {
	var b strings.Builder
	in := false
	for _, r := range line {
		if r == '`' {
			in = !in
			b.WriteRune(' ')
			continue
		}
		if in {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unescapePath undoes the %xx escapes of a link's path.
func unescapePath(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", fmt.Errorf("bad escape in %q", p)
		}
		v, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", p)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// readTree returns the text files under root (files without NUL bytes in
// their first 8 KiB), except the skipped ones.
func readTree(root string, skip []string) ([]file, error) {
	var files []file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (slices.Contains(skipDirs, d.Name()) || slices.Contains(skipRootDirs, rel) || slices.Contains(skip, rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if slices.Contains(skip, rel) || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p) // #nosec G304 -- p is a file of the repository this walk lists
		if err != nil {
			return err
		}
		if bytes.IndexByte(b[:min(len(b), 8<<10)], 0) >= 0 {
			return nil // binary
		}
		files = append(files, file{rel: rel, text: string(b)})
		return nil
	})
	return files, err
}
