package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want Info
		str  string
	}{{
		name: "checkout with VCS stamp",
		bi: debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: Module, Version: "v0.3.1-0.20261206180000-0123456789ab"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-06T18:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
		want: Info{Version: "v0.3.1-0.20261206180000-0123456789ab", Revision: "0123456789abcdef0123", Time: "2026-12-06T18:00:00Z", Modified: true, Go: "go1.26.0"},
		str:  "wxnotify v0.3.1-0.20261206180000-0123456789ab (revision 0123456789ab+modified, 2026-12-06T18:00:00Z) go1.26.0",
	}, {
		name: "no VCS information",
		bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: Module, Version: "(devel)"}},
		want: Info{Version: "(devel)", Go: "go1.26.0"},
		str:  "wxnotify (devel) go1.26.0",
	}, {
		name: "required by a user's module",
		bi: debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/crm"},
			Deps: []*debug.Module{{Path: "github.com/aws/aws-lambda-go", Version: "v1.55.1"}, {Path: Module, Version: "v1.2.0"}}},
		want: Info{Version: "v1.2.0", Go: "go1.26.0"},
		str:  "wxnotify v1.2.0 go1.26.0",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(&tc.bi)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Fatalf("String: got %q, want %q", s, tc.str)
			}
		})
	}
}
