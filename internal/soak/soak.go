// Package soak drives the whole of wxnotify through its public surfaces -
// the mini program's routes, the server API, lead events, batches and
// WeChat's pushes - while WeChat and the store fail, then checks the
// guarantees of docs/design.md#guarantees against the fake WeChat's truth.
//
// A small run is part of the normal tests; `make soak` runs the full scale.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
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
	StoreOpsPerSend       float64
	PushesFailed          int
	PushesRedelivered     int // extra copies of answered pushes (WeChat never got the answer)
	Duration              time.Duration
	Violations            []string
	Warnings              []string // what the service logged at warning level or above, requests aside
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
	fmt.Fprintf(&b, "  requests without a recorded final state %d (must be 0)\n", r.WithoutFinalState)
	fmt.Fprintf(&b, "  ledgers disagreeing with WeChat: %d explained by unknown sends, %d not explained (%d above WeChat, %d below; must be 0)\n",
		len(r.LedgerMismatches), r.UnexplainedMismatches, r.LedgerAbove, r.UnexplainedMismatches-r.LedgerAbove)
	for _, m := range r.LedgerMismatches {
		fmt.Fprintf(&b, "    explained   %s\n", m)
	}
	for _, m := range r.Unexplained {
		fmt.Fprintf(&b, "    unexplained %s\n", m)
	}
	fmt.Fprintf(&b, "  token fetches %d; store round trips per notification, all activity included %.2f\n", r.TokenFetches, r.StoreOpsPerSend)
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
	appID    = "wxsoak0000000000"
)

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
	fake     *wechattest.Server
	faulty   *storetest.Faulty
	trace    *traceStore
	counting *storetest.Counting
	parts    *boot.Parts
	srv      *httptest.Server
	key      string
	http     *http.Client

	warnings lockedbuf.Buffer

	mu      sync.Mutex
	rng     *rand.Rand
	users   []*user
	ids     map[string]bool     // notification ids answered
	batchTo map[string][]string // batch id -> recipients' openids
	markers map[string]int      // marker -> how many requests may deliver it (1)
	report  Report
}

type user struct {
	name, openID, token, userID string
}

