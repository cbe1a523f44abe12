package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"NoArgs", nil, 2, "", "usage: wxnotify"},
		{"Help", []string{"help"}, 0, "usage: wxnotify", ""},
		{"Unknown", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"HelpListsVersion", []string{"--help"}, 0, "  version    print the module version", ""},
		{"Version", []string{"version"}, 0, "wxnotify ", ""},
		{"VersionFlag", []string{"--version"}, 0, "wxnotify ", ""},
		{"VersionHelp", []string{"version", "--help"}, 0, "usage: wxnotify version", ""},
		{"VersionArgument", []string{"version", "now"}, 2, "", `wxnotify version: unexpected argument "now"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit code: got %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("got stdout %q stderr %q, want them to contain %q and %q", out.String(), errb.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}
