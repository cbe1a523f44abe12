package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// target is one platform a release file is built for.
type target struct{ goos, goarch string }

// releaseFunctions are the function packages of a release: AWS Lambda runs
// either architecture (arm64 is the template's default and cheaper), SCF's
// Go runtime is amd64.
var releaseFunctions = []struct {
	cloud   cloud
	targets []target
}{
	{cloud{name: "aws", binary: "bootstrap"}, []target{{"linux", "arm64"}, {"linux", "amd64"}}},
	{cloud{name: "tencent", binary: "main"}, []target{{"linux", "amd64"}}},
}

// releaseCLI are the platforms the CLI is built for.
var releaseCLI = []target{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}}

// buildRelease writes the release files into o.out and SHA256SUMS over them.
// Each function zip holds its binary and the bundled wxnotify.yaml, as the
// clouds' code uploads want; each CLI zip holds the wxnotify binary.
func buildRelease(ctx context.Context, o options) error {
	functions, cfg, err := selection(o)
	if err != nil {
		return err
	}
	ver := o.version
	if ver == "" {
		ver = describe(ctx)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(o.out, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	want := func(t target) bool {
		return len(o.platforms) == 0 || slices.Contains(o.platforms, t.goos+"/"+t.goarch)
	}
	var names []string
	write := func(name string, files []file) error {
		names = append(names, name)
		return writeZip(filepath.Join(o.out, name), files, o.epoch)
	}
	for _, rf := range releaseFunctions {
		for _, t := range rf.targets {
			if !want(t) {
				continue
			}
			dir := filepath.Join(tmp, rf.cloud.name+"-"+t.goarch)
			if err := goBuild(ctx, o, t.goarch, dir, functions); err != nil {
				return err
			}
			for _, f := range functions {
				bin, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					return err
				}
				name := fmt.Sprintf("wxnotify_%s_%s-%s_%s_%s.zip", ver, f, rf.cloud.name, t.goos, t.goarch)
				if err := write(name, []file{{name: rf.cloud.binary, mode: 0o755, data: bin}, {name: ConfigName, mode: 0o644, data: cfg}}); err != nil {
					return err
				}
			}
		}
	}
	for _, t := range releaseCLI {
		if !want(t) {
			continue
		}
		exe := "wxnotify"
		if t.goos == "windows" {
			exe += ".exe"
		}
		out := filepath.Join(tmp, "cli-"+t.goos+"-"+t.goarch, exe)
		if err := goBuildPkgs(ctx, o, t.goos, t.goarch, out, []string{"./cmd/wxnotify"}); err != nil {
			return err
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		if err := write(fmt.Sprintf("wxnotify_%s_cli_%s_%s.zip", ver, t.goos, t.goarch), []file{{name: exe, mode: 0o755, data: bin}}); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("-platforms %s: no release target matches", strings.Join(o.platforms, ","))
	}
	sums, err := checksums(o.out, names)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "SHA256SUMS"), sums, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.stderr, "dist: release %s: %d files and SHA256SUMS in %s\n", ver, len(names), o.out)
	return nil
}

// checksums is a SHA256SUMS file (the format sha256sum -c reads) over the
// named files of dir, sorted by name.
func checksums(dir string, names []string) ([]byte, error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	var b bytes.Buffer
	for _, n := range sorted {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), n)
	}
	return b.Bytes(), nil
}

// describe names the checkout's version: its tag, else the short commit,
// "-dirty" when it has uncommitted changes; "dev" without git.
func describe(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty").Output()
	v := strings.TrimSpace(string(out))
	if err != nil || !validVersion(v) {
		return "dev"
	}
	return v
}

// validVersion accepts what may appear in a file name: letters, digits and
// . - +, not starting with a dot.
func validVersion(v string) bool {
	if v == "" || v[0] == '.' || len(v) > 64 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') {
			return false
		}
	}
	return true
}
