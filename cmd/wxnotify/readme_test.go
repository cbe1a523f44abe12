package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeNamesRealTests: every test the README cites as proof of a
// guarantee exists, so the table cannot point at nothing.
func TestReadmeNamesRealTests(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("`(Test[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(readme), -1)
	if len(names) < 10 {
		t.Fatalf("found %d test names in the README, want the guarantees table's", len(names))
	}
	for _, m := range names {
		out, err := exec.Command("git", "grep", "-l", "func "+m[1]+"(", "--", "*.go").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			// Not committed yet, or git missing: look in the work tree.
			out, err = exec.Command("grep", "-rl", "--include=*_test.go", "func "+m[1]+"(", "../..").CombinedOutput()
		}
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Errorf("the README cites %s, which no test file defines", m[1])
		}
	}
}
