package httpapi

import (
	"crypto/sha256"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// PushConfig is the message-push configuration of the mini program console.
type PushConfig struct {
	Token string
	// PreviousToken, when set, is accepted as well as Token: the overlap
	// while the push Token is rotated (WeChat signs with the new one as soon
	// as the console saves it).
	PreviousToken string
	// Crypter decrypts safe-mode pushes; nil accepts plaintext pushes only.
	Crypter *wechat.Crypter
	// MaxSkew bounds how far a push's timestamp may be from now (default
	// 5 minutes); older signed requests are replays.
	MaxSkew time.Duration
}

// signed reports whether check accepts the current Token or the previous
// one.
func (p *PushConfig) signed(check func(token string) bool) bool {
	return check(p.Token) || p.PreviousToken != "" && check(p.PreviousToken)
}

// defaultMaxSkew is PushConfig.MaxSkew's default.
const defaultMaxSkew = 5 * time.Minute

// Options configure the API.
type Options struct {
	// Apps are the mini programs served. Every route is served for each
	// app under /v1/apps/{app}/... (and /wechat/push/{app}); the short
	// /v1/... and /wechat/push serve DefaultApp (default: the first app).
	Apps       []App
	DefaultApp string
	// Service and Push, without Apps, are one app "default".
	Service *notify.Service
	Push    *PushConfig
	// APIKeys authenticate server routes for every app (App.APIKeys for
	// one app only).
	APIKeys  []string
	Logger   *slog.Logger
	Now      func() time.Time
	Function string // the function name in log lines
	// Store is the state store GET /readyz reads; nil: /readyz answers
	// ok without reading.
	Store store.Store
	// ReadyTimeout bounds that read; default 2s.
	ReadyTimeout time.Duration
	// Tracer traces every request (a server span each, the W3C
	// traceparent header its parent); nil: tracing off.
	Tracer *trace.Tracer
}

// API serves the HTTP routes. Build it with New and mount route groups.
type API struct {
	apps         map[string]*app // by id
	byAppID      map[string]*app
	order        []*app
	def          *app
	keys         [][sha256.Size]byte // keys of every app
	log          *slog.Logger
	now          func() time.Time
	function     string
	store        store.Store
	readyTimeout time.Duration
	tracer       *trace.Tracer
	// authFails limits failed API-key attempts per client address.
	authFails *authLimiter
	// console serves the Console group (SetConsole); nil: not here.
	console http.Handler
}

// New returns the API.
func New(opts Options) (*API, error) {
	a := &API{log: opts.Logger, now: opts.Now, function: opts.Function, store: opts.Store, readyTimeout: opts.ReadyTimeout,
		tracer: opts.Tracer}
	if a.readyTimeout <= 0 {
		a.readyTimeout = readyTimeout
	}
	if err := a.newApps(opts); err != nil {
		return nil, err
	}
	for _, k := range opts.APIKeys {
		a.keys = append(a.keys, sha256.Sum256([]byte(k)))
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.authFails = newAuthLimiter(a.now)
	if a.function == "" {
		a.function = "wxnotify"
	}
	return a, nil
}

// Group is a set of routes that one function serves.
type Group int

// Route groups, one per function (docs/design.md#layout).
const (
	Login   Group = iota // POST /v1/session, POST /v1/bindings, DELETE /v1/bindings/{userId}
	Consent              // GET /v1/templates, GET|POST /v1/consents, POST /v1/consents/shown, GET /v1/consents/advice
	Send                 // POST|GET /v1/notifications, GET /v1/notifications/{id}
	Push                 // GET|POST /wechat/push
	Batches              // POST|GET /v1/batches, GET|DELETE /v1/batches/{id}, POST /v1/batches/{id}/pause|resume
	Events               // POST /v1/events
	Admin                // GET /v1/users/{userId}[/consents|/timeline], GET /v1/openids/{openid}/consents, /v1/webhooks/{id}/...
	Console              // GET /console, GET|POST /console/{path...}: the ops console (SetConsole)
)

// AllGroups is every group, as `wxnotify dev` serves them.
var AllGroups = []Group{Login, Consent, Send, Push, Batches, Events, Admin, Console}

// route is one route of a group. The mux composes it in one order for all:
// the request id, body limit and log line, then auth, then the checks of
// the path parameters (pathParams), then the handler.
type route struct {
	pattern string
	auth    func(http.HandlerFunc) http.HandlerFunc // a.server, a.session, or nil: public
	handler http.HandlerFunc
	maxBody int64 // 0: MaxBodyBytes
}

func (a *API) routes(g Group) []route {
	switch g {
	case Login:
		return []route{
			{"POST /v1/session", nil, a.handleSession, 0},
			{"POST /v1/bindings", a.server, a.handleBind, 0},
			{"DELETE /v1/bindings/{userId}", a.server, a.handleUnbind, 0},
		}
	case Consent:
		return []route{
			{"GET /v1/templates", a.session, a.handleTemplates, 0},
			{"GET /v1/consents", a.session, a.handleGetConsents, 0},
			{"POST /v1/consents", a.session, a.handlePostConsents, 0},
			{"POST /v1/consents/shown", a.session, a.handleShown, 0},
			{"GET /v1/consents/advice", a.sessionOrServer, a.handleAdvice, 0},
		}
	case Send:
		return []route{
			{"POST /v1/notifications", a.server, a.handleSend, 0},
			{"GET /v1/notifications", a.server, a.handleListNotifications, 0},
			{"GET /v1/notifications/{id}", a.server, a.handleGetNotification, 0},
			{"GET /v1/stats", a.server, a.handleStats, 0},
		}
	case Push:
		return []route{
			{"GET /wechat/push", nil, a.handlePushVerify, 0},
			{"POST /wechat/push", nil, a.handlePush, 0},
		}
	case Batches:
		return []route{
			{"POST /v1/batches", a.server, a.handleCreateBatch, MaxBatchBodyBytes},
			{"GET /v1/batches", a.server, a.handleListBatches, 0},
			{"GET /v1/batches/{id}", a.server, a.handleGetBatch, 0},
			{"DELETE /v1/batches/{id}", a.server, a.handleCancelBatch, 0},
			{"POST /v1/batches/{id}/pause", a.server, a.handlePauseBatch, 0},
			{"POST /v1/batches/{id}/resume", a.server, a.handleResumeBatch, 0},
		}
	case Events:
		return []route{
			{"POST /v1/events", a.server, a.handleEvents, notify.MaxEventSize * 4},
		}
	case Admin:
		return a.adminRoutes()
	case Console:
		return []route{
			{"GET /console", nil, a.handleConsole, 0},
			{"GET /console/{path...}", nil, a.handleConsole, 0},
			{"POST /console/{path...}", nil, a.handleConsole, 0},
		}
	}
	return nil
}

// SetConsole sets the handler of the Console group's routes: the ops
// console (package console), which authenticates its own requests. The
// API knows nothing else of it, so that the functions that do not serve
// the console do not carry its code. Without it they answer not_found.
func (a *API) SetConsole(h http.Handler) { a.console = h }

func (a *API) handleConsole(w http.ResponseWriter, r *http.Request) {
	if a.console == nil {
		writeError(w, r, notify.Errorf(notify.CodeNotFound, "the console is not served here"))
		return
	}
	a.console.ServeHTTP(w, r)
}

// Mux is a ServeMux that answers unknown routes and wrong methods with the
// JSON error body.
type Mux struct {
	mux   *http.ServeMux
	paths *http.ServeMux // the same paths without methods: tells 405 from 404
	api   *API
}

// NewMux returns a mux serving /healthz, /readyz and the given groups. It panics
// if a route has a path parameter that pathParams does not check.
func (a *API) NewMux(groups ...Group) *Mux {
	m := &Mux{mux: http.NewServeMux(), paths: http.NewServeMux(), api: a}
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	m.HandleFunc("GET /readyz", a.handleReady)
	for _, g := range groups {
		for _, rt := range a.routes(g) {
			if g == Console {
				m.handle(rt, false) // the console picks its app itself
				continue
			}
			m.handle(rt, true)
			rt.pattern = appRoute(rt.pattern)
			m.handle(rt, true)
		}
	}
	m.mux.HandleFunc("/", m.fallback)
	return m
}

// HandleFunc registers another public route (the sandbox's, for instance)
// with the same middleware.
func (m *Mux) HandleFunc(pattern string, h http.HandlerFunc) {
	m.handle(route{pattern: pattern, handler: h}, false)
}

// handle registers rt; an app route (every route of a group) is bound to
// its app before anything else runs (withApp).
func (m *Mux) handle(rt route, appRoute bool) {
	params, err := routeParams(rt.pattern)
	if err != nil {
		panic(err)
	}
	h := checkPath(params, rt.handler)
	if rt.auth != nil {
		h = rt.auth(h)
	}
	if appRoute {
		h = m.api.withApp(h)
	}
	maxBody := rt.maxBody
	if maxBody <= 0 {
		maxBody = MaxBodyBytes
	}
	m.mux.Handle(rt.pattern, m.api.wrapLimit(h, maxBody))
	if _, path, ok := strings.Cut(rt.pattern, " "); ok {
		func() {
			defer func() { _ = recover() }() // the same path under another method is already there
			m.paths.Handle(path, http.NotFoundHandler())
		}()
	}
}

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

func (m *Mux) fallback(w http.ResponseWriter, r *http.Request) {
	m.api.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := m.paths.Handler(r); pattern != "" {
			writeError(w, r, notify.Errorf(notify.CodeNotFound, "method %s is not allowed here", r.Method))
			return
		}
		writeError(w, r, notify.Errorf(notify.CodeNotFound, "no such route"))
	})).ServeHTTP(w, r)
}

