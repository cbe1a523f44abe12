package notify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// User is a WeChat user of the app, possibly bound to the customer's own
// account id.
type User struct {
	OpenID     string    `json:"openid"`
	UnionID    string    `json:"unionid,omitempty"`
	UserID     string    `json:"userId,omitempty"`
	FirstLogin time.Time `json:"firstLogin"`
	LastLogin  time.Time `json:"lastLogin"`
	// SessionKey is kept only with Options.StoreSessionKey.
	SessionKey string `json:"sessionKey,omitempty"`
}

// LoginResult is the answer to a login or a binding.
type LoginResult struct {
	Token     string
	ExpiresAt time.Time
	OpenID    string
	UserID    string
}

// maxUserIDLen bounds customer account ids.
const maxUserIDLen = 128

// CheckUserID validates a customer account id.
func CheckUserID(field, id string) error {
	if id == "" {
		return FieldError(field, "required")
	}
	if len(id) > maxUserIDLen || !utf8.ValidString(id) {
		return FieldError(field, "must be valid UTF-8 of at most %d bytes", maxUserIDLen)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '|' {
			return FieldError(field, "must not contain spaces, control characters or '|'")
		}
	}
	return nil
}

// checkOpenID validates an openid given by a caller.
func checkOpenID(field, id string) error {
	if id == "" {
		return FieldError(field, "required")
	}
	if len(id) > 64 {
		return FieldError(field, "is not an openid")
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return FieldError(field, "is not an openid")
		}
	}
	return nil
}

// code2Session exchanges a wx.login code, mapping WeChat's answers to domain
// errors.
func (s *Service) code2Session(ctx context.Context, code string) (wechat.Session, error) {
	if code == "" {
		return wechat.Session{}, FieldError("code", "required")
	}
	if len(code) > 256 {
		return wechat.Session{}, FieldError("code", "too long")
	}
	sess, err := s.wx.Code2Session(ctx, code)
	if err == nil {
		return sess, nil
	}
	var we *wechat.Error
	if errors.As(err, &we) {
		switch we.Code {
		case 40029, 40163:
			return sess, &Error{Code: CodeInvalidCode, Field: "code", Message: "the login code is invalid, expired or already used", WeChatErrcode: we.Code, Err: err}
		case 40226:
			return sess, &Error{Code: CodeBlockedUser, Message: "WeChat blocked this user as high-risk", WeChatErrcode: we.Code, Err: err}
		case 45011:
			return sess, &Error{Code: CodeRateLimited, Message: "too many logins for this user, retry in a minute", WeChatErrcode: we.Code, Err: err}
		case -1:
			return sess, &Error{Code: CodeWeChatUnavailable, Message: "WeChat is busy, retry later", WeChatErrcode: we.Code, Err: err}
		}
		return sess, &Error{Code: CodeInternal, Message: "login exchange failed", WeChatErrcode: we.Code, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return sess, err
	}
	return sess, &Error{Code: CodeWeChatUnavailable, Message: "WeChat is unreachable, retry later", Err: err}
}

// Login exchanges a fresh wx.login code for a session token, recording the
// user. WeChat's session_key is never returned and, by default, never stored.
func (s *Service) Login(ctx context.Context, code string) (LoginResult, error) {
	sess, err := s.code2Session(ctx, code)
	if err != nil {
		return LoginResult{}, err
	}
	u, err := s.touchUser(ctx, sess, nil)
	if err != nil {
		return LoginResult{}, err
	}
	return s.loginResult(u), nil
}

func (s *Service) loginResult(u User) LoginResult {
	token, exp := s.sessions.Issue(s.appID, u.OpenID)
	return LoginResult{Token: token, ExpiresAt: exp, OpenID: u.OpenID, UserID: u.UserID}
}

// touchUser creates or updates the user record after a login; edit, if
// non-nil, changes it further. It retries on concurrent updates.
func (s *Service) touchUser(ctx context.Context, sess wechat.Session, edit func(*User)) (User, error) {
	now := s.now().UTC()
	return s.updateUser(ctx, sess.OpenID, func(u *User, exists bool) {
		if !exists {
			u.FirstLogin = now
		}
		u.LastLogin = now
		if sess.UnionID != "" {
			u.UnionID = sess.UnionID
		}
		if s.storeSessionKey {
			u.SessionKey = sess.SessionKey
		}
		if edit != nil {
			edit(u)
		}
	})
}

// updateUser applies edit to the user record with optimistic concurrency.
func (s *Service) updateUser(ctx context.Context, openID string, edit func(u *User, exists bool)) (User, error) {
	key := s.profileKey(openID)
	for range 8 {
		var u User
		opts := store.PutOptions{IfAbsent: true}
		it, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(it.Value, &u); err != nil {
				return User{}, storeErr("decode user", err)
			}
			opts = store.PutOptions{IfVersion: it.Version}
		case !errors.Is(err, store.ErrNotFound):
			return User{}, storeErr("get user", err)
		}
		u.OpenID = openID
		edit(&u, err == nil)
		b, _ := json.Marshal(u)
		if _, err := s.st.Put(ctx, key, b, opts); err == nil {
			return u, nil
		} else if !errors.Is(err, store.ErrConflict) {
			return User{}, storeErr("put user", err)
		}
	}
	return User{}, storeErr("put user", errors.New("too many concurrent updates"))
}

