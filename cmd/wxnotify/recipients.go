package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// csvProblem is one thing wrong in a recipients CSV: where, and why.
type csvProblem struct {
	Line   int    // 1 is the header
	Column string // "2 (openid)"; "" when the problem is the row's
	// Byte is where in the line a CSV syntax error is (1-based), 0 otherwise.
	Byte   int
	Reason string
}

func (p csvProblem) String() string {
	switch {
	case p.Column != "":
		return fmt.Sprintf("line %d, column %s: %s", p.Line, p.Column, p.Reason)
	case p.Byte > 0:
		return fmt.Sprintf("line %d, byte %d: %s", p.Line, p.Byte, p.Reason)
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
	}
	return p.Reason
}

// recipientsError is every problem found in a recipients CSV: the whole
// file is read, so that one run lists all the rows to fix.
type recipientsError struct {
	Problems []csvProblem
}

func (e *recipientsError) Error() string {
	rows := map[int]bool{}
	for _, p := range e.Problems {
		rows[p.Line] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s; fix them and run again (no batch was created):", plural(len(e.Problems), "problem"), plural(len(rows), "line"))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// plural is "1 line", "2 lines".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// recipientsFile is a parsed recipients CSV: the recipients and the line
// each came from, to point a server's answer about recipients[i] at its row.
type recipientsFile struct {
	Recipients []batchRecipient
	Lines      []int
	// Columns maps a data key to its column ("3 (thing1)").
	Columns map[string]string
}

// readRecipients reads the recipients CSV at path, or stdin for "-".
func (c *cli) readRecipients(path string) (recipientsFile, error) {
	name, r := path, c.stdin
	if path == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return recipientsFile{}, err
		}
		defer f.Close()
		r = f
	}
	rf, err := parseRecipients(r)
	if err != nil {
		return rf, fmt.Errorf("%s: %w", name, err)
	}
	return rf, nil
}

