package console_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestOIDCInBrowser clicks "Sign in with <issuer>" in chromium, then the
// issuer's login link, and lands on the overview, signed in as the
// issuer's account. The issuer is http://localhost:<port>, another site
// than the console's 127.0.0.1, so its redirect back is a cross-site
// navigation: the Lax state cookie goes with it, and the Strict session
// cookie is used from the page that moves on.
func TestOIDCInBrowser(t *testing.T) {
	f := newFixture(t, map[string]string{"WXN_ADMIN_KEYS": ""})
	seed(t, f)
	idp := newFakeIdP(t, f.now, oidcClientID, oidcSecret)
	idp.iss = strings.Replace(idp.srv.URL, "127.0.0.1", "localhost", 1)
	idp.loginPage = true
	withOIDC(t, f, idp, "alice@example.com")

	var mu sync.Mutex
	var dialogs, exceptions []string
	var statuses []string
	ctx, cancel := browser(t, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 && !strings.HasSuffix(e.Response.URL, "/favicon.ico") {
				statuses = append(statuses, fmt.Sprintf("%d %s", e.Response.Status, e.Response.URL))
			}
		case *page.EventJavascriptDialogOpening:
			dialogs = append(dialogs, e.Message)
		case *runtime.EventExceptionThrown:
			exceptions = append(exceptions, e.ExceptionDetails.Text)
		}
	})
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	app := f.url + "/console/apps/default"
	if err := chromedp.Do(ctx, chromedp.Navigate(app+"/overview?lang=en"), chromedp.WaitVisible(chromedp.CSS("#oidc-signin"))); err != nil {
		t.Fatalf("sign-in page: %v", err)
	}
	host := strings.TrimPrefix(idp.issuer(), "http://")
	if got := value(t, ctx, "button", chromedp.Text(chromedp.CSS("#oidc-signin"))); strings.TrimSpace(got) != "Sign in with "+host {
		t.Errorf("the button: got %q, want %q", got, "Sign in with "+host)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#oidc-signin")), chromedp.WaitVisible(chromedp.CSS("#idp-login"))); err != nil {
		t.Fatalf("to the issuer's login page: %v", err)
	}
	if loc := value(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, idp.issuer()+"/authorize?") {
		t.Errorf("the issuer's login page: got %s", loc)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#idp-login")), chromedp.WaitVisible(chromedp.CSS("#chart"))); err != nil {
		t.Fatalf("sign in at the issuer: %v", err)
	}
	if loc := value(t, ctx, "location", chromedp.Location()); loc != app+"/overview" {
		t.Errorf("after signing in: got %s, want the overview", loc)
	}
	if got := value(t, ctx, "footer", chromedp.Text(chromedp.CSS("footer code"))); got != "oidc alice@example.com" {
		t.Errorf("footer: got %q, want oidc alice@example.com", got)
	}
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{f.url + "/console/oidc/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "wxn_console_oidc" {
			t.Errorf("the state cookie is left: %+v", c)
		}
	}
	// Signing out ends it: the sign-in page again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#oidc-signin"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) > 0 {
		t.Errorf("the browser got refusals during the sign-in: %v", statuses)
	}
	if len(dialogs) > 0 || len(exceptions) > 0 {
		t.Errorf("got dialogs %v and script errors %v, want none", dialogs, exceptions)
	}
}
