// Package soak drives the whole of wxnotify through its public surfaces -
// the mini program's routes, the server API, lead events, batches and
// WeChat's pushes - while WeChat and the store fail, then checks the
// guarantees of docs/design.md#guarantees against the fake WeChat's truth.
//
// The deployment serves three mini programs at once (wxnotify.yaml's apps,
// each with the same templates, so that only the app scoping keeps them
// apart), behind one fake WeChat host with one Server per app. Every virtual
// user belongs to one app, and all its requests go to that app's routes
// (/v1/apps/<app>/..., /wechat/push/<app>) with that app's own API key. On
// top of the guarantees, the soak checks that no message was sent under
// the wrong AppID: none refused by WeChat for being another app's openid,
// and every message delivered in the inbox of its user's own app.
//
// A small run is part of the normal tests; `make soak` runs the full scale.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Config sizes a soak.
type Config struct {
	Notifications int     // API sends requested (lead events and batches add more)
	Users         int     // WeChat users
	WeChatFaults  float64 // share of WeChat send calls that fail
	StoreFaults   float64 // share of store calls that fail
	// LostReplies is the share of the failed writes that the store applied
	// before failing: the caller gets a timeout and cannot tell.
	LostReplies float64
	Seed        uint64
	Dir         string // for the bbolt file
}

// Report is what a soak measured. The guarantees hold when Violations is
// empty.
type Report struct {
	Requested, Sent, Skipped, Failed, Unknown, Pending int
	FailedBy, UnknownBy                                map[string]int // failed and unknown notifications by reason
	EventsPosted, EventDuplicates                      int
	BatchRecipients                                    int
	WeChatCalls, WeChatFaults, StoreFaults             int
	Delivered                                          int
	DuplicatesDelivered                                int
	WithoutFinalState                                  int
	// LedgerMismatches lists the users whose ledger disagrees with WeChat
	// within what their unknown sends (delivered or not, nobody knows)
	// explain, with those sends.
	LedgerMismatches []string
	// Unexplained lists the ledgers that disagree with WeChat beyond that:
	// each is a violation.
	Unexplained           []string
	UnexplainedMismatches int
	LedgerAbove           int // of the unexplained: above WeChat's count
	TokenFetches          int
	// DeliveredByApp are the messages delivered per app id.
	DeliveredByApp map[string]int
	// WrongApp counts sends WeChat refused because their openid is another
	// app's user (wechattest.Multi.WrongApp); Misrouted counts messages
	// delivered in the inbox of another app than their user's or their
	// request's, and notifications of an app to an openid that is no user
	// of it. Both must be 0.
	WrongApp, Misrouted int
	StoreOpsPerSend     float64
	// StatsCompared counts the consent funnel's figures (per app, template
	// and metric) checked against GET /v1/stats; StatsMismatches those
	// that differed (must be 0).
	StatsCompared, StatsMismatches int
	// LogLines counts every line the service wrote (its log at info level
	// and its metric lines, as EMF); RawIDsInLogs the users whose openid or
	// userId appears in them raw (must be 0: they are logged hashed).
	LogLines, RawIDsInLogs int
	PushesFailed           int
	PushesRedelivered      int // extra copies of answered pushes (WeChat never got the answer)
	Duration               time.Duration
	Violations             []string
	Warnings               []string // what the service logged at warning level or above, requests aside
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak report (%v)\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "  API notifications requested %d; notifications answered (API, lead events, batch unknowns) %d: sent %d, skipped %d, failed %d, unknown %d, pending %d\n",
		r.Requested, r.Sent+r.Skipped+r.Failed+r.Unknown+r.Pending, r.Sent, r.Skipped, r.Failed, r.Unknown, r.Pending)
	for _, by := range []struct {
		what string
		n    map[string]int
	}{{"failed", r.FailedBy}, {"unknown", r.UnknownBy}} {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(by.n)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, by.n[k]))
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "  %s by reason: %s\n", by.what, strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(&b, "  lead events posted %d (%d duplicate deliveries); batch recipients %d\n", r.EventsPosted, r.EventDuplicates, r.BatchRecipients)
	fmt.Fprintf(&b, "  WeChat send calls %d (%d faults injected), store faults injected %d, pushes never answered success %d, extra push copies %d\n",
		r.WeChatCalls, r.WeChatFaults, r.StoreFaults, r.PushesFailed, r.PushesRedelivered)
	fmt.Fprintf(&b, "  messages delivered %d; duplicates delivered %d (must be 0)\n", r.Delivered, r.DuplicatesDelivered)
	var perApp []string
	for _, id := range slices.Sorted(maps.Keys(r.DeliveredByApp)) {
		perApp = append(perApp, fmt.Sprintf("%s %d", id, r.DeliveredByApp[id]))
	}
	fmt.Fprintf(&b, "  apps %d, delivered per app: %s; sends to another app's openid %d, messages or notifications under the wrong app %d (must be 0)\n",
		len(r.DeliveredByApp), strings.Join(perApp, ", "), r.WrongApp, r.Misrouted)
	fmt.Fprintf(&b, "  requests without a recorded final state %d (must be 0)\n", r.WithoutFinalState)
	fmt.Fprintf(&b, "  ledgers disagreeing with WeChat: %d explained by unknown sends, %d not explained (%d above WeChat, %d below; must be 0)\n",
		len(r.LedgerMismatches), r.UnexplainedMismatches, r.LedgerAbove, r.UnexplainedMismatches-r.LedgerAbove)
	for _, m := range r.LedgerMismatches {
		fmt.Fprintf(&b, "    explained   %s\n", m)
	}
	for _, m := range r.Unexplained {
		fmt.Fprintf(&b, "    unexplained %s\n", m)
	}
	fmt.Fprintf(&b, "  consent funnel figures checked against GET /v1/stats %d, differing %d (must be 0)\n", r.StatsCompared, r.StatsMismatches)
	fmt.Fprintf(&b, "  token fetches %d; store round trips per notification, all activity included %.2f\n", r.TokenFetches, r.StoreOpsPerSend)
	fmt.Fprintf(&b, "  log and metric lines %d; users whose openid or userId appears raw in them %d (must be 0)\n", r.LogLines, r.RawIDsInLogs)
	fmt.Fprintf(&b, "  warnings logged %d\n", len(r.Warnings))
	{
		for i, w := range r.Warnings {
			if i == 40 {
				fmt.Fprintf(&b, "    … %d more\n", len(r.Warnings)-i)
				break
			}
			fmt.Fprintf(&b, "    %s\n", w)
		}
	}
	if len(r.Violations) == 0 {
		b.WriteString("  guarantees: all held\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  VIOLATION: %s\n", v)
	}
	return b.String()
}

