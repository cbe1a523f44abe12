package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRecipients(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		want    []batchRecipient
		wantErr string
	}{
		{"UserIDWithData", "userId,thing1,number2\nsales-42,Acme Ltd,7\nsales-43,Beta,8\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "Acme Ltd", "number2": "7"}},
			{UserID: "sales-43", Data: map[string]string{"thing1": "Beta", "number2": "8"}},
		}, ""},
		{"OpenIDOnly", "openid\no6_a\no6_b", []batchRecipient{{OpenID: "o6_a"}, {OpenID: "o6_b"}}, ""},
		{"BothColumnsOneFilledPerRow", "userId,openid,thing1\nsales-42,,A\n,o6_b,B\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "A"}},
			{OpenID: "o6_b", Data: map[string]string{"thing1": "B"}},
		}, ""},
		{"HeaderAnyCaseBOMAndSpaces", "\ufeff UserID , thing1 \r\nsales-42 ,x\r\n", []batchRecipient{
			{UserID: "sales-42", Data: map[string]string{"thing1": "x"}},
		}, ""},
		{"EmptyCellsOmitted", "openid,thing1,thing2\no6_a,,kept\n", []batchRecipient{
			{OpenID: "o6_a", Data: map[string]string{"thing2": "kept"}},
		}, ""},
		{"QuotedValues", "openid,thing1\no6_a,\"Acme, Ltd \"\"East\"\"\"\n", []batchRecipient{
			{OpenID: "o6_a", Data: map[string]string{"thing1": `Acme, Ltd "East"`}},
		}, ""},
		{"BlankLinesSkipped", "openid\n\no6_a\n\n", []batchRecipient{{OpenID: "o6_a"}}, ""},
		{"Empty", "", nil, "empty file"},
		{"HeaderOnly", "userId,thing1\n", nil, "no recipients after the header row"},
		{"NoRecipientColumn", "name,thing1\na,b\n", nil, "line 1: the header has neither a userId nor an openid column"},
		{"DuplicateColumn", "openid,thing1,Thing1\n", nil, `line 1: column "Thing1" appears twice`},
		{"UnnamedColumn", "openid,,thing1\n", nil, "line 1: column 2 has no name"},
		{"RowWithoutRecipient", "userId,thing1\nsales-42,a\n ,b\n", nil, "line 3: no userId or openid"},
		{"RowWithBoth", "userId,openid\nsales-42,o6_a\n", nil, "line 2: both userId and openid are set"},
		{"WrongFieldCount", "openid,thing1\no6_a,x\no6_b\n", nil, "record on line 3: wrong number of fields"},
		{"BadQuote", "openid\n\"o6_a\n", nil, "extraneous or missing \" in quoted-field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRecipients(strings.NewReader(tc.csv))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
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
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := parseRecipients(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(rs) == 0 {
			t.Fatal("no error and no recipients")
		}
		for i, r := range rs {
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
