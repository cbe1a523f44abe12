package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
)

// Exit codes of every command.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed, or the API answered an error
	exitUsage   = 2 // bad command line
)

// defaultURL is where the API commands find wxnotify when neither --url nor
// WXN_URL says otherwise: `wxnotify dev`'s default address.
const defaultURL = "http://127.0.0.1:8080"

// apiFlagsUsage documents the flags every API command shares.
const apiFlagsUsage = `  --url URL              wxnotify's base URL (default $WXN_URL, else ` + defaultURL + `)
  --key KEY              API key, one of the server's WXN_API_KEYS (default $WXN_API_KEY, else,
                         for a server on this machine, the key wxnotify dev generated in
                         $WXN_DATA_DIR or .wxnotify)
  --app ID               the app (mini program) of a multi-app deployment: requests go to
                         /v1/apps/ID/... (default $WXN_APP, else the short routes /v1/...,
                         which serve the deployment's default app)
  -v, --verbose          say on stderr where the URL, the API key and the app came from
`

// cli runs the commands other than dev: what they share is injected so that
// tests can drive them.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// http calls wxnotify's API; it has a timeout.
	http *http.Client
	now  func() time.Time
	// terminal reports whether w is a terminal (batch watch redraws in
	// place on one).
	terminal func(w io.Writer) bool
	// columns is the width of the terminal w is, 0 when unknown (batch
	// watch fits its line to it).
	columns func(w io.Writer) int
	// warned holds the deprecated environment variables already warned of.
	warned map[string]bool
}

// newCLI returns the cli of the real process.
func newCLI(stdout, stderr io.Writer, getenv func(string) string) *cli {
	return &cli{
		stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		http: &http.Client{Timeout: 60 * time.Second},
		now:  time.Now,
		terminal: func(w io.Writer) bool {
			return getenv("TERM") != "dumb" && isCharDevice(w)
		},
		columns: func(w io.Writer) int {
			if n := terminalColumns(w); n > 0 {
				return n
			}
			n, _ := strconv.Atoi(getenv("COLUMNS"))
			return n
		},
	}
}

// run executes one of the commands templates, send, batch, consents and stats
// (args[0]) and returns the exit code.
func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "templates":
		return c.templates(ctx, args[1:])
	case "send":
		return c.send(ctx, args[1:])
	case "batch":
		return c.batch(ctx, args[1:])
	case "consents":
		return c.consents(ctx, args[1:])
	case "stats":
		return c.stats(ctx, args[1:])
	}
	fmt.Fprintf(c.stderr, "wxnotify: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// subcommand dispatches a command made of subcommands ("batch create"):
// help for the command itself, a usage error for a missing or unknown
// subcommand.
func (c *cli) subcommand(name, usage string, args []string, subs map[string]func([]string) int) int {
	if len(args) == 0 {
		fmt.Fprintf(c.stderr, "wxnotify %s: a subcommand is required\n\n%s", name, usage)
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(c.stdout, usage)
		return exitOK
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "wxnotify %s: unknown subcommand %q\n\n%s", name, args[0], usage)
		return exitUsage
	}
	return run(args[1:])
}

func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

// parse parses args with fs, allowing flags after positional arguments
// ("batch watch ID --interval 2s"), and checks that exactly npos positional
// arguments were given. When it returns ok false the command must return
// code: --help printed usage to stdout (0), or a usage error was printed to
// stderr (2).
func (c *cli) parse(fs *flag.FlagSet, usage string, args []string, npos int) (pos []string, code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, usage)
		return nil, exitOK, false
	case err != nil:
		return nil, c.usageError(fs.Name(), usage, err.Error()), false
	case len(pos) > npos:
		return nil, c.usageError(fs.Name(), usage, fmt.Sprintf("unexpected argument %q", pos[npos])), false
	case len(pos) < npos:
		return nil, c.usageError(fs.Name(), usage, "missing argument"), false
	}
	return pos, exitOK, true
}

// usageError prints msg and the usage to stderr and returns exitUsage.
func (c *cli) usageError(name, usage, msg string) int {
	fmt.Fprintf(c.stderr, "wxnotify %s: %s\n\n%s", name, msg, usage)
	return exitUsage
}

// fail prints a command's error to stderr and returns exitFailure.
func (c *cli) fail(name string, err error) int {
	fmt.Fprintf(c.stderr, "wxnotify %s: %v\n", name, err)
	return exitFailure
}

// parseInterspersed is fs.Parse that goes on after a positional argument;
// everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// required checks string flags given as name, value pairs, in order.
func required(nameValues ...string) error {
	for i := 0; i+1 < len(nameValues); i += 2 {
		if strings.TrimSpace(nameValues[i+1]) == "" {
			return fmt.Errorf("--%s is required", nameValues[i])
		}
	}
	return nil
}

// dataFlag collects repeated --data key=value flags.
type dataFlag map[string]string

func (d dataFlag) String() string { return "" }

// Set adds one key=value pair; the value may be empty or contain '='.
func (d dataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	switch {
	case !ok:
		return fmt.Errorf("%q is not key=value", s)
	case k == "":
		return fmt.Errorf("%q has an empty key", s)
	}
	if _, dup := d[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	d[k] = v
	return nil
}

// timeFlag is an RFC 3339 time.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time (like 2026-11-22T09:00:00+08:00)", s)
	}
	f.t = t
	return nil
}

// apiFlags are the flags that locate wxnotify's API.
type apiFlags struct {
	url, key, app string
	verbose       bool
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "", "wxnotify's base URL")
	fs.StringVar(&a.key, "key", "", "API key")
	fs.StringVar(&a.app, "app", "", "the app of a multi-app deployment")
	fs.BoolVar(&a.verbose, "verbose", false, "say where the URL and key came from")
	fs.BoolVar(&a.verbose, "v", false, "say where the URL and key came from")
}

// client resolves the flags against the environment into an API client.
func (a *apiFlags) client(c *cli) (*apiClient, error) {
	base, baseFrom := a.url, "--url"
	if base == "" {
		base, baseFrom = c.env("WXN_URL"), "$WXN_URL"
	}
	if base == "" {
		base, baseFrom = defaultURL, "the default, wxnotify dev's address"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url: %q is not an http(s) URL", base)
	}
	app, appFrom, err := a.resolveApp(c)
	if err != nil {
		return nil, err
	}
	key, keyFrom, err := c.apiKey(a.key, u)
	if err != nil {
		return nil, err
	}
	base = strings.TrimRight(base, "/")
	if a.verbose {
		which := "" // the default app, on the short routes
		if app != "" {
			which = " for app " + app + " (from " + appFrom + ")"
		}
		fmt.Fprintf(c.stderr, "wxnotify: calling %s (from %s)%s with the API key from %s\n", base, baseFrom, which, keyFrom)
	}
	return &apiClient{base: base, key: key, keyFrom: keyFrom, app: app, appFrom: appFrom, http: c.http}, nil
}

// resolveApp returns the app the requests are for: --app, else $WXN_APP,
// else "" (the default app, on the short routes). from says where it came
// from, for messages. An id that is not an app id is an error.
func (a *apiFlags) resolveApp(c *cli) (app, from string, err error) {
	app, from = strings.TrimSpace(a.app), "--app"
	if app == "" {
		app, from = c.env("WXN_APP"), "$WXN_APP"
	}
	if app == "" {
		return "", "", nil
	}
	if err := config.CheckAppID(app); err != nil {
		return "", "", fmt.Errorf("%s: %w", from, err)
	}
	return app, from, nil
}

// isCharDevice reports whether w is a character device: a terminal.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
