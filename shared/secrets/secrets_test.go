package secrets_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/secrets"
	"github.com/wxnotify/wxnotify/shared/secrets/secretstest"
)

const secretJSON = `{"WXN_WECHAT_SECRET":"app-secret","WXN_SESSION_SECRET":"0123456789abcdef0123456789abcdef"}`

func envOf(vars []string, extra ...string) func(string) string {
	m := map[string]string{}
	for _, kv := range append(vars, extra...) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// fake is a secret store of either provider.
type fake interface {
	Put(id, value string)
	Deny(id string)
	Calls() int
	Env(id string) []string
	Close()
}

func providers() map[string]func() fake {
	return map[string]func() fake{
		"AWS":     func() fake { return secretstest.NewAWS() },
		"Tencent": func() fake { return secretstest.NewTencent() },
	}
}

func TestLoad(t *testing.T) {
	for name, newFake := range providers() {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			defer f.Close()
			f.Put("wxnotify", secretJSON)
			f.Put("binary-ish", `["not", "an", "object"]`)
			f.Put("numbers", `{"WXN_API_KEYS": ["a", "b"], "WXN_BATCH_RATE": 5}`)
			f.Deny("forbidden")
			tests := []struct {
				name  string
				id    string
				extra []string
				want  string // error substring; "" for success
			}{
				{"OK", "wxnotify", nil, ""},
				{"ErrNotFound", "wxnotfy", nil, `secret "wxnotfy"`},
				{"ErrDenied", "forbidden", nil, "must be allowed GetSecretValue"},
				{"ErrWrongKey", "wxnotify", []string{"AWS_SECRET_ACCESS_KEY=wrong", "TENCENTCLOUD_SECRETKEY=wrong"}, "credentials were refused"},
				{"ErrWrongToken", "wxnotify", []string{"AWS_SESSION_TOKEN=stale", "TENCENTCLOUD_SESSIONTOKEN=stale"}, "oken"},
				{"ErrWrongVersion", "wxnotify", []string{"WXN_SECRETS_VERSION=AWSPREVIOUS-or-v0"}, "ResourceNotFound"},
				{"ErrNotObject", "binary-ish", nil, "not a JSON object"},
				{"ErrNotStrings", "numbers", nil, "must be JSON strings: WXN_API_KEYS, WXN_BATCH_RATE"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					l, err := secrets.New(envOf(f.Env(tt.id), tt.extra...), secrets.Options{})
					if err != nil {
						t.Fatal(err)
					}
					values, err := l.Load(context.Background())
					if tt.want != "" {
						if err == nil || !strings.Contains(err.Error(), tt.want) {
							t.Fatalf("got %v, %v; want an error containing %q", values, err, tt.want)
						}
						if !strings.Contains(err.Error(), "WXN_SECRETS_SOURCE="+l.Source()) {
							t.Errorf("error %q does not name the source", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if values["WXN_WECHAT_SECRET"] != "app-secret" || len(values) != 2 {
						t.Errorf("got %v, want the secret's two keys", values)
					}
				})
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"BadSource", envOf(nil, "WXN_SECRETS_SOURCE=vault"), `WXN_SECRETS_SOURCE: "vault" is not env, aws-secretsmanager or tencent-ssm`},
		{"NoID", envOf(nil, "WXN_SECRETS_SOURCE=aws-secretsmanager"), "WXN_SECRETS_ID: required"},
		{"IDWithoutSource", envOf(nil, "WXN_SECRETS_ID=wxnotify"), "WXN_SECRETS_ID: set without a secret store"},
		{"AWSNoCredentials", envOf(nil, "WXN_SECRETS_SOURCE=aws-secretsmanager", "WXN_SECRETS_ID=wxnotify", "AWS_REGION=us-east-1"),
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset"},
		{"AWSNoRegion", envOf(nil, "WXN_SECRETS_SOURCE=aws-secretsmanager", "WXN_SECRETS_ID=wxnotify", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b"),
			"AWS_REGION is unset"},
		{"TencentNoCredentials", envOf(nil, "WXN_SECRETS_SOURCE=tencent-ssm", "WXN_SECRETS_ID=wxnotify", "TENCENTCLOUD_REGION=ap-guangzhou"),
			"TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY are unset"},
		{"TencentNoRegion", envOf(nil, "WXN_SECRETS_SOURCE=tencent-ssm", "WXN_SECRETS_ID=wxnotify", "TENCENTCLOUD_SECRETID=a", "TENCENTCLOUD_SECRETKEY=b"),
			"TENCENTCLOUD_REGION is unset"},
		{"BadEndpoint", envOf(nil, "WXN_SECRETS_SOURCE=tencent-ssm", "WXN_SECRETS_ID=wxnotify", "TENCENTCLOUD_SECRETID=a",
			"TENCENTCLOUD_SECRETKEY=b", "TENCENTCLOUD_REGION=ap-guangzhou", "WXN_SECRETS_ENDPOINT=ssm.local"), `endpoint "ssm.local"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := secrets.New(tt.env, secrets.Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	for _, env := range []func(string) string{envOf(nil), envOf(nil, "WXN_SECRETS_SOURCE=env")} {
		if l, err := secrets.New(env, secrets.Options{}); l != nil || err != nil {
			t.Errorf("source env: got %v, %v; want no loader", l, err)
		}
	}
}

// TestRefresh: Load reads once; Refresh re-reads at most once a minute,
// one read for any number of concurrent callers, and picks up a rotated
// value.
func TestRefresh(t *testing.T) {
	for name, newFake := range providers() {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			defer f.Close()
			f.Put("wxnotify", `{"WXN_WECHAT_SECRET":"v1"}`)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			l, err := secrets.New(envOf(f.Env("wxnotify")), secrets.Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for range 3 {
				if v, err := l.Load(ctx); err != nil || v["WXN_WECHAT_SECRET"] != "v1" {
					t.Fatalf("Load: got %v, %v", v, err)
				}
			}
			if got := f.Calls(); got != 1 {
				t.Fatalf("reads after 3 Loads: got %d, want 1", got)
			}
			f.Put("wxnotify", `{"WXN_WECHAT_SECRET":"v2"}`)
			if v, _ := l.Refresh(ctx); v["WXN_WECHAT_SECRET"] != "v1" || f.Calls() != 1 {
				t.Fatalf("Refresh within a minute of the read: got %v after %d reads, want v1 kept, 1 read", v, f.Calls())
			}
			advance(secrets.MinRefreshInterval)
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if v, err := l.Refresh(ctx); err != nil || v["WXN_WECHAT_SECRET"] != "v2" {
						t.Errorf("concurrent Refresh: got %v, %v; want v2", v, err)
					}
				})
			}
			wg.Wait()
			if got := f.Calls(); got != 2 {
				t.Errorf("reads after 20 concurrent Refreshes: got %d, want 2", got)
			}
			if v, _ := l.Load(ctx); v["WXN_WECHAT_SECRET"] != "v2" {
				t.Errorf("Load after the refresh: got %v, want v2", v)
			}
			// A failed refresh keeps the values it had.
			f.Deny("wxnotify")
			advance(secrets.MinRefreshInterval)
			if _, err := l.Refresh(ctx); err == nil {
				t.Error("Refresh of a denied secret: got no error")
			}
			if v, err := l.Load(ctx); err != nil || v["WXN_WECHAT_SECRET"] != "v2" {
				t.Errorf("Load after a failed refresh: got %v, %v; want v2 kept", v, err)
			}
		})
	}
}
