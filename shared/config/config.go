// Package config reads wxnotify's configuration: secrets and endpoints from
// environment variables (named WXN_*; the secrets may come from a secret
// store instead, see WithSecret), templates and rules from wxnotify.yaml.
// It is validated at start; errors name the variable or field.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// Example is the bundled example wxnotify.yaml, used by `wxnotify dev` when
// WXN_CONFIG is not set.
//
//go:embed example.wxnotify.yaml
var Example []byte

// ExampleApps is the bundled example wxnotify.yaml with apps (the CRM's
// salespeople and its customers), used by `wxnotify dev --example apps`.
//
//go:embed example-apps.wxnotify.yaml
var ExampleApps []byte

// Store backends.
const (
	StoreBolt   = "bolt"
	StoreRedis  = "redis"
	StoreDynamo = "dynamodb"
)

// Config is the whole configuration of a function or of `wxnotify dev`.
type Config struct {
	AppID     string // WXN_WECHAT_APPID
	Secret    string // WXN_WECHAT_SECRET
	APIBase   string // WXN_WECHAT_API_BASE
	TokenFree bool   // WXN_WECHAT_TOKEN_FREE

	PushToken          string // WXN_WECHAT_PUSH_TOKEN
	PushAESKey         string // WXN_WECHAT_PUSH_AES_KEY
	PushAESKeyPrevious string // WXN_WECHAT_PUSH_AES_KEY_PREVIOUS
	PushTokenPrevious  string // WXN_WECHAT_PUSH_TOKEN_PREVIOUS: also accepted while the Token is rotated
	// PushEnabled: WeChat's message push reaches the wxpush function, so
	// popup events confirm client reports (WXN_PUSH_ENABLED, or implied by
	// WXN_WECHAT_PUSH_TOKEN where it is set).
	PushEnabled bool
	// UnknownWindow (WXN_UNKNOWN_WINDOW): how long after its call an
	// ambiguous send is settled with WeChat's sent event, or closed as not
	// delivered when none came (with push; default 10m).
	UnknownWindow time.Duration
	// Retention (WXN_RETENTION): how long notification and batch records,
	// and the items that index them, are kept (default 720h, 30 days; at
	// least 24h). DynamoDB deletes them by its TTL attribute, Redis by key
	// expiry, bbolt by the sweep of the batch function's tick.
	Retention time.Duration

	Store       string // WXN_STORE
	DataDir     string // WXN_DATA_DIR
	RedisURL    string // WXN_REDIS_URL
	RedisPrefix string // WXN_REDIS_PREFIX
	DynamoTable string // WXN_DYNAMODB_TABLE

	SessionSecret string // WXN_SESSION_SECRET
	// SessionSecretPrevious (WXN_SESSION_SECRET_PREVIOUS) still verifies the
	// tokens it signed while the session secret is rotated; new tokens are
	// signed with SessionSecret.
	SessionSecretPrevious string
	SessionTTL            time.Duration // WXN_SESSION_TTL
	APIKeys               []string      // WXN_API_KEYS
	// AdminKeys (WXN_ADMIN_KEYS) sign in to the ops console (functions/console,
	// docs/console.md): a key kind of its own, never an API key. None: the
	// console is off.
	AdminKeys []string
	// ConsoleOIDC (WXN_CONSOLE_OIDC_*) signs in to the console through an
	// OpenID Connect issuer, for the accounts of its allow-list.
	ConsoleOIDC ConsoleOIDC
	ConfigPath  string // WXN_CONFIG
	LogLevel    string // WXN_LOG_LEVEL
	Batch       Batch

	// File is wxnotify.yaml as written.
	File File
	// Apps are the mini programs of a file with apps, in the file's order,
	// each with its credentials, templates and rules; AppID, Secret,
	// PushToken, PushTokenPrevious, PushAESKey, PushAESKeyPrevious and
	// PushEnabled above are then the default app's. A file of the
	// single-app shape leaves Apps empty: see AllApps.
	Apps []App
	// DefaultApp is the id of the app the short routes serve.
	DefaultApp string
	// Webhooks are the single-app shape's outcome webhooks with their
	// secrets (WXN_WEBHOOK_<ID>_SECRET); with apps, see App.Webhooks.
	Webhooks []Webhook

	// Deprecated lists the variables that were set under their old names
	// (WECHAT_APPID for WXN_WECHAT_APPID...), each once, for a warning.
	Deprecated []Deprecated
}

