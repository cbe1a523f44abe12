package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

func TestMain(m *testing.M) { storeenv.Main(m) }

// The AppIDs of the three apps of the isolation tests. Apps a and b share
// their template ids (the bundled example's): only the app scoping of the
// store keys keeps them apart. App c has templates of its own.
var isoAppIDs = map[string]string{"a": "wx0a0a0a0a0a0a0a0a", "b": "wx0b0b0b0b0b0b0b0b", "c": "wx0c0c0c0c0c0c0c0c"}

const (
	isoAllKey   = "iso-all-apps-key-0123456789"
	isoAOnlyKey = "iso-a-only-key-0123456789"
	// isoTmplC replaces the lead template's id in app c.
	isoTmplC = "ccc-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4"
)

// isoAppKey is the context key of the app a store call is made for: the
// app of the request's path, set by the rig's middleware (or by the test).
type isoAppKey struct{}

// withApp returns ctx bound to app for the recording store.
func withApp(ctx context.Context, app string) context.Context {
	return context.WithValue(ctx, isoAppKey{}, app)
}

// recordingStore notes every key written (Put, Delete, Add, AddOnce, Undo)
// under the app its context names (withApp).
type recordingStore struct {
	store.Store
	mu     sync.Mutex
	writes map[string][]store.Key // app -> keys written
}

func (r *recordingStore) note(ctx context.Context, k store.Key) {
	app, _ := ctx.Value(isoAppKey{}).(string)
	if app == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writes == nil {
		r.writes = map[string][]store.Key{}
	}
	r.writes[app] = append(r.writes[app], k)
}

// count is the number of writes recorded for app.
func (r *recordingStore) count(app string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes[app])
}

func (r *recordingStore) Put(ctx context.Context, k store.Key, v []byte, o store.PutOptions) (int64, error) {
	r.note(ctx, k)
	return r.Store.Put(ctx, k, v, o)
}

func (r *recordingStore) Delete(ctx context.Context, k store.Key, o store.DeleteOptions) error {
	r.note(ctx, k)
	return r.Store.Delete(ctx, k, o)
}

func (r *recordingStore) Add(ctx context.Context, k store.Key, d, lo, hi int64) (int64, error) {
	r.note(ctx, k)
	return r.Store.Add(ctx, k, d, lo, hi)
}

func (r *recordingStore) AddOnce(ctx context.Context, k store.Key, d, lo, hi int64, op store.CounterOp) (int64, error) {
	r.note(ctx, k)
	return r.Store.AddOnce(ctx, k, d, lo, hi, op)
}

func (r *recordingStore) Undo(ctx context.Context, k store.Key, id string) (bool, error) {
	r.note(ctx, k)
	return r.Store.Undo(ctx, k, id)
}

// isoRig is a three-app deployment on one store behind one fake WeChat.
type isoRig struct {
	multi *wechattest.Multi
	wx    map[string]*wechattest.Server // by app id
	rec   *recordingStore
	parts *Parts
	srv   *httptest.Server
	http  *http.Client
}

// isoConfigFile is a multi-app wxnotify.yaml: apps a, b and c, each with the
// bundled example's templates and rules (c with another lead template id).
func isoConfigFile(t *testing.T) (config.File, []byte) {
	t.Helper()
	example, err := config.ParseFile(config.Example)
	if err != nil {
		t.Fatal(err)
	}
	var f config.File
	for _, id := range []string{"a", "b", "c"} {
		spec := config.AppSpec{ID: id, AppID: isoAppIDs[id], Rules: example.Rules}
		for _, ts := range example.Templates {
			if id == "c" && ts.ID == leadTmplID {
				ts.ID = isoTmplC
			}
			spec.Templates = append(spec.Templates, ts)
		}
		f.Apps = append(f.Apps, spec)
	}
	raw, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, raw
}

