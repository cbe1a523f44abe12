package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDevServesConsole: `wxnotify dev` serves the ops console, signed in
// with the admin key it generates and keeps in the data directory (the
// banner names it), or with WXN_ADMIN_KEYS when set; the API key signs in
// to nothing.
func TestDevServesConsole(t *testing.T) {
	e := newEnv(t)
	var banner bytes.Buffer
	e.srv.printBanner(&banner)
	keyFile := filepath.Join(e.srv.parts.Config.DataDir, devAdminKeyFile)
	if !strings.Contains(banner.String(), "Console: "+e.url+"/console/ (WXN_ADMIN_KEYS is unset: sign in with the key kept in "+keyFile+")\n") {
		t.Errorf("banner: no console line naming %s:\n%s", keyFile, banner.String())
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(raw))
	if len(key) != 2*devAdminKeyBytes || key != e.srv.adminKey {
		t.Fatalf("admin.key: got %q, want the generated key %q", key, e.srv.adminKey)
	}
	if key == e.srv.apiKey {
		t.Fatal("the admin key is the API key")
	}
	if got := consoleSignIn(t, e.url, key); got != http.StatusSeeOther {
		t.Errorf("sign in with admin.key: got %d, want 303", got)
	}
	if got := consoleSignIn(t, e.url, e.srv.apiKey); got != http.StatusUnauthorized {
		t.Errorf("sign in with the API key: got %d, want 401", got)
	}

	set := newEnv(t, "WXN_ADMIN_KEYS", "my-own-admin-key-0123456789")
	if set.srv.adminKey != "" {
		t.Errorf("WXN_ADMIN_KEYS set: dev generated %q too", set.srv.adminKey)
	}
	if got := consoleSignIn(t, set.url, "my-own-admin-key-0123456789"); got != http.StatusSeeOther {
		t.Errorf("sign in with WXN_ADMIN_KEYS: got %d, want 303", got)
	}
}

// consoleSignIn posts the console's sign-in form with key and returns the
// status.
func consoleSignIn(t *testing.T, base, key string) int {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /console/signin: got %d: %s", resp.StatusCode, body)
	}
	req, err := http.NewRequest("POST", base+"/console/signin", strings.NewReader(url.Values{"csrf": {string(m[1])}, "key": {key}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
