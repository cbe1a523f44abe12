package wechattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the APIs the fake serves, as used by Fault.API and Calls.
const (
	APIToken                  = "token"                  // GET /cgi-bin/token
	APIStableToken            = "stable_token"           // POST /cgi-bin/stable_token
	APICode2Session           = "jscode2session"         // GET /sns/jscode2session
	APISend                   = "send"                   // POST /cgi-bin/message/subscribe/send
	APIGetTemplate            = "gettemplate"            // GET /wxaapi/newtmpl/gettemplate
	APIGetCategory            = "getcategory"            // GET /wxaapi/newtmpl/getcategory
	APIGetPubTemplateTitles   = "getpubtemplatetitles"   // GET /wxaapi/newtmpl/getpubtemplatetitles
	APIGetPubTemplateKeywords = "getpubtemplatekeywords" // GET /wxaapi/newtmpl/getpubtemplatekeywords
	APIAddTemplate            = "addtemplate"            // POST /wxaapi/newtmpl/addtemplate
	APIDelTemplate            = "deltemplate"            // POST /wxaapi/newtmpl/deltemplate
)

// maxBody bounds the request bodies the fake reads.
const maxBody = 1 << 20

// Options configure a Server. The zero value is a usable configuration.
type Options struct {
	// AppID and Secret are the mini program's credentials; random ones are generated when empty.
	AppID, Secret string
	// OriginalID is the mini program's original id ("gh_..."), the ToUserName of pushed events; derived
	// from AppID when empty.
	OriginalID string
	// Now is the clock the fake starts from; time.Now when nil. Advance moves the fake's clock ahead of it.
	Now func() time.Time
	// Templates are the account's private templates; DefaultTemplates() when nil.
	Templates []Template
	// Pages, when not empty, are the pages of the released mini program: the page of a send must be one of
	// them, optionally followed by a query ("pages/index/index?id=1"), else the send fails with 41030.
	Pages []string
	// Categories are the account's categories (getcategory); DefaultCategories() when nil.
	Categories []Category
	// Library is the public template library (getpubtemplatetitles, getpubtemplatekeywords, addtemplate);
	// DefaultLibrary() when nil.
	Library []PubTemplate
	// UnionID makes jscode2session answer a unionid, as WeChat does for an app bound to an Open Platform
	// account.
	UnionID bool
	// TokenFree accepts API calls without access_token, as Cloud Hosting's open interface service does (its
	// sidecar adds the token). A token that is given is still checked.
	TokenFree bool
	// SendDailyQuota is the number of sends a day (Beijing time) before 45009; 10,000,000 when zero, the
	// quota of an account without WeChat Pay.
	SendDailyQuota int
	// Logger receives one debug line per API call; nothing is logged when nil.
	Logger *slog.Logger
	// DiscardMessages keeps no delivered message (Messages and AllMessages
	// stay empty, Delivered still counts them): for benchmarks whose memory
	// must not include WeChat's inboxes.
	DiscardMessages bool
	// Retention bounds the records the fake keeps for tests to read; the zero value keeps every one.
	Retention Retention
}

// Retention bounds what a Server remembers beyond WeChat's truth (users, their credits and acceptances,
// tokens): the messages delivered, the push records and the login codes. A fake that runs for long, such as
// the sandbox of `wxnotify dev`, sets it so that its memory stays bounded whatever its traffic. A zero field
// keeps every record, which is what tests that check every message want. Dropped records are still counted
// (Delivered, PushCounts).
type Retention struct {
	// InboxMessages is how many messages each user's inbox keeps (Messages); the oldest go first.
	InboxMessages int
	// Messages is how many messages all inboxes keep together (AllMessages); the oldest go first.
	Messages int
	// Pushes is how many push records Pushes keeps; the oldest go first.
	Pushes int
	// LoginCodes is how many Login codes the fake remembers. Beyond it the oldest are forgotten (they then
	// answer 40029 like expired codes), even within their 5 minutes; every code is forgotten 10 minutes after
	// it was issued, whatever this says.
	LoginCodes int
}

