// Package version tells which build of wxnotify is running: the module
// version and the VCS revision the Go toolchain stamped into the binary.
package version

import (
	"runtime/debug"
	"strings"
)

// Module is wxnotify's module path.
const Module = "github.com/wxnotify/wxnotify"

// Info is what a binary knows about its own build.
type Info struct {
	// Version is the module version: a tag such as v1.2.0 when the binary
	// was built by `go install github.com/wxnotify/wxnotify/cmd/wxnotify@v1.2.0`
	// or from a module that requires wxnotify, a pseudo-version when built
	// from a checkout with a VCS stamp, "(devel)" otherwise.
	Version string
	// Revision is the VCS commit the binary was built from ("" when the
	// build had no VCS information, e.g. `go test` or -buildvcs=false).
	Revision string
	// Time is the commit time (RFC 3339), "" without VCS information.
	Time string
	// Modified reports uncommitted changes in the checkout it was built from.
	Modified bool
	// Go is the toolchain version.
	Go string
}

// Get reads the build information of the running binary.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(unknown)"}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: "(devel)", Go: bi.GoVersion}
	mod := bi.Main
	if mod.Path != Module {
		// Built from another main module (a user's own command that
		// imports wxnotify): report the version that module requires.
		for _, d := range bi.Deps {
			if d.Path == Module {
				mod = *d
				if d.Replace != nil && d.Replace.Version != "" {
					mod.Version = d.Replace.Version
				}
				break
			}
		}
	}
	if mod.Path == Module && mod.Version != "" {
		info.Version = mod.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line `wxnotify version` prints, e.g.
// "wxnotify v1.2.0 (revision 0123456789ab, 2026-12-06T18:00:00Z) go1.26.0".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString("wxnotify ")
	b.WriteString(i.Version)
	if i.Revision != "" {
		b.WriteString(" (revision ")
		b.WriteString(i.Short())
		if i.Modified {
			b.WriteString("+modified")
		}
		if i.Time != "" {
			b.WriteString(", ")
			b.WriteString(i.Time)
		}
		b.WriteString(")")
	}
	if i.Go != "" {
		b.WriteString(" ")
		b.WriteString(i.Go)
	}
	return b.String()
}

// Short is the first 12 characters of the revision.
func (i Info) Short() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}
