package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// App is one mini program the API serves: its id (the {app} of
// /v1/apps/{app}/... and /wechat/push/{app}), the domain service bound to
// it (its AppID, WeChat client, catalog and rules; the service scopes every
// stored key by the AppID), its message push and the API keys that act for
// it alone.
type App struct {
	ID      string
	Service *notify.Service
	// Push enables the app's push callback; nil answers it 404.
	Push *PushConfig
	// APIKeys act for this app only; Options.APIKeys act for every app.
	APIKeys []string
}

// app is an App as the API serves it.
type app struct {
	id   string
	svc  *notify.Service
	push *PushConfig
	keys [][sha256.Size]byte
}

type appKey struct{}

// appOf returns the app the edge bound the request to (withApp). Every
// handler reaches the domain through it, so no handler can serve one app
// with another's service.
func appOf(r *http.Request) *app {
	a, _ := r.Context().Value(appKey{}).(*app)
	return a
}

// svc returns the domain service of the request's app.
func svc(r *http.Request) *notify.Service { return appOf(r).svc }

// AppRoutePrefix is the path prefix of an app's routes: /v1/apps/{app}/...
// serves what /v1/... serves for the default app.
const AppRoutePrefix = "/v1/apps/{app}"

// appRoute returns the app-scoped pattern of a route: /v1/x is
// /v1/apps/{app}/x, /wechat/push is /wechat/push/{app}.
func appRoute(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	switch {
	case strings.HasPrefix(path, "/v1/"):
		path = AppRoutePrefix + strings.TrimPrefix(path, "/v1")
	case path == "/wechat/push":
		path += "/{app}"
	default:
		return ""
	}
	return method + " " + path
}

// newApps indexes the apps by id and by AppID.
func (a *API) newApps(opts Options) error {
	apps := opts.Apps
	if len(apps) == 0 {
		if opts.Service == nil {
			return errors.New("httpapi: Service or Apps is required")
		}
		apps = []App{{ID: "default", Service: opts.Service, Push: opts.Push}}
	}
	a.apps = map[string]*app{}
	for _, spec := range apps {
		if spec.ID == "" || spec.Service == nil {
			return fmt.Errorf("httpapi: app %q: an id and a Service are required", spec.ID)
		}
		if _, dup := a.apps[spec.ID]; dup {
			return fmt.Errorf("httpapi: app %q: duplicate id", spec.ID)
		}
		ap := &app{id: spec.ID, svc: spec.Service, push: spec.Push}
		if ap.push != nil && ap.push.MaxSkew <= 0 {
			ap.push.MaxSkew = defaultMaxSkew
		}
		for _, k := range spec.APIKeys {
			ap.keys = append(ap.keys, sha256.Sum256([]byte(k)))
		}
		a.apps[spec.ID] = ap
		a.order = append(a.order, ap)
	}
	// An app is also found by its AppID (the kit may name its app with
	// wx.getAccountInfoSync()); an id wins over an AppID.
	a.byAppID = map[string]*app{}
	for _, ap := range a.order {
		if _, isID := a.apps[ap.svc.AppID()]; !isID {
			a.byAppID[ap.svc.AppID()] = ap
		}
	}
	def := opts.DefaultApp
	if def == "" {
		def = a.order[0].id
	}
	if a.def = a.apps[def]; a.def == nil {
		return fmt.Errorf("httpapi: default app %q is none of the apps", def)
	}
	return nil
}

// withApp binds the request to its app: the {app} of the path (an id or
// an AppID), or the default app on the short routes. An unknown app is
// app_not_found (404), whoever asks: app ids are not secrets (each is in a
// push URL).
func (a *API) withApp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ap := a.def
		if name := r.PathValue("app"); name != "" {
			if ap = a.apps[name]; ap == nil {
				ap = a.byAppID[name]
			}
			if ap == nil {
				writeError(w, r, notify.Errorf(notify.CodeAppNotFound, "no app %q in this deployment", truncateParam(name)))
				return
			}
		}
		noteApp(r, ap.id)
		h(w, r.WithContext(context.WithValue(r.Context(), appKey{}, ap)))
	}
}

// keyScope is what an API key may do for an app.
type keyScope int

const (
	keyInvalid  keyScope = iota // no app's key
	keyOtherApp                 // a key of other apps only
	keyValid                    // a key of every app or of this one
)

// scope compares in constant time against every key (hashes first, so
// that the length of a key leaks nothing either).
func (a *API) scope(ap *app, key string) keyScope {
	sum := sha256.Sum256([]byte(key))
	mine := 0
	for _, k := range a.keys {
		mine |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	other := 0
	for _, o := range a.order {
		for _, k := range o.keys {
			eq := subtle.ConstantTimeCompare(sum[:], k[:])
			if o == ap {
				mine |= eq
			} else {
				other |= eq
			}
		}
	}
	switch {
	case mine == 1:
		return keyValid
	case other == 1:
		return keyOtherApp
	}
	return keyInvalid
}

// truncateParam bounds a path value quoted in an error message.
func truncateParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// appParam checks the {app} of a path: what notify.IsAppRef refuses names
// no app.
func appParam(v string) error {
	if !notify.IsAppRef(v) {
		return notify.Errorf(notify.CodeAppNotFound, "no such app")
	}
	return nil
}
