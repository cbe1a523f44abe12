package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/secrets"
	"github.com/wxnotify/wxnotify/shared/secrets/secretstest"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

func envFrom(vars []string, m map[string]string) func(string) string {
	all := map[string]string{}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		all[k] = v
	}
	for k, v := range m {
		all[k] = v
	}
	return func(k string) string { return all[k] }
}

func secretOf(tb testing.TB, m map[string]string) string {
	tb.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// fakeStore is a secretstest fake of either provider.
type fakeStore interface {
	Put(id, value string)
	Deny(id string)
	Env(id string) []string
	Close()
}

// TestLoadConfigFromSecretStore: the configuration of a function whose
// secrets are in AWS Secrets Manager or Tencent SSM, read through the
// providers' APIs; errors of the store or of the secret's keys stop the
// start with a message naming them.
func TestLoadConfigFromSecretStore(t *testing.T) {
	stores := map[string]func() fakeStore{
		"AWS":     func() fakeStore { return secretstest.NewAWS() },
		"Tencent": func() fakeStore { return secretstest.NewTencent() },
	}
	good := map[string]string{"WXN_WECHAT_SECRET": "app-secret", "WXN_SESSION_SECRET": strings.Repeat("k", 32),
		"WXN_API_KEYS": "0123456789abcdef", "WXN_WECHAT_PUSH_TOKEN": "push-token"}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			f := newStore()
			defer f.Close()
			f.Put("wxnotify", secretOf(t, good))
			f.Put("typo", secretOf(t, map[string]string{"WXN_SESION_SECRET": "x", "WXN_API_KEYS": "0123456789abcdef"}))
			f.Deny("denied")
			plain := map[string]string{"WXN_WECHAT_APPID": "wx0123456789abcdef"}

			l, err := LoadConfig(context.Background(), envFrom(f.Env("wxnotify"), plain), true, secrets.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c := l.Config
			if err := c.Require(); err != nil {
				t.Fatalf("Require: %v", err)
			}
			if c.AppID != "wx0123456789abcdef" || c.Secret != "app-secret" || c.PushToken != "push-token" || len(c.APIKeys) != 1 {
				t.Errorf("got appid %q secret %q push token %q keys %v; want the environment's appid and the secret's values",
					c.AppID, c.Secret, c.PushToken, c.APIKeys)
			}

			errs := []struct {
				name string
				env  func(string) string
				want string
			}{
				{"ErrUnknownKey", envFrom(f.Env("typo"), plain), "unknown keys WXN_SESION_SECRET"},
				{"ErrDenied", envFrom(f.Env("denied"), plain), "must be allowed GetSecretValue on this secret"},
				{"ErrNotFound", envFrom(f.Env("nope"), plain), `secret "nope"`},
				{"ErrSecretInEnvironment", envFrom(f.Env("wxnotify"), map[string]string{"WECHAT_SECRET": "leaked"}),
					"WECHAT_SECRET is set in the environment"},
			}
			for _, tt := range errs {
				t.Run(tt.name, func(t *testing.T) {
					if _, err := LoadConfig(context.Background(), tt.env, true, secrets.Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("got %v, want an error containing %q", err, tt.want)
					}
				})
			}
		})
	}
}

// TestRotatedAppSecret: the AppSecret is rotated in the secret store and
// at WeChat after the function started; the next login and token fetch
// are refused once by WeChat (40125), the function re-reads the secret and
// succeeds, without a restart.
func TestRotatedAppSecret(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{AppID: "wx0123456789abcdef"})
	defer fake.Close()
	f := secretstest.NewAWS()
	defer f.Close()
	f.Put("wxnotify", secretOf(t, map[string]string{"WXN_WECHAT_SECRET": "rotated-away-0123456789abcdef012",
		"WXN_SESSION_SECRET": strings.Repeat("k", 32), "WXN_API_KEYS": "0123456789abcdef"}))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l, err := LoadConfig(context.Background(), envFrom(f.Env("wxnotify"), map[string]string{
		"WXN_WECHAT_APPID": fake.AppID(), "WXN_WECHAT_API_BASE": fake.URL()}), true, secrets.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(l.Config, st, Options{Function: "login", RefreshSecret: l.RefreshSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// The rotation: the store holds WeChat's secret now.
	f.Put("wxnotify", secretOf(t, map[string]string{"WXN_WECHAT_SECRET": fake.Secret(),
		"WXN_SESSION_SECRET": strings.Repeat("k", 32), "WXN_API_KEYS": "0123456789abcdef"}))
	mu.Lock()
	now = now.Add(secrets.MinRefreshInterval)
	mu.Unlock()
	ctx := context.Background()
	sess, err := p.WeChat.Code2Session(ctx, fake.Login("alice"))
	if err != nil || sess.OpenID != fake.OpenID("alice") {
		t.Fatalf("login after the rotation: got %+v, %v; want alice's session", sess, err)
	}
	if _, err := p.WeChat.GetTemplates(ctx); err != nil {
		t.Fatalf("a call with an access token after the rotation: %v", err)
	}
}

func TestStartLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	logStart(log, "login")
	cfg, err := config.FromEnv(envFrom(nil, map[string]string{"WECHAT_APPID": "wx1", "WXN_WECHAT_APPID": "wx2",
		"WECHAT_SECRET": "s", "WXN_SESSION_SECRET": strings.Repeat("k", 32)}), true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, st, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3 (version, 2 deprecations):\n%s", len(lines), buf.String())
	}
	if _, ok := lines[0]["version"].(string); !ok || lines[0]["function"] != "login" {
		t.Errorf("start line: got %v, want function login and a version", lines[0])
	}
	if _, ok := lines[0]["revision"]; !ok {
		t.Errorf("start line: got %v, want a revision field", lines[0])
	}
	deps := map[any]any{lines[1]["variable"]: lines[1]["use"], lines[2]["variable"]: lines[2]["use"]}
	if deps["WECHAT_APPID"] != "WXN_WECHAT_APPID" || deps["WECHAT_SECRET"] != "WXN_WECHAT_SECRET" {
		t.Errorf("deprecation lines: got %v, want WECHAT_APPID and WECHAT_SECRET with their new names", deps)
	}
	if lines[1]["level"] != "WARN" || !strings.Contains(lines[1]["msg"].(string), "deprecated") {
		t.Errorf("deprecation line: got %v, want a warning", lines[1])
	}
}
