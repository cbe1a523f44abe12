package wechat_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// rotated is a RefreshSecret hook that answers the secret store's current
// value and counts its calls.
type rotated struct {
	secret string
	err    error
	calls  atomic.Int64
}

func (r *rotated) refresh(context.Context) (string, error) {
	r.calls.Add(1)
	return r.secret, r.err
}

// TestRefreshSecret: WeChat refuses a rotated-away AppSecret (the fake
// answers 40125 to any other than its own) and the hook's secret is used,
// for stable_token and for code2Session, then kept; without the hook, or
// when it fails or answers the same secret, the refusal stands.
func TestRefreshSecret(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	tests := []struct {
		name      string
		hook      *rotated
		wantOK    bool
		wantCalls int64
	}{
		{"Rotated", &rotated{secret: fake.Secret()}, true, 1},
		{"NoHook", nil, false, 0},
		{"HookFails", &rotated{err: errors.New("store down")}, false, 2},
		{"SameSecret", &rotated{secret: "old-secret-0123456789abcdef01234"}, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := wechat.Config{AppID: fake.AppID(), Secret: "old-secret-0123456789abcdef01234", BaseURL: fake.URL(),
				HTTPClient: fake.Client()}
			if tt.hook != nil {
				cfg.RefreshSecret = tt.hook.refresh
			}
			src, err := wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Tokens = src
			c, err := wechat.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for range 2 { // the second time, the kept secret works at once
				_, err = src.Token(ctx)
				if (err == nil) != tt.wantOK {
					t.Fatalf("Token: got %v, want success %v", err, tt.wantOK)
				}
				if !tt.wantOK && !wechat.IsSecretRefused(err) {
					t.Fatalf("Token: got %v, want the refusal (40125)", err)
				}
				if tt.hook == nil || tt.wantOK {
					break
				}
			}
			sess, err := c.Code2Session(ctx, fake.Login("alice"))
			if (err == nil) != tt.wantOK {
				t.Fatalf("Code2Session: got %v, want success %v", err, tt.wantOK)
			}
			if tt.wantOK && sess.OpenID != fake.OpenID("alice") {
				t.Errorf("Code2Session: got openid %q, want alice's", sess.OpenID)
			}
			if tt.hook != nil && tt.hook.calls.Load() < tt.wantCalls {
				t.Errorf("RefreshSecret called %d times, want at least %d", tt.hook.calls.Load(), tt.wantCalls)
			}
			if tt.wantOK {
				// Both kept the new secret: no more hook calls.
				calls := tt.hook.calls.Load()
				if _, err := c.Code2Session(ctx, fake.Login("bob")); err != nil {
					t.Fatalf("Code2Session with the kept secret: %v", err)
				}
				if got := tt.hook.calls.Load(); got != calls {
					t.Errorf("RefreshSecret called again (%d, then %d): the new secret was not kept", calls, got)
				}
			}
		})
	}
}
