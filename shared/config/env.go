package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// variable is one environment variable of the server.
type variable struct {
	name string
	// old is the name it had before the WXN_ scheme, still read (with a
	// deprecation warning).
	old string
	// secret: a credential. With a secret store (WXN_SECRETS_SOURCE) it
	// comes from the secret only, never from the environment.
	secret bool
	// tracing: read by the tracer (package trace) through the same
	// environment, not by FromEnv.
	tracing bool
}

// variables are every variable FromEnv reads, and the tracer's, and so
// every key a secret may hold.
var variables = []variable{
	{name: "WXN_WECHAT_APPID", old: "WECHAT_APPID"},
	{name: "WXN_WECHAT_SECRET", old: "WECHAT_SECRET", secret: true},
	{name: "WXN_WECHAT_API_BASE", old: "WECHAT_API_BASE"},
	{name: "WXN_WECHAT_TOKEN_FREE", old: "WECHAT_TOKEN_FREE"},
	{name: "WXN_WECHAT_PUSH_TOKEN", old: "WECHAT_PUSH_TOKEN", secret: true},
	{name: "WXN_WECHAT_PUSH_AES_KEY", old: "WECHAT_PUSH_AES_KEY", secret: true},
	{name: "WXN_WECHAT_PUSH_AES_KEY_PREVIOUS", old: "WECHAT_PUSH_AES_KEY_PREVIOUS", secret: true},
	{name: "WXN_WECHAT_PUSH_TOKEN_PREVIOUS", secret: true},
	{name: "WXN_SESSION_SECRET", secret: true},
	{name: "WXN_SESSION_SECRET_PREVIOUS", secret: true},
	{name: "WXN_API_KEYS", secret: true},
	{name: "WXN_ADMIN_KEYS", secret: true},
	// The ops console's OpenID Connect sign-in (docs/console.md): the
	// client secret is a credential; the rest may be in the secret too.
	{name: "WXN_CONSOLE_OIDC_ISSUER"},
	{name: "WXN_CONSOLE_OIDC_CLIENT_ID"},
	{name: "WXN_CONSOLE_OIDC_CLIENT_SECRET", secret: true},
	{name: "WXN_CONSOLE_OIDC_REDIRECT_URL"},
	{name: "WXN_CONSOLE_OIDC_ALLOWED"},
	// The Redis URL carries the Redis password.
	{name: "WXN_REDIS_URL", secret: true},
	{name: "WXN_PUSH_ENABLED"},
	{name: "WXN_UNKNOWN_WINDOW"},
	{name: "WXN_RETENTION"},
	{name: "WXN_STORE"},
	{name: "WXN_DATA_DIR"},
	{name: "WXN_REDIS_PREFIX"},
	{name: "WXN_DYNAMODB_TABLE"},
	{name: "WXN_SESSION_TTL"},
	{name: "WXN_CONFIG"},
	{name: "WXN_LOG_LEVEL"},
	{name: "WXN_BATCH_RATE"},
	{name: "WXN_BATCH_RATE_SCOPE"},
	{name: "WXN_BATCH_WORKERS"},
	{name: "WXN_BATCH_SHARD_SIZE"},
	{name: "WXN_BATCH_RUNNERS"},
	{name: "WXN_BATCH_PAGE_SIZE"},
	{name: "WXN_BATCH_QUEUE_URL"},
	{name: "WXN_BATCH_DISPATCH"},
	{name: "WXN_BATCH_DISPATCH_ENDPOINT"},
	// Tracing (package trace reads them, under the OpenTelemetry SDKs'
	// standard names); the headers may carry a collector's credentials.
	{name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracing: true},
	{name: "OTEL_EXPORTER_OTLP_ENDPOINT", tracing: true},
	{name: "OTEL_EXPORTER_OTLP_HEADERS", secret: true, tracing: true},
	{name: "OTEL_EXPORTER_OTLP_PROTOCOL", tracing: true},
	{name: "OTEL_EXPORTER_OTLP_TIMEOUT", tracing: true},
	{name: "OTEL_SERVICE_NAME", tracing: true},
	{name: "OTEL_SDK_DISABLED", tracing: true},
}

