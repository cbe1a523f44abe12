package config

import (
	"strings"
	"testing"
)

// FuzzParseFile: any wxnotify.yaml parses into a file whose catalog and
// rules compile, or fails with an error; none panics. (The file is the
// operator's, but it is read at every cold start: a bad one must fail the
// start cleanly, never crash it half-way.)
func FuzzParseFile(f *testing.F) {
	f.Add(Example)
	for _, s := range []string{
		"templates:\n  - alias: a\n    id: t1\n    kind: one-time\n    keywords: [{name: thing1}]\n",
		"templates: []\nrules:\n  - name: r\n    event: lead.*\n    template: a\n    to: {userId: data.u}\n",
		"templates:\n  - &a {alias: a, id: t1, keywords: [{name: thing1}]}\n  - *a\n",
		"a: &x [*x]\n", "templates: !!binary aGk=\n", "{", "---\n---\n", "rules: [{fields: {thing1: {decimals: 99999999999}}}]",
		strings.Repeat("- ", 50) + "x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := ParseFile(raw)
		if err != nil {
			return
		}
		catalog, err := file.Catalog()
		if err != nil {
			t.Fatalf("ParseFile accepted %q but its catalog fails: %v", raw, err)
		}
		if _, err := file.CompileRules(catalog); err != nil {
			t.Fatalf("ParseFile accepted %q but its rules fail: %v", raw, err)
		}
	})
}
