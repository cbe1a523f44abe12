package wechat_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// appsTokenServer is a WeChat that serves several mini programs: each
// AppID has its own secret and its own current token, and a send is
// accepted only with a token of the app the call is made for (the page
// names it: "<appid>/<call>").
type appsTokenServer struct {
	*httptest.Server
	tb      testing.TB
	secrets map[string]string
	mu      sync.Mutex
	fetches map[string]int // by AppID
	tokens  map[string]string
	sends   map[string]int
}

func newAppsTokenServer(tb testing.TB, secrets map[string]string) *appsTokenServer {
	s := &appsTokenServer{tb: tb, secrets: secrets, fetches: map[string]int{}, tokens: map[string]string{}, sends: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // widen the race
		var body struct {
			AppID  string `json:"appid"`
			Secret string `json:"secret"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || s.secrets[body.AppID] == "" || body.Secret != s.secrets[body.AppID] {
			io.WriteString(w, `{"errcode":40125,"errmsg":"invalid appsecret"}`)
			return
		}
		s.mu.Lock()
		s.fetches[body.AppID]++
		tok := fmt.Sprintf("tok-%s-%d", body.AppID, s.fetches[body.AppID])
		s.tokens[body.AppID] = tok
		s.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, tok)
	})
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Page string `json:"page"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			tb.Errorf("send body: %v", err)
		}
		app, _, _ := strings.Cut(body.Page, "/")
		s.mu.Lock()
		ok := r.URL.Query().Get("access_token") == s.tokens[app]
		if ok {
			s.sends[app]++
		}
		s.mu.Unlock()
		if !ok {
			io.WriteString(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`)
			return
		}
		io.WriteString(w, `{"errcode":0,"errmsg":"ok","msgid":1}`)
	})
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

// G5 with several mini programs in one deployment: one token per AppID.
// Four instances share one store and each serves three apps; 100
// concurrent calls per instance, spread over the apps, make exactly one
// stable_token call per app, and every call carries its own app's token.
func TestStoreTokenSourceOneFetchPerApp(t *testing.T) {
	apps := map[string]string{
		"wx1111111111111111": "secret-of-the-sales-app",
		"wx2222222222222222": "secret-of-the-customer-app",
		"wx3333333333333333": "secret-of-the-test-app",
	}
	var appIDs []string
	for id := range apps {
		appIDs = append(appIDs, id)
	}
	srv := newAppsTokenServer(t, apps)
	st := openStore(t, nil)
	type appClient struct {
		appID  string
		client *wechat.Client
	}
	var fleet [][]appClient
	for range 4 {
		var clients []appClient
		for _, id := range appIDs {
			cfg := wechat.Config{AppID: id, Secret: apps[id], BaseURL: srv.URL}
			ts, err := wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Tokens = ts
			c, err := wechat.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, appClient{id, c})
		}
		fleet = append(fleet, clients)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, clients := range fleet {
		for g := range 100 {
			ac := clients[g%len(clients)]
			wg.Go(func() {
				<-start
				req := sendRequest()
				req.Page = fmt.Sprintf("%s/%d-%d", ac.appID, i, g)
				if _, err := ac.client.SendSubscribeMessage(t.Context(), req); err != nil {
					t.Errorf("instance %d, app %s, call %d: %v", i, ac.appID, g, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	total := 0
	for _, id := range appIDs {
		if srv.fetches[id] != 1 {
			t.Errorf("app %s: %d stable_token calls, want 1", id, srv.fetches[id])
		}
		total += srv.sends[id]
	}
	if len(srv.fetches) != len(apps) {
		t.Errorf("stable_token calls for %d apps, want %d", len(srv.fetches), len(apps))
	}
	if total != 400 {
		t.Errorf("%d sends accepted, want 400 (each with its own app's token)", total)
	}
}
