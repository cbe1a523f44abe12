package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultAppID is the id of the one app of a wxnotify.yaml without apps:
// a file of the single-app shape (templates and rules at the top) is the
// app "default", and its credentials are the WXN_WECHAT_* variables.
const DefaultAppID = "default"

// MaxApps bounds the apps of one deployment.
const MaxApps = 64

// AppSpec is one mini program of wxnotify.yaml's apps:
//
//	defaultApp: sales
//	apps:
//	  - id: sales
//	    appId: wx5f2a9c3e1b7d4a60
//	    templates: [...]
//	    rules: [...]
//
// Its credentials come from the variables (or secret keys) named
// WXN_APP_<ID>_<NAME>, <ID> being the id upper-cased with '-' as '_'
// (WXN_APP_SALES_WECHAT_SECRET); see AppVariable.
type AppSpec struct {
	ID        string         `yaml:"id"`
	AppID     string         `yaml:"appId,omitempty"`
	Templates []TemplateSpec `yaml:"templates"`
	Rules     []RuleSpec     `yaml:"rules"`
	// Webhooks are the app's outcome webhooks (see WebhookSpec).
	Webhooks []WebhookSpec `yaml:"webhooks,omitempty"`
}

// App is one mini program of a deployment, resolved from wxnotify.yaml and
// the environment.
type App struct {
	// ID is the operator's short name of the app (the {app} of
	// /v1/apps/{app}/... and /wechat/push/{app}).
	ID    string
	AppID string
	// Secret is the AppSecret; SecretVariable the variable (or secret key)
	// it was read from, so that a refresh re-reads the same one.
	Secret         string
	SecretVariable string

	PushToken          string
	PushTokenPrevious  string
	PushAESKey         string
	PushAESKeyPrevious string
	// PushEnabled: WeChat's message push reaches this app's push URL.
	PushEnabled bool
	// APIKeys act for this app only (WXN_APP_<ID>_API_KEYS); the keys of
	// WXN_API_KEYS act for every app.
	APIKeys []string
	// File holds the app's templates and rules (Apps and DefaultApp empty).
	File File
	// Webhooks are the app's outcome webhooks, with their secrets.
	Webhooks []Webhook
}

// appIDPattern is what an app id may be: a short lower-case slug, usable in
// a URL path and, upper-cased, in a variable name.
var appIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// CheckAppID reports whether id is a valid app id.
func CheckAppID(id string) error {
	if !appIDPattern.MatchString(id) || strings.HasSuffix(id, "-") || strings.Contains(id, "--") {
		return fmt.Errorf("%q is not an app id: 1 to 32 of a-z, 0-9 and single inner '-', starting with a letter", id)
	}
	return nil
}

// AppVariable returns the name of the per-app variable of app id for a
// server variable name: AppVariable("sales", "WXN_WECHAT_SECRET") is
// WXN_APP_SALES_WECHAT_SECRET.
func AppVariable(id, name string) string {
	return "WXN_APP_" + strings.ToUpper(strings.ReplaceAll(id, "-", "_")) + "_" + strings.TrimPrefix(name, "WXN_")
}

// appVariables are the server variables that each app has its own of.
var appVariables = []string{
	"WXN_WECHAT_APPID", "WXN_WECHAT_SECRET",
	"WXN_WECHAT_PUSH_TOKEN", "WXN_WECHAT_PUSH_TOKEN_PREVIOUS",
	"WXN_WECHAT_PUSH_AES_KEY", "WXN_WECHAT_PUSH_AES_KEY_PREVIOUS",
	"WXN_PUSH_ENABLED", "WXN_API_KEYS",
}

// lookupAppVariable resolves a per-app variable name (WXN_APP_<ID>_<NAME>)
// to the server variable it stands for.
func lookupAppVariable(name string) (variable, bool) {
	if v, ok := lookupWebhookVariable(name); ok {
		return v, true
	}
	rest, ok := strings.CutPrefix(name, "WXN_APP_")
	if !ok {
		return variable{}, false
	}
	for _, base := range appVariables {
		suffix := "_" + strings.TrimPrefix(base, "WXN_")
		id, ok := strings.CutSuffix(rest, suffix)
		if !ok || id == "" || strings.ToUpper(id) != id {
			continue
		}
		if CheckAppID(strings.ToLower(strings.ReplaceAll(id, "_", "-"))) != nil {
			continue
		}
		for _, v := range variables {
			if v.name == base {
				return variable{name: name, secret: v.secret}, true
			}
		}
	}
	return variable{}, false
}

