package main

import (
	"fmt"
	"strings"
)

// opKind is the kind of one step of a line edit script.
type opKind uint8

const (
	opEqual  opKind = iota // a line of both texts
	opDelete               // a line of the old text only
	opInsert               // a line of the new text only
)

// op is one step of an edit script: line a of the old text (equal,
// delete) and line b of the new text (equal, insert).
type op struct {
	kind opKind
	a, b int
}

// maxDiffCells bounds the table of diffLines; larger changes are shown as
// a whole replacement.
const maxDiffCells = 16 << 20

// diffLines returns a shortest edit script from a to b (the lines outside a
// longest common subsequence), each run of changes listing its deletions
// before its insertions.
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]op, 0, len(a)+len(b))
	for i := range pre {
		ops = append(ops, op{opEqual, i, i})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	if n > 0 && m > 0 && n*m <= maxDiffCells {
		// lcs[i*(m+1)+j] is the length of a longest common subsequence of
		// ma[i:] and mb[j:].
		lcs := make([]int32, (n+1)*(m+1))
		at := func(i, j int) int32 { return lcs[i*(m+1)+j] }
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i*(m+1)+j] = at(i+1, j+1) + 1
				} else {
					lcs[i*(m+1)+j] = max(at(i+1, j), at(i, j+1))
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, op{opEqual, pre + i, pre + j})
				i, j = i+1, j+1
			case j == m || i < n && at(i+1, j) >= at(i, j+1):
				ops = append(ops, op{opDelete, pre + i, -1})
				i++
			default:
				ops = append(ops, op{opInsert, -1, pre + j})
				j++
			}
		}
	} else {
		for i := range n {
			ops = append(ops, op{opDelete, pre + i, -1})
		}
		for j := range m {
			ops = append(ops, op{opInsert, -1, pre + j})
		}
	}
	for k := range suf {
		ops = append(ops, op{opEqual, len(a) - suf + k, len(b) - suf + k})
	}
	return groupChanges(ops)
}

// groupChanges reorders each run of changes to list deletions first.
func groupChanges(ops []op) []op {
	out := make([]op, 0, len(ops))
	for k := 0; k < len(ops); {
		if ops[k].kind == opEqual {
			out = append(out, ops[k])
			k++
			continue
		}
		end := k
		for end < len(ops) && ops[end].kind != opEqual {
			end++
		}
		for _, o := range ops[k:end] {
			if o.kind == opDelete {
				out = append(out, o)
			}
		}
		for _, o := range ops[k:end] {
			if o.kind == opInsert {
				out = append(out, o)
			}
		}
		k = end
	}
	return out
}

// splitLines splits text into lines without their newlines.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// unifiedDiff is a unified diff of two texts with three lines of context;
// "" when they have the same lines.
func unifiedDiff(oldName, newName, oldText, newText string) string {
	const context = 3
	a, b := splitLines(oldText), splitLines(newText)
	ops := diffLines(a, b)
	var out strings.Builder
	for k := 0; k < len(ops); {
		if ops[k].kind == opEqual {
			k++
			continue
		}
		// A hunk: context before the change, then changes and the equal
		// runs between them that are too short to split the hunk.
		start := max(0, k-context)
		end := k
		for end < len(ops) {
			next := end
			for next < len(ops) && ops[next].kind != opEqual {
				next++
			}
			eq := next
			for eq < len(ops) && ops[eq].kind == opEqual {
				eq++
			}
			if eq == len(ops) || eq-next > 2*context {
				end = min(len(ops), next+context)
				break
			}
			end = eq
		}
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
		}
		writeHunk(&out, a, b, ops, start, end)
		k = end
	}
	return out.String()
}

// writeHunk writes ops[start:end] as one hunk.
func writeHunk(out *strings.Builder, a, b []string, ops []op, start, end int) {
	// The lines of a and b before the hunk.
	aBefore, bBefore := 0, 0
	for _, o := range ops[:start] {
		if o.kind != opInsert {
			aBefore++
		}
		if o.kind != opDelete {
			bBefore++
		}
	}
	var aLen, bLen int
	var body strings.Builder
	for _, o := range ops[start:end] {
		switch o.kind {
		case opEqual:
			aLen, bLen = aLen+1, bLen+1
			body.WriteString(" " + a[o.a] + "\n")
		case opDelete:
			aLen++
			body.WriteString("-" + a[o.a] + "\n")
		case opInsert:
			bLen++
			body.WriteString("+" + b[o.b] + "\n")
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n%s", hunkRange(aBefore, aLen), hunkRange(bBefore, bLen), body.String())
}

// hunkRange is a hunk header's "start,length": the first line (1-based),
// or the line before an empty range.
func hunkRange(before, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", before)
	}
	return fmt.Sprintf("%d,%d", before+1, n)
}

// restoreBlankLines puts back into edited the blank lines of original that
// re-encoding dropped: a blank line goes back before the line that followed
// it, or before what replaced that line. Lines of spaces count as blank;
// blank lines the edit inserted count towards those restored, and blank
// lines at the very end stay dropped.
func restoreBlankLines(original, edited string) string {
	a, b := splitLines(original), splitLines(edited)
	for i, l := range a {
		if strings.TrimSpace(l) == "" {
			a[i] = ""
		}
	}
	var out strings.Builder
	ops := diffLines(a, b)
	for k := 0; k < len(ops); {
		if ops[k].kind == opEqual {
			out.WriteString(b[ops[k].b] + "\n")
			k++
			continue
		}
		end := k
		for end < len(ops) && ops[end].kind != opEqual {
			end++
		}
		// Blank lines before the first replaced line go before the
		// replacement; the others before the next unchanged line.
		var lead, trail, pending, inserted int
		replaced, inserts := false, false
		for _, o := range ops[k:end] {
			switch {
			case o.kind == opDelete && a[o.a] == "":
				pending++
			case o.kind == opDelete && !replaced:
				lead, pending, replaced = pending, 0, true
			case o.kind == opDelete:
				trail, pending = trail+pending, 0
			case b[o.b] == "":
				inserted++
			default:
				inserts = true
			}
		}
		trail += pending
		cut := min(trail, inserted)
		trail, lead = trail-cut, max(0, lead-(inserted-cut))
		if end == len(ops) {
			trail = 0
			if !inserts {
				lead = 0
			}
		}
		out.WriteString(strings.Repeat("\n", lead))
		for _, o := range ops[k:end] {
			if o.kind == opInsert {
				out.WriteString(b[o.b] + "\n")
			}
		}
		out.WriteString(strings.Repeat("\n", trail))
		k = end
	}
	return out.String()
}