const (
	leadTmpl = "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
	regTmpl  = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE"
)

// soakApps are the mini programs of the soak's deployment, by app id and
// AppID.
var soakApps = [][2]string{{"sales", "wxsoak00000000a1"}, {"service", "wxsoak00000000b2"}, {"partner", "wxsoak00000000c3"}}

// clock is real time plus an offset: the quiet phase moves it past the
// windows after which the sweeps act.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type system struct {
	cfg      Config
	clock    clock
	multi    *wechattest.Multi
	apps     []*app
	faulty   *storetest.Faulty
	trace    *traceStore
	counting *storetest.Counting
	parts    *boot.Parts
	srv      *httptest.Server
	http     *http.Client

	warnings lockedbuf.Buffer
	logs     lockedbuf.Buffer // every log line and metric line, for the PIPL check

	mu      sync.Mutex
	rng     *rand.Rand
	users   []*user
	bound   []*user               // the users with a userId
	owner   map[string]*app       // openid -> its user's app
	ids     map[string]*app       // notification ids answered -> the app asked
	batchTo map[string]*batchSent // batch id -> its app and recipients
	markers map[string]*app       // marker -> the app of the one request that may deliver it
	report  Report
}

// app is one mini program of the deployment: its fake WeChat, its
// credentials and API key, its service.
type app struct {
	id, appID, key, pushToken, aesKey string
	fake                              *wechattest.Server
	service                           *notify.Service
	users                             []*user
	// shown and accepted are the soak's own totals of the app's popups
	// (all for the lead template): reported shown, answered accept.
	shown, accepted int
}

// path is the app's route of a /v1 path.
func (a *app) path(p string) string { return "/v1/apps/" + a.id + strings.TrimPrefix(p, "/v1") }

type batchSent struct {
	app     *app
	openIDs []string
}

type user struct {
	name, openID, token, userID string
	app                         *app
}

// Run runs one soak and returns its report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	start := time.Now()
	s := &system{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 42)), ids: map[string]*app{}, markers: map[string]*app{},
		batchTo: map[string]*batchSent{}, owner: map[string]*app{},
		report: Report{FailedBy: map[string]int{}, UnknownBy: map[string]int{}, DeliveredByApp: map[string]int{}},
		http:   &http.Client{Timeout: 60 * time.Second}}
	if err := s.start(); err != nil {
		if s.multi != nil {
			s.stop()
		}
		return Report{}, err
	}
	defer s.stop()

	s.setUp(ctx)
	s.injectFaults()
	var wg sync.WaitGroup
	wg.Go(func() { s.apiSends(ctx) })
	wg.Go(func() { s.leadEvents(ctx) })
	wg.Go(func() { s.userChurn(ctx) })
	wg.Go(func() { s.batches(ctx) })
	wg.Go(func() {
		time.Sleep(200 * time.Millisecond)
		for _, a := range s.apps {
			a.fake.InvalidateTokens() // mid-run: every instance must recover with one fetch
		}
	})
	done := make(chan struct{})
	var redelivery sync.WaitGroup
	redelivery.Go(func() { s.redeliverPushes(ctx, done) })
	wg.Wait()
	close(done)
	redelivery.Wait()
	s.quiesce(ctx)
	s.check(ctx)
	s.report.Duration = time.Since(start)
	return s.report, nil
}