// Server is a fake WeChat server. Create it with New (no listener: mount Handler) or NewServer (listening
// on a local port), and Close it when done.
type Server struct {
	appID, secret, originalID string
	pages                     []string
	unionID, tokenFree        bool
	sendQuota                 int
	base                      func() time.Time
	offset                    atomic.Int64 // nanoseconds Advance added to base
	logger                    *slog.Logger
	handler                   http.Handler
	ts                        *httptest.Server

	closed    chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	tokens     map[string]*token
	latest     *token // the last token of /cgi-bin/token
	stable     *token // the current token of /cgi-bin/stable_token
	lastForce  time.Time
	quotas     quotas
	codes      map[string]*loginCode
	codeOrder  []string // codes in the order they were issued
	users      map[string]*user
	templates  []*template
	categories []Category
	library    []PubTemplate
	// discardMessages counts delivered messages without keeping them.
	discardMessages bool
	retention       Retention
	delivered       int        // messages delivered, kept or not
	kept            []inboxRef // with Retention.Messages: a ring of the last messages delivered
	keptNext        int        // the oldest entry of kept once it is full
	lastMsgID       int64
	calls           map[string]int
	faults          []*fault
	push            *pusher
	pushes          []PushRecord
	pushesEnded     int // pushes whose delivery ended, recorded or not
	pushesDelivered int // of which delivered

	pmu      sync.Mutex
	pcond    *sync.Cond
	inFlight int // pushes prepared (pushLater) and not yet ended

	// multi is the Multi that serves this Server with other apps, nil when there is none.
	multi atomic.Pointer[Multi]
}

// New returns a Server without a listener: serve its Handler. It fails when opts are inconsistent (an
// invalid or duplicate template, keyword or page, a negative retention).
func New(opts Options) (*Server, error) {
	s := &Server{
		appID:           opts.AppID,
		secret:          opts.Secret,
		originalID:      opts.OriginalID,
		pages:           append([]string(nil), opts.Pages...),
		unionID:         opts.UnionID,
		tokenFree:       opts.TokenFree,
		sendQuota:       opts.SendDailyQuota,
		base:            opts.Now,
		logger:          opts.Logger,
		discardMessages: opts.DiscardMessages,
		retention:       opts.Retention,
		closed:          make(chan struct{}),
		tokens:          make(map[string]*token),
		codes:           make(map[string]*loginCode),
		users:           make(map[string]*user),
		calls:           make(map[string]int),
		lastMsgID:       firstMsgID,
	}
	s.pcond = sync.NewCond(&s.pmu)
	if s.appID == "" {
		s.appID = "wx" + randomHex(8)
	}
	if s.secret == "" {
		s.secret = randomHex(16)
	}
	if s.originalID == "" {
		sum := sha256.Sum256([]byte(s.appID))
		s.originalID = "gh_" + hex.EncodeToString(sum[:6])
	}
	if s.base == nil {
		s.base = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.sendQuota <= 0 {
		s.sendQuota = defaultSendQuota
	}
	if r := opts.Retention; r.InboxMessages < 0 || r.Messages < 0 || r.Pushes < 0 || r.LoginCodes < 0 {
		return nil, errors.New("wechattest: negative retention")
	}
	for _, p := range s.pages {
		if p == "" {
			return nil, errors.New("wechattest: empty page")
		}
	}
	tmpls := opts.Templates
	if tmpls == nil {
		tmpls = DefaultTemplates()
	}
	for _, t := range tmpls {
		if err := s.addTemplate(t); err != nil {
			return nil, err
		}
	}
	s.categories = slices.Clone(opts.Categories)
	if s.categories == nil {
		s.categories = DefaultCategories()
	}
	s.library = cloneLibrary(opts.Library)
	if s.library == nil {
		s.library = DefaultLibrary()
	}
	if err := checkLibrary(s.library); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// NewServer starts a Server listening on a local port, as httptest.NewServer does; its URL is the base
// URL to give the WeChat client. Like httptest.NewServer it panics when it cannot start, here also when
// opts are invalid (see New).
func NewServer(opts Options) *Server {
	s, err := New(opts)
	if err != nil {
		panic(err.Error())
	}
	s.ts = httptest.NewServer(s.handler)
	return s
}

// Handler serves WeChat's API paths (/cgi-bin/..., /sns/..., /wxaapi/...); mount it at the root of a
// listener, or under a prefix with http.StripPrefix.
func (s *Server) Handler() http.Handler { return s.handler }

// URL is the base URL of a Server started by NewServer, "" for one made by New.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Client is an HTTP client for a Server started by NewServer; nil for one made by New.
func (s *Server) Client() *http.Client {
	if s.ts == nil {
		return nil
	}
	return s.ts.Client()
}

// Close stops the listener (if any), cancels pushes in progress and waits for them to end. Later user
// actions push nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	if s.ts != nil {
		s.ts.Close()
	}
	s.WaitPushes()
}

