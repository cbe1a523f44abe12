package wechattest

import (
	"net/http"
	"time"
)

const (
	tokenLifetime = 7200 * time.Second
	// tokenOverlap is how long a replaced token keeps working, and how long before expiry
	// stable_token renews its token.
	tokenOverlap = 5 * time.Minute
	// tokenLength is the length of issued tokens: WeChat asks clients to keep 512 characters.
	tokenLength   = 512
	tokenAlphabet = alnum + "_-"

	forceRefreshInterval = 30 * time.Second
	forceRefreshDaily    = 20
	tokenDaily           = 2000
	stableMinute         = 10000
	stableDaily          = 500000
	loginMinute          = 100 // jscode2session calls per minute and user
	defaultSendQuota     = 10000000
)

// token is an access token and its life.
type token struct {
	value   string
	expires time.Time
	cutoff  time.Time // when set, the token is invalid (40001) from then on
}

// valid reports whether t works at now.
func (t *token) valid(now time.Time) bool {
	return now.Before(t.expires) && (t.cutoff.IsZero() || now.Before(t.cutoff))
}

// cut makes t invalid from at on, unless it already is earlier.
func (t *token) cut(at time.Time) {
	if t.cutoff.IsZero() || at.Before(t.cutoff) {
		t.cutoff = at
	}
}

// counter counts events in the current period (a minute, a day) against a limit.
type counter struct {
	period int64
	n      int
}

// take counts one event of period and reports whether it stays within limit.
func (c *counter) take(period int64, limit int) bool {
	if c.period != period {
		c.period, c.n = period, 0
	}
	if c.n >= limit {
		return false
	}
	c.n++
	return true
}

// quotas are WeChat's call limits.
type quotas struct {
	token, stableMinute, stableDay, force, send counter
	login                                       map[string]*counter // per openid, per minute
}

// day numbers days as WeChat's quotas do: they reset at midnight Beijing time (UTC+8).
func day(t time.Time) int64 { return (t.Unix() + 8*3600) / 86400 }

func minute(t time.Time) int64 { return t.Unix() / 60 }

// issueToken makes a new token valid for tokenLifetime from now; s.mu must be held.
func (s *Server) issueToken(now time.Time) *token {
	for v, t := range s.tokens {
		// Forget tokens dead for a day; they then answer 40001 like any unknown token.
		end := t.expires
		if !t.cutoff.IsZero() && t.cutoff.Before(end) {
			end = t.cutoff
		}
		if now.Sub(end) > 24*time.Hour {
			delete(s.tokens, v)
		}
	}
	t := &token{value: randomString(tokenLength, tokenAlphabet), expires: now.Add(tokenLifetime)}
	s.tokens[t.value] = t
	return t
}

// InvalidateTokens makes every token issued so far invalid (40001), as when another party force-refreshed
// them: the next stable_token call in normal mode issues a new token.
func (s *Server) InvalidateTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	for _, t := range s.tokens {
		t.cut(now)
	}
	s.latest, s.stable = nil, nil
}

// issued reports whether the Server issued the access token v and still remembers it (valid or not:
// checkToken then tells which error it is); a token it never issued, or forgot a day after it died,
// answers 40001 from any Server. A Multi asks it to route a call to the app whose token it carries.
func (s *Server) issued(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[v]
	return ok
}

// checkToken checks the access_token of an API call; s.mu must be held. It answers 41001 when the token
// is missing, 40001 when it is unknown or was replaced more than 5 minutes ago (or force-refreshed away),
// 42001 when it expired.
func (s *Server) checkToken(r *http.Request, now time.Time) (reply, bool) {
	v := r.URL.Query().Get("access_token")
	if v == "" {
		if s.tokenFree {
			return reply{}, true
		}
		return s.fail(41001, ""), false
	}
	t, ok := s.tokens[v]
	switch {
	case !ok || (!t.cutoff.IsZero() && !now.Before(t.cutoff)):
		return s.fail(40001, ""), false
	case !now.Before(t.expires):
		return s.fail(42001, ""), false
	}
	return reply{}, true
}

