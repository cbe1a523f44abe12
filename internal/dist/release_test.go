package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Two release builds of the same commit give byte-identical files: the
// second one runs in another output directory with an empty build cache, so
// it compiles everything again instead of reusing the first one's objects.
// One platform (the host's linux/<arch>) keeps the test short; every other
// platform goes through the same flags.
func TestReleaseReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release twice, once with an empty build cache")
	}
	inRepo(t)
	platform := "linux/" + runtime.GOARCH
	build := func(out string) map[string][]byte {
		t.Helper()
		args := []string{"-release", "-out", out, "-version", "v0.0.0-test", "-platforms", platform}
		if err := run(context.Background(), args, io.Discard); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("release: unexpected directory %s left in the output", e.Name())
				continue
			}
			b, err := os.ReadFile(filepath.Join(out, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
		return files
	}
	first := build(t.TempDir())
	t.Setenv("GOCACHE", t.TempDir())
	second := build(filepath.Join(t.TempDir(), "elsewhere"))

	functions, err := discover()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range functions {
		want = append(want, "wxnotify_v0.0.0-test_"+f+"-aws_"+strings.ReplaceAll(platform, "/", "_")+".zip")
		if runtime.GOARCH == "amd64" {
			want = append(want, "wxnotify_v0.0.0-test_"+f+"-tencent_linux_amd64.zip")
		}
	}
	want = append(want, "wxnotify_v0.0.0-test_cli_"+strings.ReplaceAll(platform, "/", "_")+".zip", "SHA256SUMS")
	slices.Sort(want)
	var names []string
	for n := range first {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("release files: got %q, want %q", names, want)
	}
	for _, n := range names {
		if !bytes.Equal(first[n], second[n]) {
			t.Errorf("%s differs between two builds of the same commit", n)
		}
	}

	// SHA256SUMS covers every other file, in the format sha256sum -c reads.
	var sums []string
	for _, n := range names {
		if n == "SHA256SUMS" {
			continue
		}
		h := sha256.Sum256(first[n])
		sums = append(sums, hex.EncodeToString(h[:])+"  "+n)
	}
	if got := strings.TrimSuffix(string(first["SHA256SUMS"]), "\n"); got != strings.Join(sums, "\n") {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", got, strings.Join(sums, "\n"))
	}

	// A function zip holds its executable and the bundled configuration, at
	// the fixed time; the CLI zip holds the CLI.
	for _, n := range names {
		if n == "SHA256SUMS" {
			continue
		}
		zr, err := zip.NewReader(bytes.NewReader(first[n]), int64(len(first[n])))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		var entries []string
		for _, f := range zr.File {
			if !f.Modified.Equal(defaultEpoch) {
				t.Errorf("%s: %s stamped %v, want %v", n, f.Name, f.Modified, defaultEpoch)
			}
			entries = append(entries, f.Name+" "+f.Mode().String())
		}
		var want []string
		switch {
		case strings.Contains(n, "_cli_"):
			want = []string{"wxnotify -rwxr-xr-x"}
		case strings.Contains(n, "-aws_"):
			want = []string{"bootstrap -rwxr-xr-x", "wxnotify.yaml -rw-r--r--"}
		default:
			want = []string{"main -rwxr-xr-x", "wxnotify.yaml -rw-r--r--"}
		}
		if !slices.Equal(entries, want) {
			t.Errorf("%s: entries %q, want %q", n, entries, want)
		}
	}
}

func TestReleaseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-version", "v1.0.0"}, "need -release"},
		{[]string{"-platforms", "linux/amd64"}, "need -release"},
		{[]string{"-release", "-version", "../v1"}, "is not a version"},
		{[]string{"-release", "-sam", "LoginFunction", "-artifacts", "x"}, "give one"},
	} {
		_, err := parseArgs(tc.args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: got %v, want an error containing %q", tc.args, err, tc.err)
		}
	}
	inRepo(t)
	err := run(context.Background(), []string{"-release", "-out", t.TempDir(), "-platforms", "plan9/386"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no release target matches") {
		t.Errorf("unknown platform: got %v, want an error", err)
	}
}
