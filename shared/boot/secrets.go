package boot

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/secrets"
	"github.com/wxnotify/wxnotify/shared/version"
)

// Loaded is a configuration with where its secrets came from.
type Loaded struct {
	Config config.Config
	// Secrets is the secret store's loader; nil when the secrets are
	// environment variables (WXN_SECRETS_SOURCE unset or env).
	Secrets *secrets.Loader
	// keys are the secret's keys (names only), for the start log.
	keys []string
	// base is the environment without the secret.
	base func(string) string
	// env is the environment overlaid with the secret.
	env func(string) string
}

// Getenv reads the environment overlaid with the secret, as the
// configuration was read: what reads variables outside package config
// (the tracer's OTEL_* ones) reads them with it.
func (l Loaded) Getenv() func(string) string {
	if l.env == nil {
		return l.base
	}
	return l.env
}

// LoadConfig reads a function's configuration: the secret that
// WXN_SECRETS_SOURCE and WXN_SECRETS_ID name, if any, overlaid on getenv
// (config.WithSecret), then config.FromEnv. Errors name the variable, the
// secret or the key to fix; a secret store that cannot be read is an error
// (the function does not start without its secrets).
func LoadConfig(ctx context.Context, getenv func(string) string, useExample bool, o secrets.Options) (Loaded, error) {
	loader, err := secrets.New(getenv, o)
	if err != nil {
		return Loaded{}, err
	}
	l := Loaded{Secrets: loader, base: getenv}
	if loader != nil {
		values, err := loader.Load(ctx)
		if err != nil {
			return Loaded{}, err
		}
		if getenv, err = config.WithSecret(getenv, values, secretName(loader)); err != nil {
			return Loaded{}, err
		}
		l.keys = slices.Sorted(maps.Keys(values))
	}
	l.env = getenv
	if l.Config, err = config.FromEnv(getenv, useExample); err != nil {
		return Loaded{}, err
	}
	return l, nil
}

func secretName(l *secrets.Loader) string {
	return "secret " + `"` + l.ID() + `" (WXN_SECRETS_SOURCE=` + l.Source() + ")"
}

// RefreshSecret is the Options.RefreshSecret hook of l: it re-reads the
// secret (at most once a minute, see secrets.Loader.Refresh) and returns
// the AppSecret under the app's variable (WXN_WECHAT_SECRET, or
// WXN_APP_<ID>_WECHAT_SECRET). It is nil without a secret store.
func (l Loaded) RefreshSecret() func(ctx context.Context, variable string) (string, error) {
	if l.Secrets == nil {
		return nil
	}
	return func(ctx context.Context, variable string) (string, error) {
		values, err := l.Secrets.Refresh(ctx)
		if err != nil {
			return "", err
		}
		env, err := config.WithSecret(l.base, values, secretName(l.Secrets))
		if err != nil {
			return "", err
		}
		return config.Lookup(env, variable), nil
	}
}

// logStart writes the first lines of a function: its build (once per cold
// start) and where its secrets came from (names of keys, never values).
func logStart(log *slog.Logger, function string) {
	v := version.Get()
	log.Info("wxnotify function starting", slog.String("function", function),
		slog.String("version", v.Version), slog.String("revision", v.Revision))
}

func (l Loaded) logSecrets(log *slog.Logger) {
	if l.Secrets == nil {
		return
	}
	log.Info("secrets read", slog.String("source", l.Secrets.Source()), slog.String("secret", l.Secrets.ID()),
		slog.Any("keys", l.keys))
}
