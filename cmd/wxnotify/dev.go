package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/console"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const devUsage = `usage: wxnotify dev [--addr 127.0.0.1:8080] [--data DIR] [--push on|off] [--example single|apps]

Runs every function on one local server with a bbolt store under DIR. Without
WXN_WECHAT_SECRET it runs the sandbox: a fake WeChat in the same process, with the
/sandbox/* routes to play the WeChat user. Configuration: see README.

flags:
  --addr ADDR    listen address (default 127.0.0.1:8080)
  --data DIR     data directory (default $WXN_DATA_DIR, else .wxnotify); the
                 API key dev generates is kept in DIR/api.key, where the CLI
                 finds it, and the ops console's admin key (/console/,
                 docs/console.md) in DIR/admin.key
  --push on|off  WeChat's message push (default $WXN_PUSH_ENABLED, else on in
                 the sandbox and as configured with real WeChat)
      on:  the sandbox pushes WeChat's events (popups, sent events) to
           /wechat/push, signed and encrypted, and popup events confirm the
           mini program's reports; with real WeChat, WXN_WECHAT_PUSH_TOKEN is
           required.
      off: nothing is pushed and /wechat/push answers 404; the mini
           program's reports are the only source of consent (rate-limited
           and capped per user), as in a deployment without message push.
  --example single|apps
                 the bundled wxnotify.yaml to run when WXN_CONFIG is unset
                 (default single)
      single: one mini program, the CRM's (templates registration and
           lead_assigned, the rule lead-assigned)
      apps: two mini programs, sales (the default app: lead_assigned) and
           customer (registration, appointment_booked); it is written to
           DIR/example-apps.wxnotify.yaml. The sandbox runs one fake WeChat
           per app, each app's routes under /v1/apps/<id>/...,
           /wechat/push/<id> and /sandbox/apps/<id>/..., the short ones
           serving the default app.
`

// defaultDataDir is the data directory of `wxnotify dev` without --data
// and WXN_DATA_DIR, relative to the current directory.
const defaultDataDir = ".wxnotify"

// devServer is everything `wxnotify dev` runs, built so tests can start it
// on a random port.
type devServer struct {
	tracer *trace.Tracer // nil: tracing off
	parts  *boot.Parts
	fake   *wechattest.Server // the default app's; nil with real credentials
	// multi serves the fakes of a configuration with apps at one URL
	// (nil for the single-app shape); fakes are its apps' by app id.
	multi    *wechattest.Multi
	fakes    map[string]*wechattest.Server
	handler  http.Handler
	apiKey   string // the generated key, "" when WXN_API_KEYS is set
	adminKey string // the generated admin key, "" when WXN_ADMIN_KEYS is set
	listener net.Listener
	url      string
	tickOnce func(ctx context.Context, deadline time.Time) error
}

// devOptions are the command line and test knobs.
type devOptions struct {
	addr    string
	dataDir string
	getenv  func(string) string
	logOut  io.Writer
	// now replaces the clock (tests).
	now func() time.Time
	// st replaces the bbolt store (tests run the same server on Redis).
	st store.Store
	// push is --push: "on", "off", or "" for the default.
	push string
	// retention replaces sandboxRetention (tests).
	retention *wechattest.Retention
	// example is --example: "apps" for the bundled example with apps,
	// "single" or "" for the single-app one.
	example string
}

// exampleAppsFile is where --example apps writes the bundled example with
// apps in the data directory, the WXN_CONFIG dev then reads.
const exampleAppsFile = "example-apps.wxnotify.yaml"

// sandboxRetention is what the sandbox WeChat keeps besides its users and
// their credits, so that `wxnotify dev` holds a bounded amount of memory
// however long it runs (README, docs/performance.md): each user's last 100
// messages and the last 10,000 of all users, the last 100 push records (read
// by tests only) and the last 10,000 login codes (each works 5 minutes at
// most anyway).
func sandboxRetention() wechattest.Retention {
	return wechattest.Retention{InboxMessages: 100, Messages: 10000, Pushes: 100, LoginCodes: 10000}
}

func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, devUsage) }
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	data := fs.String("data", "", "data directory (default $WXN_DATA_DIR or .wxnotify)")
	var push, example string
	fs.Func("example", "the bundled wxnotify.yaml: single or apps", func(v string) error {
		if v != "single" && v != "apps" {
			return fmt.Errorf("want single or apps, got %q", v)
		}
		example = v
		return nil
	})
	fs.Func("push", "WeChat's message push: on or off", func(v string) error {
		if v != "on" && v != "off" {
			return fmt.Errorf("want on or off, got %q", v)
		}
		push = v
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wxnotify dev: unexpected argument %q\n\n%s", fs.Arg(0), devUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startDev(ctx, devOptions{addr: *addr, dataDir: *data, getenv: os.Getenv, logOut: stderr, push: push, example: example})
	if err != nil {
		fmt.Fprintf(stderr, "wxnotify dev: %v\n", err)
		return 1
	}
	defer srv.close()
	srv.printBanner(stdout)
	if err := srv.serve(ctx); err != nil {
		fmt.Fprintf(stderr, "wxnotify dev: %v\n", err)
		return 1
	}
	return 0
}

// startDev builds the server and starts listening (not yet serving).
func startDev(ctx context.Context, o devOptions) (*devServer, error) {
	getenv, err := exampleEnv(o)
	if err != nil {
		return nil, err
	}
	o.getenv = getenv
	cfg, err := config.FromEnv(o.getenv, true)
	if err != nil {
		return nil, err
	}
	if o.dataDir != "" {
		cfg.DataDir = o.dataDir
	}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if cfg.SessionSecret == "" {
		if cfg.SessionSecret, err = keptSecret(filepath.Join(cfg.DataDir, "session.secret"), 32); err != nil {
			return nil, err
		}
	}
	srv := &devServer{}
	if len(cfg.APIKeys) == 0 {
		// The CLI finds this key when none is given (readDevAPIKey).
		if srv.apiKey, err = keptSecret(filepath.Join(cfg.DataDir, devAPIKeyFile), devAPIKeyBytes); err != nil {
			return nil, err
		}
		srv.apiKey = devAPIKeyPrefix + srv.apiKey
		cfg.APIKeys = []string{srv.apiKey}
	}
	if len(cfg.AdminKeys) == 0 {
		// The console's sign-in key (docs/console.md), kept like the API key
		// and exactly as it is pasted into the sign-in form.
		if srv.adminKey, err = keptSecret(filepath.Join(cfg.DataDir, devAdminKeyFile), devAdminKeyBytes); err != nil {
			return nil, err
		}
		cfg.AdminKeys = []string{srv.adminKey}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, listenError(o.addr, err)
	}
	srv.listener = ln
	srv.url = "http://" + ln.Addr().String()

	logOut := o.logOut
	if logOut == nil {
		logOut = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	if err := setDevPush(&cfg, o.push, o.getenv); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if cfg.Sandbox() {
		if err := srv.startSandbox(&cfg, o); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}

	st := o.st
	if st == nil {
		if st, err = boot.OpenStore(ctx, cfg); err != nil {
			srv.close()
			return nil, err
		}
	}
	metrics, err := newPromSink()
	if err != nil {
		_ = st.Close()
		srv.close()
		return nil, err
	}
	// Traces go where the OTEL_EXPORTER_OTLP_* variables say, as from a
	// function; none without them.
	tracer, err := boot.NewTracer(o.getenv, "dev", log)
	if err != nil {
		_ = st.Close()
		srv.close()
		return nil, err
	}
	srv.tracer = tracer
	parts, err := boot.Build(cfg, st, boot.Options{Function: "dev", Logger: log, Now: o.now, Metrics: metrics, Tracer: tracer})
	if err != nil {
		_ = st.Close()
		srv.close()
		return nil, err
	}
	srv.parts = parts
	// The ops console is the Console group's handler (docs/console.md).
	con, err := console.FromParts(parts, o.now)
	if err != nil {
		srv.close()
		return nil, err
	}
	parts.API.SetConsole(con)
	mux := parts.API.NewMux(httpapi.AllGroups...)
	// Prometheus scrapes the metrics here (docs/observability.md).
	mux.HandleFunc("GET /metrics", metrics.handler().ServeHTTP)
	if srv.fake != nil {
		for _, rt := range srv.sandboxRoutes() {
			mux.HandleFunc(rt.Pattern, rt.Handler)
		}
	}
	srv.handler = mux
	return srv, nil
}

// exampleEnv is o.getenv with --example apps applied: the bundled example
// with apps is written to the data directory and WXN_CONFIG names it.
func exampleEnv(o devOptions) (func(string) string, error) {
	if o.example != "apps" {
		return o.getenv, nil
	}
	if o.getenv("WXN_CONFIG") != "" {
		return nil, errors.New("--example apps: WXN_CONFIG is set too; unset it to run the example, or drop --example")
	}
	dir := o.dataDir
	if dir == "" {
		dir = o.getenv("WXN_DATA_DIR")
	}
	if dir == "" {
		dir = defaultDataDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, exampleAppsFile)
	if err := os.WriteFile(path, config.ExampleApps, 0o600); err != nil {
		return nil, fmt.Errorf("--example apps: %w", err)
	}
	getenv := o.getenv
	return func(k string) string {
		if k == "WXN_CONFIG" {
			return path
		}
		return getenv(k)
	}, nil
}

// sandboxAppID is the AppID of the sandbox's single app without
// WXN_WECHAT_APPID.
const sandboxAppID = "wxsandbox0000000000"

// appSandboxAppID is the fixed AppID the sandbox gives the app id of a
// configuration with apps when none is configured: "wxsandbox" and 10
// hexadecimal digits of the id's SHA-256, the length of sandboxAppID.
func appSandboxAppID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "wxsandbox" + hex.EncodeToString(sum[:5])
}

// pushClient is the HTTP client of the sandbox's pushes. They get a
// transport of their own: http.DefaultTransport keeps 2 idle connections
// per host, so that under the concurrent pushes of many users most would
// open a connection and leave it in TIME_WAIT.
func pushClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
}

// startSandbox starts the fake WeChat of every app and points cfg at it:
// for the single-app shape one Server at its own URL, for apps one Server
// per app behind one Multi (startSandboxApps).
func (srv *devServer) startSandbox(cfg *config.Config, o devOptions) error {
	keep := sandboxRetention()
	if o.retention != nil {
		keep = *o.retention
	}
	if len(cfg.Apps) > 0 {
		return srv.startSandboxApps(cfg, o, keep)
	}
	if cfg.AppID == "" {
		cfg.AppID = sandboxAppID
	}
	fake := wechattest.NewServer(wechattest.Options{AppID: cfg.AppID, Templates: sandbox.Templates(cfg.File), Now: o.now,
		Retention: keep})
	cfg.Secret = fake.Secret()
	cfg.APIBase = fake.URL()
	if cfg.PushEnabled {
		if err := fake.SetPush(wechattest.PushConfig{URL: srv.url + "/wechat/push", Token: cfg.PushToken,
			EncodingAESKey: cfg.PushAESKey, JSON: true, Mode: wechattest.Safe, Client: pushClient()}); err != nil {
			fake.Close()
			return err
		}
	}
	srv.fake = fake
	return nil
}

// startSandboxApps gives each app of cfg a fake WeChat (its AppID, or
// appSandboxAppID; its templates; pushes to /wechat/push/<id> when its push
// is on), serves them all at one URL (cfg.APIBase) and sets each app's
// secret to its fake's.
func (srv *devServer) startSandboxApps(cfg *config.Config, o devOptions, keep wechattest.Retention) error {
	pushes := pushClient()
	fakes := make([]*wechattest.Server, 0, len(cfg.Apps))
	fail := func(err error) error {
		for _, f := range fakes {
			f.Close()
		}
		return err
	}
	srv.fakes = make(map[string]*wechattest.Server, len(cfg.Apps))
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if a.AppID == "" {
			a.AppID = appSandboxAppID(a.ID)
		}
		fake, err := wechattest.New(wechattest.Options{AppID: a.AppID, Templates: sandbox.Templates(a.File), Now: o.now,
			Retention: keep})
		if err != nil {
			return fail(fmt.Errorf("sandbox WeChat of app %q: %w", a.ID, err))
		}
		fakes = append(fakes, fake)
		a.Secret = fake.Secret()
		if a.PushEnabled {
			if err := fake.SetPush(wechattest.PushConfig{URL: srv.url + "/wechat/push/" + a.ID, Token: a.PushToken,
				EncodingAESKey: a.PushAESKey, JSON: true, Mode: wechattest.Safe, Client: pushes}); err != nil {
				return fail(fmt.Errorf("sandbox WeChat of app %q: %w", a.ID, err))
			}
		}
		srv.fakes[a.ID] = fake
	}
	multi, err := wechattest.NewMultiServer(fakes...)
	if err != nil {
		return fail(fmt.Errorf("sandbox WeChat: %w", err))
	}
	srv.multi = multi
	cfg.APIBase = multi.URL()
	def := cfg.Default()
	cfg.AppID, cfg.Secret = def.AppID, def.Secret
	srv.fake = srv.fakes[def.ID]
	return nil
}

// sandboxRoutes are the /sandbox/* routes of the default app's fake and
// the /sandbox/apps/{app}/... of every app's, {app} being its id or AppID.
func (srv *devServer) sandboxRoutes() []sandbox.Route {
	boxes := map[string]*sandbox.Sandbox{}
	for _, a := range srv.parts.Config.AllApps() {
		fake := srv.fakes[a.ID]
		if srv.multi == nil {
			fake = srv.fake
		}
		box := sandbox.New(fake)
		boxes[a.ID], boxes[a.AppID] = box, box
	}
	return append(sandbox.New(srv.fake).Routes(), sandbox.AppRoutes(func(app string) *sandbox.Sandbox { return boxes[app] })...)
}

// listenError says in one line why dev cannot listen on addr and what to
// do: the usual case is a port already taken, by another wxnotify dev or
// anything else.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s is in use; pick another with --addr (e.g. --addr 127.0.0.1:8081)", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: permission denied (ports below 1024 need privileges); pick another with --addr", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s is not an address of this machine; pick another with --addr", addr)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return fmt.Errorf("--addr %s: %v (give host:port, e.g. 127.0.0.1:8080)", addr, err)
}

// setDevPush decides once whether the dev server runs with WeChat's
// message push, from --push (on, off, or "" for the default:
// WXN_PUSH_ENABLED when set, else on in the sandbox and the configuration
// as it is with real WeChat), and sets cfg to match. On: the service
// pairs reports with popup events, and the sandbox gets a generated push
// Token and EncodingAESKey unless they are set. Off: no push Token, so
// /wechat/push answers 404, and reports are the only consent source.
//
// With apps, each app decides alike (its WXN_APP_<ID>_PUSH_ENABLED, else
// WXN_PUSH_ENABLED, else on in the sandbox) and gets its own Token and
// EncodingAESKey; cfg's plain fields then mirror the default app's.
func setDevPush(cfg *config.Config, flag string, getenv func(string) string) error {
	if len(cfg.Apps) > 0 {
		return setDevAppsPush(cfg, flag, getenv)
	}
	on := flag == "on"
	switch {
	case flag == "" && !cfg.Sandbox():
		return nil
	case flag == "":
		on = getenv("WXN_PUSH_ENABLED") == "" || cfg.PushEnabled
	}
	if !on {
		cfg.PushEnabled = false
		cfg.PushToken, cfg.PushAESKey, cfg.PushAESKeyPrevious = "", "", ""
		return nil
	}
	cfg.PushEnabled = true
	if !cfg.Sandbox() {
		if cfg.PushToken == "" {
			return errors.New("--push on: WXN_WECHAT_PUSH_TOKEN is required with real WeChat credentials")
		}
		return nil
	}
	if cfg.PushToken == "" {
		cfg.PushToken = boot.RandomSecret(16)
	}
	if cfg.PushAESKey == "" {
		cfg.PushAESKey = boot.RandomAESKey()
	}
	return nil
}

// setDevAppsPush is setDevPush for a configuration with apps.
func setDevAppsPush(cfg *config.Config, flag string, getenv func(string) string) error {
	sandboxed := cfg.Sandbox()
	if flag == "" && !sandboxed {
		return nil
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		on := flag == "on"
		if flag == "" {
			var err error
			if on, err = appPushDefault(*a, getenv); err != nil {
				return err
			}
		}
		if !on {
			a.PushEnabled = false
			a.PushToken, a.PushAESKey, a.PushAESKeyPrevious = "", "", ""
			continue
		}
		a.PushEnabled = true
		if !sandboxed {
			if a.PushToken == "" {
				name := config.AppVariable(a.ID, "WXN_WECHAT_PUSH_TOKEN")
				if a.ID == cfg.DefaultApp {
					name += " (or WXN_WECHAT_PUSH_TOKEN)"
				}
				return fmt.Errorf("--push on: %s is required with real WeChat credentials", name)
			}
			continue
		}
		if a.PushToken == "" {
			a.PushToken = boot.RandomSecret(16)
		}
		if a.PushAESKey == "" {
			a.PushAESKey = boot.RandomAESKey()
		}
	}
	def := cfg.Default()
	cfg.PushEnabled = def.PushEnabled
	cfg.PushToken, cfg.PushAESKey, cfg.PushAESKeyPrevious = def.PushToken, def.PushAESKey, def.PushAESKeyPrevious
	return nil
}

// appPushDefault is whether app a runs with push in the sandbox without
// --push: as its WXN_APP_<ID>_PUSH_ENABLED says (for the default app
// config already fell back to WXN_PUSH_ENABLED), else as
// WXN_PUSH_ENABLED says, else on.
func appPushDefault(a config.App, getenv func(string) string) (bool, error) {
	if getenv(config.AppVariable(a.ID, "WXN_PUSH_ENABLED")) != "" {
		return a.PushEnabled, nil
	}
	v := getenv("WXN_PUSH_ENABLED")
	if v == "" {
		return true, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("WXN_PUSH_ENABLED: %q is not true or false", v)
	}
	return on, nil
}

// keptSecret reads a generated secret from path, creating it on first use so
// that restarts keep sessions and API keys valid.
func keptSecret(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 2*n {
		return strings.TrimSpace(string(b)), nil
	}
	s := boot.RandomSecret(n)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep generated secret: %w", err)
	}
	return s, nil
}

// tickEvery is how often `wxnotify dev` runs the batch function's tick (the
// schedule trigger of the cloud deployments).
const tickEvery = 2 * time.Second

// tick runs the batch function's tick until ctx ends, as the schedule
// trigger would.
func (s *devServer) tick(ctx context.Context) {
	s.tickOnce = boot.Tick(s.parts)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.tickOnce(ctx, time.Now().Add(30*time.Second)); err != nil && ctx.Err() == nil {
				s.parts.Logger.Warn("batch tick", "err", err)
			}
		}
	}
}

func (s *devServer) serve(ctx context.Context) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.listener) }()
	tickCtx, stopTicks := context.WithCancel(ctx)
	defer stopTicks()
	go s.tick(tickCtx)
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(shutdown)
	}
}

func (s *devServer) close() {
	if s.tracer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = s.tracer.Shutdown(ctx)
		cancel()
	}
	switch {
	case s.multi != nil:
		s.multi.Close()
	case s.fake != nil:
		s.fake.Close()
	}
	if s.parts != nil {
		_ = s.parts.Close()
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
}

func (s *devServer) printBanner(w io.Writer) {
	mode := "real WeChat (" + s.parts.Config.AppID + ")"
	if s.fake != nil {
		mode = "sandbox WeChat"
	}
	push := "push off: /wechat/push answers 404, reports are the only consent source"
	if s.parts.Config.PushEnabled {
		push = "push on"
	}
	fmt.Fprintf(w, "wxnotify dev: listening on %s (%s, %s, %s store in %s)\n", s.url, mode, push, s.parts.Config.Store, s.parts.Config.DataDir)
	if s.apiKey != "" {
		fmt.Fprintf(w, "API key (WXN_API_KEYS is unset, generated and kept in the data dir): %s\n", s.apiKey)
	}
	fmt.Fprintf(w, "Console: %s/console/", s.url)
	if s.adminKey != "" {
		fmt.Fprintf(w, " (WXN_ADMIN_KEYS is unset: sign in with the key kept in %s)", filepath.Join(s.parts.Config.DataDir, devAdminKeyFile))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, s.cliHint())
	if s.fake == nil {
		return
	}
	key := s.apiKey
	if key == "" {
		key = "$WXN_API_KEY"
	}
	if s.multi == nil {
		s.printTryIt(w, demo{user: "alice", userID: "sales-42", fake: s.fake, svc: s.parts.Service,
			push: s.parts.Config.PushEnabled, v1: "/v1", box: sandbox.Prefix}, key)
		return
	}
	s.printApps(w, key)
}

// printApps is the banner's part for a configuration with apps: each app
// with its AppID and push URL, and a "try it" for the default app on the
// short routes and for the next app on its own.
func (s *devServer) printApps(w io.Writer, key string) {
	cfg := s.parts.Config
	fmt.Fprintf(w, "\nApps (the short routes /v1/..., /wechat/push and /sandbox/... serve %s; each app's are under /v1/apps/<id>/..., /wechat/push/<id> and /sandbox/apps/<id>/...):\n", cfg.DefaultApp)
	for _, a := range cfg.Apps {
		push := "push off"
		if a.PushEnabled {
			push = "push to " + s.url + "/wechat/push/" + a.ID
		}
		fmt.Fprintf(w, "- %s: AppID %s, %s\n", a.ID, a.AppID, push)
	}
	def := cfg.Default()
	s.printTryIt(w, demo{user: "alice", userID: def.ID + "-42", fake: s.fake, svc: s.parts.Service,
		push: def.PushEnabled, v1: "/v1", box: sandbox.Prefix, label: " on the default app " + def.ID}, key)
	for _, a := range cfg.Apps {
		if a.ID == def.ID {
			continue
		}
		app := s.parts.App(a.ID)
		if app == nil {
			return
		}
		s.printTryIt(w, demo{user: "bob", userID: a.ID + "-7", fake: s.fakes[a.ID], svc: app.Service,
			push: a.PushEnabled, v1: "/v1/apps/" + a.ID, box: sandbox.AppsPrefix + "/" + a.ID,
			label: " on the app " + a.ID + "'s own routes, U and K as above", noVars: true}, key)
		return
	}
}

// demo is what a "try it" of the banner plays: a sandbox user of one app
// who logs in, is bound to userID, accepts a template and gets notified,
// on the app's routes (v1: /v1 or /v1/apps/<id>; box: its sandbox prefix).
type demo struct {
	user, userID string
	fake         *wechattest.Server
	svc          *notify.Service
	push         bool
	v1, box      string
	// label follows "Try it" in the banner.
	label string
	// noVars: U and K are already set by an earlier "try it".
	noVars bool
}

// printTryIt prints the curl commands of d, each on a line of its own
// starting with two spaces (tests run them as printed).
func (s *devServer) printTryIt(w io.Writer, d demo, key string) {
	tmpl, _ := d.svc.Catalog().Lookup("lead_assigned")
	if tmpl.ID == "" {
		ts := d.svc.Catalog().Templates()
		if len(ts) == 0 {
			return
		}
		tmpl = ts[0]
	}
	data := demoData(tmpl)
	openID := d.fake.OpenID(d.user)
	bind := fmt.Sprintf(`curl -s -XPOST $U%s/bindings -H "Authorization: Bearer $K" -d '{"userId":"%s","code":"'$CODE'"}'`, d.v1, d.userID)
	subscribe := fmt.Sprintf(`curl -s -XPOST $U%s/subscribe -d '{"openid":"%s","choices":{"%s":"accept"}}'`, d.box, openID, tmpl.ID)
	how := "the sandbox pushes WeChat's popup event"
	if !d.push {
		// No push: the mini program's report of the popup is what counts,
		// made with the session token the binding answered.
		bind = `B=$(` + bind + `); echo "$B"; T=$(echo "$B" | sed 's/.*"token":"\([^"]*\)".*/\1/')`
		subscribe += fmt.Sprintf(` | curl -s -XPOST $U%s/consents -H "Authorization: Bearer $T" -d @-`, d.v1)
		how = "the mini program reports the popup"
	}
	fmt.Fprintf(w, "\nTry it%s (%s logs in, binds to %s, accepts %q, %s, gets notified):\n", d.label, d.user, d.userID, tmpl.Alias, how)
	vars := fmt.Sprintf("U=%s K=%s; ", s.url, key)
	if d.noVars {
		vars = ""
	}
	fmt.Fprintf(w, "  %sCODE=$(curl -s -XPOST $U%s/login -d '{\"user\":\"%s\"}' | sed 's/.*\"code\":\"\\([^\"]*\\)\".*/\\1/')\n", vars, d.box, d.user)
	fmt.Fprintf(w, "  %s\n", bind)
	fmt.Fprintf(w, "  %s\n", subscribe)
	fmt.Fprintf(w, "  curl -s -XPOST $U%s/notifications -H \"Authorization: Bearer $K\" -d '{\"to\":{\"userId\":\"%s\"},\"template\":\"%s\",\"data\":%s}'\n", d.v1, d.userID, tmpl.Alias, data)
	fmt.Fprintf(w, "  curl -s \"$U%s/messages?openid=%s\"\n", d.box, openID)
}

