package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
)

// maxCodeLen bounds a js_code; wx.login codes are 32 characters.
const maxCodeLen = 256

// Session is what code2Session returns for a wx.login code.
//
// SessionKey decrypts data the mini program receives from WeChat; it must
// never reach a client. It is therefore left out of JSON, String and
// LogValue: persist it explicitly if it is needed at all.
type Session struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"` // only when the app is bound to an Open Platform account
	SessionKey string `json:"-"`
}

// LogValue logs short hashes of the ids and no session key.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("openid", ShortHash(s.OpenID)),
		slog.String("unionid", ShortHash(s.UnionID)),
		slog.String("session_key", "REDACTED"),
	)
}

// String shows short hashes of the ids and no session key, so that %v and
// %+v are safe in logs.
func (s Session) String() string {
	return "wechat.Session{openid:" + ShortHash(s.OpenID) + " unionid:" + ShortHash(s.UnionID) + " session_key:REDACTED}"
}

// ShortHash returns a short, stable, non-reversible tag of an id such as an
// openid, for logs: 12 hex digits of its SHA-256, or "" for "".
func ShortHash(id string) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

type code2SessionResponse struct {
	apiStatus
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
}

// Code2Session exchanges a wx.login code for the user's openid, unionid
// and session key. A code works once and lives five minutes: IsInvalidCode
// reports a code that is invalid, expired or used. Other errcodes:
// IsUserBlocked (40226), IsRateLimited (45011), IsRetryable (-1),
// IsMisconfigured (wrong appid or secret). An empty or oversized code is
// refused locally with ErrInvalidArgument.
//
// It needs Config.Secret, except in token-free mode, and no access token.
// A secret WeChat refuses is replaced through Config.RefreshSecret, if set.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html
func (c *Client) Code2Session(ctx context.Context, code string) (Session, error) {
	const api = "auth.code2Session"
	switch {
	case code == "":
		return Session{}, fmt.Errorf("wechat %s: %w: empty code", api, ErrInvalidArgument)
	case len(code) > maxCodeLen:
		return Session{}, fmt.Errorf("wechat %s: %w: code longer than %d bytes", api, ErrInvalidArgument, maxCodeLen)
	}
	secret := c.secret.get()
	if secret == "" && !c.tokenFree {
		return Session{}, fmt.Errorf("wechat %s: no secret configured", api)
	}
	var out code2SessionResponse
	err := c.roundTrip(ctx, code2SessionRequest(code, c.appID, secret), "", &out)
	if err != nil && c.secret.renew(ctx, secret, err) {
		out = code2SessionResponse{}
		err = c.roundTrip(ctx, code2SessionRequest(code, c.appID, c.secret.get()), "", &out)
	}
	if err != nil {
		return Session{}, err
	}
	if out.OpenID == "" {
		return Session{}, &TransportError{API: api, Written: true, Err: errors.New("answer without openid")}
	}
	return Session{OpenID: out.OpenID, UnionID: out.UnionID, SessionKey: out.SessionKey}, nil
}

func code2SessionRequest(code, appID, secret string) *request {
	q := url.Values{"js_code": {code}, "grant_type": {"authorization_code"}}
	if appID != "" {
		q.Set("appid", appID)
	}
	if secret != "" {
		q.Set("secret", secret)
	}
	return getRequest("auth.code2Session", "/sns/jscode2session", q)
}
