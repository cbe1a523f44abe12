package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/trace"
)

// TestVariablesAreKnown: every variable FromEnv or the tracer reads is in
// variables, so that a secret may hold it and an old name is not missed.
func TestVariablesAreKnown(t *testing.T) {
	var read, traced []string
	_, _ = FromEnv(func(k string) string { read = append(read, k); return "" }, true)
	// With an endpoint set, the tracer reads all its variables.
	tr, _ := trace.FromEnv(func(k string) string {
		traced = append(traced, k)
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return "http://127.0.0.1:1"
		}
		return ""
	}, trace.Options{})
	_ = tr.Shutdown(t.Context())
	for _, k := range append(slices.Clone(read), traced...) {
		if _, ok := lookupVariable(k); !ok {
			t.Errorf("FromEnv or the tracer reads %s, which is not in variables", k)
		}
	}
	for _, v := range variables {
		switch {
		case v.tracing && !slices.Contains(traced, v.name):
			t.Errorf("variables lists %s as the tracer's, which it does not read", v.name)
		case v.tracing && slices.Contains(read, v.name):
			t.Errorf("variables lists %s as the tracer's, but FromEnv reads it", v.name)
		case !v.tracing && !slices.Contains(read, v.name):
			t.Errorf("variables lists %s, which FromEnv does not read", v.name)
		}
		if v.old != "" && !slices.Contains(read, v.old) {
			t.Errorf("FromEnv does not read %s, the old name of %s", v.old, v.name)
		}
	}
}

