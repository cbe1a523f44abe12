package wechat

import (
	"context"
	"log/slog"
	"sync"
)

// appSecret is the AppSecret of a Client or StoreTokenSource. When WeChat
// refuses it and Config.RefreshSecret is set, it asks for the current one,
// so that a secret rotated in a secret store is picked up without a
// restart.
type appSecret struct {
	refresh func(ctx context.Context) (string, error)
	log     *slog.Logger
	appID   string

	mu  sync.Mutex
	cur string
}

func newAppSecret(cfg Config, log *slog.Logger) *appSecret {
	return &appSecret{refresh: cfg.RefreshSecret, log: log, appID: cfg.AppID, cur: cfg.Secret}
}

func (a *appSecret) get() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// IsSecretRefused reports WeChat refusing the AppSecret of stable_token or
// code2Session: 40001 (invalid credential: for these APIs, a wrong
// AppSecret) or 40125 (invalid appsecret).
func IsSecretRefused(err error) bool { return hasCode(err, CodeInvalidCredential, CodeInvalidSecret) }

// renew is called when the call made with secret failed with err. It
// reports whether another secret is now current, worth one more try: one
// set since the call began, or one RefreshSecret returned.
func (a *appSecret) renew(ctx context.Context, secret string, err error) bool {
	if a.refresh == nil || !IsSecretRefused(err) {
		return false
	}
	if a.get() != secret {
		return true
	}
	next, rerr := a.refresh(ctx)
	if rerr != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "wechat AppSecret refused and not re-read",
			slog.String("appid", a.appID), slog.String("error", rerr.Error()))
		return false
	}
	if next == "" || next == secret {
		return false
	}
	a.mu.Lock()
	changed := a.cur == secret
	if changed {
		a.cur = next
	}
	a.mu.Unlock()
	if changed {
		a.log.LogAttrs(ctx, slog.LevelInfo, "wechat AppSecret refused; using the one re-read from the secret store",
			slog.String("appid", a.appID))
	}
	return true
}