func (s *system) start() error {
	example, err := config.ParseFile(config.Example)
	if err != nil {
		return err
	}
	env := map[string]string{"WXN_SESSION_SECRET": strings.Repeat("k", 32),
		"WXN_BATCH_RATE": "5000", "WXN_BATCH_WORKERS": "16", "WXN_BATCH_PAGE_SIZE": "50"}
	var file config.File
	var servers []*wechattest.Server
	for _, sa := range soakApps {
		a := &app{id: sa[0], appID: sa[1], key: "soak-api-key-" + sa[0] + "-0123456789", pushToken: "soaktoken-" + sa[0], aesKey: boot.RandomAESKey()}
		a.fake = wechattest.NewServer(wechattest.Options{AppID: a.appID, Templates: sandbox.Templates(example)})
		servers = append(servers, a.fake)
		s.apps = append(s.apps, a)
		file.Apps = append(file.Apps, config.AppSpec{ID: a.id, AppID: a.appID, Templates: example.Templates, Rules: example.Rules})
		env[config.AppVariable(a.id, "WXN_WECHAT_SECRET")] = a.fake.Secret()
		env[config.AppVariable(a.id, "WXN_WECHAT_PUSH_TOKEN")] = a.pushToken
		env[config.AppVariable(a.id, "WXN_WECHAT_PUSH_AES_KEY")] = a.aesKey
		env[config.AppVariable(a.id, "WXN_API_KEYS")] = a.key
	}
	if s.multi, err = wechattest.NewMultiServer(servers...); err != nil {
		for _, f := range servers {
			f.Close()
		}
		return err
	}
	env["WXN_WECHAT_API_BASE"] = s.multi.URL()
	raw, err := yaml.Marshal(file)
	if err != nil {
		return err
	}
	env["WXN_CONFIG"] = filepath.Join(s.cfg.Dir, "wxnotify.yaml")
	if err := os.WriteFile(env["WXN_CONFIG"], raw, 0o600); err != nil {
		return err
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		return err
	}
	bolt, err := boltstore.Open(filepath.Join(s.cfg.Dir, "soak.db"), boltstore.Options{NoSync: true})
	if err != nil {
		return err
	}
	var under store.Store = bolt
	if os.Getenv("SOAK_DEBUG") != "" {
		s.trace = &traceStore{Store: bolt}
		under = s.trace
	}
	s.faulty = storetest.NewFaulty(under, s.cfg.Seed+1)
	s.counting = storetest.NewCounting(s.faulty)
	// Warnings (a write given up after its retries, …) go with the report.
	// Every line, info included, and the metric lines (as on Lambda) go to
	// s.logs, which is searched for raw identifiers at the end.
	logger := slog.New(fanout{slog.NewTextHandler(&s.warnings, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}), slog.NewJSONHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	s.parts, err = boot.Build(cfg, s.counting, boot.Options{Function: "soak", Now: s.clock.Now, Logger: logger,
		Metrics: observe.EMF(&s.logs)})
	if err != nil {
		_ = bolt.Close()
		return err
	}
	s.srv = httptest.NewServer(s.parts.API.NewMux(httpapi.AllGroups...))
	for _, a := range s.apps {
		pa := s.parts.App(a.id)
		if pa == nil || pa.Service.AppID() != a.appID {
			return fmt.Errorf("soak: the deployment has no app %s of AppID %s", a.id, a.appID)
		}
		a.service = pa.Service
		if err := a.fake.SetPush(wechattest.PushConfig{URL: s.srv.URL + "/wechat/push/" + a.id, Token: a.pushToken,
			EncodingAESKey: a.aesKey, JSON: s.cfg.Seed%2 == 0, Mode: wechattest.Safe, RetryDelay: 5 * time.Millisecond}); err != nil {
			return err
		}
	}
	return nil
}

func (s *system) stop() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.multi.Close()
	if s.parts != nil {
		_ = s.parts.Close()
	}
}

func (s *system) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) str(k string) string { v, _ := a.body[k].(string); return v }