// AppID is the mini program's appid.
func (s *Server) AppID() string { return s.appID }

// Secret is the mini program's AppSecret.
func (s *Server) Secret() string { return s.secret }

// OriginalID is the mini program's original id, the ToUserName of pushed events.
func (s *Server) OriginalID() string { return s.originalID }

// Now is the fake's current time: Options.Now plus every Advance.
func (s *Server) Now() time.Time { return s.base().Add(time.Duration(s.offset.Load())) }

// Advance moves the fake's clock ahead by d: tokens, login codes and quotas age accordingly.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// Calls is the number of calls api received, failed and faulted ones included.
func (s *Server) Calls(api string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[api]
}

// reply is what an API handler answers: a JSON body and, optionally, work to do once the answer is
// written (or dropped), such as pushing a sent event.
type reply struct {
	errcode int
	body    any
	after   func()
}

// errorBody is WeChat's error answer.
type errorBody struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// fail is the reply of WeChat error code with msg (its usual message when empty); WeChat ends every error
// message with a request id.
func (s *Server) fail(code int, msg string) reply { return failAt(s.Now(), code, msg) }

// failAt is the reply of WeChat error code with msg (its usual message when empty) at time now.
func failAt(now time.Time, code int, msg string) reply {
	if msg == "" {
		msg = errmsg(code)
	}
	return reply{errcode: code, body: errorBody{Errcode: code, Errmsg: msg + " rid: " + ridAt(now)}}
}

// errmsg is WeChat's message for an error code.
func errmsg(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40029:
		return "invalid code"
	case 40037:
		return "invalid template_id"
	case 40125:
		return "invalid appsecret"
	case 40163:
		return "code been used"
	case 40164:
		return "invalid ip, not in whitelist"
	case 40226:
		return "high risk user"
	case 41001:
		return "access_token missing"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 41008:
		return "missing code"
	case 41030:
		return "invalid page"
	case 42001:
		return "access_token expired"
	case 43001:
		return "require GET method"
	case 43002:
		return "require POST method"
	case 43101:
		return "user refuse to accept the msg"
	case 43107:
		return "subscribe ability banned"
	case 43108:
		return "concurrent send to the same user"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit  mustslower  retry next minute"
	case 45168:
		return "content contains sensitive words"
	case 47001:
		return "data format error"
	case 47003:
		return "argument invalid!"
	case 48001:
		return "api unauthorized"
	case 200012:
		return "private template count reaches the limit"
	case 200014:
		return "invalid tid"
	case 200016:
		return "invalid start"
	case 200017:
		return "invalid limit"
	case 200018:
		return "ids missing"
	case 200019:
		return "invalid ids"
	case 200020:
		return "invalid kidList"
	case 200021:
		return "invalid sceneDesc"
	case 200022:
		return "template already added"
	}
	return "errcode " + strconv.Itoa(code)
}

// ridAt is a request id shaped like WeChat's: the time now in hex and two random words.
func ridAt(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%08x-%x-%x", uint32(now.Unix()), b[:4], b[4:])
}

