package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestFromEnvExample(t *testing.T) {
	c, err := FromEnv(env(), true)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := c.File.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	reg, ok := cat.Lookup("registration")
	if !ok || len(reg.Keywords) != 3 || reg.Keywords[0].Name != "date2" || reg.Keywords[1].Type != "thing" {
		t.Fatalf("registration template: got %+v", reg)
	}
	if _, ok := cat.Lookup("lead_assigned"); !ok {
		t.Fatal("lead_assigned template missing from the example")
	}
	if c.Store != StoreBolt || !c.Sandbox() {
		t.Fatalf("defaults: got store %q sandbox %v, want bolt and sandbox", c.Store, c.Sandbox())
	}
}

func TestFromEnvErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"BadStore", env("WXN_STORE", "mongo"), "WXN_STORE"},
		{"RedisWithoutURL", env("WXN_STORE", "redis"), "WXN_REDIS_URL"},
		{"BadRedisURL", env("WXN_REDIS_URL", "http://x"), "WXN_REDIS_URL"},
		{"DynamoWithoutTable", env("WXN_STORE", "dynamodb"), "WXN_DYNAMODB_TABLE"},
		{"ShortAPIKey", env("WXN_API_KEYS", "abc"), "WXN_API_KEYS"},
		{"ShortAdminKey", env("WXN_ADMIN_KEYS", "0123456789abcdef0123"), "WXN_ADMIN_KEYS: every key must be at least 24"},
		{"AdminKeyIsAPIKey", env("WXN_API_KEYS", "0123456789abcdef01234567", "WXN_ADMIN_KEYS", "x-admin-key-0123456789abc, 0123456789abcdef01234567"), "WXN_ADMIN_KEYS: a key is also in WXN_API_KEYS"},
		{"ShortSessionSecret", env("WXN_SESSION_SECRET", "short"), "WXN_SESSION_SECRET"},
		{"BadAESKey", env("WXN_WECHAT_PUSH_AES_KEY", "tooshort"), "WXN_WECHAT_PUSH_AES_KEY:"},
		{"BadAESKeyOldName", env("WECHAT_PUSH_AES_KEY", "tooshort"), "WXN_WECHAT_PUSH_AES_KEY:"},
		{"BadPreviousAESKey", env("WXN_WECHAT_PUSH_AES_KEY_PREVIOUS", "tooshort"), "WXN_WECHAT_PUSH_AES_KEY_PREVIOUS:"},
		{"BadTokenFree", env("WXN_WECHAT_TOKEN_FREE", "maybe"), "WXN_WECHAT_TOKEN_FREE:"},
		{"BadTTL", env("WXN_SESSION_TTL", "1s"), "WXN_SESSION_TTL"},
		{"BadBase", env("WXN_WECHAT_API_BASE", "ftp://x"), "WXN_WECHAT_API_BASE:"},
		{"MissingFile", env("WXN_CONFIG", filepath.Join(dir, "nope.yaml")), "WXN_CONFIG"},
		{"UnknownKey", env("WXN_CONFIG", write("typo.yaml", "templates:\n  - alias: a\n    id: x\n    keywrods: []\n")), "keywrods"},
		{"BadKeyword", env("WXN_CONFIG", write("kw.yaml", "templates:\n  - alias: a\n    id: x\n    keywords:\n      - name: colour3\n")), "templates[0] (a).keywords.colour3"},
		{"TypeMismatch", env("WXN_CONFIG", write("tm.yaml", "templates:\n  - alias: a\n    id: x\n    keywords:\n      - {name: thing1, type: date}\n")), "templates[0] (a).keywords.thing1"},
		{"DuplicateAlias", env("WXN_CONFIG", write("dup.yaml", "templates:\n  - {alias: a, id: x, keywords: [{name: thing1}]}\n  - {alias: a, id: y, keywords: [{name: thing1}]}\n")), "templates[1] (a).alias"},
		{"BadKind", env("WXN_CONFIG", write("kind.yaml", "templates:\n  - {alias: a, id: x, kind: forever, keywords: [{name: thing1}]}\n")), "templates[0] (a).kind"},
		{"BadPolicy", env("WXN_CONFIG", write("pol.yaml", "templates:\n  - {alias: a, id: x, policy: shrug, keywords: [{name: thing1}]}\n")), "templates[0] (a).policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(tc.env, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	c, err := FromEnv(env("WXN_WECHAT_APPID", "wx1", "WXN_WECHAT_SECRET", "s", "WXN_SESSION_SECRET", strings.Repeat("k", 32),
		"WXN_API_KEYS", "0123456789abcdef, fedcba9876543210"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(); err != nil {
		t.Fatalf("Require: %v", err)
	}
	if len(c.APIKeys) != 2 || c.Sandbox() {
		t.Fatalf("got %d keys, sandbox %v; want 2 keys, no sandbox", len(c.APIKeys), c.Sandbox())
	}
	if len(c.Deprecated) != 0 {
		t.Errorf("Deprecated: got %v, want none with the WXN_ names", c.Deprecated)
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"NoSessionSecret", func(c *Config) { c.SessionSecret = "" }, "WXN_SESSION_SECRET: required"},
		{"NoAppID", func(c *Config) { c.AppID = "" }, "WXN_WECHAT_APPID: required"},
		{"NoSecret", func(c *Config) { c.Secret = "" }, "WXN_WECHAT_SECRET: required (or WXN_WECHAT_TOKEN_FREE=true"},
		{"NoAPIKeys", func(c *Config) { c.APIKeys = nil }, "WXN_API_KEYS: at least one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := c
			tt.change(&c)
			if err := c.Require(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
