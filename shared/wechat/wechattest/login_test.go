package wechattest_test

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

func sessionQuery(srv *wechattest.Server, code string) url.Values {
	return url.Values{"appid": {srv.AppID()}, "secret": {srv.Secret()}, "js_code": {code}, "grant_type": {"authorization_code"}}
}

func code2Session(tb testing.TB, srv *wechattest.Server, code string) answer {
	tb.Helper()
	return call(tb, srv, http.MethodGet, "/sns/jscode2session", sessionQuery(srv, code), nil)
}

var openidPattern = regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)

func TestOpenID(t *testing.T) {
	srv := newServer(t, wechattest.Options{AppID: "wx1234567890abcdef"})
	other := newServer(t, wechattest.Options{AppID: "wxfedcba0987654321"})
	alice := srv.OpenID("alice")
	if !openidPattern.MatchString(alice) {
		t.Fatalf("OpenID(alice) = %q, want 28 characters like WeChat's", alice)
	}
	if got := srv.OpenID("alice"); got != alice {
		t.Fatalf("OpenID(alice) again = %q, want %q", got, alice)
	}
	if srv.OpenID("bob") == alice {
		t.Fatal("bob and alice share an openid, want distinct ones")
	}
	if other.OpenID("alice") == alice {
		t.Fatal("alice has the same openid in two apps, want one per app")
	}
}

func TestCode2Session(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	a := code2Session(t, srv, srv.Login("alice"))
	if _, ok := a["errcode"]; ok {
		t.Fatalf("success has errcode %v, want none (as WeChat)", a["errcode"])
	}
	if got, want := a.str("openid"), srv.OpenID("alice"); got != want {
		t.Fatalf("openid = %q, want %q", got, want)
	}
	if a.str("session_key") == "" {
		t.Fatal("session_key is empty, want one")
	}
	if _, ok := a["unionid"]; ok {
		t.Fatal("unionid present for an app without Open Platform, want none")
	}
	again := code2Session(t, srv, srv.Login("alice"))
	if again.str("openid") != a.str("openid") {
		t.Fatal("a second login gave another openid, want the same")
	}
	if again.str("session_key") == a.str("session_key") {
		t.Fatal("a second login gave the same session_key, want a new one")
	}
}

func TestCode2SessionUnionID(t *testing.T) {
	srv := newServer(t, wechattest.Options{UnionID: true})
	a := code2Session(t, srv, srv.Login("alice"))
	if !openidPattern.MatchString(a.str("unionid")) {
		t.Fatalf("unionid = %q, want 28 characters", a.str("unionid"))
	}
}

func TestCode2SessionErrors(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tests := []struct {
		name  string
		query func() url.Values
		want  int
	}{
		{"ErrUnknownCode", func() url.Values { return sessionQuery(srv, "0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p") }, 40029},
		{"ErrUsedCode", func() url.Values {
			code := srv.Login("alice")
			code2Session(t, srv, code)
			return sessionQuery(srv, code)
		}, 40163},
		{"ErrExpiredCode", func() url.Values {
			code := srv.Login("alice")
			srv.Advance(5 * time.Minute)
			return sessionQuery(srv, code)
		}, 40029},
		{"ErrMissingCode", func() url.Values { return sessionQuery(srv, "") }, 41008},
		{"ErrInvalidSecret", func() url.Values {
			q := sessionQuery(srv, srv.Login("alice"))
			q.Set("secret", "nope")
			return q
		}, 40125},
		{"ErrInvalidAppID", func() url.Values {
			q := sessionQuery(srv, srv.Login("alice"))
			q.Set("appid", "wx0000000000000000")
			return q
		}, 40013},
		{"ErrGrantType", func() url.Values {
			q := sessionQuery(srv, srv.Login("alice"))
			q.Del("grant_type")
			return q
		}, 40002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, call(t, srv, http.MethodGet, "/sns/jscode2session", tt.query(), nil), tt.want)
		})
	}
}

func TestCode2SessionWithinLifetime(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	code := srv.Login("alice")
	srv.Advance(5*time.Minute - time.Second)
	wantErrcode(t, code2Session(t, srv, code), 0)
}

func TestCode2SessionRateLimit(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	for i := range 100 {
		if got := code2Session(t, srv, srv.Login("alice")).errcode(t); got != 0 {
			t.Fatalf("login %d: errcode %d, want 0", i, got)
		}
	}
	wantErrcode(t, code2Session(t, srv, srv.Login("alice")), 45011)
	wantErrcode(t, code2Session(t, srv, srv.Login("bob")), 0)
	srv.Advance(time.Minute)
	wantErrcode(t, code2Session(t, srv, srv.Login("alice")), 0)
}

func TestCodeOpenID(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	code := srv.Login("alice")
	if got, ok := srv.CodeOpenID(code); !ok || got != srv.OpenID("alice") {
		t.Fatalf("CodeOpenID = %q, %v, want alice's openid", got, ok)
	}
	wantErrcode(t, code2Session(t, srv, code), 0) // the lookup did not consume the code
	if _, ok := srv.CodeOpenID("unknown"); ok {
		t.Fatal("CodeOpenID(unknown) ok, want not found")
	}
	srv.Advance(time.Hour)
	srv.Login("bob") // forgets long-expired codes
	if _, ok := srv.CodeOpenID(code); ok {
		t.Fatal("CodeOpenID of a code expired for an hour ok, want forgotten")
	}
}