// Specs returns the file's apps: those of apps:, or for a file of the
// single-app shape one app "default" holding its templates and rules.
func (f File) Specs() []AppSpec {
	if len(f.Apps) == 0 {
		return []AppSpec{{ID: DefaultAppID, Templates: f.Templates, Rules: f.Rules, Webhooks: f.Webhooks}}
	}
	return f.Apps
}

// Default returns the id of the deployment's default app, the one the
// short routes (/v1/..., /wechat/push) serve: defaultApp, else the app
// "default", else the first app.
func (f File) Default() string {
	specs := f.Specs()
	if f.DefaultApp != "" {
		return f.DefaultApp
	}
	for _, a := range specs {
		if a.ID == DefaultAppID {
			return a.ID
		}
	}
	return specs[0].ID
}

// checkApps validates the apps of a parsed file: ids, AppIDs, the default
// app, and each app's catalog and rules. Errors name the app.
func (f File) checkApps() error {
	if len(f.Apps) == 0 {
		if f.DefaultApp != "" && f.DefaultApp != DefaultAppID {
			return fmt.Errorf("defaultApp: %q is not an app (a file without apps has the one app %q)", f.DefaultApp, DefaultAppID)
		}
		return checkWebhooks("webhooks", f.Webhooks)
	}
	if len(f.Webhooks) > 0 {
		return errors.New("webhooks: with apps, each app has its own (move them under apps[].webhooks)")
	}
	if len(f.Templates) > 0 || len(f.Rules) > 0 {
		return errors.New("templates, rules: with apps, each app has its own (move them under apps[].templates and apps[].rules)")
	}
	if len(f.Apps) > MaxApps {
		return fmt.Errorf("apps: %d apps, at most %d", len(f.Apps), MaxApps)
	}
	ids := map[string]bool{}
	appIDs := map[string]string{}
	for i, a := range f.Apps {
		where := fmt.Sprintf("apps[%d]", i)
		if err := CheckAppID(a.ID); err != nil {
			return fmt.Errorf("%s.id: %w", where, err)
		}
		where += " (" + a.ID + ")"
		if ids[a.ID] {
			return fmt.Errorf("%s.id: another app has this id", where)
		}
		ids[a.ID] = true
		if a.AppID != "" {
			if err := checkWeChatAppID(a.AppID); err != nil {
				return fmt.Errorf("%s.appId: %w", where, err)
			}
			if other, dup := appIDs[a.AppID]; dup {
				return fmt.Errorf("%s.appId: app %q has the same AppID: one mini program is one app", where, other)
			}
			appIDs[a.AppID] = a.ID
		}
		sub := File{Templates: a.Templates, Rules: a.Rules}
		catalog, err := sub.Catalog()
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if _, err := sub.CompileRules(catalog); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := checkWebhooks(where+".webhooks", a.Webhooks); err != nil {
			return err
		}
	}
	if f.DefaultApp != "" && !ids[f.DefaultApp] {
		return fmt.Errorf("defaultApp: %q is none of the apps", f.DefaultApp)
	}
	return nil
}

// checkWeChatAppID refuses what cannot be a mini program's AppID (wx
// followed by 16 hexadecimal digits, as the console shows it; tests and
// the sandbox use the same shape).
func checkWeChatAppID(id string) error {
	if len(id) < 2 || len(id) > 64 || strings.TrimFunc(id, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
	}) != "" {
		return fmt.Errorf("%q is not a WeChat AppID (e.g. wx5f2a9c3e1b7d4a60)", id)
	}
	return nil
}