// route adapts an API handler: it counts the call, applies an injected fault, checks the method and
// writes the reply as WeChat does (status 200, JSON).
func (s *Server) route(api, method string, h func(*http.Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := s.hit(api)
		if f.Latency > 0 && !sleep(r.Context(), f.Latency) {
			return
		}
		switch {
		case f.Drop == DropBeforeRead:
			s.log(api, "dropped before read", 0)
			hangUp(w)
			return
		case f.HTTPStatus != 0:
			s.log(api, "injected status", f.HTTPStatus)
			http.Error(w, http.StatusText(f.HTTPStatus), f.HTTPStatus)
			return
		case f.Errcode != 0:
			rep := s.fail(f.Errcode, "")
			s.log(api, "injected errcode", f.Errcode)
			writeJSON(w, rep.body)
			return
		}
		var rep reply
		switch {
		case r.Method == method:
			rep = h(r)
		case method == http.MethodGet:
			rep = s.fail(43001, "")
		default:
			rep = s.fail(43002, "")
		}
		if rep.after != nil {
			// Deferred: it runs even when hangUp aborts the handler, so that pending pushes end.
			defer rep.after()
		}
		if f.Drop == DropAfterRead {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
			s.log(api, "processed, answer dropped", rep.errcode)
			hangUp(w)
			return
		}
		s.log(api, "answered", rep.errcode)
		writeJSON(w, rep.body)
	}
}

func (s *Server) log(api, msg string, code int) {
	s.logger.LogAttrs(context.Background(), slog.LevelDebug, "wechattest: "+msg, slog.String("api", api), slog.Int("errcode", code))
}

// writeJSON writes body as WeChat does: status 200, JSON without HTML escaping, flushed at once so that
// work after the answer (a push) does not delay it.
func writeJSON(w http.ResponseWriter, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		http.Error(w, "wechattest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	_ = http.NewResponseController(w).Flush()
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, a wrapping ResponseWriter): net/http's documented way to abort.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString is n random characters of alphabet (at most 256 characters long).
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// decodeObject reads a JSON object body. Keys are matched exactly afterwards, as WeChat does, not with
// encoding/json's case folding.
func decodeObject(r *http.Request) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// stringField reads the string at key of m: "" when absent, ok false when it is not a string.
func stringField(m map[string]json.RawMessage, key string) (string, bool) {
	raw, found := m[key]
	if !found || string(raw) == "null" {
		return "", true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v, true
}

// boolField reads the boolean at key of m: false when absent, ok false when it is not a boolean.
func boolField(m map[string]json.RawMessage, key string) (bool, bool) {
	raw, found := m[key]
	if !found || string(raw) == "null" {
		return false, true
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false
	}
	return v, true
}

// endpoint is one API the fake serves: its path, its name (Fault.API, Calls), its HTTP method and its
// handler.
type endpoint struct {
	path, api, method string
	handle            func(*Server, *http.Request) reply
}

// endpoints are WeChat's paths the fake serves, shared by a Server's routes and a Multi's.
var endpoints = []endpoint{
	{"/cgi-bin/token", APIToken, http.MethodGet, (*Server).handleToken},
	{"/cgi-bin/stable_token", APIStableToken, http.MethodPost, (*Server).handleStableToken},
	{"/sns/jscode2session", APICode2Session, http.MethodGet, (*Server).handleCode2Session},
	{"/cgi-bin/message/subscribe/send", APISend, http.MethodPost, (*Server).handleSend},
	{"/wxaapi/newtmpl/gettemplate", APIGetTemplate, http.MethodGet, (*Server).handleGetTemplate},
	{"/wxaapi/newtmpl/getcategory", APIGetCategory, http.MethodGet, (*Server).handleGetCategory},
	{"/wxaapi/newtmpl/getpubtemplatetitles", APIGetPubTemplateTitles, http.MethodGet, (*Server).handleGetPubTemplateTitles},
	{"/wxaapi/newtmpl/getpubtemplatekeywords", APIGetPubTemplateKeywords, http.MethodGet, (*Server).handleGetPubTemplateKeywords},
	{"/wxaapi/newtmpl/addtemplate", APIAddTemplate, http.MethodPost, (*Server).handleAddTemplate},
	{"/wxaapi/newtmpl/deltemplate", APIDelTemplate, http.MethodPost, (*Server).handleDelTemplate},
}

// routes maps WeChat's paths to the API handlers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.Handle(e.path, s.route(e.api, e.method, func(r *http.Request) reply { return e.handle(s, r) }))
	}
	return mux
}