// File is wxnotify.yaml.
//
// It has one of two shapes: templates and rules at the top (one mini
// program, the app "default"), or apps, each with its own templates and
// rules, and optionally defaultApp (the app of the short routes).
type File struct {
	DefaultApp string         `yaml:"defaultApp,omitempty"`
	Apps       []AppSpec      `yaml:"apps,omitempty"`
	Templates  []TemplateSpec `yaml:"templates"`
	Rules      []RuleSpec     `yaml:"rules"`
	// Webhooks are the single-app shape's outcome webhooks (with apps,
	// each app has its own).
	Webhooks []WebhookSpec `yaml:"webhooks,omitempty"`
}

// TemplateSpec is one template of wxnotify.yaml.
type TemplateSpec struct {
	Alias    string        `yaml:"alias"`
	ID       string        `yaml:"id"`
	Title    string        `yaml:"title"`
	Kind     string        `yaml:"kind"`
	Policy   string        `yaml:"policy"`
	Keywords []KeywordSpec `yaml:"keywords"`
	Removed  bool          `yaml:"removed,omitempty"` // set by `templates sync` when WeChat no longer has it
}

// KeywordSpec is one keyword of a template.
type KeywordSpec struct {
	Name  string   `yaml:"name"`
	Type  string   `yaml:"type,omitempty"`
	Label string   `yaml:"label,omitempty"`
	Enum  []string `yaml:"enum,omitempty"`
}

// FromEnv reads the environment (through getenv) and the config file it
// names, or the bundled example when useExample is true and WXN_CONFIG is
// unset. It validates what it reads; it does not decide whether secrets are
// required (Require does).
//
// Each WXN_WECHAT_* variable is also read under its old name (WECHAT_*),
// recorded in Config.Deprecated; the new name wins when both are set.
func FromEnv(getenv func(string) string, useExample bool) (Config, error) {
	e := &envReader{getenv: getenv}
	c, err := fromEnv(e.get, useExample)
	c.Deprecated = e.deprecated
	return c, err
}

