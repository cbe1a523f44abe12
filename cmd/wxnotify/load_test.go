package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

var (
	loadClients  = flag.Int("load.clients", 16, "concurrent clients of TestLoadMemory (make load: 50)")
	loadRounds   = flag.Int("load.rounds", 25, "rounds each client plays, unless -load.duration is set")
	loadDuration = flag.Duration("load.duration", 0, "play rounds for this long instead, on the server exactly as `wxnotify dev` runs it (make load: 60s)")
	loadIdle     = flag.Duration("load.idle", time.Second, "how long the server idles after the load (make load: 10s)")
	loadProfile  = flag.String("load.heapprofile", "", "write a heap profile taken after the idle time to this file")
)

// loadUsersPerClient is how many WeChat users each client plays in turn, so
// that a user logs in and reports popups at a human pace: jscode2session
// allows a user 100 logins a minute, /v1/consents 10 reports.
const loadUsersPerClient = 20

// The bound of TestLoadMemory (docs/performance.md): after the load and the
// idle time, the live heap may exceed the live heap before the load by what
// the sandbox keeps by design (its retention, at these generous sizes per
// record, and its users, WeChat's truth) plus loadSlack (the buffers of idle
// connections, the runtime's and the libraries' caches).
const (
	loadSlack       = 1536 << 10
	bytesPerMessage = 1 << 10
	bytesPerPush    = 2 << 10
	bytesPerCode    = 256
	bytesPerUser    = 1 << 10
)

// loadTestRetention is the sandbox's retention in the short run: small
// enough that a few hundred rounds reach every limit.
var loadTestRetention = wechattest.Retention{InboxMessages: 2, Messages: 100, Pushes: 20, LoginCodes: 100}

// loadHeapBound is the live heap allowed after a load of users WeChat users
// on a sandbox keeping r, from the live heap before.
func loadHeapBound(before uint64, r wechattest.Retention, users int) uint64 {
	return before + loadSlack + uint64(r.Messages*bytesPerMessage+r.Pushes*bytesPerPush+r.LoginCodes*bytesPerCode+users*bytesPerUser)
}

// TestLoadMemory runs `wxnotify dev` (bbolt, sandbox WeChat) in process,
// drives it with many clients on loopback doing what users do, lets it
// idle, reports its memory and fails when the live heap is above
// loadHeapBound. The short run (CI) plays a fixed number of rounds on a
// bbolt file without fsync and a sandbox with loadTestRetention; with
// -load.duration (make load) the server is the one `wxnotify dev` runs, with
// sandboxRetention.
func TestLoadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	if *loadProfile != "" {
		runtime.MemProfileRate = 4096
	}
	// The server's logs go where `wxnotify dev` writes them, out of process
	// memory.
	keep := sandboxRetention()
	var o envOptions
	if *loadDuration == 0 {
		keep = loadTestRetention
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "wxnotify.db"), boltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		o = envOptions{st: st, retention: &keep}
	}
	o.logOut = io.Discard
	e := newEnvWith(t, o)
	runtime.GC()
	before := sampleMemory()
	lt := &loadTest{e: e, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *loadClients}}}
	start := time.Now()
	lt.run(*loadClients, *loadRounds, *loadDuration)
	elapsed := time.Since(start)
	afterLoad := sampleMemory()
	e.fake.WaitPushes()
	lt.http.CloseIdleConnections()
	time.Sleep(*loadIdle)
	runtime.GC()
	debug.FreeOSMemory()
	afterIdle := sampleMemory()
	if *loadProfile != "" {
		writeHeapProfile(t, *loadProfile)
	}
	bound := loadHeapBound(before.live, keep, *loadClients*loadUsersPerClient)
	t.Log("\n" + lt.report(elapsed, before, afterLoad, afterIdle, bound))
	if err := lt.err(); err != nil {
		t.Fatalf("load: %v", err)
	}
	// One connection per client, and as many for the sandbox's pushes,
	// which may outlast the request that made them: more means
	// connections opened for one request and left in TIME_WAIT.
	if got, want := e.conns.accepted.Load(), int64(3**loadClients); got > want {
		t.Errorf("connections accepted by the server: got %d, want at most %d", got, want)
	}
	if afterIdle.live > bound {
		t.Fatalf("live heap after the load and %s idle: got %s, want at most %s", *loadIdle, mib(afterIdle.live), mib(bound))
	}
}