// call makes one HTTP request to the system, with the header given as
// name-value pairs. Transport errors come back as status 0.
func (s *system) call(ctx context.Context, method, path, auth string, body any, header ...string) answer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.srv.URL+path, rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return answer{raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// retrying repeats a request while the answer says a retry may help (5xx,
// 429, no answer), as a well-behaved client with an idempotency key does.
func (s *system) retrying(ctx context.Context, method, path, auth string, body any, header ...string) answer {
	var a answer
	for attempt := range 30 {
		a = s.call(ctx, method, path, auth, body, header...)
		if a.status != 0 && a.status < 500 && a.status != 429 {
			return a
		}
		time.Sleep(time.Duration(5*(attempt+1)) * time.Millisecond)
	}
	return a
}

// setUp logs users in, each in one app in turn, binds half of each app's
// users to userIds (the same userIds in every app: only the app tells their
// users apart) and has them accept templates a few times (WeChat pushes the
// popup events, the mini program reports the results).
func (s *system) setUp(ctx context.Context) {
	for i := range s.cfg.Users {
		a := s.apps[i%len(s.apps)]
		k := i / len(s.apps) // the user's place in its app
		u := &user{name: fmt.Sprintf("soak-user-%04d", i), app: a}
		if k%2 == 0 {
			u.userID = fmt.Sprintf("sales-%04d", k)
			r := s.retrying(ctx, "POST", a.path("/v1/bindings"), a.key, map[string]string{"userId": u.userID, "code": a.fake.Login(u.name)})
			u.token, u.openID = r.str("token"), r.str("openid")
			s.bound = append(s.bound, u)
		} else {
			r := s.retrying(ctx, "POST", a.path("/v1/session"), "", map[string]string{"code": a.fake.Login(u.name)})
			u.token, u.openID = r.str("token"), r.str("openid")
		}
		s.users = append(s.users, u)
		a.users = append(a.users, u)
		s.owner[u.openID] = a
		for range 1 + i%4 {
			s.popup(ctx, u, "accept")
		}
	}
}

// popup is the user answering a subscribe popup for the lead template, and
// the mini program reporting it.
func (s *system) popup(ctx context.Context, u *user, status string) {
	res, err := u.app.fake.Subscribe(u.openID, map[string]string{leadTmpl: status})
	if err != nil {
		return
	}
	// Retried with the same key, as the client kit does.
	s.retrying(ctx, "POST", u.app.path("/v1/consents"), u.token, map[string]any{"result": res}, "Idempotency-Key", "rpt-"+s.marker(u.app))
	shown := s.retrying(ctx, "POST", u.app.path("/v1/consents/shown"), u.token, map[string]any{"templates": []string{leadTmpl}},
		"Idempotency-Key", "shown-"+s.marker(u.app))
	s.mu.Lock()
	defer s.mu.Unlock()
	if shown.status == http.StatusOK {
		u.app.shown++
	}
	if status == "accept" {
		u.app.accepted++
	}
}

func (s *system) injectFaults() {
	s.faulty.SetRate(s.cfg.StoreFaults, s.cfg.LostReplies, 2*time.Millisecond)
	// WeChat: 30% of sends fail in every way WeChat and networks fail,
	// spread over the apps.
	kinds := []wechattest.Fault{
		{Errcode: -1}, {Errcode: 45009}, {Errcode: 43108}, {HTTPStatus: 502}, {HTTPStatus: 503},
		{Latency: 80 * time.Millisecond, Errcode: -1}, {Drop: wechattest.DropBeforeRead}, {Drop: wechattest.DropAfterRead},
	}
	total := int(float64(s.cfg.Notifications) * 1.5 * s.cfg.WeChatFaults)
	for i := range total {
		f := kinds[(i/len(s.apps))%len(kinds)]
		f.API, f.Count = wechattest.APISend, 1
		_ = s.apps[i%len(s.apps)].fake.Inject(f)
	}
	s.report.WeChatFaults = total
}

// marker returns a fresh marker, which only a request of app a may deliver.
func (s *system) marker(a *app) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := fmt.Sprintf("S%06d", len(s.markers))
	s.markers[m] = a
	return m
}

// record notes the notification of an answer of app a.
func (s *system) record(r answer, a *app) {
	if id := r.str("id"); id != "" {
		s.mu.Lock()
		s.ids[id] = a
		s.mu.Unlock()
	}
}

// apiSends is each app's CRM: sends with and without idempotency keys.
func (s *system) apiSends(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range s.cfg.Notifications {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u := s.users[s.intn(len(s.users))]
			a := u.app
			m := s.marker(a)
			to := map[string]string{"openid": u.openID}
			if u.userID != "" && i%3 == 0 {
				to = map[string]string{"userId": u.userID}
			}
			body := map[string]any{"to": to, "template": "lead_assigned",
				"data": map[string]string{"thing1": "Soak Ltd", "character_string2": m, "time3": "09:30", "thing4": "soak"}}
			path := a.path("/v1/notifications")
			if i%4 != 0 {
				body["idempotencyKey"] = "soak-" + m
				s.record(s.retrying(ctx, "POST", path, a.key, body), a)
				if i%7 == 0 { // the CRM's own retry after it got its answer
					s.record(s.retrying(ctx, "POST", path, a.key, body), a)
				}
			} else {
				s.record(s.call(ctx, "POST", path, a.key, body), a) // no key: never retried
			}
			s.mu.Lock()
			s.report.Requested++
			s.mu.Unlock()
		})
	}
	wg.Wait()
}

// leadEvents is each app's lead system: events delivered at least once -
// duplicates, concurrently, out of order.
func (s *system) leadEvents(ctx context.Context) {
	n := s.cfg.Notifications / 5
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		u := s.bound[s.intn(len(s.bound))]
		a := u.app
		m := s.marker(a)
		ev := map[string]any{"id": "soak-evt-" + m, "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
			"data": map[string]any{"lead": map[string]any{"id": m, "name": "Lead " + m}, "assignee": map[string]any{"userId": u.userID}}}
		copies := 1 + i%3
		s.mu.Lock()
		s.report.EventsPosted++
		s.report.EventDuplicates += copies - 1
		s.mu.Unlock()
		for range copies {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				r := s.retrying(ctx, "POST", a.path("/v1/events"), a.key, ev)
				if list, ok := r.body["notifications"].([]any); ok {
					for _, x := range list {
						if id, _ := x.(map[string]any)["id"].(string); id != "" {
							s.mu.Lock()
							s.ids[id] = a
							s.mu.Unlock()
						}
					}
				}
			})
		}
	}
	wg.Wait()
}

