// Package console is wxnotify's ops console: server-rendered pages (package
// html/template, assets embedded, no third-party front-end code) over the
// domain of every app of a deployment - an overview of the sends and the
// consent funnel, the funnel per day, the notifications, the batches, the
// template catalog and the audit log of the console's own actions. Operators sign in with an admin key
// (WXN_ADMIN_KEYS), a key kind of its own, or through an OpenID Connect
// issuer (WXN_CONSOLE_OIDC_*, oidc.go). See docs/console.md.
//
// Only functions/console and the CLI (`wxnotify dev`) import it, so that
// the other functions carry none of its code: httpapi's Console group
// routes /console and /console/... to the handler given to
// httpapi.API.SetConsole.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// CSP is the Content-Security-Policy of every answer: the console's own
// script and style files only, no inline script, style or attribute.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"

// App is one mini program the console shows.
type App struct {
	ID      string
	Service *notify.Service
}

// Options configure the console.
type Options struct {
	// Apps are the deployment's apps; DefaultApp (default: the first) is
	// where signing in leads.
	Apps       []App
	DefaultApp string
	// Store holds the console's sessions and audit log.
	Store store.Store
	// AdminKeys sign in; none: every console route answers not_found.
	AdminKeys []string
	// OIDC, with an Issuer, signs in through an OpenID Connect issuer the
	// accounts of its allow-list (the console is on with admin keys, OIDC
	// or both).
	OIDC OIDC
	// Retention is how long audit entries are kept (default 30 days, as
	// the notifications).
	Retention time.Duration
	// SessionTTL is how long a session lasts from sign-in (default 8h).
	SessionTTL time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Console is the console's http.Handler.
type Console struct {
	apps      []App
	byID      map[string]int
	def       string
	st        store.Store
	keys      []adminKey
	oidc      *oidcProvider // nil: no OIDC sign-in
	retention time.Duration
	ttl       time.Duration
	now       func() time.Time
	log       *slog.Logger
	limiter   *limiter
	mux       *http.ServeMux
	patterns  []string
	pages     map[string]*template.Template
	assets    fs.FS
}

// adminKey is a configured key by its hash and the fingerprint the audit
// log names it by.
type adminKey struct {
	hash        [sha256.Size]byte
	fingerprint string
}

// defaultSessionTTL is a session's lifetime without Options.SessionTTL.
const defaultSessionTTL = 8 * time.Hour

// FromParts builds the console of a function's parts; now is the clock
// (nil: time.Now).
func FromParts(p *boot.Parts, now func() time.Time) (*Console, error) {
	apps := make([]App, 0, len(p.Apps))
	for _, a := range p.Apps {
		apps = append(apps, App{ID: a.ID, Service: a.Service})
	}
	o := p.Config.ConsoleOIDC
	return New(Options{Apps: apps, DefaultApp: p.Config.Default().ID, Store: p.Store, AdminKeys: p.Config.AdminKeys,
		OIDC:      OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL, Allowed: o.Allowed},
		Retention: p.Config.Retention, Now: now, Logger: p.Logger})
}