func newIsoRig(t *testing.T, backend string) *isoRig {
	t.Helper()
	f, raw := isoConfigFile(t)
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &isoRig{wx: map[string]*wechattest.Server{}, http: &http.Client{Timeout: 30 * time.Second}}
	var servers []*wechattest.Server
	env := map[string]string{"WXN_CONFIG": path, "WXN_SESSION_SECRET": strings.Repeat("i", 32),
		"WXN_API_KEYS": isoAllKey, "WXN_APP_A_API_KEYS": isoAOnlyKey}
	aesKeys := map[string]string{}
	for _, spec := range f.Apps {
		s := wechattest.NewServer(wechattest.Options{AppID: spec.AppID,
			Templates: sandbox.Templates(config.File{Templates: spec.Templates, Rules: spec.Rules})})
		servers = append(servers, s)
		r.wx[spec.ID] = s
		aesKeys[spec.ID] = RandomAESKey()
		env[config.AppVariable(spec.ID, "WXN_WECHAT_SECRET")] = s.Secret()
		env[config.AppVariable(spec.ID, "WXN_WECHAT_PUSH_TOKEN")] = "push-token-" + spec.ID
		env[config.AppVariable(spec.ID, "WXN_WECHAT_PUSH_AES_KEY")] = aesKeys[spec.ID]
	}
	multi, err := wechattest.NewMultiServer(servers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(multi.Close)
	r.multi = multi
	env["WXN_WECHAT_API_BASE"] = multi.URL()
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AllApps()) != 3 || cfg.Default().ID != "a" {
		t.Fatalf("config: %d apps, default %q; want 3 apps, default a", len(cfg.AllApps()), cfg.Default().ID)
	}
	r.rec = &recordingStore{Store: storeenv.Open(t, backend)}
	if r.parts, err = Build(cfg, r.rec, Options{Function: "iso"}); err != nil {
		t.Fatal(err)
	}
	mux := r.parts.API.NewMux(httpapi.AllGroups...)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mux.ServeHTTP(w, req.WithContext(withApp(req.Context(), r.appOf(req.URL.Path))))
	}))
	t.Cleanup(r.srv.Close)
	for id, s := range r.wx {
		r.setPush(t, s, id, id, aesKeys[id])
	}
	return r
}

// setPush has app's fake WeChat push, signed with its own token and AES
// key, to the push route of app target.
func (r *isoRig) setPush(t *testing.T, s *wechattest.Server, app, target, aesKey string) {
	t.Helper()
	if err := s.SetPush(wechattest.PushConfig{URL: r.srv.URL + "/wechat/push/" + target, Token: "push-token-" + app,
		EncodingAESKey: aesKey, JSON: true, Mode: wechattest.Safe}); err != nil {
		t.Fatal(err)
	}
}

type isoAnswer struct {
	status int
	body   map[string]any
	raw    string
}

func (a isoAnswer) str(k string) string { v, _ := a.body[k].(string); return v }

// code is the error code of an error answer.
func (a isoAnswer) code() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// appOf is the app id a request path addresses: the default app a for the
// short routes, the app whose id or AppID the path names otherwise (or the
// unknown name itself).
func (r *isoRig) appOf(path string) string {
	app := pathApp(path)
	if app == "" {
		return "a"
	}
	for id, appID := range isoAppIDs {
		if app == appID {
			return id
		}
	}
	return app
}

// waitPushes waits for the pushes every app's WeChat has under way.
func (r *isoRig) waitPushes() {
	for _, s := range r.wx {
		s.WaitPushes()
	}
}

// pathApp is the app of a request path: /v1/apps/<app>/... or
// /wechat/push/<app>; "" for the short routes.
func pathApp(path string) string {
	for _, prefix := range []string{"/v1/apps/", "/wechat/push/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			app, _, _ := strings.Cut(rest, "/")
			app, _, _ = strings.Cut(app, "?")
			return app
		}
	}
	return ""
}

// do makes one request.
func (r *isoRig) do(t *testing.T, method, path, auth string, body any) isoAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := isoAnswer{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// want fails t unless a has the status (and, for an error, the code).
func want(t *testing.T, what string, a isoAnswer, status int, code string) {
	t.Helper()
	if a.status != status || (code != "" && a.code() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, a.status, a.raw, status, code)
	}
}