// userChurn: users subscribe again and turn templates off meanwhile.
func (s *system) userChurn(ctx context.Context) {
	for i := range s.cfg.Users {
		u := s.users[s.intn(len(s.users))]
		switch {
		case i%5 == 0:
			_ = u.app.fake.Unsubscribe(u.openID, leadTmpl)
		default:
			s.popup(ctx, u, "accept")
		}
	}
}

// batches creates a few batches in every app and ticks them with runs
// killed at random.
func (s *system) batches(ctx context.Context) {
	for b := range 3 {
		for _, a := range s.apps {
			s.batch(ctx, a, b)
		}
	}
	// Ticks killed at random points: their context ends mid-run. The apps
	// run at once, as the batch function's tick runs them.
	for range 40 {
		tctx, cancel := context.WithTimeout(ctx, time.Duration(5+s.intn(60))*time.Millisecond)
		var wg sync.WaitGroup
		for _, a := range s.apps {
			wg.Go(func() { _ = a.service.RunBatches(tctx, s.clock.Now().Add(time.Minute)) })
		}
		wg.Wait()
		cancel()
	}
}

// batch creates app a's batch number b, to two thirds of its users.
func (s *system) batch(ctx context.Context, a *app, b int) {
	var recipients []map[string]any
	for i, u := range a.users {
		if (i+b)%3 == 0 {
			continue
		}
		recipients = append(recipients, map[string]any{"openid": u.openID, "data": map[string]string{"character_string2": fmt.Sprintf("B%d-%s", b, u.openID[:8])}})
	}
	s.mu.Lock()
	for _, r := range recipients {
		s.markers[r["data"].(map[string]string)["character_string2"]] = a
	}
	s.report.BatchRecipients += len(recipients)
	s.mu.Unlock()
	r := s.retrying(ctx, "POST", a.path("/v1/batches"), a.key, map[string]any{"template": "lead_assigned", "recipients": recipients,
		"data": map[string]string{"thing1": "Digest", "time3": "09:30", "thing4": "batch"}, "idempotencyKey": fmt.Sprintf("soak-batch-%s-%d", a.id, b)})
	if id := r.str("id"); id != "" {
		sent := &batchSent{app: a}
		for _, r := range recipients {
			sent.openIDs = append(sent.openIDs, r["openid"].(string))
		}
		s.mu.Lock()
		s.batchTo[id] = sent
		s.mu.Unlock()
	}
}

// redeliverPushes is WeChat not getting our answers: a fifth of the pushes
// it made are posted again, one to three more times, with the same
// parameters, to the app's push route, while the run goes on.
func (s *system) redeliverPushes(ctx context.Context, done <-chan struct{}) {
	seen := make([]int, len(s.apps))
	for {
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for i, a := range s.apps {
			pushes := a.fake.Pushes()
			for _, p := range pushes[seen[i]:] {
				if p.Query == nil || s.intn(5) != 0 {
					continue
				}
				for range 1 + s.intn(3) {
					s.repost(ctx, a, p)
				}
			}
			seen[i] = len(pushes)
		}
	}
}

// repost posts push p of app a again.
func (s *system) repost(ctx context.Context, a *app, p wechattest.PushRecord) {
	req, err := http.NewRequestWithContext(ctx, "POST", s.srv.URL+"/wechat/push/"+a.id+"?"+p.Query.Encode(), bytes.NewReader(p.Body))
	if err != nil {
		return
	}
	if resp, err := s.http.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	s.mu.Lock()
	s.report.PushesRedelivered++
	s.mu.Unlock()
}

// quiesce stops the faults and lets everything settle: pushes delivered,
// batches finished, retryable failures retried by their clients.
func (s *system) quiesce(ctx context.Context) {
	for _, a := range s.apps {
		a.fake.ClearFaults()
	}
	s.faulty.SetRate(0, 0, 0)
	for _, a := range s.apps {
		a.fake.WaitPushes()
	}
	runBatches := func() {
		for range 200 {
			var errs []error
			for _, a := range s.apps {
				errs = append(errs, a.service.RunBatches(ctx, s.clock.Now().Add(time.Minute)))
			}
			if errors.Join(errs...) == nil && s.batchesDone(ctx) {
				break
			}
		}
	}
	runBatches()
	if !s.batchesDone(ctx) {
		// A batch that met an injected 45009 waits for WeChat's daily quota
		// to start again: the next day, on the service's and on WeChat's
		// clock (its pushes are signed with its time).
		d := notify.QuotaReset(s.clock.Now()).Add(2 * time.Minute).Sub(s.clock.Now())
		s.clock.advance(d)
		for _, a := range s.apps {
			a.fake.Advance(d)
		}
		runBatches()
	}
	for _, a := range s.apps {
		a.fake.WaitPushes()
	}
	// An hour later (on the service's clock): sends whose sent event never
	// came are closed as not delivered, reports WeChat never confirmed are
	// withdrawn - the batch function's tick does both, for every app.
	s.clock.advance(time.Hour)
	tick := boot.Tick(s.parts)
	for range 20 {
		if err := tick(ctx, s.clock.Now().Add(time.Minute)); err == nil {
			break
		}
	}
	// Each tick settles at most a thousand: the schedule's next ticks do the rest.
	for _, a := range s.apps {
		for range 100 {
			if n, err := a.service.SweepUnknown(ctx); err == nil && n == 0 {
				break
			}
		}
	}
}