// parseRecipients reads a recipients CSV: a header row, then one recipient
// a row. The header names a userId column, an openid column or both
// (matched in any case), and data keys (keyword names such as thing1);
// every row fills exactly one of userId and openid, and its non-empty data
// cells become the recipient's data. A UTF-8 byte order mark (as
// spreadsheets write) is ignored.
//
// A bad file gives a *recipientsError that lists every problem with its
// line and column: the header's, each row's (a wrong number of fields, no
// or two recipient ids, a userId or openid the API would refuse, a value
// that is not UTF-8) and the CSV syntax errors. What the rows' values must
// be for the template (types, lengths, enum values) only the server knows:
// it checks them when the batch is created.
func parseRecipients(r io.Reader) (recipientsFile, error) {
	var rf recipientsFile
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted below, to go on after a short row
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return rf, errors.New("empty file: a header row and at least one recipient are expected")
	}
	if err != nil {
		return rf, &recipientsError{Problems: []csvProblem{syntaxProblem(err)}}
	}
	var problems []csvProblem
	userCol, openCol := -1, -1
	seen := map[string]bool{}
	columns := make([]string, len(header))
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		name = strings.TrimSpace(name)
		header[i] = name
		columns[i] = strconv.Itoa(i + 1)
		if name != "" {
			columns[i] += " (" + name + ")"
		}
		bad := func(reason string) {
			problems = append(problems, csvProblem{Line: 1, Column: columns[i], Reason: reason})
		}
		lower := strings.ToLower(name)
		switch {
		case name == "":
			bad("has no name")
			continue
		case seen[lower]:
			bad(fmt.Sprintf("%q appears twice", name))
			continue
		}
		seen[lower] = true
		switch lower {
		case "userid":
			userCol = i
		case "openid":
			openCol = i
		default:
			if _, ok := wechat.KeywordType(name); !ok || strings.Contains(name, ".") {
				bad(fmt.Sprintf("%q is not a keyword name such as thing1 or number2 (the columns besides userId and openid are the template's keywords)", name))
			}
		}
	}
	if userCol < 0 && openCol < 0 {
		problems = append(problems, csvProblem{Line: 1, Reason: "the header has neither a userId nor an openid column"})
	}
	if len(problems) > 0 {
		return rf, &recipientsError{Problems: problems}
	}
	rf.Columns = map[string]string{}
	for i, name := range header {
		if i != userCol && i != openCol {
			rf.Columns[name] = columns[i]
		}
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			problems = append(problems, syntaxProblem(err))
			if errors.As(err, &pe) {
				continue // the reader goes on at the next line
			}
			break
		}
		line, _ := cr.FieldPos(0)
		bad := func(col int, reason string) {
			p := csvProblem{Line: line, Reason: reason}
			if col >= 0 {
				p.Column = columns[col]
			}
			problems = append(problems, p)
		}
		if len(row) != len(header) {
			bad(-1, fmt.Sprintf("%s, the header has %d", plural(len(row), "field"), len(header)))
			continue
		}
		var rc batchRecipient
		if userCol >= 0 {
			rc.UserID = strings.TrimSpace(row[userCol])
		}
		if openCol >= 0 {
			rc.OpenID = strings.TrimSpace(row[openCol])
		}
		ok := true
		switch {
		case rc.UserID == "" && rc.OpenID == "":
			bad(-1, "no "+idColumns(userCol, openCol)+": give one")
			ok = false
		case rc.UserID != "" && rc.OpenID != "":
			bad(-1, "both userId and openid are set; give one")
			ok = false
		case rc.UserID != "":
			var e *notify.Error
			if err := notify.CheckUserID("userId", rc.UserID); errors.As(err, &e) {
				bad(userCol, fmt.Sprintf("%q %s", rc.UserID, e.Message))
				ok = false
			}
		case !httpapi.IsOpenID(rc.OpenID):
			bad(openCol, fmt.Sprintf("%q is not an openid (1 to 64 ASCII letters, digits, '-' and '_')", rc.OpenID))
			ok = false
		}
		for i, v := range row {
			if i == userCol || i == openCol || v == "" {
				continue
			}
			if !utf8.ValidString(v) {
				bad(i, "is not valid UTF-8 (save the file as UTF-8)")
				ok = false
				continue
			}
			if rc.Data == nil {
				rc.Data = map[string]string{}
			}
			rc.Data[header[i]] = v
		}
		if ok {
			rf.Recipients = append(rf.Recipients, rc)
			rf.Lines = append(rf.Lines, line)
		}
	}
	if len(problems) > 0 {
		return rf, &recipientsError{Problems: problems}
	}
	if len(rf.Recipients) == 0 {
		return rf, errors.New("no recipients after the header row")
	}
	return rf, nil
}

// idColumns names the recipient columns the header has.
func idColumns(userCol, openCol int) string {
	switch {
	case userCol >= 0 && openCol >= 0:
		return "userId or openid"
	case userCol >= 0:
		return "userId"
	}
	return "openid"
}

// syntaxProblem places a CSV syntax error.
func syntaxProblem(err error) csvProblem {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		reason := pe.Err.Error()
		if pe.StartLine != pe.Line {
			reason += fmt.Sprintf(" (in the field that starts on line %d)", pe.StartLine)
		}
		return csvProblem{Line: pe.Line, Byte: pe.Column, Reason: reason}
	}
	return csvProblem{Reason: err.Error()}
}

// recipientProblem points a server's answer about recipients[i] (its field
// "recipients[3].data.thing1") at the CSV row and column it came from; ok is
// false when the answer is about something else.
func (rf recipientsFile) recipientProblem(err error) (where string, ok bool) {
	var ae *apiError
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.Field, "recipients[") {
		return "", false
	}
	idx, rest, found := strings.Cut(strings.TrimPrefix(ae.Field, "recipients["), "]")
	i, convErr := strconv.Atoi(idx)
	if !found || convErr != nil || i < 0 || i >= len(rf.Lines) {
		return "", false
	}
	where = fmt.Sprintf("line %d", rf.Lines[i])
	if key, isData := strings.CutPrefix(rest, ".data."); isData {
		if col, known := rf.Columns[key]; known {
			where += ", column " + col
		} else {
			where += ", keyword " + key + " (no column: from --data, or missing)"
		}
	}
	return where, true
}