// User returns the user record of an openid.
func (s *Service) User(ctx context.Context, openID string) (User, error) {
	it, err := s.st.Get(ctx, s.profileKey(openID))
	if errors.Is(err, store.ErrNotFound) {
		return User{}, Errorf(CodeNotFound, "no such user")
	}
	if err != nil {
		return User{}, storeErr("get user", err)
	}
	var u User
	if err := json.Unmarshal(it.Value, &u); err != nil {
		return User{}, storeErr("decode user", err)
	}
	return u, nil
}

type binding struct {
	OpenID  string    `json:"openid"`
	BoundAt time.Time `json:"boundAt"`
}

// Bind exchanges a wx.login code and binds the customer's account userID to
// that WeChat user, as the customer's own login backend does after checking
// the user's password. Re-binding a userID moves it to the new openid; an
// openid holds one userID at a time.
func (s *Service) Bind(ctx context.Context, userID, code string) (LoginResult, error) {
	if err := CheckUserID("userId", userID); err != nil {
		return LoginResult{}, err
	}
	sess, err := s.code2Session(ctx, code)
	if err != nil {
		return LoginResult{}, err
	}
	var previousUserID string
	u, err := s.touchUser(ctx, sess, func(u *User) {
		if u.UserID != userID {
			previousUserID = u.UserID
		}
		u.UserID = userID
	})
	if err != nil {
		return LoginResult{}, err
	}
	// The userID may have belonged to another openid: unbind it there.
	if old, err := s.ResolveUserID(ctx, userID); err == nil && old != sess.OpenID {
		if _, err := s.updateUser(ctx, old, func(o *User, _ bool) {
			if o.UserID == userID {
				o.UserID = ""
			}
		}); err != nil {
			return LoginResult{}, err
		}
	}
	b, _ := json.Marshal(binding{OpenID: sess.OpenID, BoundAt: s.now().UTC()})
	if _, err := s.st.Put(ctx, s.bindingKey(userID), b, store.PutOptions{}); err != nil {
		return LoginResult{}, storeErr("put binding", err)
	}
	// This openid's previous userID no longer resolves to it.
	if previousUserID != "" {
		if err := s.deleteBindingIf(ctx, previousUserID, sess.OpenID); err != nil {
			return LoginResult{}, err
		}
	}
	return s.loginResult(u), nil
}

// deleteBindingIf removes userID's binding if it still points to openID.
func (s *Service) deleteBindingIf(ctx context.Context, userID, openID string) error {
	it, err := s.st.Get(ctx, s.bindingKey(userID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("get binding", err)
	}
	var b binding
	if json.Unmarshal(it.Value, &b) != nil || b.OpenID != openID {
		return nil
	}
	err = s.st.Delete(ctx, s.bindingKey(userID), store.DeleteOptions{IfVersion: it.Version})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return storeErr("delete binding", err)
	}
	return nil
}

// Unbind removes userID's binding; not_found if it has none.
func (s *Service) Unbind(ctx context.Context, userID string) error {
	if err := CheckUserID("userId", userID); err != nil {
		return err
	}
	openID, err := s.ResolveUserID(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.deleteBindingIf(ctx, userID, openID); err != nil {
		return err
	}
	_, err = s.updateUser(ctx, openID, func(u *User, _ bool) {
		if u.UserID == userID {
			u.UserID = ""
		}
	})
	return err
}

// ResolveUserID returns the openid bound to userID, or a not_found *Error.
func (s *Service) ResolveUserID(ctx context.Context, userID string) (string, error) {
	it, err := s.st.Get(ctx, s.bindingKey(userID))
	if errors.Is(err, store.ErrNotFound) {
		return "", &Error{Code: CodeNotFound, Field: "userId", Message: "no WeChat user is bound to this userId"}
	}
	if err != nil {
		return "", storeErr("get binding", err)
	}
	var b binding
	if err := json.Unmarshal(it.Value, &b); err != nil {
		return "", storeErr("decode binding", err)
	}
	return b.OpenID, nil
}

// normalizeStatus maps WeChat's consent statuses to the ledger's: the
// accept variants of newer clients count as accept.
func normalizeStatus(st string) (string, bool) {
	switch strings.TrimSpace(st) {
	case "accept", "acceptWithAudio", "acceptWithAlert":
		return StatusAccept, true
	case "reject":
		return StatusReject, true
	case "ban":
		return StatusBan, true
	case "filter":
		return StatusFilter, true
	}
	return "", false
}
