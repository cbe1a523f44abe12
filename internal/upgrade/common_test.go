package upgrade

import (
	"os"

	yaml "go.yaml.in/yaml/v3"

	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/storeenv"
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

func TestMain(m *testing.M) { storeenv.Main(m) }

// The mini program of the fixtures, and its templates (those of
// testdata/wxnotify.yaml, the fake WeChat's defaults).
const (
	appID      = "wx0f1c2e3d4a5b6c70"
	fakeSecret = "0f1c2e3d4a5b6c708192a3b4c5d6e7f8"
	tmplLead   = "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE" // one-time, alias registration
	tmplDaily  = "Bq2ZhXK0m4Yt8c9XkQfJ7uV3sLwN5aPdRbEeGiHjTk0" // one-time, alias daily
	tmplStatus = "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME" // long-term, alias status
)

// fixtureDir is where the v1 layout's fixtures live.
var fixtureDir = filepath.Join("testdata", "v1")

// Expect is expect.json: what a store holding a v1 dump must read back.
type Expect struct {
	Layout        string               `json:"layout"`
	GeneratedAt   time.Time            `json:"generatedAt"`
	AppID         string               `json:"appId"`
	Users         []ExpectUser         `json:"users"`
	Notifications []ExpectNotification `json:"notifications"`
	Batches       []ExpectBatch        `json:"batches"`
}

// ExpectUser is one user: its openid, its binding and its standing per
// template of the catalog.
type ExpectUser struct {
	Name     string           `json:"name"` // the fake WeChat's user name
	OpenID   string           `json:"openid"`
	UserID   string           `json:"userId,omitempty"`
	Credits  map[string]int64 `json:"credits"`  // template id -> one-time credits
	LongTerm map[string]bool  `json:"longTerm"` // template id -> accepted
}

// ExpectNotification is one send: the request made and its outcome.
type ExpectNotification struct {
	ID      string     `json:"id"`
	Request SendRecord `json:"request"`
	Status  string     `json:"status"`
	Reason  string     `json:"reason,omitempty"`
}

// SendRecord is a notify.SendRequest as JSON.
type SendRecord struct {
	To             notify.Recipient  `json:"to"`
	Template       string            `json:"template"`
	Data           map[string]string `json:"data"`
	Page           string            `json:"page,omitempty"`
	IdempotencyKey string            `json:"idempotencyKey"`
	Source         notify.SourceKind `json:"source"`
}

func (r SendRecord) request() notify.SendRequest {
	return notify.SendRequest{To: r.To, Template: r.Template, Data: r.Data, Page: r.Page,
		IdempotencyKey: r.IdempotencyKey, Source: r.Source}
}

// ExpectBatch is one batch with its status and counters.
type ExpectBatch struct {
	ID             string                  `json:"id"`
	IdempotencyKey string                  `json:"idempotencyKey"`
	Template       string                  `json:"template"`
	Data           map[string]string       `json:"data,omitempty"`
	Audience       string                  `json:"audience,omitempty"`
	Recipients     []notify.BatchRecipient `json:"recipients,omitempty"`
	// NotBefore is the time requested, zero for a batch due at once.
	NotBefore time.Time `json:"notBefore,omitzero"`
	Status    string    `json:"status"`
	Total     int       `json:"total"`
	Sent      int       `json:"sent"`
	Skipped   int       `json:"skipped"`
	Failed    int       `json:"failed"`
	Unknown   int       `json:"unknown"`
}

func batchCounters(b notify.Batch) [5]int {
	return [5]int{b.Total, b.Sent, b.Skipped, b.Failed, b.Unknown}
}

func (e ExpectBatch) counters() [5]int {
	return [5]int{e.Total, e.Sent, e.Skipped, e.Failed, e.Unknown}
}

// newFake returns the fake WeChat of the fixtures' mini program: the same
// AppID, and so the same openids, every time.
func newFake(t *testing.T) *wechattest.Server {
	t.Helper()
	wx := wechattest.NewServer(wechattest.Options{AppID: appID, Secret: fakeSecret})
	t.Cleanup(wx.Close)
	return wx
}

// buildParts builds the functions' parts with the current code on st,
// through shared/boot exactly as a deployment does: the configuration comes
// from environment variables (config.FromEnv) naming the fixtures' AppID,
// the fake WeChat wx and the catalog testdata/wxnotify.yaml. The service's
// clock is wx's, so that wx.Advance moves both. The parts are closed when t
// ends.
//
// This is the one place that says how a deployment is configured: when the
// configuration takes a new shape (several mini programs), only this
// function changes, and the fixtures must still read back through it.
//
// With shape "apps" the deployment has moved to wxnotify.yaml's apps: the
// fixtures' mini program is the app "crm" (with the same AppID), listed
// after a new app "customer" and made the default with defaultApp, the
// credentials under WXN_APP_CRM_*. Either way Parts.Service is crm's.
func buildParts(t *testing.T, st store.Store, wx *wechattest.Server, shape ...string) *boot.Parts {
	t.Helper()
	env := map[string]string{
		"WXN_WECHAT_APPID":    appID,
		"WXN_WECHAT_SECRET":   wx.Secret(),
		"WXN_WECHAT_API_BASE": wx.URL(),
		"WXN_SESSION_SECRET":  strings.Repeat("s", 32),
		"WXN_API_KEYS":        "0123456789abcdef",
		"WXN_CONFIG":          filepath.Join("testdata", "wxnotify.yaml"),
		"WXN_BATCH_RATE":      "1000",
	}
	if len(shape) > 0 && shape[0] == "apps" {
		env["WXN_CONFIG"] = appsConfig(t)
		delete(env, "WXN_WECHAT_APPID")
		delete(env, "WXN_WECHAT_SECRET")
		env["WXN_APP_CRM_WECHAT_SECRET"] = wx.Secret()
		env["WXN_APP_CUSTOMER_WECHAT_SECRET"] = "customer-secret"
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	parts, err := boot.Build(cfg, st, boot.Options{Function: "api", Now: wx.Now})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	return parts
}

// otherAppID is the AppID of the app "customer" that the apps shape adds.
const otherAppID = "wx0f1c2e3d4a5b6c71"

// appsConfig writes the apps shape of testdata/wxnotify.yaml: the same
// catalog for the apps "customer" and "crm" (the fixtures' AppID), crm the
// default.
func appsConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "wxnotify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	single, err := config.ParseFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	f := config.File{DefaultApp: "crm", Apps: []config.AppSpec{
		{ID: "customer", AppID: otherAppID, Templates: single.Templates},
		{ID: "crm", AppID: appID, Templates: single.Templates, Rules: single.Rules},
	}}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// standing reads a user's credits and long-term acceptances per template
// through the service.
func standing(t *testing.T, svc *notify.Service, openID string) (map[string]int64, map[string]bool) {
	t.Helper()
	cs, err := svc.Consents(context.Background(), openID)
	if err != nil {
		t.Fatalf("consents of %s: %v", openID, err)
	}
	credits, longTerm := map[string]int64{}, map[string]bool{}
	for _, c := range cs {
		if c.Template.Kind == notify.LongTerm {
			longTerm[c.Template.ID] = c.LongTerm
		} else {
			credits[c.Template.ID] = c.Credits
		}
	}
	return credits, longTerm
}
