// Package boot builds a function's parts from its configuration: the state
// store the environment names, the WeChat client with its shared token
// source, the domain service and the HTTP API. Every function's main and
// `wxnotify dev` go through it, so they are wired the same way.
package boot

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
	"github.com/wxnotify/wxnotify/shared/store/redisstore"
	"github.com/wxnotify/wxnotify/shared/store/storeobs"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Parts are the built components of a function.
type Parts struct {
	Config config.Config
	// Store is the deployment's store; with a metrics sink, wrapped to
	// report its operations (storeobs).
	Store store.Store
	// Apps are the deployment's mini programs, in the configuration's
	// order, each bound to its own service; WeChat and Service are the
	// default app's.
	Apps    []*App
	WeChat  *wechat.Client
	Service *notify.Service
	API     *httpapi.API
	Logger  *slog.Logger
	// Metrics is the sink of the metrics (package observe), nil without.
	Metrics observe.Sink
	// Tracer traces the requests, lead events and WeChat calls; nil:
	// tracing off.
	Tracer *trace.Tracer
	clock  func() time.Time
}

// Flush writes what the metrics sink and the tracer hold back, at the end
// of every request, delivery, tick and invocation, before the platform may
// freeze the instance.
func (p *Parts) Flush() {
	p.FlushMetrics()
	if err := p.Tracer.Flush(context.Background()); err != nil {
		p.Logger.Warn("trace export failed", slog.String("err", err.Error()))
	}
}

// FlushMetrics writes the metrics the sink holds (the folded store and
// WeChat call latencies of a log sink), e.g. at the end of an invocation.
func (p *Parts) FlushMetrics() {
	if f, ok := p.Metrics.(observe.Flusher); ok {
		f.Flush()
	}
}

// App is one mini program's parts: the service bound to it (its AppID, its
// WeChat client with its token, its catalog and rules, its batch rate
// limit) on the deployment's store.
type App struct {
	ID      string
	WeChat  *wechat.Client
	Service *notify.Service
}

// App returns the app whose id or AppID is name, or nil.
func (p *Parts) App(name string) *App {
	for _, a := range p.Apps {
		if a.ID == name {
			return a
		}
	}
	for _, a := range p.Apps {
		if a.Service.AppID() == name {
			return a
		}
	}
	return nil
}

// Close releases the store.
func (p *Parts) Close() error { return p.Store.Close() }

// Options adjust Build for `wxnotify dev` and tests.
type Options struct {
	Function string
	Logger   *slog.Logger
	// HTTPClient for WeChat calls; default the client's own.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RefreshSecret re-reads an app's AppSecret, from the variable (or
	// secret key) it names, when WeChat refuses it
	// (wechat.Config.RefreshSecret); Loaded.RefreshSecret makes it from
	// the secret store. Nil: the AppSecrets are fixed.
	RefreshSecret func(ctx context.Context, variable string) (string, error)
	// Metrics is the sink of the metrics (`wxnotify dev` passes its
	// Prometheus one). Nil: chosen by the platform (MetricsSink).
	Metrics observe.Sink
	// Getenv reads the environment for the platform; default os.Getenv.
	Getenv func(string) string
	// MetricsOut is where a log sink writes its lines; default os.Stderr,
	// the function's log stream.
	MetricsOut io.Writer
	// Tracer traces requests, lead events and WeChat calls (NewTracer);
	// nil: tracing off.
	Tracer *trace.Tracer
	// WebhooksAllowPrivate lets outcome webhooks reach loopback and
	// private addresses, for tests; `wxnotify dev` (Function "dev") always
	// may. Never in a deployment.
	WebhooksAllowPrivate bool
	// WebhookTimeout bounds one webhook attempt; default 15 s.
	WebhookTimeout time.Duration
}

// MetricsSink is the metrics sink of the platform getenv tells
// (platform.Detect): CloudWatch Embedded Metric Format lines on AWS Lambda,
// plain JSON lines on Tencent Cloud SCF (for a CLS metric extraction), both
// written to w; none (nil) elsewhere.
func MetricsSink(getenv func(string) string, w io.Writer) observe.Sink {
	switch platform.Detect(getenv) {
	case platform.AWS:
		return observe.EMF(w)
	case platform.Tencent:
		return observe.Lines(w)
	}
	return nil
}

// storeBackend is the backend label of c's store.
func storeBackend(c config.Config) string {
	if c.Store == "" {
		return config.StoreBolt
	}
	return c.Store
}

