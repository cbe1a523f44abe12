// Command dist builds wxnotify's function binaries and deployment packages,
// reproducibly: the same sources and Go version give the same bytes.
//
//	dist/aws/<function>/bootstrap      linux/arm64 binary for the provided.al2023 runtime
//	dist/aws/<function>/wxnotify.yaml  the configuration bundled with it
//	dist/aws/<function>.zip            both, for a Lambda code upload
//	dist/tencent/<function>/main       linux/amd64 binary for the SCF Go1 runtime (handler "main")
//	dist/tencent/<function>/wxnotify.yaml
//	dist/tencent/<function>.zip        both, for an SCF code upload
//	dist/tencent/multi-scf/            every function binary under its own name, and wxnotify.yaml:
//	                                   the code directory serverless.yml deploys (handler = the name)
//
// Usage:
//
//	go run ./internal/dist [-out dist] [-cloud aws,tencent] [-config wxnotify.yaml] [function...]
//	go run ./internal/dist -sam LoginFunction -artifacts "$ARTIFACTS_DIR"
//	go run ./internal/dist -release [-out dist/release] [-version v1.2.0]
//
// With no function named, every directory of functions/ is built. The
// configuration is -config, else ./wxnotify.yaml, else the bundled example
// (with a warning). Binaries are built with CGO_ENABLED=0, -trimpath,
// -ldflags "-s -w -buildid=" and -tags lambda.norpc, stamped with the
// checkout's VCS revision when there is one (the functions log it at cold
// start); zips have sorted entries and a fixed time ($SOURCE_DATE_EPOCH, else
// 1980-01-01). The same commit and Go version give the same bytes.
//
// The -release form is what `make release` runs: every function for AWS on
// linux/arm64 and linux/amd64 and for Tencent Cloud on linux/amd64, the CLI
// for linux, darwin (amd64, arm64) and windows (amd64), each in a zip named
// wxnotify_<version>_<what>_<os>_<arch>.zip, and SHA256SUMS over them.
//
// The -sam form is what `sam build` runs through the Makefile's
// build-<LogicalId> targets (BuildMethod: makefile): it writes bootstrap and
// wxnotify.yaml for the AWS function named by the template's logical id
// ("LoginFunction" -> functions/login) into the artifacts directory.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConfigName is the configuration file bundled with every binary; the
// functions read it from next to their executable.
const ConfigName = "wxnotify.yaml"

// exampleConfig is used when no wxnotify.yaml is given or present.
const exampleConfig = "shared/config/example.wxnotify.yaml"

// cloud is a build target.
type cloud struct {
	name   string // directory under -out
	goarch string
	binary string // file name of the binary in a package
}