// batchesDone reports whether no app has a batch due.
func (s *system) batchesDone(ctx context.Context) bool {
	for _, a := range s.apps {
		page, err := s.parts.Store.Query(ctx, store.Query{Partition: "batdue|" + a.appID, Limit: 10})
		if err != nil || len(page.Items) > 0 {
			return false
		}
	}
	return true
}

// count adds an answered notification to the report.
func (s *system) count(n notify.Notification, unknown map[string][]string) {
	r := &s.report
	switch n.Status {
	case notify.StatusSent:
		r.Sent++
	case notify.StatusSkipped:
		r.Skipped++
	case notify.StatusFailed:
		r.Failed++
		r.FailedBy[n.Reason]++
		if n.Retryable {
			// The client retried until it got an answer that is not
			// "retry": a retryable failure left is a lost request.
			r.WithoutFinalState++
			r.Violations = append(r.Violations, fmt.Sprintf("notification %s left failed/retryable", n.ID))
		}
	case notify.StatusUnknown:
		s.countUnknown(n, unknown)
	default:
		r.Pending++
		r.WithoutFinalState++
		r.Violations = append(r.Violations, fmt.Sprintf("notification %s still %s", n.ID, n.Status))
	}
}

// countUnknown adds an unknown notification to the report and to its
// user's list of unknown sends.
func (s *system) countUnknown(n notify.Notification, unknown map[string][]string) {
	s.report.Unknown++
	s.report.UnknownBy[string(n.Source)+" "+n.Reason]++
	unknown[n.OpenID] = append(unknown[n.OpenID], fmt.Sprintf("%s (%s, %s)", n.ID, n.Source, n.Reason))
}

// check compares everything with WeChat's truth.
func (s *system) check(ctx context.Context) {
	r := &s.report
	s.checkMessages()
	// Every notification answered has a final state.
	ids := slices.Sorted(maps.Keys(s.ids))
	unknown := map[string][]string{} // openid -> its unknown notifications, with their reason
	for _, id := range ids {
		a := s.ids[id]
		n, err := a.service.Notification(ctx, id)
		if err != nil {
			r.WithoutFinalState++
			r.Violations = append(r.Violations, fmt.Sprintf("notification %s of %s: %v", id, a.id, err))
			continue
		}
		if n.OpenID != "" && s.owner[n.OpenID] != a {
			r.Misrouted++
			r.Violations = append(r.Violations, fmt.Sprintf("notification %s of %s is to %s, no user of it", id, a.id, n.OpenID))
		}
		s.count(n, unknown)
	}
	for _, id := range slices.Sorted(maps.Keys(s.batchTo)) {
		b := s.batchTo[id]
		for _, openID := range b.openIDs {
			n, err := b.app.service.BatchNotification(ctx, id, notify.Recipient{OpenID: openID})
			if err != nil {
				r.Violations = append(r.Violations, fmt.Sprintf("batch %s of %s recipient %s: %v", id, b.app.id, openID[:8], err))
				continue
			}
			if n.Status == notify.StatusUnknown {
				s.countUnknown(n, unknown)
			}
		}
	}
	s.checkLedgers(ctx, unknown)
	s.checkStats(ctx)
	s.checkLogs()
	for _, a := range s.apps {
		for _, p := range a.fake.Pushes() {
			if !p.Delivered {
				r.PushesFailed++
			}
		}
		r.WeChatCalls += a.fake.Calls(wechattest.APISend)
		r.TokenFetches += a.fake.Calls(wechattest.APIStableToken)
	}
	r.StoreFaults = s.faulty.Faults()
	if r.Requested > 0 {
		r.StoreOpsPerSend = float64(s.counting.Total()) / float64(r.Requested+r.EventsPosted+r.BatchRecipients)
	}
	slices.Sort(r.Violations)
	for _, l := range strings.Split(s.warnings.String(), "\n") {
		if l != "" && !strings.Contains(l, "msg=request ") {
			r.Warnings = append(r.Warnings, l)
		}
	}
}

// checkLogs searches every log and metric line for the users' raw openids
// and userIds: they must appear hashed only (PIPL, docs/observability.md).
// The lines are cut into words of id characters once, so that the search
// costs one pass whatever the number of users.
func (s *system) checkLogs() {
	r := &s.report
	s.parts.FlushMetrics()
	raw := s.logs.String()
	r.LogLines = strings.Count(raw, "\n")
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(raw, func(c rune) bool {
		return !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}) {
		words[w] = true
	}
	for _, u := range s.users {
		if words[u.openID] || u.userID != "" && words[u.userID] {
			r.RawIDsInLogs++
			if r.RawIDsInLogs <= 3 {
				r.Violations = append(r.Violations, fmt.Sprintf("user %s (app %s): a raw openid or userId is in the logs", u.name, u.app.id))
			}
		}
	}
	if r.LogLines == 0 {
		r.Violations = append(r.Violations, "the service wrote no log line: the PIPL check saw nothing")
	}
}

