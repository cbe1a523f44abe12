package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ConsoleOIDC is the ops console's sign-in through an OpenID Connect
// issuer (WXN_CONSOLE_OIDC_*, docs/console.md). Issuer "" means off.
type ConsoleOIDC struct {
	// Issuer (WXN_CONSOLE_OIDC_ISSUER) is the issuer's URL, exactly as its
	// discovery document and id_tokens name it: https, or http on a
	// loopback address.
	Issuer string
	// ClientID (WXN_CONSOLE_OIDC_CLIENT_ID) is the console's client at the
	// issuer.
	ClientID string
	// ClientSecret (WXN_CONSOLE_OIDC_CLIENT_SECRET, a credential) is the
	// client's secret; "" for a public client (PKCE only).
	ClientSecret string
	// RedirectURL (WXN_CONSOLE_OIDC_REDIRECT_URL) is the console's callback,
	// https://<host>/console/oidc/callback, as registered at the issuer.
	RedirectURL string
	// Allowed (WXN_CONSOLE_OIDC_ALLOWED) are the accounts that may sign in:
	// emails (with an @, matched case-insensitively, verified emails only)
	// or sub values (matched exactly).
	Allowed []string
}

// Enabled reports whether an issuer is configured.
func (o ConsoleOIDC) Enabled() bool { return o.Issuer != "" }

// oidcVariables are the variables of ConsoleOIDC.
var oidcVariables = []string{"WXN_CONSOLE_OIDC_ISSUER", "WXN_CONSOLE_OIDC_CLIENT_ID", "WXN_CONSOLE_OIDC_CLIENT_SECRET",
	"WXN_CONSOLE_OIDC_REDIRECT_URL", "WXN_CONSOLE_OIDC_ALLOWED"}

// readConsoleOIDC reads WXN_CONSOLE_OIDC_*: none set is off; any set needs
// the issuer, the client id, the redirect URL and the allow-list.
func readConsoleOIDC(getenv func(string) string) (ConsoleOIDC, error) {
	o := ConsoleOIDC{
		Issuer:       strings.TrimSpace(getenv("WXN_CONSOLE_OIDC_ISSUER")),
		ClientID:     strings.TrimSpace(getenv("WXN_CONSOLE_OIDC_CLIENT_ID")),
		ClientSecret: getenv("WXN_CONSOLE_OIDC_CLIENT_SECRET"),
		RedirectURL:  strings.TrimSpace(getenv("WXN_CONSOLE_OIDC_REDIRECT_URL")),
	}
	allowed := getenv("WXN_CONSOLE_OIDC_ALLOWED")
	set := ""
	for _, n := range oidcVariables {
		if getenv(n) != "" {
			set = n
			break
		}
	}
	if set == "" {
		return ConsoleOIDC{}, nil
	}
	if o.Issuer == "" {
		return o, fmt.Errorf("WXN_CONSOLE_OIDC_ISSUER: required when %s is set", set)
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || !WebURL(u) || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return o, fmt.Errorf("WXN_CONSOLE_OIDC_ISSUER: %q is not an https URL without query or fragment (http only on a loopback address)", o.Issuer)
	}
	if o.ClientID == "" {
		return o, errors.New("WXN_CONSOLE_OIDC_CLIENT_ID: required with WXN_CONSOLE_OIDC_ISSUER")
	}
	if o.RedirectURL == "" {
		return o, errors.New("WXN_CONSOLE_OIDC_REDIRECT_URL: required with WXN_CONSOLE_OIDC_ISSUER (https://<console host>/console/oidc/callback)")
	}
	if u, err := url.Parse(o.RedirectURL); err != nil || !WebURL(u) || !strings.HasSuffix(u.Path, "/console/oidc/callback") || u.RawQuery != "" || u.Fragment != "" {
		return o, fmt.Errorf("WXN_CONSOLE_OIDC_REDIRECT_URL: %q is not the console's callback, an https URL ending in /console/oidc/callback (http only on a loopback address)", o.RedirectURL)
	}
	for a := range strings.SplitSeq(allowed, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if strings.Contains(a, "@") {
			local, domain, _ := strings.Cut(a, "@")
			if local == "" || domain == "" || strings.Contains(domain, "@") || strings.ContainsAny(a, " \t<>") {
				return o, fmt.Errorf("WXN_CONSOLE_OIDC_ALLOWED: %q is not an email address", a)
			}
			a = strings.ToLower(a)
		}
		o.Allowed = append(o.Allowed, a)
	}
	if len(o.Allowed) == 0 {
		return o, errors.New("WXN_CONSOLE_OIDC_ALLOWED: required with WXN_CONSOLE_OIDC_ISSUER: the emails or sub values of the accounts that may sign in (an issuer alone lets none in)")
	}
	return o, nil
}

// WebURL reports whether u is an absolute https URL, or http on a loopback
// address (localhost, 127.0.0.0/8, ::1): what an OIDC issuer's URLs may be.
func WebURL(u *url.URL) bool {
	if u.Host == "" || u.Hostname() == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