func fromEnv(getenv func(string) string, useExample bool) (Config, error) {
	c := Config{
		AppID:                 strings.TrimSpace(getenv("WXN_WECHAT_APPID")),
		Secret:                strings.TrimSpace(getenv("WXN_WECHAT_SECRET")),
		APIBase:               strings.TrimSpace(getenv("WXN_WECHAT_API_BASE")),
		PushToken:             getenv("WXN_WECHAT_PUSH_TOKEN"),
		PushAESKey:            getenv("WXN_WECHAT_PUSH_AES_KEY"),
		PushAESKeyPrevious:    getenv("WXN_WECHAT_PUSH_AES_KEY_PREVIOUS"),
		PushTokenPrevious:     getenv("WXN_WECHAT_PUSH_TOKEN_PREVIOUS"),
		Store:                 strings.TrimSpace(getenv("WXN_STORE")),
		DataDir:               getenv("WXN_DATA_DIR"),
		RedisURL:              getenv("WXN_REDIS_URL"),
		RedisPrefix:           getenv("WXN_REDIS_PREFIX"),
		DynamoTable:           getenv("WXN_DYNAMODB_TABLE"),
		SessionSecret:         getenv("WXN_SESSION_SECRET"),
		SessionSecretPrevious: getenv("WXN_SESSION_SECRET_PREVIOUS"),
		ConfigPath:            getenv("WXN_CONFIG"),
		LogLevel:              strings.TrimSpace(getenv("WXN_LOG_LEVEL")),
	}
	var err error
	if c.TokenFree, err = parseBool("WXN_WECHAT_TOKEN_FREE", getenv("WXN_WECHAT_TOKEN_FREE")); err != nil {
		return c, err
	}
	if c.PushEnabled, err = parseBool("WXN_PUSH_ENABLED", getenv("WXN_PUSH_ENABLED")); err != nil {
		return c, err
	}
	if c.PushToken != "" && getenv("WXN_PUSH_ENABLED") == "" {
		c.PushEnabled = true
	}
	if v := getenv("WXN_UNKNOWN_WINDOW"); v != "" {
		if c.UnknownWindow, err = time.ParseDuration(v); err != nil || c.UnknownWindow < time.Minute {
			return c, fmt.Errorf("WXN_UNKNOWN_WINDOW: %q is not a duration of at least 1m (e.g. 15m)", v)
		}
	}
	c.Retention = 30 * 24 * time.Hour
	if v := getenv("WXN_RETENTION"); v != "" {
		if c.Retention, err = time.ParseDuration(v); err != nil || c.Retention < 24*time.Hour {
			return c, fmt.Errorf("WXN_RETENTION: %q is not a duration of at least 24h (e.g. 2160h for 90 days)", v)
		}
	}
	c.SessionTTL = 24 * time.Hour
	if v := getenv("WXN_SESSION_TTL"); v != "" {
		if c.SessionTTL, err = time.ParseDuration(v); err != nil || c.SessionTTL < time.Minute {
			return c, fmt.Errorf("WXN_SESSION_TTL: %q is not a duration of at least 1m (e.g. 24h)", v)
		}
	}
	if c.APIKeys, err = parseKeys("WXN_API_KEYS", getenv("WXN_API_KEYS")); err != nil {
		return c, err
	}
	if c.AdminKeys, err = parseAdminKeys(getenv("WXN_ADMIN_KEYS"), c.APIKeys); err != nil {
		return c, err
	}
	if c.ConsoleOIDC, err = readConsoleOIDC(getenv); err != nil {
		return c, err
	}
	if c.Batch, err = readBatch(getenv); err != nil {
		return c, err
	}
	if c.Store == "" {
		c.Store = StoreBolt
	}
	if c.Batch.RateScope == "" {
		c.Batch.RateScope = "process"
		if c.Store != StoreBolt {
			c.Batch.RateScope = "shared"
		}
	}
	switch c.Store {
	case StoreBolt, StoreRedis, StoreDynamo:
	default:
		return c, fmt.Errorf("WXN_STORE: %q is not bolt, redis or dynamodb", c.Store)
	}
	if c.Store == StoreRedis && c.RedisURL == "" {
		return c, errors.New("WXN_REDIS_URL: required when WXN_STORE=redis")
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return c, fmt.Errorf("WXN_REDIS_URL: %q is not a redis:// or rediss:// URL", c.RedisURL)
		}
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = "wxn"
	}
	if c.Store == StoreDynamo && c.DynamoTable == "" {
		return c, errors.New("WXN_DYNAMODB_TABLE: required when WXN_STORE=dynamodb")
	}
	if c.APIBase != "" {
		if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("WXN_WECHAT_API_BASE: %q is not an http(s) URL", c.APIBase)
		}
	}
	if c.PushAESKey != "" && len(c.PushAESKey) != 43 {
		return c, errors.New("WXN_WECHAT_PUSH_AES_KEY: an EncodingAESKey has 43 characters")
	}
	if c.PushAESKeyPrevious != "" && len(c.PushAESKeyPrevious) != 43 {
		return c, errors.New("WXN_WECHAT_PUSH_AES_KEY_PREVIOUS: an EncodingAESKey has 43 characters")
	}
	if c.SessionSecretPrevious != "" && len(c.SessionSecretPrevious) < notify.MinSecretLen {
		return c, fmt.Errorf("WXN_SESSION_SECRET_PREVIOUS: must be at least %d characters", notify.MinSecretLen)
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < notify.MinSecretLen {
		return c, fmt.Errorf("WXN_SESSION_SECRET: must be at least %d characters", notify.MinSecretLen)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("WXN_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel)
	}

	var raw []byte
	source := "WXN_CONFIG"
	switch {
	case c.ConfigPath != "":
		if raw, err = os.ReadFile(c.ConfigPath); err != nil {
			return c, fmt.Errorf("WXN_CONFIG: %w", err)
		}
		source = c.ConfigPath
	case useExample:
		raw, source = Example, "bundled example wxnotify.yaml"
	default:
		return c, errors.New("WXN_CONFIG: required (path of wxnotify.yaml)")
	}
	if c.File, err = ParseFile(raw); err != nil {
		return c, fmt.Errorf("%s: %w", source, err)
	}
	if err := resolveApps(&c, getenv); err != nil {
		return c, err
	}
	if len(c.Apps) > 0 {
		def := c.Default()
		c.AppID, c.Secret = def.AppID, def.Secret
		c.PushToken, c.PushTokenPrevious = def.PushToken, def.PushTokenPrevious
		c.PushAESKey, c.PushAESKeyPrevious = def.PushAESKey, def.PushAESKeyPrevious
		c.PushEnabled = def.PushEnabled
	}
	return c, nil
}

// Require checks what a cloud deployment needs: real WeChat credentials (or
// token-free mode), a session secret and at least one API key.
//
// With several apps, each needs its AppID and AppSecret (WXN_APP_<ID>_*;
// the default app may use the plain WXN_WECHAT_* variables), and every app
// needs a key that may act for it.
func (c Config) Require() error {
	multi := len(c.Apps) > 0
	for _, a := range c.AllApps() {
		appIDVar, secretVar := "WXN_WECHAT_APPID", "WXN_WECHAT_SECRET" // #nosec G101 -- variable names, not credentials
		if multi {
			appIDVar, secretVar = AppVariable(a.ID, appIDVar)+" (or apps[].appId)", AppVariable(a.ID, secretVar)
			if a.ID == c.DefaultApp {
				secretVar += " or WXN_WECHAT_SECRET" // #nosec G101 -- a variable name, not a credential
			}
		}
		switch {
		case a.AppID == "":
			return fmt.Errorf("%s: required", appIDVar)
		case a.Secret == "" && !c.TokenFree:
			return fmt.Errorf("%s: required (or WXN_WECHAT_TOKEN_FREE=true on WeChat Cloud Hosting)", secretVar)
		}
	}
	if c.SessionSecret == "" {
		return errors.New("WXN_SESSION_SECRET: required")
	}
	for _, a := range c.AllApps() {
		if len(c.APIKeys) == 0 && len(a.APIKeys) == 0 {
			if !multi {
				return errors.New("WXN_API_KEYS: at least one key is required")
			}
			return fmt.Errorf("WXN_API_KEYS or %s: app %q needs at least one key that may act for it", AppVariable(a.ID, "WXN_API_KEYS"), a.ID)
		}
	}
	return nil
}

// Sandbox reports whether `wxnotify dev` should run the built-in fake
// WeChat: no real secret is configured.
// With several apps, none has one.
func (c Config) Sandbox() bool {
	if c.TokenFree {
		return false
	}
	for _, a := range c.AllApps() {
		if a.Secret != "" {
			return false
		}
	}
	return c.Secret == ""
}

// ParseFile parses and validates wxnotify.yaml. Unknown keys are errors, so
// a typo does not silently drop a setting.
func ParseFile(raw []byte) (File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("invalid yaml: %w", err)
	}
	if err := f.checkApps(); err != nil {
		return f, err
	}
	if len(f.Apps) > 0 {
		return f, nil
	}
	catalog, err := f.Catalog()
	if err != nil {
		return f, err
	}
	if _, err := f.CompileRules(catalog); err != nil {
		return f, err
	}
	return f, nil
}

// Catalog builds the template catalog (templates marked removed are left out).
func (f File) Catalog() (*notify.Catalog, error) {
	var ts []notify.Template
	for _, spec := range f.Templates {
		if spec.Removed {
			continue
		}
		t := notify.Template{
			Alias: spec.Alias, ID: spec.ID, Title: spec.Title,
			Kind: notify.Kind(spec.Kind), Policy: notify.Policy(spec.Policy),
		}
		for _, kw := range spec.Keywords {
			t.Keywords = append(t.Keywords, notify.Keyword{Name: kw.Name, Type: kw.Type, Label: kw.Label, Enum: kw.Enum})
		}
		ts = append(ts, t)
	}
	return notify.NewCatalog(ts)
}

func parseBool(name, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", name, v)
	}
	return b, nil
}
