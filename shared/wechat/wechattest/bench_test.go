package wechattest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// BenchmarkSend measures the fake's own cost per send (in process, no network), so that benchmarks of
// wxnotify measure wxnotify.
func BenchmarkSend(b *testing.B) {
	srv, err := wechattest.New(wechattest.Options{Templates: []wechattest.Template{{PriTmplID: "lt", Title: "T", Type: wechattest.LongTerm, Keywords: []wechattest.Keyword{{Name: "thing1"}}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	alice := srv.OpenID("alice")
	if _, err := srv.Subscribe(alice, map[string]string{"lt": "accept"}); err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cgi-bin/token?"+tokenQuery(srv).Encode(), nil))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		b.Fatal(err)
	}
	target := "/cgi-bin/message/subscribe/send?" + url.Values{"access_token": {tok.AccessToken}}.Encode()
	body := `{"touser":"` + alice + `","template_id":"lt","data":{"thing1":{"value":"hello"}}}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
			if !strings.Contains(rec.Body.String(), `"errcode":0`) {
				b.Errorf("send: %s", rec.Body)
				return
			}
		}
	})
}

// FuzzSendBody checks that any send body gets a WeChat answer (an errcode, and a msgid on success)
// and never breaks the fake.
func FuzzSendBody(f *testing.F) {
	srv, err := wechattest.New(wechattest.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	alice := srv.OpenID("alice")
	if _, err := srv.Subscribe(alice, map[string]string{leadTmpl: "accept"}); err != nil {
		f.Fatal(err)
	}
	valid, err := json.Marshal(sendBody(alice, leadTmpl, leadData()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(valid))
	f.Add(`{"touser":"` + alice + `","template_id":"` + leadTmpl + `","data":{"thing4":{"value":"` + strings.Repeat("字", 21) + `"}}}`)
	f.Add(`{"touser":1}`)
	f.Add(`{"data":[]}`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Add("")

	h := srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cgi-bin/token?"+tokenQuery(srv).Encode(), nil))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		f.Fatal(err)
	}
	target := "/cgi-bin/message/subscribe/send?" + url.Values{"access_token": {tok.AccessToken}}.Encode()
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d, want 200", rec.Code)
		}
		var a struct {
			Errcode *int            `json:"errcode"`
			Errmsg  string          `json:"errmsg"`
			MsgID   json.RawMessage `json:"msgid"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		switch {
		case a.Errcode == nil:
			t.Fatalf("answer %s without errcode", rec.Body)
		case *a.Errcode == 0 && len(a.MsgID) == 0:
			t.Fatalf("success %s without msgid", rec.Body)
		case *a.Errcode != 0 && !strings.Contains(a.Errmsg, " rid: "):
			t.Fatalf("error %s without rid", rec.Body)
		}
	})
}
