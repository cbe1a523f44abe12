package secrets_test

import (
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/secrets"
)

// FuzzDecode: any secret value decodes to strings, or fails with an
// error; what decodes is then accepted or refused by config.WithSecret,
// and accepted values configure FromEnv or fail it cleanly; none panics.
// (The value is read from the store at every cold start.)
func FuzzDecode(f *testing.F) {
	for _, s := range []string{secretJSON, `{}`, `null`, `[]`, `{"a":1}`, `{"WXN_API_KEYS":"short"}`,
		`{"WECHAT_SECRET":"s","WXN_WECHAT_SECRET":"t"}`, `{"WXN_STORE":"redis"}`, `{"x":"\u0000"}`, `"str"`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := secrets.Decode(raw)
		if err != nil {
			if values != nil {
				t.Fatalf("Decode(%q) failed (%v) but returned values", raw, err)
			}
			return
		}
		getenv, err := config.WithSecret(func(string) string { return "" }, values, "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), "unknown keys") {
				t.Fatalf("WithSecret with an empty environment: got %v, want only unknown keys refused", err)
			}
			return
		}
		_, _ = config.FromEnv(getenv, true)
	})
}