// Deprecated is a variable set under its old name.
type Deprecated struct {
	Old, New string
	// Ignored: the new name is set too, and wins.
	Ignored bool
}

// SecretNames are the variables that hold credentials, by their WXN_
// names: with a secret store they must be in the secret.
func SecretNames() []string {
	var names []string
	for _, v := range variables {
		if v.secret {
			names = append(names, v.name)
		}
	}
	return names
}

func lookupVariable(name string) (variable, bool) {
	for _, v := range variables {
		if v.name == name || v.old == name {
			return v, true
		}
	}
	return lookupAppVariable(name)
}

// Lookup returns the value of the variable name (its WXN_ name) through
// getenv: the value of the WXN_ name, else of its old name. Tools that
// read one server variable (wxnotify templates sync) use it to accept
// both names as the server does.
func Lookup(getenv func(string) string, name string) string {
	v, ok := lookupVariable(name)
	if !ok {
		return getenv(name)
	}
	if s := getenv(v.name); s != "" || v.old == "" {
		return s
	}
	return getenv(v.old)
}

// envReader reads variables by their WXN_ names, also under their old names,
// and records the old names it met.
type envReader struct {
	getenv     func(string) string
	deprecated []Deprecated
}

func (e *envReader) get(name string) string {
	v, ok := lookupVariable(name)
	if !ok || v.old == "" {
		return e.getenv(name)
	}
	cur, old := e.getenv(v.name), e.getenv(v.old)
	if old != "" && !slices.ContainsFunc(e.deprecated, func(d Deprecated) bool { return d.Old == v.old }) {
		e.deprecated = append(e.deprecated, Deprecated{Old: v.old, New: v.name, Ignored: cur != ""})
	}
	if cur != "" {
		return cur
	}
	return old
}

// WithSecret returns getenv overlaid with the values of a secret (the
// secret named what, for errors). The secret's keys are the variables'
// names (the old names too); a key that names no variable is an error
// listing every such key, so that a typo does not drop a setting. A
// secret variable (SecretNames) comes from the secret only: set in the
// environment too, it is an error, so that a credential is not left in a
// deployment's environment. Any other variable comes from the secret when
// it has it, else from the environment.
func WithSecret(getenv func(string) string, values map[string]string, what string) (func(string) string, error) {
	var unknown, inEnv []string
	for k := range values {
		if _, ok := lookupVariable(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: unknown keys %s: the keys are the names of wxnotify's variables (e.g. WXN_WECHAT_SECRET, WXN_SESSION_SECRET, WXN_API_KEYS)",
			what, strings.Join(unknown, ", "))
	}
	for _, v := range variables {
		if !v.secret {
			continue
		}
		for _, n := range []string{v.name, v.old} {
			if n != "" && getenv(n) != "" {
				inEnv = append(inEnv, n)
			}
		}
	}
	if len(inEnv) > 0 {
		return nil, fmt.Errorf("%s is set in the environment, but with a secret store credentials come from the secret only (%s): move it into the secret and remove it from the environment",
			strings.Join(inEnv, ", "), what)
	}
	return func(name string) string {
		if s, ok := values[name]; ok {
			return s
		}
		if v, ok := lookupVariable(name); ok && v.secret {
			return ""
		}
		return getenv(name)
	}, nil
}

// Names are the WXN_ names of every variable FromEnv reads.
func Names() []string {
	names := make([]string, len(variables))
	for i, v := range variables {
		names[i] = v.name
	}
	return names
}

// OldNames are the names still read in place of the WXN_ ones, to the new
// name each stands for.
func OldNames() map[string]string {
	m := map[string]string{}
	for _, v := range variables {
		if v.old != "" {
			m[v.old] = v.name
		}
	}
	return m
}
