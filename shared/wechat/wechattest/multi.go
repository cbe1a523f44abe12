package wechattest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"
)

// Multi is a fake WeChat host serving several mini programs at one base URL, as api.weixin.qq.com serves
// every app: each app is a Server, which keeps all its behaviour (tokens, users, credits, templates,
// messages, faults, quotas, pushes). Create it with NewMulti (no listener: mount Handler) or
// NewMultiServer (listening on a local port), and Close it when done.
//
// A call reaches the Server of its app: /cgi-bin/token and /sns/jscode2session by their appid query
// parameter, /cgi-bin/stable_token by the appid of its JSON body, every other API by the Server that
// issued its access_token. A call Multi cannot route is answered as WeChat would: 41002 without appid,
// 40013 for an appid no Server has, 41001 without access_token (Options.TokenFree is not served through
// a Multi: such a call names no app), 40001 for a token no Server issued; a stable_token call that is not
// a POST answers 43002, one whose body is not a JSON object (or whose appid is not a string) 47001.
// Multi's own answers count in no Server's Calls and hit no Server's faults.
//
// A subscribe send whose touser is a user of another app than the token's is refused with 40003, as
// WeChat refuses an openid of another mini program, and counted by WrongApp. Openids already differ per
// app: OpenID derives them from the AppID.
//
// A Multi is safe for concurrent use. A Server belongs to one Multi at most.
type Multi struct {
	servers  []*Server // in the order given
	byAppID  map[string]*Server
	handler  http.Handler
	ts       *httptest.Server
	wrongApp atomic.Int64
}

// NewMulti returns a Multi without a listener serving servers, one per app: serve its Handler. It fails
// when servers is empty, holds nil, two Servers with the same AppID, or a Server that already belongs to
// another Multi. The Servers' own listeners (NewServer), if any, keep serving.
func NewMulti(servers ...*Server) (*Multi, error) {
	if len(servers) == 0 {
		return nil, errors.New("wechattest: multi: no server")
	}
	m := &Multi{servers: append([]*Server(nil), servers...), byAppID: make(map[string]*Server, len(servers))}
	for i, s := range m.servers {
		if s == nil {
			return nil, fmt.Errorf("wechattest: multi: server %d is nil", i)
		}
		if _, dup := m.byAppID[s.appID]; dup {
			return nil, fmt.Errorf("wechattest: multi: duplicate appid %s", s.appID)
		}
		m.byAppID[s.appID] = s
	}
	for i, s := range m.servers {
		if !s.multi.CompareAndSwap(nil, m) {
			for _, claimed := range m.servers[:i] {
				claimed.multi.Store(nil)
			}
			return nil, fmt.Errorf("wechattest: multi: server of appid %s already belongs to another Multi", s.appID)
		}
	}
	m.handler = m.routes()
	return m, nil
}

// NewMultiServer starts a Multi listening on a local port, as httptest.NewServer does; its URL is the
// base URL to give every app's WeChat client. It fails as NewMulti does.
func NewMultiServer(servers ...*Server) (*Multi, error) {
	m, err := NewMulti(servers...)
	if err != nil {
		return nil, err
	}
	m.ts = httptest.NewServer(m.handler)
	return m, nil
}

// Handler serves WeChat's API paths for every app; mount it at the root of a listener, or under a prefix
// with http.StripPrefix.
func (m *Multi) Handler() http.Handler { return m.handler }

// URL is the base URL of a Multi started by NewMultiServer, "" for one made by NewMulti.
func (m *Multi) URL() string {
	if m.ts == nil {
		return ""
	}
	return m.ts.URL
}

// Client is an HTTP client for a Multi started by NewMultiServer; nil for one made by NewMulti.
func (m *Multi) Client() *http.Client {
	if m.ts == nil {
		return nil
	}
	return m.ts.Client()
}

// Close stops the listener (if any) and closes every Server (see Server.Close).
func (m *Multi) Close() {
	if m.ts != nil {
		m.ts.Close()
	}
	for _, s := range m.servers {
		s.Close()
	}
}

// App is the Server of the app appID, nil when the Multi has none.
func (m *Multi) App(appID string) *Server { return m.byAppID[appID] }

// Apps are the Servers, in the order NewMulti was given them.
func (m *Multi) Apps() []*Server { return append([]*Server(nil), m.servers...) }

// WrongApp is the number of subscribe sends refused (40003) because their touser is a user of another
// app than the one whose token made the call.
func (m *Multi) WrongApp() int { return int(m.wrongApp.Load()) }

// refusedOpenID is told by s that it refused a send to openid, no user of its own: the refusal counts in
// WrongApp when another app has that user. No Server's lock may be held.
func (m *Multi) refusedOpenID(s *Server, openid string) {
	for _, o := range m.servers {
		if o != s && o.knows(openid) {
			m.wrongApp.Add(1)
			return
		}
	}
}

// routes maps WeChat's paths to the dispatch of each API.
func (m *Multi) routes() http.Handler {
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.Handle(e.path, m.dispatch(e))
	}
	return mux
}

// dispatch hands a call of e to the Server of its app, or answers it when it names none.
func (m *Multi) dispatch(e endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, rep := m.pick(e, r)
		if s == nil {
			writeJSON(w, rep.body)
			return
		}
		s.handler.ServeHTTP(w, r)
	}
}

// pick is the Server a call of e goes to, or the reply when there is none.
func (m *Multi) pick(e endpoint, r *http.Request) (*Server, reply) {
	switch e.api {
	case APIToken, APICode2Session:
		return m.app(r.URL.Query().Get("appid"))
	case APIStableToken:
		if r.Method != http.MethodPost {
			return nil, m.fail(43002)
		}
		appID, ok := bodyAppID(r)
		if !ok {
			return nil, m.fail(47001)
		}
		return m.app(appID)
	}
	return m.tokenOwner(r.URL.Query().Get("access_token"))
}

// app is the Server of appID, or WeChat's answer when there is none.
func (m *Multi) app(appID string) (*Server, reply) {
	if appID == "" {
		return nil, m.fail(41002)
	}
	if s := m.byAppID[appID]; s != nil {
		return s, reply{}
	}
	return nil, m.fail(40013)
}

// tokenOwner is the Server that issued the access token v, or WeChat's answer when there is none.
func (m *Multi) tokenOwner(v string) (*Server, reply) {
	if v == "" {
		return nil, m.fail(41001)
	}
	for _, s := range m.servers {
		if s.issued(v) {
			return s, reply{}
		}
	}
	return nil, m.fail(40001)
}

// fail is Multi's own error reply; its request id carries the wall clock, as no app's clock applies.
func (m *Multi) fail(code int) reply { return failAt(time.Now(), code, "") }

// bodyAppID reads the appid of a JSON object body and puts the body back for the Server to read; ok is
// false when the body is not a JSON object within maxBody or its appid is not a string.
func bodyAppID(r *http.Request) (appID string, ok bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		return "", false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	var obj map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&obj); err != nil || obj == nil {
		return "", false
	}
	return stringField(obj, "appid")
}