// NewLogger returns the JSON logger of every function, at the level of
// WXN_LOG_LEVEL.
func NewLogger(w *os.File, level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// servedBesideBatch is how many WeChat calls a process makes beside a
// batch's workers: the HTTP requests it serves at the same time (one on
// Lambda and SCF, a few in `wxnotify dev` or a container).
const servedBesideBatch = 8

// wechatConns sizes the WeChat client's connection pool from the batch
// workers (WXN_BATCH_WORKERS; 0: the default), so that a batch reuses its
// connections instead of closing and redialling them.
func wechatConns(workers int) int {
	return cmp.Or(workers, wechat.DefaultMaxConns) + servedBesideBatch
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, c config.Config) (store.Store, error) {
	switch c.Store {
	case config.StoreRedis:
		return redisstore.Open(c.RedisURL, c.RedisPrefix+":")
	case config.StoreDynamo:
		client, err := dynamostore.NewClient("")
		if err != nil {
			return nil, fmt.Errorf("WXN_STORE=dynamodb: %w", err)
		}
		return dynamostore.New(client, c.DynamoTable), nil
	default:
		dir := c.DataDir
		if dir == "" {
			dir = ".wxnotify"
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("WXN_DATA_DIR: %w", err)
		}
		return boltstore.Open(filepath.Join(dir, "wxnotify.db"))
	}
}

// Build wires the parts from c on the given store. It logs one warning per
// variable set under its old name (c.Deprecated).
func Build(c config.Config, st store.Store, o Options) (*Parts, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range c.Deprecated {
		msg := "environment variable " + d.Old + " is deprecated: rename it " + d.New
		if d.Ignored {
			msg = "environment variable " + d.Old + " is deprecated and ignored: " + d.New + " is set"
		}
		log.Warn(msg, slog.String("variable", d.Old), slog.String("use", d.New))
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if c.SessionSecret == "" {
		return nil, errors.New("WXN_SESSION_SECRET: required")
	}
	sessions, err := notify.NewSessions([]byte(c.SessionSecret), c.SessionTTL, now)
	if err != nil {
		return nil, fmt.Errorf("WXN_SESSION_SECRET: %w", err)
	}
	if c.SessionSecretPrevious != "" {
		if err := sessions.AcceptPrevious([]byte(c.SessionSecretPrevious)); err != nil {
			return nil, fmt.Errorf("WXN_SESSION_SECRET_PREVIOUS: %w", err)
		}
	}
	sink := o.Metrics
	if sink == nil {
		getenv, out := o.Getenv, o.MetricsOut
		if getenv == nil {
			getenv = os.Getenv
		}
		if out == nil {
			out = os.Stderr
		}
		sink = MetricsSink(getenv, out)
	}
	if sink != nil {
		st = storeobs.New(st, observe.StoreFunc(sink, storeBackend(c), now))
	}
	p := &Parts{Config: c, Store: st, Logger: log, Metrics: sink, clock: now, Tracer: o.Tracer}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	dispatcher, err := newDispatcher(c.Batch, getenv)
	if err != nil {
		return nil, err
	}
	var apps []httpapi.App
	def := c.Default().ID
	for _, ac := range c.AllApps() {
		a, hp, err := buildApp(c, ac, st, sessions, now, log, sink, dispatcher, o)
		if err != nil {
			if len(c.Apps) > 0 {
				return nil, fmt.Errorf("app %q: %w", ac.ID, err)
			}
			return nil, err
		}
		p.Apps = append(p.Apps, a)
		apps = append(apps, hp)
		if ac.ID == def {
			p.WeChat, p.Service = a.WeChat, a.Service
		}
	}
	api, err := httpapi.New(httpapi.Options{Apps: apps, DefaultApp: def, APIKeys: c.APIKeys, Logger: log, Now: now, Function: o.Function,
		Store: st, Tracer: o.Tracer})
	if err != nil {
		return nil, err
	}
	p.API = api
	return p, nil
}

// buildApp wires one app: its WeChat client (its token shared through the
// store, one per AppID), its catalog and rules, its service and its push.
func buildApp(c config.Config, ac config.App, st store.Store, sessions *notify.Sessions, now func() time.Time,
	log *slog.Logger, sink observe.Sink, dispatcher notify.ShardDispatcher, o Options) (*App, httpapi.App, error) {
	if len(c.Apps) > 0 {
		log = log.With(slog.String("app", ac.ID))
	}
	catalog, err := ac.File.Catalog()
	if err != nil {
		return nil, httpapi.App{}, err
	}
	var obs *observe.Observer
	if sink != nil {
		obs = observe.New(sink, observe.Options{App: appLabel(ac), Now: now, TemplateAlias: func(id string) string {
			t, _ := catalog.Lookup(id)
			return t.Alias
		}})
	}
	wcfg := wechat.Config{AppID: ac.AppID, Secret: ac.Secret, BaseURL: c.APIBase, HTTPClient: o.HTTPClient,
		Now: now, Logger: log, TokenFree: c.TokenFree, MaxConns: wechatConns(c.Batch.Workers)}
	if obs != nil {
		wcfg.OnCall = obs.WeChatCall
	}
	wcfg.StartCall = wechatSpans(o.Tracer)
	if o.RefreshSecret != nil {
		variable := ac.SecretVariable
		wcfg.RefreshSecret = func(ctx context.Context) (string, error) { return o.RefreshSecret(ctx, variable) }
	}
	if !c.TokenFree {
		tokens, err := wechat.NewStoreTokenSource(st, wcfg, wechat.TokenOptions{})
		if err != nil {
			return nil, httpapi.App{}, err
		}
		wcfg.Tokens = tokens
	}
	wx, err := wechat.New(wcfg)
	if err != nil {
		return nil, httpapi.App{}, err
	}
	rules, err := ac.File.CompileRules(catalog)
	if err != nil {
		return nil, httpapi.App{}, err
	}
	nopts := notify.Options{AppID: ac.AppID, Store: st, WeChat: wx, Catalog: catalog, Rules: rules,
		PushConfigured: ac.PushEnabled, UnknownWindow: c.UnknownWindow, Retention: c.Retention,
		Sessions: sessions, Now: now, Logger: log,
		Batch: notify.BatchOptions{Rate: c.Batch.Rate, RateScope: notify.RateScope(c.Batch.RateScope),
			Workers: c.Batch.Workers, PageSize: c.Batch.PageSize, ShardSize: c.Batch.ShardSize, Runners: c.Batch.Runners,
			Dispatcher: dispatcher}}
	if obs != nil {
		nopts.Observer = obs
	}
	nopts.Webhooks = webhookOptions(ac, o)
	svc, err := notify.New(nopts)
	if err != nil {
		return nil, httpapi.App{}, err
	}
	var push *httpapi.PushConfig
	if ac.PushToken != "" {
		push = &httpapi.PushConfig{Token: ac.PushToken, PreviousToken: ac.PushTokenPrevious}
		if ac.PushAESKey != "" {
			var prev []string
			if ac.PushAESKeyPrevious != "" {
				prev = append(prev, ac.PushAESKeyPrevious)
			}
			if push.Crypter, err = wechat.NewCrypter(ac.AppID, ac.PushAESKey, prev...); err != nil {
				return nil, httpapi.App{}, fmt.Errorf("%s: %w", appVar(c, ac, "WXN_WECHAT_PUSH_AES_KEY"), err)
			}
		}
	}
	return &App{ID: ac.ID, WeChat: wx, Service: svc}, httpapi.App{ID: ac.ID, Service: svc, Push: push, APIKeys: ac.APIKeys}, nil
}

// webhookOptions are the outcome webhooks of an app: its subscriptions,
// each signed with its secret; private addresses only for `wxnotify dev`
// and tests.
func webhookOptions(ac config.App, o Options) notify.WebhookOptions {
	w := notify.WebhookOptions{App: ac.ID, AllowPrivate: o.WebhooksAllowPrivate || o.Function == "dev", Timeout: o.WebhookTimeout}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, h := range ac.Webhooks {
		sub := notify.WebhookSubscription{ID: h.ID, URL: h.URL, Events: h.Events, EventBus: h.EventBusARN}
		if h.Secret != "" {
			sub.Secrets = []string{h.Secret}
		}
		if h.SecretPrevious != "" {
			sub.Secrets = append(sub.Secrets, h.SecretPrevious) // a rotation: signed with both
		}
		w.Subscriptions = append(w.Subscriptions, sub)
	}
	// An event bus is put to with the function's AWS credentials, at the
	// endpoint the SDK's variable names, if set (a VPC endpoint).
	w.EventBridge = notify.EventBridgeOptions{Endpoint: getenv("AWS_ENDPOINT_URL_EVENTBRIDGE"),
		Credentials: func() (webhook.AWSCredentials, error) { return webhook.EnvAWSCredentials(getenv) }}
	return w
}

// appLabel is an app's label in metrics: its id, or its AppID when the
// single-app shape has no id.
func appLabel(ac config.App) string {
	if ac.ID != "" {
		return ac.ID
	}
	return ac.AppID
}

// appVar names an app's variable in errors: the plain one for the
// single-app shape, WXN_APP_<ID>_* otherwise.
func appVar(c config.Config, ac config.App, name string) string {
	if len(c.Apps) == 0 {
		return name
	}
	return config.AppVariable(ac.ID, name)
}

// RandomSecret returns n random bytes as hex, for generated keys.
func RandomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RandomAESKey returns a fresh EncodingAESKey: 43 base64 characters of 32
// random bytes, as the mini program console generates.
func RandomAESKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}