// login is wx.login in app for the person, then POST /v1/apps/<app>/session.
func (r *isoRig) login(t *testing.T, app, person string) (token, openID string) {
	t.Helper()
	a := r.do(t, "POST", "/v1/apps/"+app+"/session", "", map[string]string{"code": r.wx[app].Login(person)})
	want(t, "session in "+app, a, http.StatusOK, "")
	return a.str("token"), a.str("openid")
}

// bind binds userID in app to the person's WeChat user.
func (r *isoRig) bind(t *testing.T, app, userID, person string) (token, openID string) {
	t.Helper()
	a := r.do(t, "POST", "/v1/apps/"+app+"/bindings", isoAllKey, map[string]string{"userId": userID, "code": r.wx[app].Login(person)})
	want(t, "binding in "+app, a, http.StatusOK, "")
	return a.str("token"), a.str("openid")
}

// accept is the user of openID in app accepting the lead template n times:
// WeChat pushes each popup event to the app's push route.
func (r *isoRig) accept(t *testing.T, app, openID string, n int) {
	t.Helper()
	tmpl := leadTmplID
	if app == "c" {
		tmpl = isoTmplC
	}
	for range n {
		if _, err := r.wx[app].Subscribe(openID, map[string]string{tmpl: "accept"}); err != nil {
			t.Fatal(err)
		}
	}
}

// credits is the lead template's credits of a ledger answer.
func credits(t *testing.T, a isoAnswer) int {
	t.Helper()
	list, _ := a.body["consents"].([]any)
	for _, x := range list {
		c, _ := x.(map[string]any)
		if c["alias"] == "lead_assigned" {
			n, _ := c["credits"].(float64)
			return int(n)
		}
	}
	t.Fatalf("no lead_assigned consent in %s", a.raw)
	return 0
}

// ledger is the lead template's credits of an openid in app, read over HTTP.
func (r *isoRig) ledger(t *testing.T, app, openID string) int {
	t.Helper()
	a := r.do(t, "GET", "/v1/apps/"+app+"/openids/"+openID+"/consents", isoAllKey, nil)
	want(t, "ledger in "+app, a, http.StatusOK, "")
	return credits(t, a)
}

func sendBody(to map[string]string, marker, key string) map[string]any {
	b := map[string]any{"to": to, "template": "lead_assigned",
		"data": map[string]string{"thing1": "Iso Ltd", "character_string2": marker, "time3": "09:30", "thing4": "iso"}}
	if key != "" {
		b["idempotencyKey"] = key
	}
	return b
}

// markers are the character_string2 of the messages in s's inbox of openID.
func markers(s *wechattest.Server, openID string) []string {
	var out []string
	for _, m := range s.Messages(openID) {
		out = append(out, m.Data["character_string2"])
	}
	return out
}

func hasMarker(s *wechattest.Server, openID, marker string) bool {
	for _, m := range markers(s, openID) {
		if m == marker {
			return true
		}
	}
	return false
}

// TestAppsIsolation runs one three-app deployment on every backend and
// proves over HTTP (and the queue core) that nothing of one app reaches
// another: users, bindings, credits, notifications, session tokens, pushes,
// API keys, batches, lead events and the store keys themselves.
func TestAppsIsolation(t *testing.T) {
	for _, backend := range storeenv.Backends {
		t.Run(backend, func(t *testing.T) { testAppsIsolation(t, backend) })
	}
}