var clouds = []cloud{
	{name: "aws", goarch: "arm64", binary: "bootstrap"},
	{name: "tencent", goarch: "amd64", binary: "main"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "dist: %v\n", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	out       string
	clouds    []cloud
	config    string
	goarch    string // overrides every cloud's GOARCH (tests build for the host)
	sam       string
	artifacts string
	release   bool
	version   string
	platforms []string // -release: only these goos/goarch (tests)
	functions []string
	epoch     time.Time
	goCmd     string
	stderr    io.Writer
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseArgs(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	switch {
	case o.sam != "":
		return buildSAM(ctx, o)
	case o.release:
		return buildRelease(ctx, o)
	}
	return buildAll(ctx, o)
}

// defaultEpoch stamps the zip entries when $SOURCE_DATE_EPOCH is not set.
var defaultEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{stderr: stderr, goCmd: "go"}
	var cloudList string
	fs.StringVar(&o.out, "out", "dist", "output directory")
	fs.StringVar(&cloudList, "cloud", "aws,tencent", "clouds to build for: aws, tencent")
	fs.StringVar(&o.config, "config", "", "wxnotify.yaml to bundle (default ./wxnotify.yaml, else the example)")
	fs.StringVar(&o.goarch, "goarch", "", "GOARCH for every cloud instead of its own (native: the host's)")
	fs.StringVar(&o.sam, "sam", "", "SAM logical id of one AWS function (with -artifacts)")
	fs.StringVar(&o.artifacts, "artifacts", "", "SAM's ARTIFACTS_DIR")
	fs.BoolVar(&o.release, "release", false, "build the release files (every function, both architectures, the CLI, SHA256SUMS)")
	fs.StringVar(&o.version, "version", "", "version in the release file names (default: git describe --tags --always --dirty)")
	var platforms string
	fs.StringVar(&platforms, "platforms", "", "with -release: only these goos/goarch, comma-separated (default: all)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.functions = fs.Args()
	if platforms != "" {
		o.platforms = strings.Split(platforms, ",")
	}
	if g := getenv("GO"); g != "" {
		o.goCmd = g
	}
	if o.goarch == "native" {
		o.goarch = runtime.GOARCH
	}
	for name := range strings.SplitSeq(cloudList, ",") {
		i := slices.IndexFunc(clouds, func(c cloud) bool { return c.name == strings.TrimSpace(name) })
		if i < 0 {
			return o, fmt.Errorf("-cloud: unknown cloud %q (aws, tencent)", name)
		}
		o.clouds = append(o.clouds, clouds[i])
	}
	o.epoch = defaultEpoch
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < o.epoch.Unix() {
			return o, fmt.Errorf("SOURCE_DATE_EPOCH: %q is not a Unix time after 1980", s)
		}
		o.epoch = time.Unix(sec, 0).UTC()
	}
	switch {
	case o.sam != "" && o.artifacts == "":
		return o, errors.New("-sam needs -artifacts (SAM's ARTIFACTS_DIR)")
	case o.sam == "" && o.artifacts != "":
		return o, errors.New("-artifacts needs -sam")
	case o.sam != "" && len(o.functions) > 0:
		return o, errors.New("-sam builds the one function it names")
	case o.release && o.sam != "":
		return o, errors.New("-release and -sam build different things: give one")
	case (o.version != "" || len(o.platforms) > 0) && !o.release:
		return o, errors.New("-version and -platforms are for release files: they need -release")
	case o.version != "" && !validVersion(o.version):
		return o, fmt.Errorf("-version: %q is not a version (letters, digits, '.', '-', '+')", o.version)
	}
	return o, nil
}

// FunctionOf maps a SAM logical id to its function: "WxpushFunction" ->
// "wxpush".
func FunctionOf(logicalID string) (string, error) {
	name, ok := strings.CutSuffix(logicalID, "Function")
	if !ok || name == "" {
		return "", fmt.Errorf("logical id %q does not end in Function", logicalID)
	}
	return strings.ToLower(name), nil
}

// LogicalID is the SAM logical id of a function: "wxpush" -> "WxpushFunction".
func LogicalID(function string) string {
	if function == "" {
		return ""
	}
	return strings.ToUpper(function[:1]) + function[1:] + "Function"
}

// discover lists the function directories: functions/<name>/main.go.
func discover() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join("functions", "*", "main.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, errors.New("no functions/*/main.go here: run from the repository root")
	}
	return names, nil
}

// selection is what a build makes: the functions named (every one when
// none is), checked against functions/, and the configuration to bundle.
func selection(o options) (functions []string, cfg []byte, err error) {
	all, err := discover()
	if err != nil {
		return nil, nil, err
	}
	functions = o.functions
	if len(functions) == 0 {
		functions = all
	}
	for _, f := range functions {
		if !slices.Contains(all, f) {
			return nil, nil, fmt.Errorf("no function %q in functions/ (%s)", f, strings.Join(all, ", "))
		}
	}
	cfg, err = readConfig(o)
	return functions, cfg, err
}

// readConfig reads the wxnotify.yaml to bundle.
func readConfig(o options) ([]byte, error) {
	path, err := configFile(o)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// configFile picks the wxnotify.yaml to bundle.
func configFile(o options) (string, error) {
	if o.config != "" {
		if _, err := os.Stat(o.config); err != nil {
			return "", fmt.Errorf("-config: %w", err)
		}
		return o.config, nil
	}
	if _, err := os.Stat(ConfigName); err == nil {
		return ConfigName, nil
	}
	fmt.Fprintf(o.stderr, "dist: warning: no %s here, bundling the example %s; deploy your own with -config\n", ConfigName, exampleConfig)
	return exampleConfig, nil
}

func buildAll(ctx context.Context, o options) error {
	functions, cfg, err := selection(o)
	if err != nil {
		return err
	}
	for _, c := range o.clouds {
		if err := buildCloud(ctx, o, c, functions, cfg); err != nil {
			return err
		}
	}
	return nil
}

func buildCloud(ctx context.Context, o options, c cloud, functions []string, cfg []byte) error {
	root := filepath.Join(o.out, c.name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	goarch := c.goarch
	if o.goarch != "" {
		goarch = o.goarch
	}
	if err := goBuild(ctx, o, goarch, tmp, functions); err != nil {
		return err
	}
	bundle := filepath.Join(root, "multi-scf")
	if c.name == "tencent" {
		if err := os.RemoveAll(bundle); err != nil {
			return err
		}
		if err := os.MkdirAll(bundle, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(bundle, ConfigName), cfg, 0o644); err != nil {
			return err
		}
	}
	for _, f := range functions {
		bin, err := os.ReadFile(filepath.Join(tmp, f))
		if err != nil {
			return err
		}
		files := []file{{name: c.binary, mode: 0o755, data: bin}, {name: ConfigName, mode: 0o644, data: cfg}}
		dir := filepath.Join(root, f)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := writeDir(dir, files); err != nil {
			return err
		}
		if err := writeZip(filepath.Join(root, f+".zip"), files, o.epoch); err != nil {
			return err
		}
		if c.name == "tencent" {
			if err := os.WriteFile(filepath.Join(bundle, f), bin, 0o755); err != nil {
				return err
			}
		}
		fmt.Fprintf(o.stderr, "dist: %s/%s %s (%.1f MB)\n", c.name, f, goarch, float64(len(bin))/(1<<20))
	}
	return nil
}

func buildSAM(ctx context.Context, o options) error {
	f, err := FunctionOf(o.sam)
	if err != nil {
		return fmt.Errorf("-sam: %w", err)
	}
	all, err := discover()
	if err != nil {
		return err
	}
	if !slices.Contains(all, f) {
		return fmt.Errorf("-sam %s: no functions/%s/main.go", o.sam, f)
	}
	cfg, err := readConfig(o)
	if err != nil {
		return err
	}
	goarch := clouds[0].goarch
	if o.goarch != "" {
		goarch = o.goarch
	}
	tmp, err := os.MkdirTemp("", "wxnotify-sam-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := goBuild(ctx, o, goarch, tmp, []string{f}); err != nil {
		return err
	}
	bin, err := os.ReadFile(filepath.Join(tmp, f))
	if err != nil {
		return err
	}
	return writeDir(o.artifacts, []file{{name: "bootstrap", mode: 0o755, data: bin}, {name: ConfigName, mode: 0o644, data: cfg}})
}

// goBuild builds the functions for linux/goarch into dir, one binary per
// function named after it.
func goBuild(ctx context.Context, o options, goarch, dir string, functions []string) error {
	pkgs := make([]string, len(functions))
	for i, f := range functions {
		pkgs[i] = "./functions/" + f
	}
	return goBuildPkgs(ctx, o, "linux", goarch, dir+string(filepath.Separator), pkgs)
}

// buildFlags make a build depend only on the sources, the Go version and the
// VCS revision: no paths, no build id, no symbol tables.
var buildFlags = []string{"build", "-trimpath", "-buildvcs=auto", "-tags", "lambda.norpc", "-ldflags", "-s -w -buildid="}

// goBuildPkgs builds pkgs for goos/goarch to out (a directory ending in the
// separator for several packages, else a file).
func goBuildPkgs(ctx context.Context, o options, goos, goarch, out string, pkgs []string) error {
	args := append(slices.Clone(buildFlags), "-o", out)
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, o.goCmd, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = o.stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build (GOOS=%s GOARCH=%s): %w\n%s", goos, goarch, err, stderr.Bytes())
	}
	return nil
}

// file is one file of a package.
type file struct {
	name string
	mode os.FileMode
	data []byte
}

func writeDir(dir string, files []file) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(path, f.mode); err != nil { // WriteFile keeps an existing file's mode
			return err
		}
	}
	return nil
}

// writeZip writes files into a zip whose bytes depend only on the files:
// entries sorted by name, deflated, all stamped with epoch, Unix modes kept
// (the platforms need the binary executable).
func writeZip(path string, files []file, epoch time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b file) int { return strings.Compare(a.name, b.name) })
	for _, f := range sorted {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: epoch}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
