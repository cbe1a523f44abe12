package main

import (
	"context"
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
	"strings"
	"syscall"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const devUsage = `usage: wxnotify dev [--addr 127.0.0.1:8080] [--data DIR] [--push on|off]

Runs every function on one local server with a bbolt store under DIR. Without
WXN_WECHAT_SECRET it runs the sandbox: a fake WeChat in the same process, with the
/sandbox/* routes to play the WeChat user. Configuration: see README.

flags:
  --addr ADDR    listen address (default 127.0.0.1:8080)
  --data DIR     data directory (default $WXN_DATA_DIR, else .wxnotify); the
                 API key dev generates is kept in DIR/api.key, where the CLI
                 finds it
  --push on|off  WeChat's message push (default $WXN_PUSH_ENABLED, else on in
                 the sandbox and as configured with real WeChat)
      on:  the sandbox pushes WeChat's events (popups, sent events) to
           /wechat/push, signed and encrypted, and popup events confirm the
           mini program's reports; with real WeChat, WXN_WECHAT_PUSH_TOKEN is
           required.
      off: nothing is pushed and /wechat/push answers 404; the mini
           program's reports are the only source of consent (rate-limited
           and capped per user), as in a deployment without message push.
`

// defaultDataDir is the data directory of `wxnotify dev` without --data
// and WXN_DATA_DIR, relative to the current directory.
const defaultDataDir = ".wxnotify"

// devServer is everything `wxnotify dev` runs, built so tests can start it
// on a random port.
type devServer struct {
	parts    *boot.Parts
	fake     *wechattest.Server // nil with real credentials
	handler  http.Handler
	apiKey   string // the generated key, "" when WXN_API_KEYS is set
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
}

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
	var push string
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
	srv, err := startDev(ctx, devOptions{addr: *addr, dataDir: *data, getenv: os.Getenv, logOut: stderr, push: push})
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
		if cfg.AppID == "" {
			cfg.AppID = "wxsandbox0000000000"
		}
		keep := sandboxRetention()
		if o.retention != nil {
			keep = *o.retention
		}
		fake := wechattest.NewServer(wechattest.Options{AppID: cfg.AppID, Templates: sandbox.Templates(cfg.File), Now: o.now,
			Retention: keep})
		cfg.Secret = fake.Secret()
		cfg.APIBase = fake.URL()
		if cfg.PushEnabled {
			// The pushes get a transport of their own: http.DefaultTransport keeps 2 idle connections
			// per host, so that under the concurrent pushes of many users most would open a connection
			// and leave it in TIME_WAIT.
			pushes := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
			if err := fake.SetPush(wechattest.PushConfig{URL: srv.url + "/wechat/push", Token: cfg.PushToken,
				EncodingAESKey: cfg.PushAESKey, JSON: true, Mode: wechattest.Safe, Client: pushes}); err != nil {
				fake.Close()
				_ = ln.Close()
				return nil, err
			}
		}
		srv.fake = fake
	}

	st := o.st
	if st == nil {
		if st, err = boot.OpenStore(ctx, cfg); err != nil {
			srv.close()
			return nil, err
		}
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "dev", Logger: log, Now: o.now})
	if err != nil {
		_ = st.Close()
		srv.close()
		return nil, err
	}
	srv.parts = parts
	mux := parts.API.NewMux(httpapi.AllGroups...)
	if srv.fake != nil {
		for _, rt := range sandbox.New(srv.fake).Routes() {
			mux.HandleFunc(rt.Pattern, rt.Handler)
		}
	}
	srv.handler = mux
	return srv, nil
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
func setDevPush(cfg *config.Config, flag string, getenv func(string) string) error {
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
	if s.fake != nil {
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
	fmt.Fprintln(w, s.cliHint())
	if s.fake == nil {
		return
	}
	key := s.apiKey
	if key == "" {
		key = "$WXN_API_KEY"
	}
	tmpl, _ := s.parts.Service.Catalog().Lookup("lead_assigned")
	if tmpl.ID == "" {
		ts := s.parts.Service.Catalog().Templates()
		if len(ts) == 0 {
			return
		}
		tmpl = ts[0]
	}
	data := demoData(tmpl)
	bind := `curl -s -XPOST $U/v1/bindings -H "Authorization: Bearer $K" -d '{"userId":"sales-42","code":"'$CODE'"}'`
	subscribe := fmt.Sprintf(`curl -s -XPOST $U/sandbox/subscribe -d '{"openid":"%s","choices":{"%s":"accept"}}'`, s.fake.OpenID("alice"), tmpl.ID)
	how := "the sandbox pushes WeChat's popup event"
	if !s.parts.Config.PushEnabled {
		// No push: the mini program's report of the popup is what counts,
		// made with the session token the binding answered.
		bind = `B=$(` + bind + `); echo "$B"; T=$(echo "$B" | sed 's/.*"token":"\([^"]*\)".*/\1/')`
		subscribe += ` | curl -s -XPOST $U/v1/consents -H "Authorization: Bearer $T" -d @-`
		how = "the mini program reports the popup"
	}
	fmt.Fprintf(w, "\nTry it (alice logs in, binds to sales-42, accepts %q, %s, gets notified):\n", tmpl.Alias, how)
	fmt.Fprintf(w, "  U=%s K=%s; CODE=$(curl -s -XPOST $U/sandbox/login -d '{\"user\":\"alice\"}' | sed 's/.*\"code\":\"\\([^\"]*\\)\".*/\\1/')\n", s.url, key)
	fmt.Fprintf(w, "  %s\n", bind)
	fmt.Fprintf(w, "  %s\n", subscribe)
	fmt.Fprintf(w, "  curl -s -XPOST $U/v1/notifications -H \"Authorization: Bearer $K\" -d '{\"to\":{\"userId\":\"sales-42\"},\"template\":\"%s\",\"data\":%s}'\n", tmpl.Alias, data)
	fmt.Fprintf(w, "  curl -s \"$U/sandbox/messages?openid=%s\"\n", s.fake.OpenID("alice"))
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
