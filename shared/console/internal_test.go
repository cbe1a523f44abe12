package console

import (
	"fmt"
	"testing"
	"time"
)

func TestAcceptLanguage(t *testing.T) {
	for h, want := range map[string]string{
		"":                                   "zh",
		"en-US,en;q=0.9":                     "en",
		"zh-CN,zh;q=0.9,en;q=0.8":            "zh",
		"fr-FR, en;q=0.5, zh;q=0.4":          "en",
		"fr-FR, en;q=0.3, zh-TW;q=0.4":       "zh",
		"de":                                 "zh",
		"en;q=0":                             "zh",
		"EN-gb":                              "en",
		"en;q=abc, zh;q=0.1":                 "zh",
		"en;q=0.500, zh;q=0.5":               "en",
		"*;q=0.1, en-AU;q=0.2, zh-HK;q=0.15": "en",
	} {
		if got := acceptLanguage(h); got != want {
			t.Errorf("acceptLanguage(%q): got %s, want %s", h, got, want)
		}
	}
}

// TestLimiterBounded: the limiter holds at most limiterAddrs addresses;
// past that, newcomers share one window, and expired windows make room.
func TestLimiterBounded(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now })
	for i := range limiterAddrs {
		if _, ok := l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256)); !ok {
			t.Fatalf("address %d: refused", i)
		}
	}
	for i := range signInAttempts {
		if _, ok := l.allow(fmt.Sprintf("192.0.2.%d", i)); !ok {
			t.Fatalf("newcomer %d: refused before the shared window is used up", i)
		}
	}
	if wait, ok := l.allow("192.0.2.200"); ok || wait != signInWindow {
		t.Fatalf("newcomer past the shared window: got %v %v, want refused for %v", ok, wait, signInWindow)
	}
	if len(l.addrs) != limiterAddrs+1 {
		t.Errorf("addresses held: got %d, want %d", len(l.addrs), limiterAddrs+1)
	}
	now = now.Add(signInWindow)
	if _, ok := l.allow("192.0.2.200"); !ok {
		t.Fatal("after the window: refused")
	}
	if len(l.addrs) != 1 {
		t.Errorf("addresses held after the window: got %d, want 1 (the expired ones dropped)", len(l.addrs))
	}
}

func TestAuditCursor(t *testing.T) {
	for v, want := range map[string]bool{
		"9999998222222222|0a1b2c3d4e5f": true,
		"9999998222222222|0a1b2c3d4e5":  false,
		"999999822222222x|0a1b2c3d4e5f": false,
		"9999998222222222:0a1b2c3d4e5f": false,
		"9999998222222222|0a1b2c3d4e5g": false,
		"":                              false,
	} {
		if got := validAuditCursor(v); got != want {
			t.Errorf("validAuditCursor(%q): got %v, want %v", v, got, want)
		}
	}
}