func testAppsIsolation(t *testing.T, backend string) {
	r := newIsoRig(t, backend)
	var alice struct{ tokenA, openA, openB string }
	var bob struct{ openB string }

	t.Run("SamePersonTwoApps", func(t *testing.T) {
		tokA, openA := r.login(t, "a", "alice")
		_, openB := r.login(t, "b", "alice")
		if openA == "" || openB == "" || openA == openB {
			t.Fatalf("alice's openids: a %q, b %q; want two different ones", openA, openB)
		}
		alice.tokenA, alice.openA, alice.openB = tokA, openA, openB
		// u1 in a is alice; b has no u1.
		if _, o := r.bind(t, "a", "u1", "alice"); o != openA {
			t.Fatalf("u1 in a: openid %q, want %q", o, openA)
		}
		want(t, "u1's consents in b", r.do(t, "GET", "/v1/apps/b/users/u1/consents", isoAllKey, nil), http.StatusNotFound, "not_found")
		want(t, "u1's consents in a", r.do(t, "GET", "/v1/apps/a/users/u1/consents", isoAllKey, nil), http.StatusOK, "")
		// Credits granted in a (same template id in b) stay in a, even
		// under a's openid asked of b.
		r.accept(t, "a", openA, 5)
		if got := r.ledger(t, "a", openA); got != 5 {
			t.Fatalf("alice's credits in a: got %d, want 5", got)
		}
		if got := r.ledger(t, "b", openA); got != 0 {
			t.Fatalf("a's openid's credits read from b: got %d, want 0", got)
		}
		if got := r.ledger(t, "b", openB); got != 0 {
			t.Fatalf("alice's credits in b: got %d, want 0", got)
		}
	})

	t.Run("SendToUserBoundElsewhere", func(t *testing.T) {
		before := len(r.wx["a"].AllMessages()) + len(r.wx["b"].AllMessages())
		a := r.do(t, "POST", "/v1/apps/b/notifications", isoAllKey, sendBody(map[string]string{"userId": "u1"}, "X-UNBOUND", ""))
		if a.status == http.StatusOK && a.str("status") == "sent" {
			t.Fatalf("a send in b to u1, bound only in a: %s", a.raw)
		}
		if after := len(r.wx["a"].AllMessages()) + len(r.wx["b"].AllMessages()); after != before {
			t.Fatalf("messages delivered: %d, before %d", after, before)
		}
		if got := r.ledger(t, "a", alice.openA); got != 5 {
			t.Fatalf("alice's credits in a after b's send: got %d, want 5", got)
		}
	})

	t.Run("SameIdempotencyKeyTwoApps", func(t *testing.T) {
		_, openB := r.bind(t, "b", "u1", "bob")
		bob.openB = openB
		r.accept(t, "b", openB, 5)
		body := sendBody(map[string]string{"userId": "u1"}, "SAME-KEY", "same-key-1")
		na := r.do(t, "POST", "/v1/apps/a/notifications", isoAllKey, body)
		nb := r.do(t, "POST", "/v1/apps/b/notifications", isoAllKey, body)
		want(t, "send in a", na, http.StatusOK, "")
		want(t, "send in b", nb, http.StatusOK, "")
		if na.str("status") != "sent" || nb.str("status") != "sent" || na.str("id") == "" || na.str("id") == nb.str("id") {
			t.Fatalf("same key in a and b: %s and %s; want two sent notifications with different ids", na.raw, nb.raw)
		}
		if !hasMarker(r.wx["a"], alice.openA, "SAME-KEY") || !hasMarker(r.wx["b"], openB, "SAME-KEY") {
			t.Fatalf("inboxes: alice in a %v, bob in b %v; want the message in both", markers(r.wx["a"], alice.openA), markers(r.wx["b"], openB))
		}
		want(t, "a's notification read from b", r.do(t, "GET", "/v1/apps/b/notifications/"+na.str("id"), isoAllKey, nil), http.StatusNotFound, "not_found")
		want(t, "a's notification read from a", r.do(t, "GET", "/v1/apps/a/notifications/"+na.str("id"), isoAllKey, nil), http.StatusOK, "")
		// The same key again in a answers a's notification.
		again := r.do(t, "POST", "/v1/apps/a/notifications", isoAllKey, body)
		if again.str("id") != na.str("id") {
			t.Fatalf("the key again in a: %s, want notification %s", again.raw, na.str("id"))
		}
	})

	t.Run("SessionTokenOfAnotherApp", func(t *testing.T) {
		res, err := r.wx["a"].Subscribe(alice.openA, map[string]string{leadTmplID: "accept"})
		if err != nil {
			t.Fatal(err)
		}
		report := map[string]any{"result": res}
		r.waitPushes()
		writes := r.rec.count("b")
		want(t, "a's session on b's consents", r.do(t, "POST", "/v1/apps/b/consents", alice.tokenA, report), http.StatusForbidden, "app_forbidden")
		want(t, "a's session reading b's consents", r.do(t, "GET", "/v1/apps/b/consents", alice.tokenA, nil), http.StatusForbidden, "app_forbidden")
		r.waitPushes()
		if n := r.rec.count("b") - writes; n != 0 {
			t.Fatalf("the refused requests wrote %d keys in b", n)
		}
		want(t, "a's session on a's consents", r.do(t, "POST", "/v1/apps/a/consents", alice.tokenA, report), http.StatusOK, "")
		if got := r.ledger(t, "b", alice.openA); got != 0 {
			t.Fatalf("a's openid in b after the refused report: %d credits", got)
		}
	})

	t.Run("PushSignedForAnotherApp", func(t *testing.T) {
		_, openA := r.login(t, "a", "carol")
		appA, ok := r.parts.Config.App("a")
		if !ok {
			t.Fatal("no app a")
		}
		aKey := appA.PushAESKey
		r.setPush(t, r.wx["a"], "a", "b", aKey)
		r.waitPushes()
		writes := r.rec.count("b")
		if _, err := r.wx["a"].Subscribe(openA, map[string]string{leadTmplID: "accept"}); err != nil {
			t.Fatal(err)
		}
		r.waitPushes()
		r.setPush(t, r.wx["a"], "a", "a", aKey)
		pushes := r.wx["a"].Pushes()
		p := pushes[len(pushes)-1]
		if p.Delivered || len(p.Attempts) == 0 {
			t.Fatalf("a's push to /wechat/push/b: delivered %v after %d attempts", p.Delivered, len(p.Attempts))
		}
		for _, at := range p.Attempts {
			if at.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a's push to /wechat/push/b: answered %d %s, want 401", at.StatusCode, at.Reply)
			}
		}
		if n := r.rec.count("b") - writes; n != 0 {
			t.Fatalf("the refused push wrote %d keys", n)
		}
		if got := r.ledger(t, "b", openA); got != 0 {
			t.Fatalf("carol's a openid in b: %d credits", got)
		}
		if got := r.ledger(t, "a", openA); got != 0 {
			t.Fatalf("carol in a before the push reached a: %d credits", got)
		}
		// The very same signed request at a's own push route is applied.
		req, err := http.NewRequest("POST", r.srv.URL+"/wechat/push/a?"+p.Query.Encode(), bytes.NewReader(p.Body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := r.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (len(raw) > 0 && string(raw) != "success") {
			t.Fatalf("a's push at /wechat/push/a: %d %s", resp.StatusCode, raw)
		}
		if got := r.ledger(t, "a", openA); got != 1 {
			t.Fatalf("carol in a after the push: %d credits, want 1", got)
		}
	})

	t.Run("APIKeyScope", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", "/v1/apps/b/notifications"}, {"GET", "/v1/apps/b/notifications/x"},
			{"POST", "/v1/apps/b/batches"}, {"GET", "/v1/apps/b/batches/x"},
			{"GET", "/v1/apps/b/users/u1/consents"}, {"GET", "/v1/apps/b/openids/" + bob.openB + "/consents"},
			{"POST", "/v1/apps/b/bindings"}, {"POST", "/v1/apps/b/events"}, {"POST", "/v1/apps/" + isoAppIDs["b"] + "/notifications"},
		} {
			var body any
			if c.method == "POST" {
				body = sendBody(map[string]string{"userId": "u1"}, "X-FORBIDDEN", "")
			}
			want(t, "a-only key "+c.method+" "+c.path, r.do(t, c.method, c.path, isoAOnlyKey, body), http.StatusForbidden, "app_forbidden")
		}
		if !hasMarker(r.wx["b"], bob.openB, "SAME-KEY") || hasMarker(r.wx["b"], bob.openB, "X-FORBIDDEN") {
			t.Fatalf("bob's inbox in b: %v", markers(r.wx["b"], bob.openB))
		}
		want(t, "a-only key on a", r.do(t, "GET", "/v1/apps/a/users/u1/consents", isoAOnlyKey, nil), http.StatusOK, "")
		want(t, "a-only key on the short routes (a is the default)", r.do(t, "GET", "/v1/users/u1/consents", isoAOnlyKey, nil), http.StatusOK, "")
		a := r.do(t, "POST", "/v1/apps/a/notifications", isoAOnlyKey, sendBody(map[string]string{"userId": "u1"}, "A-ONLY", ""))
		if a.status != http.StatusOK || a.str("status") != "sent" || !hasMarker(r.wx["a"], alice.openA, "A-ONLY") {
			t.Fatalf("a-only key's send in a: %s", a.raw)
		}
		want(t, "wrong key", r.do(t, "GET", "/v1/apps/a/users/u1/consents", "wrong-key-0123456789", nil), http.StatusUnauthorized, "")
		want(t, "unknown app", r.do(t, "GET", "/v1/apps/zz/users/u1/consents", isoAllKey, nil), http.StatusNotFound, "app_not_found")
		want(t, "unknown app push", r.do(t, "POST", "/wechat/push/zz", "", nil), http.StatusNotFound, "app_not_found")
	})

	t.Run("Batches", func(t *testing.T) {
		batch := func(app, marker string, openIDs ...string) string {
			var rcpt []map[string]any
			for _, o := range openIDs {
				rcpt = append(rcpt, map[string]any{"openid": o})
			}
			a := r.do(t, "POST", "/v1/apps/"+app+"/batches", isoAllKey, map[string]any{"template": "lead_assigned", "recipients": rcpt,
				"data": map[string]string{"thing1": "Digest", "character_string2": marker, "time3": "09:30", "thing4": "batch"}, "idempotencyKey": "iso-" + marker})
			if a.status != http.StatusOK && a.status != http.StatusCreated && a.status != http.StatusAccepted || a.str("id") == "" {
				t.Fatalf("batch in %s: %d %s", app, a.status, a.raw)
			}
			return a.str("id")
		}
		// a's batch names bob's b openid too: a does not know it.
		idA := batch("a", "BATCH-A", alice.openA, bob.openB)
		idB := batch("b", "BATCH-B", bob.openB)
		if err := Tick(r.parts)(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ app, id string }{{"a", idA}, {"b", idB}} {
			a := r.do(t, "GET", "/v1/apps/"+c.app+"/batches/"+c.id, isoAllKey, nil)
			if a.str("status") != "done" {
				t.Fatalf("batch of %s after one tick: %s", c.app, a.raw)
			}
			if c.app == "a" && (a.body["sent"] != 1.0 || a.body["skipped"] != 1.0) {
				t.Fatalf("a's batch: %s, want 1 sent (alice) and 1 skipped (b's openid)", a.raw)
			}
		}
		want(t, "a's batch read from b", r.do(t, "GET", "/v1/apps/b/batches/"+idA, isoAllKey, nil), http.StatusNotFound, "not_found")
		if !hasMarker(r.wx["a"], alice.openA, "BATCH-A") || !hasMarker(r.wx["b"], bob.openB, "BATCH-B") || hasMarker(r.wx["b"], bob.openB, "BATCH-A") {
			t.Fatalf("inboxes: alice in a %v, bob in b %v", markers(r.wx["a"], alice.openA), markers(r.wx["b"], bob.openB))
		}
	})

	t.Run("LeadEvents", func(t *testing.T) {
		h, err := LeadsCore(r.parts)
		if err != nil {
			t.Fatal(err)
		}
		event := func(id, app string) []byte {
			var m map[string]any
			if err := json.Unmarshal(leadEvent(id, "lead.assigned", "u1"), &m); err != nil {
				t.Fatal(err)
			}
			if app != "" {
				m["app"] = app
			}
			b, _ := json.Marshal(m)
			return b
		}
		deliver := func(app string, evs ...platform.Event) []string {
			var failed []string
			failed, err = h.Events(withApp(context.Background(), app), evs)
			if err != nil {
				t.Fatal(err)
			}
			return failed
		}
		if failed := deliver("b", sqs("m-b", event("evt-b", "b")), sqs("m-bid", event("evt-bid", isoAppIDs["b"]))); len(failed) != 0 {
			t.Fatalf("events for b: failed %v", failed)
		}
		if failed := deliver("a", sqs("m-none", event("evt-none", ""))); len(failed) != 0 {
			t.Fatalf("event without app: failed %v", failed)
		}
		if !hasMarker(r.wx["b"], bob.openB, "L-evt-b") || !hasMarker(r.wx["b"], bob.openB, "L-evt-bid") || hasMarker(r.wx["a"], alice.openA, "L-evt-b") {
			t.Fatalf("events for b: bob in b %v, alice in a %v", markers(r.wx["b"], bob.openB), markers(r.wx["a"], alice.openA))
		}
		if !hasMarker(r.wx["a"], alice.openA, "L-evt-none") || hasMarker(r.wx["b"], bob.openB, "L-evt-none") {
			t.Fatalf("event without app: alice in a %v, bob in b %v", markers(r.wx["a"], alice.openA), markers(r.wx["b"], bob.openB))
		}
		before := len(r.wx["a"].AllMessages()) + len(r.wx["b"].AllMessages()) + len(r.wx["c"].AllMessages())
		failed := deliver("zz", sqs("m-zz", event("evt-zz", "zz")),
			platform.Event{ID: "t/0/9", Source: platform.SourceCKafka, Body: event("evt-zz-kafka", "zz")})
		if len(failed) != 1 || failed[0] != "m-zz" {
			t.Fatalf("unknown app: failed %v, want the SQS message only (to its DLQ; CKafka acknowledged)", failed)
		}
		if after := len(r.wx["a"].AllMessages()) + len(r.wx["b"].AllMessages()) + len(r.wx["c"].AllMessages()); after != before {
			t.Fatalf("unknown app's events delivered %d messages", after-before)
		}
		a := r.do(t, "POST", "/v1/apps/a/events", isoAllKey, json.RawMessage(event("evt-cross", "b")))
		if a.status != http.StatusBadRequest || !strings.Contains(a.raw, `"app"`) {
			t.Fatalf("POST /v1/apps/a/events naming b: %d %s, want 400 on field app", a.status, a.raw)
		}
		if hasMarker(r.wx["b"], bob.openB, "L-evt-cross") || hasMarker(r.wx["a"], alice.openA, "L-evt-cross") {
			t.Fatal("the refused event was delivered")
		}
	})

	t.Run("StoreKeysScoped", func(t *testing.T) {
		r.waitPushes()
		r.rec.mu.Lock()
		defer r.rec.mu.Unlock()
		for _, app := range []string{"a", "b", "c"} {
			appID := isoAppIDs[app]
			for _, k := range r.rec.writes[app] {
				if !keyOf(k, appID) {
					t.Errorf("app %s wrote %s, a key without its AppID", app, k)
				}
				for other, otherID := range isoAppIDs {
					if other != app && strings.Contains(k.String(), otherID) {
						t.Errorf("app %s wrote %s, a key of app %s", app, k, other)
					}
				}
			}
		}
		if len(r.rec.writes["a"]) == 0 || len(r.rec.writes["b"]) == 0 {
			t.Fatalf("writes recorded: a %d, b %d; the guard saw nothing", len(r.rec.writes["a"]), len(r.rec.writes["b"]))
		}
		if n := len(r.rec.writes["zz"]); n != 0 {
			t.Fatalf("requests to an unknown app wrote %d keys: %v", n, r.rec.writes["zz"])
		}
	})

	if n := r.multi.WrongApp(); n != 0 {
		t.Fatalf("sends to another app's openid: %d", n)
	}
	if n := len(r.wx["c"].AllMessages()); n != 0 {
		t.Fatalf("app c, never addressed, got %d messages", n)
	}
}

// keyOf reports whether k is scoped to appID: the AppID in its partition,
// or the access token partition with the AppID as its sort key.
func keyOf(k store.Key, appID string) bool {
	if k.Partition == wechat.TokenPartition {
		return k.Sort == appID || strings.HasPrefix(k.Sort, appID+"#")
	}
	return strings.Contains(k.Partition, "|"+appID+"|") || strings.HasSuffix(k.Partition, "|"+appID)
}