// Run runs one soak and returns its report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	start := time.Now()
	s := &system{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 42)), ids: map[string]bool{}, markers: map[string]int{}, batchTo: map[string][]string{},
		report: Report{FailedBy: map[string]int{}, UnknownBy: map[string]int{}},
		http:   &http.Client{Timeout: 60 * time.Second}}
	if err := s.start(); err != nil {
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
		s.fake.InvalidateTokens() // mid-run: every instance must recover with one fetch
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
	s.fake = wechattest.NewServer(wechattest.Options{AppID: appID, Templates: sandbox.Templates(example)})
	s.key = "soak-api-key-0123456789"
	env := map[string]string{"WXN_WECHAT_APPID": appID, "WXN_WECHAT_SECRET": s.fake.Secret(), "WXN_WECHAT_API_BASE": s.fake.URL(),
		"WXN_WECHAT_PUSH_TOKEN": "soaktoken", "WXN_WECHAT_PUSH_AES_KEY": boot.RandomAESKey(),
		"WXN_SESSION_SECRET": strings.Repeat("k", 32), "WXN_API_KEYS": s.key,
		"WXN_BATCH_RATE": "5000", "WXN_BATCH_WORKERS": "16", "WXN_BATCH_PAGE_SIZE": "50"}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, true)
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
	logger := slog.New(slog.NewTextHandler(&s.warnings, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	s.parts, err = boot.Build(cfg, s.counting, boot.Options{Function: "soak", Now: s.clock.Now, Logger: logger})
	if err != nil {
		_ = bolt.Close()
		return err
	}
	s.srv = httptest.NewServer(s.parts.API.NewMux(httpapi.AllGroups...))
	return s.fake.SetPush(wechattest.PushConfig{URL: s.srv.URL + "/wechat/push", Token: "soaktoken",
		EncodingAESKey: env["WXN_WECHAT_PUSH_AES_KEY"], JSON: s.cfg.Seed%2 == 0, Mode: wechattest.Safe, RetryDelay: 5 * time.Millisecond})
}

func (s *system) stop() {
	s.srv.Close()
	s.fake.Close()
	_ = s.parts.Close()
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

// setUp logs users in, binds half of them to userIds and has them accept
// templates a few times (WeChat pushes the popup events, the mini program
// reports the results).
func (s *system) setUp(ctx context.Context) {
	for i := range s.cfg.Users {
		u := &user{name: fmt.Sprintf("soak-user-%04d", i)}
		if i%2 == 0 {
			u.userID = fmt.Sprintf("sales-%04d", i)
			a := s.retrying(ctx, "POST", "/v1/bindings", s.key, map[string]string{"userId": u.userID, "code": s.fake.Login(u.name)})
			u.token, u.openID = a.str("token"), a.str("openid")
		} else {
			a := s.retrying(ctx, "POST", "/v1/session", "", map[string]string{"code": s.fake.Login(u.name)})
			u.token, u.openID = a.str("token"), a.str("openid")
		}
		s.users = append(s.users, u)
		for range 1 + i%4 {
			s.popup(ctx, u, "accept")
		}
	}
}

// popup is the user answering a subscribe popup for the lead template, and
// the mini program reporting it.
func (s *system) popup(ctx context.Context, u *user, status string) {
	res, err := s.fake.Subscribe(u.openID, map[string]string{leadTmpl: status})
	if err != nil {
		return
	}
	// Retried with the same key, as the client kit does.
	s.retrying(ctx, "POST", "/v1/consents", u.token, map[string]any{"result": res}, "Idempotency-Key", "rpt-"+s.marker())
}

func (s *system) injectFaults() {
	s.faulty.SetRate(s.cfg.StoreFaults, s.cfg.LostReplies, 2*time.Millisecond)
	// WeChat: 30% of sends fail in every way WeChat and networks fail.
	kinds := []wechattest.Fault{
		{Errcode: -1}, {Errcode: 45009}, {Errcode: 43108}, {HTTPStatus: 502}, {HTTPStatus: 503},
		{Latency: 80 * time.Millisecond, Errcode: -1}, {Drop: wechattest.DropBeforeRead}, {Drop: wechattest.DropAfterRead},
	}
	total := int(float64(s.cfg.Notifications) * 1.5 * s.cfg.WeChatFaults)
	for i := range total {
		f := kinds[i%len(kinds)]
		f.API, f.Count = wechattest.APISend, 1
		_ = s.fake.Inject(f)
	}
	s.report.WeChatFaults = total
}

func (s *system) marker() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := fmt.Sprintf("S%06d", len(s.markers))
	s.markers[m] = 1
	return m
}

func (s *system) record(a answer) {
	if id := a.str("id"); id != "" {
		s.mu.Lock()
		s.ids[id] = true
		s.mu.Unlock()
	}
}

// apiSends is the CRM: sends with and without idempotency keys.
func (s *system) apiSends(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range s.cfg.Notifications {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u := s.users[s.intn(len(s.users))]
			m := s.marker()
			to := map[string]string{"openid": u.openID}
			if u.userID != "" && i%3 == 0 {
				to = map[string]string{"userId": u.userID}
			}
			body := map[string]any{"to": to, "template": "lead_assigned",
				"data": map[string]string{"thing1": "Soak Ltd", "character_string2": m, "time3": "09:30", "thing4": "soak"}}
			if i%4 != 0 {
				body["idempotencyKey"] = "soak-" + m
				a := s.retrying(ctx, "POST", "/v1/notifications", s.key, body)
				s.record(a)
				if i%7 == 0 { // the CRM's own retry after it got its answer
					s.record(s.retrying(ctx, "POST", "/v1/notifications", s.key, body))
				}
			} else {
				s.record(s.call(ctx, "POST", "/v1/notifications", s.key, body)) // no key: never retried
			}
			s.mu.Lock()
			s.report.Requested++
			s.mu.Unlock()
		})
	}
	wg.Wait()
}

