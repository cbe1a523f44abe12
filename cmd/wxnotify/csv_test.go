package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRecipients(t *testing.T) {
	tests := []struct {
		name      string
		csv       string
		want      []batchRecipient
		wantLines []int
	}{
		{"UserIDWithData", "userId,thing1,number2\nsales-42,Acme Ltd,7\nsales-43,Beta,8\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "Acme Ltd", "number2": "7"}},
			{UserID: "sales-43", Data: map[string]string{"thing1": "Beta", "number2": "8"}},
		}, []int{2, 3}},
		{"OpenIDOnly", "openid\no6_a\no6_b", []batchRecipient{{OpenID: "o6_a"}, {OpenID: "o6_b"}}, []int{2, 3}},
		{"BothColumnsOneFilledPerRow", "userId,openid,thing1\nsales-42,,A\n,o6_b,B\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "A"}},
			{OpenID: "o6_b", Data: map[string]string{"thing1": "B"}},
		}, []int{2, 3}},
		{"HeaderAnyCaseBOMAndSpaces", "\ufeff UserID , thing1 \r\nsales-42 ,x\r\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "x"}},
		}, []int{2}},
		{"EmptyCellsOmitted", "openid,thing1,thing2\no6_a,,kept\n", []batchRecipient{
			{OpenID: "o6_a", Data: map[string]string{"thing2": "kept"}},
		}, []int{2}},
		{"QuotedValues", "openid,thing1\no6_a,\"Acme, Ltd \"\"East\"\"\"\n", []batchRecipient{
			{OpenID: "o6_a", Data: map[string]string{"thing1": `Acme, Ltd "East"`}},
		}, []int{2}},
		{"BlankLinesSkipped", "openid\n\no6_a\n\n", []batchRecipient{{OpenID: "o6_a"}}, []int{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRecipients(strings.NewReader(tc.csv))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(got.Recipients, tc.want) || !reflect.DeepEqual(got.Lines, tc.wantLines) {
				t.Fatalf("got %+v on lines %v, want %+v on lines %v", got.Recipients, got.Lines, tc.want, tc.wantLines)
			}
		})
	}
}

// TestParseRecipientsReportsEveryProblem: a bad file gives every problem
// with its line and column, not the first only.
func TestParseRecipientsReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want []string // the problems, in order
	}{
		{"Empty", "", []string{"empty file"}},
		{"HeaderOnly", "userId,thing1\n", []string{"no recipients after the header row"}},
		{"BadHeader", "name,,thing1,Thing1\n", []string{
			`line 1, column 1 (name): "name" is not a keyword name such as thing1 or number2`,
			"line 1, column 2: has no name",
			`line 1, column 4 (Thing1): "Thing1" appears twice`,
			"line 1: the header has neither a userId nor an openid column",
		}},
		{"KeywordWithSuffix", "openid,thing1.DATA\no6_a,x\n", []string{`line 1, column 2 (thing1.DATA): "thing1.DATA" is not a keyword name`}},
		{"BadRows", "" +
			"userId,openid,thing1\n" + // 1
			"sales-42,,ok\n" + // 2: good
			" ,,b\n" + // 3: no id
			"sales-43,o6_a,c\n" + // 4: both
			"sales 44,,d\n" + // 5: space in the userId
			",o6 a,e\n" + // 6: not an openid
			"sales-45,,\xff\n" + // 7: not UTF-8
			"sales-46\n" + // 8: too few fields
			"sales-47,,f,extra\n" + // 9: too many fields
			"sales-48,,\"g\"h\n" + // 10: bad quote
			"sales-49,,fine\n", // 11: good
			[]string{
				"line 3: no userId or openid: give one",
				"line 4: both userId and openid are set; give one",
				`line 5, column 1 (userId): "sales 44" must not contain spaces, control characters or '|'`,
				`line 6, column 2 (openid): "o6 a" is not an openid (1 to 64 ASCII letters, digits, '-' and '_')`,
				"line 7, column 3 (thing1): is not valid UTF-8",
				"line 8: 1 field, the header has 3",
				"line 9: 4 fields, the header has 3",
				`line 10, byte 13: extraneous or missing " in quoted-field`,
			}},
		{"OnlyOpenIDColumn", "openid\n\n,\n", []string{"line 3: 2 fields, the header has 1"}},
		{"NoIDWithOpenIDColumn", "openid,thing1\n,x\n", []string{"line 2: no openid: give one"}},
		{"UnterminatedQuote", "openid\no6_a\n\"o6_b\n", []string{`line 3, byte 7: extraneous or missing " in quoted-field`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRecipients(strings.NewReader(tc.csv))
			if err == nil {
				t.Fatal("got no error")
			}
			var re *recipientsError
			if !errors.As(err, &re) {
				if len(tc.want) != 1 || !strings.Contains(err.Error(), tc.want[0]) {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
				return
			}
			if len(re.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(re.Problems), len(tc.want), err)
			}
			for i, want := range tc.want {
				if got := re.Problems[i].String(); !strings.HasPrefix(got, want) {
					t.Errorf("problem %d: got %q, want %q", i, got, want)
				}
			}
		})
	}
}

func FuzzParseRecipients(f *testing.F) {
	for _, seed := range []string{
		"userId,thing1\nsales-42,Acme\n",
		"openid,userId\no6_a,\n,u\n",
		"\ufeffopenid\n\"o\"\"6\"\n",
		"openid,thing1\no6_a\n",
		"userId,thing1\n\"a\"b,c\nd,e\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rf, err := parseRecipients(strings.NewReader(in))
		if err != nil {
			var re *recipientsError
			if errors.As(err, &re) && len(re.Problems) == 0 {
				t.Fatal("a recipients error without problems")
			}
			return
		}
		if len(rf.Recipients) == 0 || len(rf.Lines) != len(rf.Recipients) {
			t.Fatalf("no error, %d recipients on %d lines", len(rf.Recipients), len(rf.Lines))
		}
		for i, r := range rf.Recipients {
			if (r.UserID == "") == (r.OpenID == "") {
				t.Fatalf("recipient %d: got userId %q and openid %q, want exactly one", i, r.UserID, r.OpenID)
			}
			for k := range r.Data {
				if k == "" {
					t.Fatalf("recipient %d: empty data key", i)
				}
			}
		}
	})
}