func TestOldNames(t *testing.T) {
	aes := strings.Repeat("a", 43)
	tests := []struct {
		name    string
		env     func(string) string
		want    Config
		wantDep []Deprecated
	}{
		{"New", env("WXN_WECHAT_APPID", "wxnew", "WXN_WECHAT_SECRET", "snew", "WXN_WECHAT_API_BASE", "http://new",
			"WXN_WECHAT_TOKEN_FREE", "false", "WXN_WECHAT_PUSH_TOKEN", "tnew", "WXN_WECHAT_PUSH_AES_KEY", aes,
			"WXN_WECHAT_PUSH_AES_KEY_PREVIOUS", aes),
			Config{AppID: "wxnew", Secret: "snew", APIBase: "http://new", PushToken: "tnew", PushAESKey: aes, PushAESKeyPrevious: aes}, nil},
		{"Old", env("WECHAT_APPID", "wxold", "WECHAT_SECRET", "sold", "WECHAT_API_BASE", "http://old",
			"WECHAT_TOKEN_FREE", "false", "WECHAT_PUSH_TOKEN", "told", "WECHAT_PUSH_AES_KEY", aes,
			"WECHAT_PUSH_AES_KEY_PREVIOUS", aes),
			Config{AppID: "wxold", Secret: "sold", APIBase: "http://old", PushToken: "told", PushAESKey: aes, PushAESKeyPrevious: aes},
			[]Deprecated{{"WECHAT_APPID", "WXN_WECHAT_APPID", false}, {"WECHAT_SECRET", "WXN_WECHAT_SECRET", false},
				{"WECHAT_API_BASE", "WXN_WECHAT_API_BASE", false}, {"WECHAT_PUSH_TOKEN", "WXN_WECHAT_PUSH_TOKEN", false},
				{"WECHAT_PUSH_AES_KEY", "WXN_WECHAT_PUSH_AES_KEY", false},
				{"WECHAT_PUSH_AES_KEY_PREVIOUS", "WXN_WECHAT_PUSH_AES_KEY_PREVIOUS", false},
				{"WECHAT_TOKEN_FREE", "WXN_WECHAT_TOKEN_FREE", false}}},
		{"NewWins", env("WECHAT_APPID", "wxold", "WXN_WECHAT_APPID", "wxnew", "WECHAT_SECRET", "sold"),
			Config{AppID: "wxnew", Secret: "sold"},
			[]Deprecated{{"WECHAT_APPID", "WXN_WECHAT_APPID", true}, {"WECHAT_SECRET", "WXN_WECHAT_SECRET", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(tt.env, true)
			if err != nil {
				t.Fatal(err)
			}
			got := Config{AppID: c.AppID, Secret: c.Secret, APIBase: c.APIBase, TokenFree: c.TokenFree, PushToken: c.PushToken,
				PushAESKey: c.PushAESKey, PushAESKeyPrevious: c.PushAESKeyPrevious}
			if got.AppID != tt.want.AppID || got.Secret != tt.want.Secret || got.APIBase != tt.want.APIBase ||
				got.PushToken != tt.want.PushToken || got.PushAESKey != tt.want.PushAESKey ||
				got.PushAESKeyPrevious != tt.want.PushAESKeyPrevious {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(c.Deprecated, tt.wantDep) {
				t.Errorf("Deprecated: got %v, want %v (each once, in the order read)", c.Deprecated, tt.wantDep)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	for _, tt := range []struct {
		env  func(string) string
		want string
	}{
		{env("WXN_WECHAT_SECRET", "new", "WECHAT_SECRET", "old"), "new"},
		{env("WECHAT_SECRET", "old"), "old"},
		{env(), ""},
	} {
		if got := Lookup(tt.env, "WXN_WECHAT_SECRET"); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := Lookup(env("WXN_LOG_LEVEL", "debug"), "WXN_LOG_LEVEL"); got != "debug" {
		t.Errorf("WXN_LOG_LEVEL: got %q, want debug", got)
	}
}

func TestWithSecret(t *testing.T) {
	const what = `secret "wxnotify"`
	base := env("WXN_WECHAT_APPID", "wxenv", "WXN_STORE", "bolt", "WXN_LOG_LEVEL", "warn")
	secret := map[string]string{"WXN_WECHAT_SECRET": "s", "WXN_SESSION_SECRET": strings.Repeat("k", 32),
		"WXN_API_KEYS": "0123456789abcdef", "WECHAT_PUSH_TOKEN": "tok", "WXN_LOG_LEVEL": "debug"}
	getenv, err := WithSecret(base, secret, what)
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromEnv(getenv, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(); err != nil {
		t.Fatalf("Require: %v", err)
	}
	if c.AppID != "wxenv" || c.Secret != "s" || c.PushToken != "tok" || c.LogLevel != "debug" || c.Store != "bolt" {
		t.Errorf("got appid %q secret %q push token %q log level %q store %q; want wxenv from the environment, s, tok and debug from the secret, bolt",
			c.AppID, c.Secret, c.PushToken, c.LogLevel, c.Store)
	}
	if !slices.Equal(c.Deprecated, []Deprecated{{"WECHAT_PUSH_TOKEN", "WXN_WECHAT_PUSH_TOKEN", false}}) {
		t.Errorf("Deprecated: got %v, want the secret's old key WECHAT_PUSH_TOKEN", c.Deprecated)
	}

	errs := []struct {
		name   string
		env    func(string) string
		values map[string]string
		want   []string
	}{
		{"UnknownKeys", base, map[string]string{"WXN_SESION_SECRET": "x", "WECHAT_SECRT": "y", "WXN_API_KEYS": "k"},
			[]string{what, "unknown keys WECHAT_SECRT, WXN_SESION_SECRET"}},
		{"SecretInEnvironment", env("WXN_SESSION_SECRET", "x", "WECHAT_SECRET", "y"), map[string]string{},
			[]string{"WECHAT_SECRET, WXN_SESSION_SECRET is set in the environment", "move it into the secret"}},
		{"PlatformVariable", base, map[string]string{"WXN_ADDR": ":80"}, []string{"unknown keys WXN_ADDR"}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := WithSecret(tt.env, tt.values, what)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want an error containing %q", err, w)
				}
			}
		})
	}

	// A secret variable missing from the secret is not read from the
	// environment; the missing credential is then named by Require.
	getenv, err = WithSecret(base, map[string]string{"WXN_SESSION_SECRET": strings.Repeat("k", 32)}, what)
	if err != nil {
		t.Fatal(err)
	}
	c, err = FromEnv(getenv, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(); err == nil || !strings.Contains(err.Error(), "WXN_WECHAT_SECRET: required") {
		t.Errorf("Require: got %v, want WXN_WECHAT_SECRET named", err)
	}
}