// leadEvents is the lead system: events delivered at least once -
// duplicates, concurrently, out of order.
func (s *system) leadEvents(ctx context.Context) {
	n := s.cfg.Notifications / 5
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		u := s.users[2*s.intn((len(s.users)+1)/2)] // bound users
		m := s.marker()
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
				a := s.retrying(ctx, "POST", "/v1/events", s.key, ev)
				if list, ok := a.body["notifications"].([]any); ok {
					for _, x := range list {
						if id, _ := x.(map[string]any)["id"].(string); id != "" {
							s.mu.Lock()
							s.ids[id] = true
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
			_ = s.fake.Unsubscribe(u.openID, leadTmpl)
		default:
			s.popup(ctx, u, "accept")
		}
	}
}

// batches creates a few batches and ticks them with runs killed at random.
func (s *system) batches(ctx context.Context) {
	for b := range 3 {
		var recipients []map[string]any
		for i, u := range s.users {
			if (i+b)%3 == 0 {
				continue
			}
			recipients = append(recipients, map[string]any{"openid": u.openID, "data": map[string]string{"character_string2": fmt.Sprintf("B%d-%s", b, u.openID[:8])}})
		}
		s.mu.Lock()
		for _, r := range recipients {
			s.markers[r["data"].(map[string]string)["character_string2"]] = 1
		}
		s.report.BatchRecipients += len(recipients)
		s.mu.Unlock()
		a := s.retrying(ctx, "POST", "/v1/batches", s.key, map[string]any{"template": "lead_assigned", "recipients": recipients,
			"data": map[string]string{"thing1": "Digest", "time3": "09:30", "thing4": "batch"}, "idempotencyKey": fmt.Sprintf("soak-batch-%d", b)})
		if id := a.str("id"); id != "" {
			s.mu.Lock()
			for _, r := range recipients {
				s.batchTo[id] = append(s.batchTo[id], r["openid"].(string))
			}
			s.mu.Unlock()
		}
	}
	// Ticks killed at random points: their context ends mid-run.
	for range 40 {
		tctx, cancel := context.WithTimeout(ctx, time.Duration(5+s.intn(60))*time.Millisecond)
		_ = s.parts.Service.RunBatches(tctx, s.clock.Now().Add(time.Minute))
		cancel()
	}
}

// redeliverPushes is WeChat not getting our answers: a fifth of the pushes
// it made are posted again, one to three more times, with the same
// parameters, while the run goes on.
func (s *system) redeliverPushes(ctx context.Context, done <-chan struct{}) {
	seen := 0
	for {
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		pushes := s.fake.Pushes()
		for _, p := range pushes[seen:] {
			if p.Query == nil || s.intn(5) != 0 {
				continue
			}
			for range 1 + s.intn(3) {
				req, err := http.NewRequestWithContext(ctx, "POST", s.srv.URL+"/wechat/push?"+p.Query.Encode(), bytes.NewReader(p.Body))
				if err != nil {
					continue
				}
				if resp, err := s.http.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				s.mu.Lock()
				s.report.PushesRedelivered++
				s.mu.Unlock()
			}
		}
		seen = len(pushes)
	}
}

// quiesce stops the faults and lets everything settle: pushes delivered,
// batches finished, retryable failures retried by their clients.
func (s *system) quiesce(ctx context.Context) {
	s.fake.ClearFaults()
	s.faulty.SetRate(0, 0, 0)
	s.fake.WaitPushes()
	for range 200 {
		if err := s.parts.Service.RunBatches(ctx, s.clock.Now().Add(time.Minute)); err == nil && s.batchesDone(ctx) {
			break
		}
	}
	// An hour later (on the service's clock): sends whose sent event never
	// came are closed as not delivered, reports WeChat never confirmed are
	// withdrawn - the batch function's tick does both.
	s.clock.advance(time.Hour)
	tick := boot.Tick(s.parts)
	for range 20 {
		if err := tick(ctx, s.clock.Now().Add(time.Minute)); err == nil {
			break
		}
	}
	// Each tick settles at most a thousand: the schedule's next ticks do the rest.
	for range 100 {
		if n, err := s.parts.Service.SweepUnknown(ctx); err == nil && n == 0 {
			break
		}
	}
}

func (s *system) batchesDone(ctx context.Context) bool {
	page, err := s.parts.Store.Query(ctx, store.Query{Partition: "batdue|" + appID, Limit: 10})
	return err == nil && len(page.Items) == 0
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
	// Every message is one marker; a marker delivered twice is a duplicate.
	seen := map[string]int{}
	for _, m := range s.fake.AllMessages() {
		seen[m.Data["character_string2"]]++
	}
	r.Delivered = len(s.fake.AllMessages())
	for m, n := range seen {
		if n > 1 {
			r.DuplicatesDelivered += n - 1
			r.Violations = append(r.Violations, fmt.Sprintf("marker %s delivered %d times", m, n))
		}
	}
	// Every notification answered has a final state.
	ids := make([]string, 0, len(s.ids))
	for id := range s.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	unknown := map[string][]string{} // openid -> its unknown notifications, with their reason
	for _, id := range ids {
		n, err := s.parts.Service.Notification(ctx, id)
		if err != nil {
			r.WithoutFinalState++
			r.Violations = append(r.Violations, fmt.Sprintf("notification %s: %v", id, err))
			continue
		}
		s.count(n, unknown)
	}
	for _, id := range slices.Sorted(maps.Keys(s.batchTo)) {
		for _, openID := range s.batchTo[id] {
			n, err := s.parts.Service.BatchNotification(ctx, id, notify.Recipient{OpenID: openID})
			if err != nil {
				r.Violations = append(r.Violations, fmt.Sprintf("batch %s recipient %s: %v", id, openID[:8], err))
				continue
			}
			if n.Status == notify.StatusUnknown {
				s.countUnknown(n, unknown)
			}
		}
	}
	// The ledger of every user against WeChat's truth.
	for _, u := range s.users {
		cs, err := s.parts.Service.Consents(ctx, u.openID)
		if err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("consents of %s: %v", u.name, err))
			continue
		}
		for _, c := range cs {
			if c.Template.ID != leadTmpl {
				continue
			}
			truth := s.fake.Credits(u.openID, leadTmpl)
			if int(c.Credits) == truth {
				continue
			}
			// Each unknown send left may have been delivered or not: the
			// ledger (which counts it spent) may be that many below WeChat.
			if causes := unknown[u.openID]; int(c.Credits) < truth && truth-int(c.Credits) <= len(causes) {
				r.LedgerMismatches = append(r.LedgerMismatches, fmt.Sprintf("%s: ledger %d, WeChat %d: unknown %s", u.name, c.Credits, truth, strings.Join(causes, ", ")))
				if s.trace != nil && len(r.LedgerMismatches) <= 4 {
					s.debugUser(ctx, u)
				}
				continue
			}
			r.UnexplainedMismatches++
			if int(c.Credits) > truth {
				r.LedgerAbove++
			}
			r.Unexplained = append(r.Unexplained, fmt.Sprintf("%s: ledger %d credits, WeChat %d", u.name, c.Credits, truth))
			if s.trace != nil && r.UnexplainedMismatches <= 4 {
				s.debugUser(ctx, u)
			}
			r.Violations = append(r.Violations, fmt.Sprintf("ledger of %s: %d credits, WeChat %d, not explained by an unknown send", u.name, c.Credits, truth))
		}
	}
	for _, p := range s.fake.Pushes() {
		if !p.Delivered {
			r.PushesFailed++
		}
	}
	r.WeChatCalls = s.fake.Calls(wechattest.APISend)
	r.StoreFaults = s.faulty.Faults()
	r.TokenFetches = s.fake.Calls(wechattest.APIStableToken)
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

