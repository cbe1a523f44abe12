package wechattest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// codeLifetime is how long a wx.login code works.
const codeLifetime = 5 * time.Minute

// loginCode is a wx.login code.
type loginCode struct {
	openid string
	issued time.Time
	used   bool
}

// OpenID is the openid of the WeChat user named user in this mini program: always the same for the same
// appid and user, 28 characters like WeChat's. It does not make the user known to the fake (see Login).
func (s *Server) OpenID(user string) string {
	return "o" + hashID(s.appID+"\x00"+user)
}

// unionID is the unionid of user: the same in every app of the Open Platform account.
func unionID(user string) string { return "o" + hashID("unionid\x00"+user) }

// hashID is 27 URL-safe characters derived from s.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// Login plays wx.login for the WeChat user named user: it returns a fresh code that jscode2session accepts
// once within 5 minutes (see Retention.LoginCodes), and makes the user (and its openid, see OpenID) known
// to the fake.
func (s *Server) Login(user string) (code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	// Forget codes long expired, and the oldest beyond Retention.LoginCodes (they then answer 40029 like
	// unknown ones), oldest first.
	limit := s.retention.LoginCodes
	for len(s.codeOrder) > 0 {
		lc := s.codes[s.codeOrder[0]]
		if lc != nil && now.Sub(lc.issued) <= 2*codeLifetime && (limit == 0 || len(s.codeOrder) < limit) {
			break
		}
		delete(s.codes, s.codeOrder[0])
		s.codeOrder = s.codeOrder[1:]
	}
	u := s.userLocked(s.OpenID(user))
	u.name = user
	code = randomString(32, alnum)
	s.codes[code] = &loginCode{openid: u.openid, issued: now} // the user's openid, shared
	s.codeOrder = append(s.codeOrder, code)
	return code
}

// CodeOpenID is the openid of the user a Login code was issued to, used or not, while the fake remembers
// the code (at least its 5 minutes of validity, unless Retention.LoginCodes newer codes were issued since).
// It lets the sandbox identify a user by a code without consuming it.
func (s *Server) CodeOpenID(code string) (openid string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.codes[code]
	if !ok {
		return "", false
	}
	return lc.openid, true
}

type sessionBody struct {
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
}

// handleCode2Session serves GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html).
// Success has no errcode field, as WeChat's often has not; session_key is random on every login. A code
// works once (40163 afterwards) and for 5 minutes (40029 afterwards, as for an unknown code); a missing
// js_code is 41008 and a grant_type other than authorization_code is 40002. A user may log in 100 times
// a minute, then 45011.
func (s *Server) handleCode2Session(r *http.Request) reply {
	q := r.URL.Query()
	if rep, ok := s.checkCredentials(q.Get("appid"), q.Get("secret")); !ok {
		return rep
	}
	if q.Get("grant_type") != "authorization_code" {
		return s.fail(40002, "")
	}
	code := q.Get("js_code")
	if code == "" {
		return s.fail(41008, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	lc, ok := s.codes[code]
	switch {
	case !ok || !now.Before(lc.issued.Add(codeLifetime)):
		return s.fail(40029, "")
	case lc.used:
		return s.fail(40163, "")
	}
	if s.quotas.login == nil {
		s.quotas.login = make(map[string]*counter)
	}
	c := s.quotas.login[lc.openid]
	if c == nil {
		c = &counter{}
		s.quotas.login[lc.openid] = c
	}
	if !c.take(minute(now), loginMinute) {
		return s.fail(45011, "")
	}
	lc.used = true
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	body := sessionBody{SessionKey: base64.StdEncoding.EncodeToString(key), OpenID: lc.openid}
	if s.unionID {
		u := s.users[lc.openid]
		name := u.name
		if name == "" {
			name = u.openid
		}
		body.UnionID = unionID(name)
	}
	return reply{body: body}
}
