package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

func TestErrorMessage(t *testing.T) {
	err := &wechat.Error{Code: 47003, Msg: "argument invalid! data.thing1.value invalid", API: "subscribeMessage.send"}
	want := "wechat subscribeMessage.send: errcode 47003: argument invalid! data.thing1.value invalid"
	if got := err.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestClassifiers pins every classifier against every kind of error.
func TestClassifiers(t *testing.T) {
	code := func(c int) error { return &wechat.Error{Code: c, Msg: "m", API: "a"} }
	status := func(s int) error { return &wechat.HTTPError{API: "a", StatusCode: s} }
	transport := func(written bool) error {
		return &wechat.TransportError{API: "a", Written: written, Err: io.ErrUnexpectedEOF}
	}
	const (
		token = 1 << iota
		consent
		bad
		retry
		ambiguous
		invalidCode
		blocked
		rate
		misconfig
	)
	tests := []struct {
		name string
		err  error
		want int // the classifiers that must say true
	}{
		{"Nil", nil, 0},
		{"Plain", errors.New("x"), 0},
		{"Busy", code(-1), retry},
		{"InvalidCredential", code(40001), token},
		{"InvalidAccessToken", code(40014), token},
		{"TokenExpired", code(42001), token},
		{"WrappedTokenExpired", fmt.Errorf("sending: %w", code(42001)), token},
		{"NoSubscription", code(43101), consent},
		{"InvalidOpenID", code(40003), bad},
		{"InvalidTemplateID", code(40037), bad},
		{"InvalidData", code(47003), bad},
		{"InvalidPage", code(41030), bad},
		{"SensitiveContent", code(45168), bad},
		{"LocalArgument", fmt.Errorf("wechat x: %w: empty", wechat.ErrInvalidArgument), bad},
		{"QuotaReached", code(45009), retry},
		{"ConcurrentSend", code(43108), retry},
		{"RateLimited", code(45011), retry | rate},
		{"InvalidCode", code(40029), invalidCode},
		{"CodeUsed", code(40163), invalidCode},
		{"HighRiskUser", code(40226), blocked},
		{"InvalidAppID", code(40013), misconfig},
		{"InvalidSecret", code(40125), misconfig},
		{"IPNotAllowed", code(40164), misconfig},
		{"MissingToken", code(41001), misconfig},
		{"Unauthorized", code(48001), misconfig},
		{"SubscribeBanned", code(43107), misconfig},
		{"UnknownCode", code(99999), 0},
		{"HTTP404", status(404), 0},
		{"HTTP429", status(429), retry},
		{"HTTP500", status(500), retry},
		{"HTTP503", status(503), retry},
		{"HTTP504", status(504), retry | ambiguous},
		{"TransportNotWritten", transport(false), retry},
		{"TransportWritten", transport(true), retry | ambiguous},
		{"TransportCanceledAfterWrite", &wechat.TransportError{API: "a", Written: true, Err: context.Canceled}, retry | ambiguous},
	}
	classifiers := []struct {
		name string
		bit  int
		fn   func(error) bool
	}{
		{"IsTokenInvalid", token, wechat.IsTokenInvalid},
		{"IsConsentGone", consent, wechat.IsConsentGone},
		{"IsBadRequest", bad, wechat.IsBadRequest},
		{"IsRetryable", retry, wechat.IsRetryable},
		{"IsAmbiguous", ambiguous, wechat.IsAmbiguous},
		{"IsInvalidCode", invalidCode, wechat.IsInvalidCode},
		{"IsUserBlocked", blocked, wechat.IsUserBlocked},
		{"IsRateLimited", rate, wechat.IsRateLimited},
		{"IsMisconfigured", misconfig, wechat.IsMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range classifiers {
				if got, want := c.fn(tt.err), tt.want&c.bit != 0; got != want {
					t.Errorf("%s(%v) = %v, want %v", c.name, tt.err, got, want)
				}
			}
		})
	}
}

func TestErrCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 0},
		{&wechat.Error{Code: 43101}, 43101},
		{fmt.Errorf("wrapped: %w", &wechat.Error{Code: -1}), -1},
		{&wechat.HTTPError{StatusCode: 500}, 0},
	}
	for _, tt := range tests {
		if got := wechat.ErrCode(tt.err); got != tt.want {
			t.Errorf("ErrCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestInvalidField(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"Documented", &wechat.Error{Code: 47003, Msg: "argument invalid! data.thing1.value invalid rid: 6627e1e8-1f0b8b0f-4b7f4b3c"}, "data.thing1"},
		{"LongName", &wechat.Error{Code: 47003, Msg: "argument invalid! data.character_string12.value invalid"}, "data.character_string12"},
		{"NoValueSuffix", &wechat.Error{Code: 47003, Msg: "argument invalid! data.time3 invalid"}, "data.time3"},
		{"AfterColon", &wechat.Error{Code: 47003, Msg: "argument invalid!:data.phrase2.value"}, "data.phrase2"},
		{"Wrapped", fmt.Errorf("send: %w", &wechat.Error{Code: 47003, Msg: "argument invalid! data.date2.value invalid"}), "data.date2"},
		{"NoField", &wechat.Error{Code: 47003, Msg: "argument invalid! rid: 1"}, ""},
		{"EmptyName", &wechat.Error{Code: 47003, Msg: "argument invalid! data..value invalid"}, ""},
		{"NotKeywordName", &wechat.Error{Code: 47003, Msg: "argument invalid! data.<x>.value"}, ""},
		{"OtherCode", &wechat.Error{Code: 40003, Msg: "argument invalid! data.thing1.value invalid"}, ""},
		{"NotWeChat", errors.New("argument invalid! data.thing1.value invalid"), ""},
		{"Nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wechat.InvalidField(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestIPNotWhitelisted: errcode 40164 is ErrIPNotWhitelisted, and its
// message says what to do about it.
func TestIPNotWhitelisted(t *testing.T) {
	msg := "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6627e1e8"
	err := fmt.Errorf("sending: %w", &wechat.Error{Code: 40164, Msg: msg, API: "auth.getStableAccessToken"})
	if !errors.Is(err, wechat.ErrIPNotWhitelisted) || !wechat.IsIPNotWhitelisted(err) || !wechat.IsMisconfigured(err) {
		t.Errorf("errors.Is(40164, ErrIPNotWhitelisted), IsIPNotWhitelisted, IsMisconfigured: got false, want true")
	}
	want := "wechat auth.getStableAccessToken: errcode 40164: " + msg +
		": add the functions' egress IP (WeChat's errmsg names the address it saw) to the app's API IP whitelist in mp.weixin.qq.com"
	if got := err.Error(); got != "sending: "+want {
		t.Errorf("got %q, want %q", got, "sending: "+want)
	}
	for _, code := range []int{40001, 40013, 40125, 48001} {
		other := &wechat.Error{Code: code, Msg: "m", API: "a"}
		if errors.Is(other, wechat.ErrIPNotWhitelisted) || wechat.IsIPNotWhitelisted(other) {
			t.Errorf("errcode %d: IsIPNotWhitelisted got true, want false", code)
		}
	}
}
