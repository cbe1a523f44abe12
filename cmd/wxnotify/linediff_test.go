package main

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(n int, edit map[int]string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if s, ok := edit[i]; ok {
				b.WriteString(s)
				continue
			}
			b.WriteString("l" + string(rune('a'+i-1)) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"Same", "a\nb\n", "a\nb\n", ""},
		{"Change", "a\nb\nc\n", "a\nB\nc\n", "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"FromNothing", "", "a\nb\n", "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"ToNothing", "a\n", "", "--- old\n+++ new\n@@ -1,1 +0,0 @@\n-a\n"},
		{"InsertAtEnd", lines(6, nil), lines(6, map[int]string{6: "lf\nlg\n"}),
			"--- old\n+++ new\n@@ -4,3 +4,4 @@\n ld\n le\n lf\n+lg\n"},
		{"TwoHunks", lines(12, nil), lines(12, map[int]string{2: "LB\n", 11: "LK\n"}),
			"--- old\n+++ new\n@@ -1,5 +1,5 @@\n la\n-lb\n+LB\n lc\n ld\n le\n@@ -8,5 +8,5 @@\n lh\n li\n lj\n-lk\n+LK\n ll\n"},
		{"CloseChangesOneHunk", lines(9, nil), lines(9, map[int]string{2: "LB\n", 8: "LH\n"}),
			"--- old\n+++ new\n@@ -1,9 +1,9 @@\n la\n-lb\n+LB\n lc\n ld\n le\n lf\n lg\n-lh\n+LH\n li\n"},
		{"DeletionsBeforeInsertions", "a\nb\nc\nd\n", "a\nX\nY\nd\n", "--- old\n+++ new\n@@ -1,4 +1,4 @@\n a\n-b\n-c\n+X\n+Y\n d\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unifiedDiff("old", "new", tc.old, tc.new); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRestoreBlankLines(t *testing.T) {
	tests := []struct {
		name               string
		original, reencode string
		want               string
	}{
		{"Unchanged", "a:\n\nb:\n", "a:\nb:\n", "a:\n\nb:\n"},
		{"CommentBlock", "x: 1\n\n# about y\ny: 2\n", "x: 1\n# about y\ny: 2\n", "x: 1\n\n# about y\ny: 2\n"},
		{"BeforeAChangedLine", "a: 1\n\nb: 1\nc: 1\n", "a: 1\nb: 2\nc: 1\n", "a: 1\n\nb: 2\nc: 1\n"},
		{"BeforeAChangedLastLine", "a: 1\n\nb: 1\n", "a: 1\nb: 2\n", "a: 1\n\nb: 2\n"},
		{"DeletedAtEnd", "a: 1\n\nb: 1\n", "a: 1\n", "a: 1\n"},
		{"AfterInsertedLines", "t:\n  - x\n\nr:\n", "t:\n  - x\n  - y\nr:\n", "t:\n  - x\n  - y\n\nr:\n"},
		{"SpacesCountAsBlank", "a:\n  \nb:\n", "a:\nb:\n", "a:\n\nb:\n"},
		{"InsertedBlankCounts", "# c\n\n\nk: v\n", "# c\n\nk: v\n", "# c\n\n\nk: v\n"},
		{"TrailingBlanksDropped", "a: 1\n\n\n", "a: 1\n", "a: 1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := restoreBlankLines(tc.original, tc.reencode); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
