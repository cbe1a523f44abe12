package boot

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// BenchmarkSendApps measures a send through the whole edge of a
// deployment of three apps: POST /v1/apps/{app}/notifications, the app
// chosen per request, on bbolt (no fsync) with the fake WeChat of the
// three apps in process. It reports the store round trips of one send,
// which the apps must not change: 3 without push, 4 with (the send's own,
// as BenchmarkSend in shared/notify counts them).
func BenchmarkSendApps(b *testing.B) {
	for _, push := range []bool{false, true} {
		name := "push-off"
		if push {
			name = "push-on"
		}
		b.Run(name, func(b *testing.B) {
			const users = 50
			mux, counting, targets, _ := benchApps(b, users, b.N/(3*users)+1, push, nil)
			before := counting.Total()
			b.ResetTimer()
			for i := range b.N {
				tg := targets[i%len(targets)]
				body := fmt.Sprintf(`{"to":{"openid":%q},"template":"lead_assigned","data":{"thing1":"Acme","character_string2":"L-%d"}}`, tg.openID, i)
				req := httptest.NewRequest(http.MethodPost, "/v1/apps/"+tg.app+"/notifications", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+benchKey)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK && rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"status":"sent"`) {
					b.Fatalf("send %d to %s: %d %s", i, tg.app, rec.Code, rec.Body.String())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(counting.Total()-before)/float64(b.N), "store-ops/send")
		})
	}
}

const benchKey = "bench-key-0123456789abcdef"

type benchTarget struct{ app, openID string }

// benchApps builds three apps (sales, customer, test) on one counting bolt
// store, with users holding creditsEach credits of lead_assigned in each
// app; extra sets more variables.
func benchApps(b testing.TB, users, creditsEach int, push bool, extra map[string]string) (http.Handler, *storetest.Counting, []benchTarget, *Parts) {
	b.Helper()
	return benchAppsFront(b, users, creditsEach, push, extra, nil)
}

// benchAppsFront is benchApps with the fake WeChat's handler served by
// front, which returns the base URL the deployment calls; nil: the fake's
// own server.
func benchAppsFront(b testing.TB, users, creditsEach int, push bool, extra map[string]string, front func(http.Handler) string) (http.Handler, *storetest.Counting, []benchTarget, *Parts) {
	b.Helper()
	const tmpl = "bench-lead-tmpl"
	ids := []string{"sales", "customer", "test"}
	var servers []*wechattest.Server
	var yaml strings.Builder
	yaml.WriteString("apps:\n")
	env := map[string]string{"WXN_SESSION_SECRET": strings.Repeat("s", 32), "WXN_API_KEYS": benchKey}
	for i, id := range ids {
		appID := fmt.Sprintf("wxbench%012d", i)
		fake := wechattest.NewServer(wechattest.Options{AppID: appID, DiscardMessages: true, Templates: []wechattest.Template{{
			PriTmplID: tmpl, Title: "线索分配通知", Type: 2,
			Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "character_string2"}},
		}}})
		servers = append(servers, fake)
		fmt.Fprintf(&yaml, "  - id: %s\n    appId: %s\n    templates:\n      - {alias: lead_assigned, id: %s, kind: one-time, keywords: [{name: thing1}, {name: character_string2}]}\n", id, appID, tmpl)
		env[config.AppVariable(id, "WXN_WECHAT_SECRET")] = fake.Secret()
		if push {
			env[config.AppVariable(id, "WXN_PUSH_ENABLED")] = "true"
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	multi, err := wechattest.NewMultiServer(servers...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(multi.Close)
	dir := b.TempDir()
	env["WXN_CONFIG"] = filepath.Join(dir, "wxnotify.yaml")
	env["WXN_WECHAT_API_BASE"] = multi.URL()
	if front != nil {
		env["WXN_WECHAT_API_BASE"] = front(multi.Handler())
	}
	if err := os.WriteFile(env["WXN_CONFIG"], []byte(yaml.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		b.Fatal(err)
	}
	bolt, err := boltstore.Open(filepath.Join(dir, "bench.db"), boltstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	counting := storetest.NewCounting(bolt)
	parts, err := Build(cfg, counting, Options{Function: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = parts.Close() })
	ctx := context.Background()
	creditsEach++ // one more for the warm-up send
	var targets []benchTarget
	for u := range users {
		for i, a := range parts.Apps {
			fake := servers[i]
			openID := fake.OpenID(fmt.Sprintf("user%d", u))
			for range creditsEach {
				if _, err := fake.Subscribe(openID, map[string]string{tmpl: "accept"}); err != nil {
					b.Fatal(err)
				}
			}
			// The ledger's counter, in the layout of docs/architecture.md: a
			// wrong key leaves the user without credit and the send skipped.
			key := store.Key{Partition: "u|" + a.Service.AppID() + "|" + openID, Sort: "c|" + tmpl + "|n"}
			if _, err := bolt.Put(ctx, key, store.FormatCounter(int64(creditsEach)), store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			targets = append(targets, benchTarget{app: a.ID, openID: openID})
		}
	}
	mux := parts.API.NewMux(httpapi.AllGroups...)
	// Warm each app's token with one send: its one fetch is not part of a
	// send.
	for i := range parts.Apps {
		tg := targets[i]
		body := fmt.Sprintf(`{"to":{"openid":%q},"template":"lead_assigned","data":{"thing1":"Acme","character_string2":"W"}}`, tg.openID)
		req := httptest.NewRequest(http.MethodPost, "/v1/apps/"+tg.app+"/notifications", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+benchKey)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"status":"sent"`) {
			b.Fatalf("warm-up send to %s: %d %s", tg.app, rec.Code, rec.Body.String())
		}
	}
	return mux, counting, targets, parts
}