// debugUser prints what happened to a user whose ledger disagrees with
// WeChat (SOAK_DEBUG=1): WeChat's messages and pushes, the store writes to
// the user's ledger and pairing balance, and the user's notifications.
func (s *system) debugUser(ctx context.Context, u *user) {
	fmt.Printf("=== %s %s userId %s\n", u.name, u.openID, u.userID)
	for _, l := range s.trace.log["u|"+appID+"|"+u.openID] {
		fmt.Println("  store", l)
	}
	for _, m := range s.fake.Messages(u.openID) {
		fmt.Printf("  wechat msg %d at %s %s\n", m.MsgID, m.SentAt.Format("15:04:05.000"), m.Data["character_string2"])
	}
	for _, p := range s.fake.Pushes() {
		if p.Event.FromUserName != u.openID {
			continue
		}
		fmt.Printf("  push %s t=%d items=%+v delivered=%v attempts=%d\n", p.Event.Event, p.Event.CreateTime, p.Event.Items, p.Delivered, len(p.Attempts))
	}
	var ids []string
	for id := range s.ids {
		ids = append(ids, id)
	}
	for bid, tos := range s.batchTo {
		for _, o := range tos {
			if o == u.openID {
				n, _ := s.parts.Service.BatchNotification(ctx, bid, notify.Recipient{OpenID: o})
				ids = append(ids, n.ID)
			}
		}
	}
	for _, id := range ids {
		n, err := s.parts.Service.Notification(ctx, id)
		if err != nil || n.OpenID != u.openID {
			continue
		}
		fmt.Printf("  ntf %s %s %s/%s msgid=%s created %s updated %s attempts %d data %s\n", n.ID, n.Source, n.Status, n.Reason, n.WeChat.MsgID, n.CreatedAt.Format("15:04:05.000"), n.UpdatedAt.Format("15:04:05.000"), n.Attempts, n.Data["character_string2"])
	}
	if it, err := s.parts.Store.Get(ctx, store.Key{Partition: "u|" + appID + "|" + u.openID, Sort: "unk|" + leadTmpl}); err == nil {
		fmt.Printf("  sent log %s\n", it.Value)
	}
	due, _ := s.parts.Store.Query(ctx, store.Query{Partition: "unkdue|" + appID, Limit: 1000})
	for _, it := range due.Items {
		if strings.Contains(string(it.Value), u.openID) {
			fmt.Printf("  unknown due %s\n", it.Key.Sort)
		}
	}
}
