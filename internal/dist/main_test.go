package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLogicalIDs(t *testing.T) {
	for _, fn := range []string{"login", "consent", "send", "wxpush", "leads", "batch"} {
		id := LogicalID(fn)
		got, err := FunctionOf(id)
		if err != nil || got != fn {
			t.Errorf("FunctionOf(LogicalID(%q) = %q): got %q, %v", fn, id, got, err)
		}
	}
	if got := LogicalID("wxpush"); got != "WxpushFunction" {
		t.Errorf("LogicalID(wxpush): got %q, want WxpushFunction", got)
	}
	for _, bad := range []string{"Login", "Function", ""} {
		if _, err := FunctionOf(bad); err == nil {
			t.Errorf("FunctionOf(%q): got no error", bad)
		}
	}
}

func TestParseArgs(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"Defaults", nil, nil, ""},
		{"UnknownCloud", []string{"-cloud", "gcp"}, nil, "unknown cloud"},
		{"SAMWithoutArtifacts", []string{"-sam", "LoginFunction"}, nil, "needs -artifacts"},
		{"ArtifactsWithoutSAM", []string{"-artifacts", "/tmp/x"}, nil, "needs -sam"},
		{"SAMWithFunctions", []string{"-sam", "LoginFunction", "-artifacts", "/tmp/x", "send"}, nil, "one function"},
		{"BadEpoch", nil, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, "SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(o.clouds) != 2 || o.out != "dist" || !o.epoch.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("got %+v, want both clouds into dist at 1980-01-01", o)
			}
		})
	}
	o, err := parseArgs([]string{"-goarch", "native"}, env(map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "GO": "/opt/go/bin/go"}), io.Discard)
	if err != nil || o.goarch == "native" || o.goarch == "" || o.epoch.Unix() != 1700000000 || o.goCmd != "/opt/go/bin/go" {
		t.Errorf("got %+v, %v; want the host's GOARCH, the epoch and $GO", o, err)
	}
}

// zipEntries lists a zip's entries as name, mode and time.
func zipEntries(tb testing.TB, b []byte) []string {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name+" "+f.Mode().String()+" "+f.Modified.UTC().Format(time.RFC3339))
	}
	return out
}

func TestWriteZip(t *testing.T) {
	dir := t.TempDir()
	epoch := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	files := []file{{name: "wxnotify.yaml", mode: 0o644, data: []byte("templates: []\n")},
		{name: "bootstrap", mode: 0o755, data: bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 1000)}}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	if err := writeZip(a, files, epoch); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(files)
	if err := writeZip(b, files, epoch); err != nil {
		t.Fatal(err)
	}
	za, _ := os.ReadFile(a)
	zb, _ := os.ReadFile(b)
	if !bytes.Equal(za, zb) {
		t.Error("the same files in another order gave another zip")
	}
	want := []string{"bootstrap -rwxr-xr-x 2026-11-21T00:00:00Z", "wxnotify.yaml -rw-r--r-- 2026-11-21T00:00:00Z"}
	if got := zipEntries(t, za); !slices.Equal(got, want) {
		t.Errorf("entries: got %q, want %q", got, want)
	}
}

// inRepo runs the test from the repository root, where the tool runs.
func inRepo(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
}

func TestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function twice")
	}
	inRepo(t)
	cfg := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(cfg, []byte("templates: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var zips [][]byte
	for range 2 {
		out := t.TempDir()
		args := []string{"-out", out, "-cloud", "tencent", "-goarch", "native", "-config", cfg, "login"}
		if err := run(context.Background(), args, io.Discard); err != nil {
			t.Fatal(err)
		}
		z, err := os.ReadFile(filepath.Join(out, "tencent", "login.zip"))
		if err != nil {
			t.Fatal(err)
		}
		zips = append(zips, z)
		for _, p := range []string{"tencent/login/main", "tencent/multi-scf/login"} {
			if fi, err := os.Stat(filepath.Join(out, p)); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: got %v, %v; want an executable", p, fi, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(out, "tencent", "multi-scf", ConfigName)); err != nil || string(b) != "templates: []\n" {
			t.Errorf("multi-scf/%s: got %q, %v; want the -config file", ConfigName, b, err)
		}
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Error("two builds of the same sources gave different zips")
	}
	want := []string{"main -rwxr-xr-x 1980-01-01T00:00:00Z", "wxnotify.yaml -rw-r--r-- 1980-01-01T00:00:00Z"}
	if got := zipEntries(t, zips[0]); !slices.Equal(got, want) {
		t.Errorf("entries: got %q, want %q", got, want)
	}
}

func TestBuildSAM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	inRepo(t)
	artifacts := t.TempDir()
	if err := run(context.Background(), []string{"-sam", "WxpushFunction", "-artifacts", artifacts, "-goarch", "native"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(artifacts, "bootstrap")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bootstrap: got %v, %v; want an executable", fi, err)
	}
	if _, err := os.Stat(filepath.Join(artifacts, ConfigName)); err != nil {
		t.Errorf("%s: %v", ConfigName, err)
	}
	err := run(context.Background(), []string{"-sam", "NopeFunction", "-artifacts", artifacts}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no functions/nope") {
		t.Errorf("unknown function: got %v, want an error naming functions/nope", err)
	}
}