// loadTest is the clients' shared state.
type loadTest struct {
	e    *env
	http *http.Client

	rounds   atomic.Int64
	requests atomic.Int64

	mu       sync.Mutex
	statuses map[string]int // "POST /v1/notifications 200" -> count
	failures []string       // the first unexpected answers
}

// run plays rounds with n clients: each plays rounds rounds, or, when d is
// set, as many as fit in d.
func (lt *loadTest) run(n, rounds int, d time.Duration) {
	lt.statuses = map[string]int{}
	ctx := context.Background()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var wg sync.WaitGroup
	for c := range n {
		wg.Go(func() {
			for r := 0; d > 0 || r < rounds; r++ {
				if ctx.Err() != nil {
					return
				}
				if err := lt.round(c, r); err != nil {
					lt.fail(err)
					return
				}
				lt.rounds.Add(1)
			}
		})
	}
	wg.Wait()
}

// round is what a salesperson's mini program, the CRM and the WeChat user
// do once: log in, accept the lead template twice (one accept reported by
// the mini program, both pushed by WeChat), get a notification by the API
// (retried once with the same idempotency key) and one by a lead event,
// read the inbox, the record and the ledger.
func (lt *loadTest) round(c, r int) error {
	user := fmt.Sprintf("load-%d-%d", c, r%loadUsersPerClient)
	userID := "sales-" + user
	var login struct{ Code, OpenID string }
	if err := lt.call("POST", "/sandbox/login", "", map[string]string{"user": user}, 200, &login); err != nil {
		return err
	}
	if r < loadUsersPerClient {
		var bound struct{ Code string }
		if err := lt.call("POST", "/sandbox/login", "", map[string]string{"user": user}, 200, &bound); err != nil {
			return err
		}
		if err := lt.call("POST", "/v1/bindings", lt.e.key, map[string]string{"userId": userID, "code": bound.Code}, 200, nil); err != nil {
			return err
		}
	}
	var session struct{ Token string }
	if err := lt.call("POST", "/v1/session", "", map[string]string{"code": login.Code}, 200, &session); err != nil {
		return err
	}
	var popup map[string]any
	if err := lt.call("POST", "/sandbox/subscribe", "", map[string]any{"code": login.Code, "choices": map[string]string{leadID: "accept"}}, 200, &popup); err != nil {
		return err
	}
	// A report beyond a user's 10 a minute is refused (429); WeChat's popup
	// event grants the credit all the same.
	if err := lt.call("POST", "/v1/consents", session.Token, map[string]any{"result": popup}, 200, nil, http.StatusTooManyRequests); err != nil {
		return err
	}
	if err := lt.call("POST", "/sandbox/subscribe", "", map[string]any{"openid": login.OpenID, "choices": map[string]string{leadID: "accept"}}, 200, nil); err != nil {
		return err
	}
	key := fmt.Sprintf("load-%d-%d", c, r)
	send := sendLead(map[string]string{"userId": userID}, key)
	var rec struct{ ID, Status string }
	for range 2 {
		if err := lt.call("POST", "/v1/notifications", lt.e.key, send, 200, &rec); err != nil {
			return err
		}
	}
	event := map[string]any{"id": "evt-" + key, "type": "lead.assigned", "occurredAt": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"lead": map[string]any{"id": "L-" + strconv.Itoa(r), "name": "Acme Ltd", "source": "官网"},
			"assignee": map[string]any{"userId": userID}}}
	if err := lt.call("POST", "/v1/events", lt.e.key, event, 202, nil); err != nil {
		return err
	}
	if err := lt.call("GET", "/sandbox/messages?openid="+login.OpenID, "", nil, 200, nil); err != nil {
		return err
	}
	if err := lt.call("GET", "/v1/notifications/"+rec.ID, lt.e.key, nil, 200, nil); err != nil {
		return err
	}
	return lt.call("GET", "/v1/consents", session.Token, nil, 200, nil)
}

