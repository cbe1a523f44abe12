package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const appsYAML = `defaultApp: customer
apps:
  - id: sales
    appId: wx00000000000000a1
    templates:
      - alias: lead_assigned
        id: TMPL-LEAD
        kind: one-time
        keywords: [{name: thing1}, {name: time3}]
    rules:
      - name: lead-assigned
        event: lead.assigned
        template: lead_assigned
        to: {userId: data.userId}
        fields:
          thing1: {from: data.name}
          time3: {from: occurredAt, format: datetime}
  - id: customer
    templates:
      - alias: order_shipped
        id: TMPL-ORDER
        kind: one-time
        keywords: [{name: thing1}]
  - id: test-app
    appId: wx00000000000000a3
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApps(t *testing.T) {
	path := writeConfig(t, appsYAML)
	c, err := FromEnv(env(
		"WXN_CONFIG", path,
		"WXN_SESSION_SECRET", strings.Repeat("k", 32),
		"WXN_API_KEYS", "every-app-key-0123456789",
		"WXN_APP_SALES_WECHAT_SECRET", "sales-secret",
		"WXN_APP_SALES_API_KEYS", "sales-only-key-0123456789",
		"WXN_APP_CUSTOMER_WECHAT_APPID", "wx00000000000000a2",
		"WXN_APP_CUSTOMER_WECHAT_PUSH_TOKEN", "customer-token",
		"WXN_APP_TEST_APP_WECHAT_SECRET", "test-secret",
		// The default app (customer) falls back to the plain variables.
		"WXN_WECHAT_SECRET", "plain-secret",
		"WXN_WECHAT_PUSH_TOKEN", "plain-token-ignored-customer-has-its-own",
	), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(); err != nil {
		t.Fatalf("Require: %v", err)
	}
	if len(c.Apps) != 3 || c.DefaultApp != "customer" {
		t.Fatalf("got %d apps, default %q; want 3, customer", len(c.Apps), c.DefaultApp)
	}
	sales, _ := c.App("sales")
	customer, _ := c.App("customer")
	test, _ := c.App("test-app")
	for _, tc := range []struct{ name, got, want string }{
		{"sales AppID (yaml)", sales.AppID, "wx00000000000000a1"},
		{"sales secret", sales.Secret, "sales-secret"},
		{"sales secret variable", sales.SecretVariable, "WXN_APP_SALES_WECHAT_SECRET"},
		{"customer AppID (variable)", customer.AppID, "wx00000000000000a2"},
		{"customer secret (plain fallback of the default app)", customer.Secret, "plain-secret"},
		{"customer secret variable", customer.SecretVariable, "WXN_WECHAT_SECRET"},
		{"customer push token (its own wins)", customer.PushToken, "customer-token"},
		{"test-app secret ('-' is '_' in names)", test.Secret, "test-secret"},
		{"test-app push token (no fallback for a non-default app)", test.PushToken, ""},
		{"mirrored default AppID", c.AppID, "wx00000000000000a2"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if !customer.PushEnabled || sales.PushEnabled {
		t.Errorf("push enabled: customer %v, sales %v; want true (its token implies it), false", customer.PushEnabled, sales.PushEnabled)
	}
	if len(sales.APIKeys) != 1 || len(customer.APIKeys) != 0 || len(c.APIKeys) != 1 {
		t.Errorf("keys: sales %v, customer %v, all %v", sales.APIKeys, customer.APIKeys, c.APIKeys)
	}
	if cat, err := sales.File.Catalog(); err != nil || len(cat.Templates()) != 1 {
		t.Errorf("sales catalog: %v, %v", cat, err)
	}
	if len(sales.File.Rules) != 1 || len(customer.File.Rules) != 0 {
		t.Errorf("rules: sales %d, customer %d; want 1, 0", len(sales.File.Rules), len(customer.File.Rules))
	}
	if c.Sandbox() {
		t.Error("Sandbox: true with real secrets")
	}
}

// A file of today's shape is one app "default" made of the plain variables.
func TestSingleAppShapeIsDefault(t *testing.T) {
	c, err := FromEnv(env("WXN_WECHAT_APPID", "wx00000000000000b1", "WXN_WECHAT_SECRET", "s",
		"WXN_SESSION_SECRET", strings.Repeat("k", 32), "WXN_API_KEYS", "0123456789abcdef"), true)
	if err != nil {
		t.Fatal(err)
	}
	apps := c.AllApps()
	if len(c.Apps) != 0 || len(apps) != 1 || apps[0].ID != DefaultAppID || c.DefaultApp != DefaultAppID {
		t.Fatalf("got Apps %d, AllApps %+v, default %q; want one app %q", len(c.Apps), apps, c.DefaultApp, DefaultAppID)
	}
	a := apps[0]
	if a.AppID != "wx00000000000000b1" || a.Secret != "s" || a.SecretVariable != "WXN_WECHAT_SECRET" {
		t.Errorf("default app: %+v", a)
	}
	if len(a.File.Templates) != len(c.File.Templates) || len(a.File.Templates) == 0 {
		t.Errorf("default app templates: %d, file %d", len(a.File.Templates), len(c.File.Templates))
	}
}

func TestAppsErrors(t *testing.T) {
	base := []string{"WXN_SESSION_SECRET", strings.Repeat("k", 32)}
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"BadID", "apps:\n  - id: Sales\n", nil, `apps[0].id: "Sales" is not an app id`},
		{"TrailingDash", "apps:\n  - id: sales-\n", nil, `apps[0].id`},
		{"DuplicateID", "apps:\n  - id: a\n  - id: a\n", nil, "apps[1] (a).id: another app has this id"},
		{"DuplicateAppID", "apps:\n  - id: a\n    appId: wx1\n  - id: b\n    appId: wx1\n", nil, `app "a" has the same AppID`},
		{"DuplicateAppIDByVariable", "apps:\n  - id: a\n    appId: wx1\n  - id: b\n", []string{"WXN_APP_B_WECHAT_APPID", "wx1"}, `app "b" has the AppID of app "a"`},
		{"BadAppID", "apps:\n  - id: a\n    appId: 'wx|1'\n", nil, "apps[0] (a).appId"},
		{"AppIDDisagrees", "apps:\n  - id: a\n    appId: wx1\n", []string{"WXN_APP_A_WECHAT_APPID", "wx2"}, `WXN_APP_A_WECHAT_APPID: "wx2", but wxnotify.yaml gives app "a" the AppID "wx1"`},
		{"TopLevelTemplatesWithApps", "apps:\n  - id: a\ntemplates:\n  - {alias: x, id: T, kind: one-time, keywords: [{name: thing1}]}\n", nil, "with apps, each app has its own"},
		{"UnknownDefault", "defaultApp: b\napps:\n  - id: a\n", nil, `defaultApp: "b" is none of the apps`},
		{"DefaultWithoutApps", "defaultApp: b\ntemplates: []\n", nil, `defaultApp: "b" is not an app`},
		{"BadTemplateInApp", "apps:\n  - id: a\n    templates:\n      - {alias: x, id: T, kind: weekly, keywords: [{name: thing1}]}\n", nil, "apps[0] (a)"},
		{"RuleOfAnotherAppsTemplate", "apps:\n  - id: a\n    templates:\n      - {alias: x, id: T, kind: one-time, keywords: [{name: thing1}]}\n  - id: b\n    rules:\n      - {name: r, event: e, template: x, to: {userId: data.u}, fields: {thing1: {value: v}}}\n", nil, "apps[1] (b)"},
		{"ShortAppKey", "apps:\n  - id: a\n", []string{"WXN_APP_A_API_KEYS", "short"}, "WXN_APP_A_API_KEYS: every key must be at least 16 characters"},
		{"AdminKeyIsAppKey", "apps:\n  - id: a\n", []string{"WXN_APP_A_API_KEYS", "a-admin-key-0123456789abcd", "WXN_ADMIN_KEYS", "a-admin-key-0123456789abcd"}, "WXN_ADMIN_KEYS: a key is also in WXN_APP_A_API_KEYS"},
		{"BadAppAESKey", "apps:\n  - id: a\n", []string{"WXN_APP_A_WECHAT_PUSH_AES_KEY", "short"}, "WXN_APP_A_WECHAT_PUSH_AES_KEY: an EncodingAESKey has 43 characters"},
		{"BadAppPushEnabled", "apps:\n  - id: a\n", []string{"WXN_APP_A_PUSH_ENABLED", "maybe"}, "WXN_APP_A_PUSH_ENABLED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := append(append([]string{"WXN_CONFIG", writeConfig(t, tc.yaml)}, base...), tc.env...)
			_, err := FromEnv(env(kv...), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRequireApps(t *testing.T) {
	path := writeConfig(t, "apps:\n  - id: a\n    appId: wx1\n  - id: b\n    appId: wx2\n")
	ok := []string{"WXN_CONFIG", path, "WXN_SESSION_SECRET", strings.Repeat("k", 32),
		"WXN_APP_A_WECHAT_SECRET", "sa", "WXN_APP_B_WECHAT_SECRET", "sb", "WXN_API_KEYS", "every-app-key-0123456789"}
	for _, tc := range []struct {
		name string
		drop string // a variable left out
		add  []string
		want string
	}{
		{"OK", "", nil, ""},
		{"NoSecretOfB", "WXN_APP_B_WECHAT_SECRET", nil, "WXN_APP_B_WECHAT_SECRET: required"},
		{"DefaultFallsBack", "WXN_APP_A_WECHAT_SECRET", []string{"WXN_WECHAT_SECRET", "plain"}, ""},
		{"NoKeyForB", "WXN_API_KEYS", []string{"WXN_APP_A_API_KEYS", "a-only-key-0123456789"}, `app "b" needs at least one key`},
		{"KeysPerApp", "WXN_API_KEYS", []string{"WXN_APP_A_API_KEYS", "a-only-key-0123456789", "WXN_APP_B_API_KEYS", "b-only-key-0123456789"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kv []string
			for i := 0; i < len(ok); i += 2 {
				if ok[i] != tc.drop {
					kv = append(kv, ok[i], ok[i+1])
				}
			}
			c, err := FromEnv(env(append(kv, tc.add...)...), false)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Require()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Per-app variables are known names: a secret may hold them, and with a
// secret store the app's credentials come from the secret only.
func TestAppVariablesInSecrets(t *testing.T) {
	if got := AppVariable("test-app", "WXN_WECHAT_SECRET"); got != "WXN_APP_TEST_APP_WECHAT_SECRET" {
		t.Fatalf("AppVariable: %q", got)
	}
	getenv := env("WXN_APP_SALES_WECHAT_SECRET", "from-env")
	overlay, err := WithSecret(getenv, map[string]string{"WXN_APP_SALES_API_KEYS": "k-0123456789abcdef"}, "secret x")
	if err != nil {
		t.Fatal(err)
	}
	if got := overlay("WXN_APP_SALES_API_KEYS"); got != "k-0123456789abcdef" {
		t.Errorf("a per-app key of the secret: %q", got)
	}
	if got := overlay("WXN_APP_SALES_WECHAT_SECRET"); got != "" {
		t.Errorf("a per-app credential from the environment with a secret store: %q, want none", got)
	}
	if _, err := WithSecret(getenv, map[string]string{"WXN_APP_SALES_WECHAT_SECRT": "x"}, "secret x"); err == nil ||
		!strings.Contains(err.Error(), "WXN_APP_SALES_WECHAT_SECRT") {
		t.Errorf("a misspelt per-app key: %v, want an unknown key error", err)
	}
	if _, err := WithSecret(getenv, map[string]string{"WXN_APP__WECHAT_SECRET": "x"}, "secret x"); err == nil {
		t.Error("a per-app key without an app id was accepted")
	}
}
