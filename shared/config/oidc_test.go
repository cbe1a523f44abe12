package config

import (
	"slices"
	"strings"
	"testing"
)

// oidcEnv is a complete WXN_CONSOLE_OIDC_* setting, with kv replacing or
// adding variables ("" unsets one).
func oidcEnv(kv ...string) func(string) string {
	m := map[string]string{
		"WXN_CONSOLE_OIDC_ISSUER":       "https://id.example.com/realms/ops",
		"WXN_CONSOLE_OIDC_CLIENT_ID":    "wxnotify-console",
		"WXN_CONSOLE_OIDC_REDIRECT_URL": "https://ops.example.com/console/oidc/callback",
		"WXN_CONSOLE_OIDC_ALLOWED":      " Alice@Example.com, 248289761001 ,,",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConsoleOIDC(t *testing.T) {
	c, err := FromEnv(oidcEnv("WXN_CONSOLE_OIDC_CLIENT_SECRET", "s3cret"), true)
	if err != nil {
		t.Fatal(err)
	}
	o := c.ConsoleOIDC
	if !o.Enabled() || o.Issuer != "https://id.example.com/realms/ops" || o.ClientID != "wxnotify-console" ||
		o.ClientSecret != "s3cret" || o.RedirectURL != "https://ops.example.com/console/oidc/callback" {
		t.Errorf("got %+v", o)
	}
	if want := []string{"alice@example.com", "248289761001"}; !slices.Equal(o.Allowed, want) {
		t.Errorf("allowed: got %q, want %q (emails lower-cased, blanks dropped)", o.Allowed, want)
	}
	// A public client (no secret), an issuer on loopback over http.
	c, err = FromEnv(oidcEnv("WXN_CONSOLE_OIDC_ISSUER", "http://127.0.0.1:5556/dex", "WXN_CONSOLE_OIDC_REDIRECT_URL", "http://localhost:8080/console/oidc/callback"), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.ConsoleOIDC.ClientSecret != "" || c.ConsoleOIDC.Issuer != "http://127.0.0.1:5556/dex" {
		t.Errorf("public client on loopback: got %+v", c.ConsoleOIDC)
	}
	// None set: off.
	c, err = FromEnv(env(), true)
	if err != nil || c.ConsoleOIDC.Enabled() {
		t.Errorf("unset: got %+v, %v; want off", c.ConsoleOIDC, err)
	}
}

func TestConsoleOIDCErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"OnlyAllowList", env("WXN_CONSOLE_OIDC_ALLOWED", "a@example.com"), "WXN_CONSOLE_OIDC_ISSUER: required when WXN_CONSOLE_OIDC_ALLOWED is set"},
		{"OnlySecret", env("WXN_CONSOLE_OIDC_CLIENT_SECRET", "x"), "WXN_CONSOLE_OIDC_ISSUER: required when WXN_CONSOLE_OIDC_CLIENT_SECRET is set"},
		{"HTTPIssuer", oidcEnv("WXN_CONSOLE_OIDC_ISSUER", "http://id.example.com"), "WXN_CONSOLE_OIDC_ISSUER: \"http://id.example.com\" is not an https URL"},
		{"RelativeIssuer", oidcEnv("WXN_CONSOLE_OIDC_ISSUER", "id.example.com"), "WXN_CONSOLE_OIDC_ISSUER"},
		{"IssuerWithQuery", oidcEnv("WXN_CONSOLE_OIDC_ISSUER", "https://id.example.com/?x=1"), "WXN_CONSOLE_OIDC_ISSUER"},
		{"NoClientID", oidcEnv("WXN_CONSOLE_OIDC_CLIENT_ID", ""), "WXN_CONSOLE_OIDC_CLIENT_ID: required"},
		{"NoRedirect", oidcEnv("WXN_CONSOLE_OIDC_REDIRECT_URL", ""), "WXN_CONSOLE_OIDC_REDIRECT_URL: required"},
		{"RedirectNotCallback", oidcEnv("WXN_CONSOLE_OIDC_REDIRECT_URL", "https://ops.example.com/console/"), "WXN_CONSOLE_OIDC_REDIRECT_URL: \"https://ops.example.com/console/\" is not the console's callback"},
		{"HTTPRedirect", oidcEnv("WXN_CONSOLE_OIDC_REDIRECT_URL", "http://ops.example.com/console/oidc/callback"), "WXN_CONSOLE_OIDC_REDIRECT_URL"},
		{"NoAllowList", oidcEnv("WXN_CONSOLE_OIDC_ALLOWED", ""), "WXN_CONSOLE_OIDC_ALLOWED: required"},
		{"BlankAllowList", oidcEnv("WXN_CONSOLE_OIDC_ALLOWED", " , "), "WXN_CONSOLE_OIDC_ALLOWED: required"},
		{"BadEmail", oidcEnv("WXN_CONSOLE_OIDC_ALLOWED", "a@b@c"), "WXN_CONSOLE_OIDC_ALLOWED: \"a@b@c\" is not an email"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(tc.env, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The variables are keys a secret may hold; the client secret comes from
// the secret only.
func TestConsoleOIDCInSecret(t *testing.T) {
	if !slices.Contains(SecretNames(), "WXN_CONSOLE_OIDC_CLIENT_SECRET") {
		t.Error("WXN_CONSOLE_OIDC_CLIENT_SECRET is not a secret variable")
	}
	if slices.Contains(SecretNames(), "WXN_CONSOLE_OIDC_ALLOWED") {
		t.Error("WXN_CONSOLE_OIDC_ALLOWED is a secret variable: it is no credential")
	}
	values := map[string]string{}
	for _, n := range oidcVariables {
		values[n] = oidcEnv("WXN_CONSOLE_OIDC_CLIENT_SECRET", "s3cret")(n)
	}
	getenv, err := WithSecret(env(), values, "secret x")
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromEnv(getenv, true)
	if err != nil || c.ConsoleOIDC.ClientSecret != "s3cret" || len(c.ConsoleOIDC.Allowed) != 2 {
		t.Fatalf("from a secret: got %+v, %v", c.ConsoleOIDC, err)
	}
	if _, err := WithSecret(env("WXN_CONSOLE_OIDC_CLIENT_SECRET", "s3cret"), values, "secret x"); err == nil ||
		!strings.Contains(err.Error(), "WXN_CONSOLE_OIDC_CLIENT_SECRET is set in the environment") {
		t.Errorf("the client secret in the environment with a secret store: got %v", err)
	}
}