// cliHint tells how the CLI reaches this server: the CLI's defaults (the
// address, the generated key in .wxnotify) or the variables that say
// otherwise.
func (s *devServer) cliHint() string {
	var env []string
	if s.url != defaultURL {
		env = append(env, "WXN_URL="+s.url)
	}
	switch {
	case s.apiKey == "":
		env = append(env, "WXN_API_KEY=<one of WXN_API_KEYS>")
	case s.parts.Config.DataDir != defaultDataDir:
		env = append(env, "WXN_DATA_DIR="+s.parts.Config.DataDir)
	}
	hint := "CLI: wxnotify send, batch and consents use this server"
	if s.apiKey != "" {
		hint += " and its generated key"
	}
	if len(env) == 0 {
		hint += " from this directory, with no flags"
	} else {
		hint += " once " + strings.Join(env, " and ") + " is set"
	}
	if s.fake != nil {
		hint += "; wxnotify templates sync --sandbox --dry-run shows the sandbox's templates as wxnotify.yaml would have them"
	}
	return hint + "."
}

// demoData is valid sample data for a template's keywords.
func demoData(t notify.Template) string {
	var parts []string
	for _, kw := range t.Keywords {
		parts = append(parts, fmt.Sprintf("%q:%q", kw.Name, exampleValue(kw.Type, kw.Enum)))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// exampleValue is a valid value of each keyword type, for the demo.
func exampleValue(typ string, enum []string) string {
	if len(enum) > 0 {
		return enum[0]
	}
	switch typ {
	case "number":
		return "7"
	case "letter":
		return "ABC"
	case "symbol":
		return "#"
	case "character_string":
		return "L-1001"
	case "time":
		return "15:01"
	case "date":
		return "2026-11-21"
	case "amount":
		return "¥100"
	case "phone_number":
		return "+86-0766-66888866"
	case "car_number":
		return "粤A8Z888挂"
	case "name":
		return "Alice"
	case "phrase", "short_thing":
		return "配送中"
	}
	return "Acme Ltd"
}