// resolveApps reads the credentials of each app of a file with apps:
// WXN_APP_<ID>_* and, for the default app, the plain WXN_* variables where
// its own are unset. A file of the single-app shape has no Apps (AllApps
// makes its one app of the plain variables).
func resolveApps(c *Config, getenv func(string) string) error {
	def := c.File.Default()
	c.DefaultApp = def
	if len(c.File.Apps) == 0 {
		var err error
		c.Webhooks, err = resolveWebhooks("", c.File.Webhooks, getenv)
		return err
	}
	seen := map[string]string{}
	for _, spec := range c.File.Specs() {
		isDefault := spec.ID == def
		get := func(name string) (string, string) {
			own := AppVariable(spec.ID, name)
			if v := getenv(own); v != "" || !isDefault {
				return v, own
			}
			return getenv(name), name
		}
		a := App{ID: spec.ID, File: File{Templates: spec.Templates, Rules: spec.Rules}}
		v, from := get("WXN_WECHAT_APPID")
		a.AppID = strings.TrimSpace(v)
		switch {
		case spec.AppID != "" && a.AppID != "" && a.AppID != spec.AppID:
			return fmt.Errorf("%s: %q, but wxnotify.yaml gives app %q the AppID %q", from, a.AppID, spec.ID, spec.AppID)
		case spec.AppID != "":
			a.AppID = spec.AppID
		}
		if a.AppID != "" {
			if err := checkWeChatAppID(a.AppID); err != nil {
				return fmt.Errorf("%s: %w", from, err)
			}
			if other, dup := seen[a.AppID]; dup {
				return fmt.Errorf("app %q has the AppID of app %q: one mini program is one app", spec.ID, other)
			}
			seen[a.AppID] = spec.ID
		}
		v, a.SecretVariable = get("WXN_WECHAT_SECRET")
		a.Secret = strings.TrimSpace(v)
		a.PushToken, _ = get("WXN_WECHAT_PUSH_TOKEN")
		a.PushTokenPrevious, _ = get("WXN_WECHAT_PUSH_TOKEN_PREVIOUS")
		var aesVar, prevVar string
		a.PushAESKey, aesVar = get("WXN_WECHAT_PUSH_AES_KEY")
		a.PushAESKeyPrevious, prevVar = get("WXN_WECHAT_PUSH_AES_KEY_PREVIOUS")
		if a.PushAESKey != "" && len(a.PushAESKey) != 43 {
			return fmt.Errorf("%s: an EncodingAESKey has 43 characters", aesVar)
		}
		if a.PushAESKeyPrevious != "" && len(a.PushAESKeyPrevious) != 43 {
			return fmt.Errorf("%s: an EncodingAESKey has 43 characters", prevVar)
		}
		enabled, enabledVar := get("WXN_PUSH_ENABLED")
		var err error
		if a.PushEnabled, err = parseBool(enabledVar, enabled); err != nil {
			return err
		}
		if a.PushToken != "" && enabled == "" {
			a.PushEnabled = true
		}
		if a.Webhooks, err = resolveWebhooks(spec.ID, spec.Webhooks, getenv); err != nil {
			return err
		}
		keysVar := AppVariable(spec.ID, "WXN_API_KEYS")
		if a.APIKeys, err = parseKeys(keysVar, getenv(keysVar)); err != nil {
			return err
		}
		for _, k := range a.APIKeys {
			if slices.Contains(c.AdminKeys, k) {
				return fmt.Errorf("WXN_ADMIN_KEYS: a key is also in %s; an admin key must be a key of its own", keysVar)
			}
		}
		c.Apps = append(c.Apps, a)
	}
	return nil
}

// parseKeys reads a comma-separated list of API keys.
func parseKeys(name, v string) ([]string, error) {
	var keys []string
	for k := range strings.SplitSeq(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if len(k) < 16 {
				return nil, fmt.Errorf("%s: every key must be at least 16 characters", name)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// MinAdminKeyLen is the shortest admin key: a console session can cancel
// batches, so its key is held longer than the API keys' 16.
const MinAdminKeyLen = 24

// parseAdminKeys reads WXN_ADMIN_KEYS: keys of at least MinAdminKeyLen
// characters, none of them an API key (the two kinds must never be
// interchangeable).
func parseAdminKeys(v string, apiKeys []string) ([]string, error) {
	var keys []string
	for k := range strings.SplitSeq(v, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if len(k) < MinAdminKeyLen {
			return nil, fmt.Errorf("WXN_ADMIN_KEYS: every key must be at least %d characters", MinAdminKeyLen)
		}
		if slices.Contains(apiKeys, k) {
			return nil, errors.New("WXN_ADMIN_KEYS: a key is also in WXN_API_KEYS; an admin key must be a key of its own")
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// AllApps returns the deployment's apps: Apps, or for the single-app shape
// (no Apps) the app "default" made of the plain WXN_* settings and the
// file's templates and rules.
func (c Config) AllApps() []App {
	if len(c.Apps) > 0 {
		return c.Apps
	}
	return []App{{
		ID: DefaultAppID, AppID: c.AppID, Secret: c.Secret, SecretVariable: "WXN_WECHAT_SECRET",
		PushToken: c.PushToken, PushTokenPrevious: c.PushTokenPrevious,
		PushAESKey: c.PushAESKey, PushAESKeyPrevious: c.PushAESKeyPrevious, PushEnabled: c.PushEnabled,
		File: File{Templates: c.File.Templates, Rules: c.File.Rules}, Webhooks: c.Webhooks,
	}}
}

// Default returns the default app (the short routes').
func (c Config) Default() App {
	apps := c.AllApps()
	for _, a := range apps {
		if a.ID == c.DefaultApp {
			return a
		}
	}
	return apps[0]
}

// App returns the app with the id, or false.
func (c Config) App(id string) (App, bool) {
	for _, a := range c.AllApps() {
		if a.ID == id {
			return a, true
		}
	}
	return App{}, false
}