// fanout is a slog.Handler that hands every record to each of its
// handlers that is enabled for it.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, rec slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, rec.Level) {
			errs = append(errs, h.Handle(ctx, rec.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// checkMessages counts the messages every app's WeChat delivered: each
// marker at most once, each message in the inbox of the app of its user
// and of the request that carried its marker, and no send refused for
// being to another app's openid.
func (s *system) checkMessages() {
	r := &s.report
	seen := map[string]int{}
	for _, a := range s.apps {
		msgs := a.fake.AllMessages()
		r.Delivered += len(msgs)
		r.DeliveredByApp[a.id] = len(msgs)
		for _, m := range msgs {
			marker := m.Data["character_string2"]
			seen[marker]++
			if owner, from := s.owner[m.OpenID], s.markers[marker]; owner != a || from != a {
				r.Misrouted++
				r.Violations = append(r.Violations, fmt.Sprintf("message %s delivered in %s's inbox: its user's app %s, its request's app %s",
					marker, a.id, appName(owner), appName(from)))
			}
		}
	}
	for m, n := range seen {
		if n > 1 {
			r.DuplicatesDelivered += n - 1
			r.Violations = append(r.Violations, fmt.Sprintf("marker %s delivered %d times", m, n))
		}
	}
	if r.WrongApp = s.multi.WrongApp(); r.WrongApp != 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d sends to another app's openid (WeChat 40003)", r.WrongApp))
	}
}

func appName(a *app) string {
	if a == nil {
		return "(none)"
	}
	return a.id
}

// checkLedgers compares the ledger of every user, in its app, with its
// app's WeChat.
func (s *system) checkLedgers(ctx context.Context, unknown map[string][]string) {
	r := &s.report
	for _, u := range s.users {
		cs, err := u.app.service.Consents(ctx, u.openID)
		if err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("consents of %s: %v", u.name, err))
			continue
		}
		for _, c := range cs {
			if c.Template.ID != leadTmpl {
				continue
			}
			truth := u.app.fake.Credits(u.openID, leadTmpl)
			if int(c.Credits) == truth {
				continue
			}
			// Each unknown send left may have been delivered or not: the
			// ledger (which counts it spent) may be that many below WeChat.
			if causes := unknown[u.openID]; int(c.Credits) < truth && truth-int(c.Credits) <= len(causes) {
				r.LedgerMismatches = append(r.LedgerMismatches, fmt.Sprintf("%s (%s): ledger %d, WeChat %d: unknown %s", u.name, u.app.id, c.Credits, truth, strings.Join(causes, ", ")))
				if s.trace != nil && len(r.LedgerMismatches) <= 4 {
					s.debugUser(ctx, u)
				}
				continue
			}
			r.UnexplainedMismatches++
			if int(c.Credits) > truth {
				r.LedgerAbove++
			}
			r.Unexplained = append(r.Unexplained, fmt.Sprintf("%s (%s): ledger %d credits, WeChat %d", u.name, u.app.id, c.Credits, truth))
			if s.trace != nil && r.UnexplainedMismatches <= 4 {
				s.debugUser(ctx, u)
			}
			r.Violations = append(r.Violations, fmt.Sprintf("ledger of %s (%s): %d credits, WeChat %d, not explained by an unknown send", u.name, u.app.id, c.Credits, truth))
		}
	}
}

// debugUser prints what happened to a user whose ledger disagrees with
// WeChat (SOAK_DEBUG=1): WeChat's messages and pushes, the store writes to
// the user's ledger and pairing balance, and the user's notifications.
func (s *system) debugUser(ctx context.Context, u *user) {
	a := u.app
	fmt.Printf("=== %s %s app %s userId %s\n", u.name, u.openID, a.id, u.userID)
	for _, l := range s.trace.log["u|"+a.appID+"|"+u.openID] {
		fmt.Println("  store", l)
	}
	for _, m := range a.fake.Messages(u.openID) {
		fmt.Printf("  wechat msg %d at %s %s\n", m.MsgID, m.SentAt.Format("15:04:05.000"), m.Data["character_string2"])
	}
	for _, p := range a.fake.Pushes() {
		if p.Event.FromUserName != u.openID {
			continue
		}
		fmt.Printf("  push %s t=%d items=%+v delivered=%v attempts=%d\n", p.Event.Event, p.Event.CreateTime, p.Event.Items, p.Delivered, len(p.Attempts))
	}
	var ids []string
	for id, of := range s.ids {
		if of == a {
			ids = append(ids, id)
		}
	}
	for bid, b := range s.batchTo {
		if b.app != a || !slices.Contains(b.openIDs, u.openID) {
			continue
		}
		n, _ := a.service.BatchNotification(ctx, bid, notify.Recipient{OpenID: u.openID})
		ids = append(ids, n.ID)
	}
	for _, id := range ids {
		n, err := a.service.Notification(ctx, id)
		if err != nil || n.OpenID != u.openID {
			continue
		}
		fmt.Printf("  ntf %s %s %s/%s msgid=%s created %s updated %s attempts %d data %s\n", n.ID, n.Source, n.Status, n.Reason, n.WeChat.MsgID, n.CreatedAt.Format("15:04:05.000"), n.UpdatedAt.Format("15:04:05.000"), n.Attempts, n.Data["character_string2"])
	}
	if it, err := s.parts.Store.Get(ctx, store.Key{Partition: "u|" + a.appID + "|" + u.openID, Sort: "unk|" + leadTmpl}); err == nil {
		fmt.Printf("  sent log %s\n", it.Value)
	}
	due, _ := s.parts.Store.Query(ctx, store.Query{Partition: "unkdue|" + a.appID, Limit: 1000})
	for _, it := range due.Items {
		if strings.Contains(string(it.Value), u.openID) {
			fmt.Printf("  unknown due %s\n", it.Key.Sort)
		}
	}
}

