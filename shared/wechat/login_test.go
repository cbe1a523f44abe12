package wechat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

func TestCode2Session(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  wechat.Session
		check func(error) bool // nil: success expected
	}{
		{"OKWithoutErrcode", `{"openid":"oUser","session_key":"key=="}`, wechat.Session{OpenID: "oUser", SessionKey: "key=="}, nil},
		{"OKWithUnionID", `{"errcode":0,"errmsg":"ok","openid":"oUser","session_key":"key==","unionid":"uUser"}`,
			wechat.Session{OpenID: "oUser", UnionID: "uUser", SessionKey: "key=="}, nil},
		{"ErrInvalidCode", `{"errcode":40029,"errmsg":"invalid code, rid: 1"}`, wechat.Session{}, wechat.IsInvalidCode},
		{"ErrCodeUsed", `{"errcode":40163,"errmsg":"code been used, rid: 1"}`, wechat.Session{}, wechat.IsInvalidCode},
		{"ErrBlocked", `{"errcode":40226,"errmsg":"high risk user, rid: 1"}`, wechat.Session{}, wechat.IsUserBlocked},
		{"ErrRateLimited", `{"errcode":45011,"errmsg":"api minute-quota reach limit, rid: 1"}`, wechat.Session{}, wechat.IsRateLimited},
		{"ErrBusy", `{"errcode":-1,"errmsg":"system error"}`, wechat.Session{}, wechat.IsRetryable},
		{"ErrBadSecret", `{"errcode":40125,"errmsg":"invalid appsecret"}`, wechat.Session{}, wechat.IsMisconfigured},
		{"ErrNoOpenID", `{"session_key":"key=="}`, wechat.Session{}, func(err error) bool {
			_, ok := errors.AsType[*wechat.TransportError](err)
			return ok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got url.Values
			var path string
			srv := serveJSON(t, tt.body, func(r *http.Request, _ []byte) {
				if r.Method != http.MethodGet {
					t.Errorf("got method %s, want GET", r.Method)
				}
				path, got = r.URL.Path, r.URL.Query()
			})
			s, err := newClient(t, srv.URL).Code2Session(t.Context(), "0a3Xyz")
			want := url.Values{"appid": {testAppID}, "secret": {testSecret}, "js_code": {"0a3Xyz"}, "grant_type": {"authorization_code"}}
			if path != "/sns/jscode2session" || got.Encode() != want.Encode() {
				t.Errorf("got %s?%s, want /sns/jscode2session?%s", path, got.Encode(), want.Encode())
			}
			if tt.check == nil {
				if err != nil || s != tt.want {
					t.Fatalf("got (%+v, %v), want %+v", s, err, tt.want)
				}
				return
			}
			if err == nil || !tt.check(err) {
				t.Fatalf("got %v, want a classified error", err)
			}
		})
	}
}

func TestCode2SessionLocalErrors(t *testing.T) {
	srv := serveJSON(t, `{}`, func(*http.Request, []byte) { t.Error("request reached WeChat") })
	c := newClient(t, srv.URL)
	for _, code := range []string{"", strings.Repeat("a", 257)} {
		if _, err := c.Code2Session(t.Context(), code); !errors.Is(err, wechat.ErrInvalidArgument) {
			t.Errorf("code of %d bytes: got %v, want ErrInvalidArgument", len(code), err)
		}
	}
	noSecret := newClient(t, srv.URL, func(cfg *wechat.Config) { cfg.Secret = "" })
	if _, err := noSecret.Code2Session(t.Context(), "code"); err == nil {
		t.Error("got no error without a secret, want one")
	}
}

func TestCode2SessionTokenFree(t *testing.T) {
	var got url.Values
	srv := serveJSON(t, `{"openid":"oUser","session_key":"k"}`, func(r *http.Request, _ []byte) { got = r.URL.Query() })
	c := newClient(t, srv.URL, func(cfg *wechat.Config) {
		*cfg = wechat.Config{AppID: testAppID, BaseURL: srv.URL, TokenFree: true}
	})
	if _, err := c.Code2Session(t.Context(), "code"); err != nil {
		t.Fatal(err)
	}
	if got.Has("secret") || got.Has("access_token") {
		t.Errorf("got query %v, want neither secret nor access_token", got)
	}
}

func TestSessionRedaction(t *testing.T) {
	s := wechat.Session{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", UnionID: "oUnion", SessionKey: "tiihtNczf5v6AKRyjwEUhQ=="}
	var logs lockedbuf.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("login", "session", s)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog":   logs.String(),
		"%v":     fmt.Sprintf("%v", s),
		"%+v":    fmt.Sprintf("%+v", s),
		"String": s.String(),
		"json":   string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, s.SessionKey) {
			t.Errorf("%s output %q contains the session key", name, out)
		}
	}
	for _, name := range []string{"slog", "%v", "%+v"} {
		if strings.Contains(outputs[name], s.OpenID) {
			t.Errorf("%s output %q contains the full openid", name, outputs[name])
		}
		if !strings.Contains(outputs[name], wechat.ShortHash(s.OpenID)) {
			t.Errorf("%s output %q lacks the openid's short hash", name, outputs[name])
		}
	}
}

func TestShortHash(t *testing.T) {
	a, b := wechat.ShortHash("oA"), wechat.ShortHash("oB")
	if len(a) != 12 || a == b || a != wechat.ShortHash("oA") {
		t.Errorf("got %q and %q, want two stable, distinct 12-digit tags", a, b)
	}
	if got := wechat.ShortHash(""); got != "" {
		t.Errorf("got %q for \"\", want \"\"", got)
	}
}