// call makes one request and decodes the answer into out (when not nil);
// every answer is counted, and one other than want or the tolerated
// statuses is returned as an error.
func (lt *loadTest) call(method, path, auth string, body any, want int, out any, tolerated ...int) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, lt.e.url+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	lt.requests.Add(1)
	resp, err := lt.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	route, _, _ := strings.Cut(path, "?")
	if strings.HasPrefix(route, "/v1/notifications/") {
		route = "/v1/notifications/{id}"
	}
	lt.mu.Lock()
	lt.statuses[method+" "+route+" "+strconv.Itoa(resp.StatusCode)]++
	lt.mu.Unlock()
	if slices.Contains(tolerated, resp.StatusCode) {
		return nil
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: got status %d, want %d: %s", method, route, resp.StatusCode, want, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (lt *loadTest) fail(err error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.failures = append(lt.failures, err.Error())
}

func (lt *loadTest) err() error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if len(lt.failures) == 0 {
		return nil
	}
	return fmt.Errorf("%d clients stopped; the first: %s", len(lt.failures), lt.failures[0])
}

// memorySample is the process's memory at one moment.
type memorySample struct {
	live       uint64 // live heap as of the last GC (/gc/heap/live:bytes)
	heapInUse  uint64 // heap spans in use, live and not yet collected
	goRetained uint64 // memory the Go runtime holds from the OS, minus what it released
	rss        procRSS
	goroutines int
}

// procRSS is the resident set of the process from /proc/self/status (zero
// elsewhere): anonymous pages are program memory (the Go heap, stacks), file
// pages are mapped files (bbolt's memory map of its database file).
type procRSS struct{ total, anon, file uint64 }

func sampleMemory() memorySample {
	ms := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(ms)
	return memorySample{
		live:       ms[0].Value.Uint64(),
		heapInUse:  ms[1].Value.Uint64() + ms[2].Value.Uint64(),
		goRetained: ms[3].Value.Uint64() - ms[4].Value.Uint64(),
		rss:        readRSS(),
		goroutines: runtime.NumGoroutine(),
	}
}

func readRSS() procRSS {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return procRSS{}
	}
	var r procRSS
	for line := range strings.SplitSeq(string(raw), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			r.total = kb << 10
		case "RssAnon":
			r.anon = kb << 10
		case "RssFile":
			r.file = kb << 10
		}
	}
	return r
}

func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		tb.Fatal(err)
	}
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// report is the load's outcome and the memory before, right after and
// after the idle time.
func (lt *loadTest) report(elapsed time.Duration, before, afterLoad, afterIdle memorySample, bound uint64) string {
	var b strings.Builder
	rounds, requests := lt.rounds.Load(), lt.requests.Load()
	fmt.Fprintf(&b, "%d clients, %d rounds, %d requests in %s (%.0f requests/s)\n", *loadClients, rounds, requests,
		elapsed.Round(time.Millisecond), float64(requests)/elapsed.Seconds())
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tlive heap\theap in use\tGo runtime, resident\tRSS\tRSS anon\tRSS file\tgoroutines\t")
	for _, s := range []struct {
		name string
		m    memorySample
	}{{"before the load", before}, {"after the load", afterLoad}, {"after " + loadIdle.String() + " idle + GC", afterIdle}} {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", s.name, mib(s.m.live), mib(s.m.heapInUse), mib(s.m.goRetained),
			mib(s.m.rss.total), mib(s.m.rss.anon), mib(s.m.rss.file), s.m.goroutines)
	}
	_ = w.Flush()
	if fi, err := os.Stat(lt.e.srv.parts.Config.DataDir + "/wxnotify.db"); err == nil {
		fmt.Fprintf(&b, "bbolt file: %s\n", mib(uint64(fi.Size())))
	}
	ended, _ := lt.e.fake.PushCounts()
	fmt.Fprintf(&b, "sandbox WeChat: %d messages delivered, %d kept; %d pushes, %d records kept\n", lt.e.fake.Delivered(),
		len(lt.e.fake.AllMessages()), ended, len(lt.e.fake.Pushes()))
	fmt.Fprintf(&b, "bound on the live heap after the idle time: %s\n", mib(bound))
	fmt.Fprintf(&b, "connections accepted by the server: %d\n", lt.e.conns.accepted.Load())
	lt.mu.Lock()
	keys := make([]string, 0, len(lt.statuses))
	for k := range lt.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-40s %d\n", k, lt.statuses[k])
	}
	lt.mu.Unlock()
	return b.String()
}