// checkStats compares the soak's own totals with each app's consent funnel
// (GET /v1/stats over the days of the run): the popups it showed and
// accepted (each grants one credit, from its report or its popup event),
// the final outcomes of every notification of the app (sent; skipped is
// held or wasted) read from the history, and the sent events WeChat pushed
// for delivered messages. Any difference is a violation.
func (s *system) checkStats(ctx context.Context) {
	r := &s.report
	from := time.Now().Add(-24 * time.Hour).UTC().Format(time.DateOnly) // a run is shorter than a day
	to := s.clock.Now().UTC().Format(time.DateOnly)
	for _, a := range s.apps {
		want := map[string]map[string]int64{leadTmpl: {"shown": int64(a.shown), "accepted": int64(a.accepted),
			"granted": int64(a.accepted), "rejected": 0}}
		add := func(tmpl, metric string) {
			if want[tmpl] == nil {
				want[tmpl] = map[string]int64{}
			}
			want[tmpl][metric]++
		}
		for cursor, pages := "", 0; pages < 10000; pages++ {
			page, err := a.service.ListNotifications(ctx, notify.NotificationFilter{}, cursor, notify.MaxNotificationListLimit)
			if err != nil {
				r.Violations = append(r.Violations, fmt.Sprintf("stats of %s: list notifications: %v", a.id, err))
				return
			}
			for _, n := range page.Notifications {
				switch n.Status {
				case notify.StatusSent:
					add(n.TemplateID, "sent")
				case notify.StatusSkipped:
					add(n.TemplateID, "held+wasted")
				}
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		for _, p := range a.fake.Pushes() {
			if p.Event.Event != wechat.EventSubscribeSent {
				continue
			}
			for _, it := range p.Event.Items {
				if it.ErrorCode == 0 {
					add(it.TemplateID, "delivered")
				}
			}
		}
		got, err := s.fetchStats(ctx, a, from, to)
		if err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("stats of %s: %v", a.id, err))
			continue
		}
		for _, tmpl := range slices.Sorted(maps.Keys(want)) {
			for _, metric := range slices.Sorted(maps.Keys(want[tmpl])) {
				r.StatsCompared++
				if g, w := got[tmpl][metric], want[tmpl][metric]; g != w {
					r.StatsMismatches++
					r.Violations = append(r.Violations, fmt.Sprintf("stats of %s, template %.12s: %s %d, the soak counted %d", a.id, tmpl, metric, g, w))
				}
			}
		}
	}
}

// fetchStats reads app a's funnel totals per template id and metric
// (held+wasted summed) from GET /v1/stats.
func (s *system) fetchStats(ctx context.Context, a *app, from, to string) (map[string]map[string]int64, error) {
	ans := s.retrying(ctx, "GET", a.path("/v1/stats")+"?from="+from+"&to="+to, a.key, nil)
	if ans.status != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/stats: %d %s", ans.status, ans.raw)
	}
	var body struct {
		Totals []struct {
			TemplateID string `json:"templateId"`
			Shown      int64  `json:"shown"`
			Accepted   int64  `json:"accepted"`
			Rejected   int64  `json:"rejected"`
			Granted    int64  `json:"granted"`
			Sent       int64  `json:"sent"`
			Delivered  int64  `json:"delivered"`
			Held       int64  `json:"held"`
			Wasted     int64  `json:"wasted"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(ans.raw), &body); err != nil {
		return nil, fmt.Errorf("GET /v1/stats: %w", err)
	}
	out := map[string]map[string]int64{}
	for _, t := range body.Totals {
		out[t.TemplateID] = map[string]int64{"shown": t.Shown, "accepted": t.Accepted, "rejected": t.Rejected,
			"granted": t.Granted, "sent": t.Sent, "delivered": t.Delivered, "held+wasted": t.Held + t.Wasted}
	}
	return out, nil
}
