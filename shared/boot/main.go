package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/platform/cloudcall"
	"github.com/wxnotify/wxnotify/shared/secrets"
)

// ConfigFileName is the wxnotify.yaml a deployment bundles next to each
// function binary; it is used when WXN_CONFIG is unset.
const ConfigFileName = "wxnotify.yaml"

// Core builds a function's handlers from its parts.
type Core func(p *Parts) (platform.Handlers, error)

// Main is the whole main of an HTTP function: it serves the function's
// route groups (see Handlers) on whatever platform it runs on. See MainCore.
func Main(function string, groups ...httpapi.Group) {
	MainCore(function, func(p *Parts) (platform.Handlers, error) { return Handlers(p, function, groups...), nil })
}

// MainCore is the whole main of a function: a log line with its version,
// configuration from the environment and the secret store it names
// (LoadConfig; validated, failing with the field's name), the store, the
// parts, and the handlers core builds, handed to platform.Run (AWS Lambda,
// Tencent Cloud SCF, or a local HTTP server until SIGTERM). It exits the
// process with status 1 on a configuration or start-up error, a secret
// store that cannot be read included, so the platform reports a failed
// init with the message.
//
// When WXN_CONFIG is unset and a wxnotify.yaml lies next to the binary (as
// `make build` bundles it), that file is the configuration.
func MainCore(function string, core Core) {
	if err := run(function, core); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
}

// Handlers returns the handlers of the function named function that serves
// groups: their HTTP routes and /healthz; a function serving the Send group
// also answers direct invocations in the cloud-call shape (package
// cloudcall).
func Handlers(p *Parts, function string, groups ...httpapi.Group) platform.Handlers {
	h := platform.Handlers{HTTP: p.API.NewMux(groups...)}
	for _, g := range groups {
		if g == httpapi.Send {
			apps := func(name string) (cloudcall.Sender, bool) {
				if a := p.App(name); a != nil {
					return a.Service, true
				}
				return nil, false
			}
			h.Invoke = cloudcall.New(p.Service, cloudcall.Options{Logger: p.Logger, Function: function, Apps: apps}).Invoke
		}
	}
	return h
}

func run(function string, core Core) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv := withBundledConfig(os.Getenv, os.Executable)
	level := config.Lookup(getenv, "WXN_LOG_LEVEL")
	log := NewLogger(os.Stderr, level)
	logStart(log, function)
	loaded, err := LoadConfig(ctx, getenv, false, secrets.Options{})
	if err != nil {
		return err
	}
	cfg := loaded.Config
	if err := cfg.Require(); err != nil {
		if loaded.Secrets != nil {
			return fmt.Errorf("%w (secrets from %s)", err, secretName(loaded.Secrets))
		}
		return err
	}
	if cfg.LogLevel != level {
		log = NewLogger(os.Stderr, cfg.LogLevel)
	}
	loaded.logSecrets(log)
	tracer, err := NewTracer(loaded.Getenv(), function, log)
	if err != nil {
		return err
	}
	defer func() { _ = tracer.Shutdown(context.Background()) }()
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	parts, err := Build(cfg, st, Options{Function: function, Logger: log, RefreshSecret: loaded.RefreshSecret(), Tracer: tracer})
	if err != nil {
		_ = st.Close()
		return err
	}
	defer parts.Close()
	h, err := core(parts)
	if err != nil {
		return err
	}
	defer parts.Flush()
	return platform.Run(ctx, withFlush(h, parts.Flush), platform.Options{Function: function, Logger: log, Getenv: getenv})
}

// withBundledConfig answers WXN_CONFIG with the wxnotify.yaml next to the
// executable when the variable is unset and the file exists.
func withBundledConfig(getenv func(string) string, executable func() (string, error)) func(string) string {
	if getenv("WXN_CONFIG") != "" {
		return getenv
	}
	exe, err := executable()
	if err != nil {
		return getenv
	}
	path := filepath.Join(filepath.Dir(exe), ConfigFileName)
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return getenv
	}
	return func(k string) string {
		if k == "WXN_CONFIG" {
			return path
		}
		return getenv(k)
	}
}

// withFlush returns h with flush called after every request, delivery,
// tick and invocation, so that the metrics a sink holds back (EMF's folded
// latencies) and the tracer's queued spans are written before the platform
// may freeze the instance.
func withFlush(h platform.Handlers, flush func()) platform.Handlers {
	if next := h.HTTP; next != nil {
		h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer flush()
			next.ServeHTTP(w, r)
		})
	}
	if next := h.Events; next != nil {
		h.Events = func(ctx context.Context, events []platform.Event) ([]string, error) {
			defer flush()
			return next(ctx, events)
		}
	}
	if next := h.Tick; next != nil {
		h.Tick = func(ctx context.Context, deadline time.Time) error {
			defer flush()
			return next(ctx, deadline)
		}
	}
	if next := h.Invoke; next != nil {
		h.Invoke = func(ctx context.Context, payload json.RawMessage) (any, error) {
			defer flush()
			return next(ctx, payload)
		}
	}
	return h
}