// checkCredentials checks the appid and secret of a token or login call.
func (s *Server) checkCredentials(appID, secret string) (reply, bool) {
	switch {
	case appID == "":
		return s.fail(41002, ""), false
	case secret == "":
		return s.fail(41004, ""), false
	case appID != s.appID:
		return s.fail(40013, ""), false
	case secret != s.secret:
		return s.fail(40125, "invalid appsecret, view more at http://t.cn/RAEkdVq"), false
	}
	return reply{}, true
}

type tokenBody struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// handleToken serves GET /cgi-bin/token?grant_type=client_credential&appid=&secret=
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getAccessToken.html).
// Every call issues a new token valid 7200 s; the previous one keeps working 5 more minutes. 2,000 calls
// a day, then 45009.
func (s *Server) handleToken(r *http.Request) reply {
	q := r.URL.Query()
	if rep, ok := s.checkCredentials(q.Get("appid"), q.Get("secret")); !ok {
		return rep
	}
	if q.Get("grant_type") != "client_credential" {
		return s.fail(40002, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if !s.quotas.token.take(day(now), tokenDaily) {
		return s.fail(45009, "")
	}
	if s.latest != nil {
		s.latest.cut(now.Add(tokenOverlap))
	}
	s.latest = s.issueToken(now)
	return reply{body: tokenBody{AccessToken: s.latest.value, ExpiresIn: int64(tokenLifetime / time.Second)}}
}

// handleStableToken serves POST /cgi-bin/stable_token with the JSON body {grant_type, appid, secret,
// force_refresh} (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getStableAccessToken.html),
// independently of /cgi-bin/token.
//
// In normal mode it answers the current token while more than 5 minutes of it are left (expires_in is
// what is left, so at least 300), and a new one in its last 5 minutes, the old one working until it
// expires. force_refresh issues a new token and invalidates the old one at once; WeChat allows it 20 times
// a day and 30 s apart: the fake answers 45011 (minute quota) to a refresh within 30 s of the previous one
// and 45009 (daily quota) past 20 a day. 10,000 calls a minute (45011) and 500,000 a day (45009).
// A body that is not a JSON object, or fields of the wrong JSON type, answer 47001.
func (s *Server) handleStableToken(r *http.Request) reply {
	m, ok := decodeObject(r)
	if !ok {
		return s.fail(47001, "")
	}
	grant, ok1 := stringField(m, "grant_type")
	appID, ok2 := stringField(m, "appid")
	secret, ok3 := stringField(m, "secret")
	force, ok4 := boolField(m, "force_refresh")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return s.fail(47001, "")
	}
	if rep, ok := s.checkCredentials(appID, secret); !ok {
		return rep
	}
	if grant != "client_credential" {
		return s.fail(40002, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if !s.quotas.stableMinute.take(minute(now), stableMinute) {
		return s.fail(45011, "")
	}
	if !s.quotas.stableDay.take(day(now), stableDaily) {
		return s.fail(45009, "")
	}
	switch {
	case force:
		if !s.lastForce.IsZero() && now.Sub(s.lastForce) < forceRefreshInterval {
			return s.fail(45011, "")
		}
		if !s.quotas.force.take(day(now), forceRefreshDaily) {
			return s.fail(45009, "")
		}
		s.lastForce = now
		if s.stable != nil {
			s.stable.cut(now)
		}
		s.stable = s.issueToken(now)
	case s.stable == nil || !s.stable.valid(now) || !now.Before(s.stable.expires.Add(-tokenOverlap)):
		s.stable = s.issueToken(now)
	}
	return reply{body: tokenBody{AccessToken: s.stable.value, ExpiresIn: int64(s.stable.expires.Sub(now) / time.Second)}}
}