// server requires an API key. A valid key is always let through; an
// invalid one from a client address with too many failures in the current
// window is answered rate_limited (429, with Retry-After) instead of
// unauthorized. Behind a NAT or a proxy many backends share one address, so
// a scanner there must not lock out the real callers: only failures are
// slowed. The keys' length (at least 16 characters of a random string) is
// what makes guessing hopeless; the limit cuts the cost and noise of trying.
//
// A valid key that may not act for the request's app (a key of other apps
// only) is app_forbidden (403): it is a valid key, so it counts as no
// failed attempt.
func (a *API) server(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r)
		if ok {
			switch a.scope(appOf(r), key) {
			case keyValid:
				h(w, r)
				return
			case keyOtherApp:
				writeError(w, r, notify.Errorf(notify.CodeAppForbidden, "this API key may not act for app %q", appOf(r).id))
				return
			}
		}
		addr := clientAddr(r)
		if wait, blocked := a.authFails.blocked(addr); blocked {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, r, notify.Errorf(notify.CodeRateLimited, "too many failed API key attempts, retry later"))
			return
		}
		a.authFails.fail(addr)
		writeError(w, r, notify.Errorf(notify.CodeUnauthorized, "a valid API key is required (Authorization: Bearer <key>)"))
	}
}

type sessionKey struct{}

// session requires a mini-program session token of the request's app: a
// valid token that another app issued is app_forbidden (403).
func (a *API) session(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			writeError(w, r, notify.Errorf(notify.CodeUnauthorized, "a session token is required (Authorization: Bearer <token>)"))
			return
		}
		ap := appOf(r)
		sess, err := ap.svc.Sessions().Verify(token)
		if err == nil && sess.AppID != ap.svc.AppID() {
			err = notify.Errorf(notify.CodeAppForbidden, "this session token is of another app than %q: log in through this app's routes", ap.id)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		noteOpenID(r, sess.OpenID)
		ctx := r.Context()
		h(w, r.WithContext(contextWithSession(ctx, sess)))
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