// New returns the console.
func New(o Options) (*Console, error) {
	if len(o.Apps) == 0 {
		return nil, errors.New("console: no app")
	}
	if o.Store == nil {
		return nil, errors.New("console: no store")
	}
	c := &Console{apps: o.Apps, byID: map[string]int{}, def: o.DefaultApp, st: o.Store, retention: o.Retention,
		ttl: o.SessionTTL, now: o.Now, log: o.Logger}
	for i, a := range o.Apps {
		c.byID[a.ID] = i
	}
	if _, ok := c.byID[c.def]; !ok {
		c.def = o.Apps[0].ID
	}
	for _, k := range o.AdminKeys {
		h := sha256.Sum256([]byte(k))
		c.keys = append(c.keys, adminKey{hash: h, fingerprint: hex.EncodeToString(h[:6])})
	}
	if c.retention <= 0 {
		c.retention = 30 * 24 * time.Hour
	}
	if c.ttl <= 0 {
		c.ttl = defaultSessionTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.limiter = newLimiter(c.now)
	if o.OIDC.Issuer != "" {
		var err error
		if c.oidc, err = newOIDCProvider(o.OIDC, c.now); err != nil {
			return nil, err
		}
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if c.assets, err = fs.Sub(assetFiles, "assets"); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Enabled reports whether admin keys or an OIDC issuer are configured.
func (c *Console) Enabled() bool { return len(c.keys) > 0 || c.oidc != nil }

// Routes are the patterns of the console's routes, in the order routes
// registers them (docs/api.md lists them: TestConsoleRoutesListed).
func (c *Console) Routes() []string { return slices.Clone(c.patterns) }

// recordingMux is a ServeMux that keeps the patterns it is given.
type recordingMux struct {
	*http.ServeMux
	patterns []string
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *recordingMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (c *Console) routes() {
	m := &recordingMux{ServeMux: http.NewServeMux()}
	m.HandleFunc("GET /console", c.handleRoot)
	m.HandleFunc("GET /console/{$}", c.handleRoot)
	m.HandleFunc("GET /console/assets/{file}", c.handleAsset)
	m.HandleFunc("GET /console/signin", c.handleSignInPage)
	m.HandleFunc("POST /console/signin", c.handleSignIn)
	m.HandleFunc("POST /console/signout", c.signedIn(c.handleSignOut))
	m.HandleFunc("GET /console/oidc/start", c.handleOIDCStart)
	m.HandleFunc("GET /console/oidc/callback", c.handleOIDCCallback)
	// The pages of one app. Another page is one more line here and one
	// more entry of nav (pages.go).
	app := func(pattern string, h func(http.ResponseWriter, *http.Request, App)) {
		m.HandleFunc(pattern, c.signedIn(c.inApp(h)))
	}
	app("GET /console/apps/{app}", c.handleAppRoot)
	app("GET /console/apps/{app}/overview", c.handleOverview)
	app("GET /console/apps/{app}/stats", c.handleStats)
	app("GET /console/apps/{app}/notifications", c.handleNotifications)
	app("GET /console/apps/{app}/notifications/{id}", c.handleNotification)
	app("GET /console/apps/{app}/batches", c.handleBatches)
	app("GET /console/apps/{app}/batches/{id}", c.handleBatch)
	app("GET /console/apps/{app}/batches/{id}/progress", c.handleBatchProgress)
	app("POST /console/apps/{app}/batches/{id}/cancel", c.handleCancelBatch)
	app("POST /console/apps/{app}/batches/{id}/pause", c.handlePauseBatch)
	app("POST /console/apps/{app}/batches/{id}/resume", c.handleResumeBatch)
	app("GET /console/apps/{app}/batches/{id}/chart", c.handleBatchChart)
	app("GET /console/apps/{app}/templates", c.handleTemplates)
	app("GET /console/apps/{app}/webhooks", c.handleWebhooks)
	app("GET /console/apps/{app}/webhooks/{id}", c.handleWebhook)
	app("POST /console/apps/{app}/webhooks/{id}/deliveries/{delivery}/replay", c.handleReplayDelivery)
	app("POST /console/apps/{app}/webhooks/{id}/enable", c.handleEnableWebhook)
	app("GET /console/apps/{app}/templates/{alias}/test", c.handleTestSendForm)
	app("POST /console/apps/{app}/templates/{alias}/test/check", c.handleTestSendCheck)
	app("POST /console/apps/{app}/templates/{alias}/test/send", c.handleTestSend)
	app("GET /console/apps/{app}/audit", c.handleAudit)
	app("GET /console/apps/{app}/users", c.handleUsers)
	app("GET /console/apps/{app}/users/{userId}", c.handleUser)
	app("GET /console/apps/{app}/users/{userId}/unbind", c.handleUnbindPage)
	app("POST /console/apps/{app}/users/{userId}/unbind", c.handleUnbind)
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such console page")
	})
	c.mux, c.patterns = m.ServeMux, m.patterns
}

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !c.Enabled() {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "the console is off: set WXN_ADMIN_KEYS or WXN_CONSOLE_OIDC_ISSUER to turn it on")
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) handleRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/console/apps/"+c.def+"/overview", http.StatusSeeOther)
}

func (c *Console) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	types := map[string]string{"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
	typ, ok := types[name]
	if !ok {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such asset")
		return
	}
	b, err := fs.ReadFile(c.assets, name)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such asset")
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

// app returns the app of the request's {app}.
func (c *Console) app(id string) (App, bool) {
	i, ok := c.byID[id]
	if !ok {
		return App{}, false
	}
	return c.apps[i], true
}

// Error codes of the console's refusals (the body's error.code).
const (
	codeNotFound      = "not_found"
	codeUnauthorized  = "unauthorized"
	codeCSRF          = "csrf_invalid"
	codeOrigin        = "origin_refused"
	codeRateLimited   = "rate_limited"
	codeBadRequest    = "bad_request"
	codeUnavailable   = "store_unavailable"
	codeInternal      = "internal"
	codeConflict      = "conflict"
	codeWrongAdminKey = "wrong_admin_key"
)

// domainStatus maps a domain error to a status and code.
func domainStatus(err error) (int, string, string) {
	code := notify.CodeOf(err)
	msg := "internal error"
	var e *notify.Error
	if errors.As(err, &e) && code != notify.CodeInternal {
		msg = e.Message
		if e.Field != "" {
			msg = fmt.Sprintf("%s: %s", e.Field, e.Message)
		}
	}
	switch code {
	case notify.CodeBadRequest:
		return http.StatusBadRequest, codeBadRequest, msg
	case notify.CodeNotFound:
		return http.StatusNotFound, codeNotFound, msg
	case notify.CodeConflict:
		return http.StatusConflict, codeConflict, msg
	case notify.CodeBatchFinished:
		return http.StatusConflict, codeBatchFinished, msg
	case notify.CodeStoreUnavailable:
		return http.StatusServiceUnavailable, codeUnavailable, msg
	}
	return http.StatusInternalServerError, codeInternal, "internal error"
}
