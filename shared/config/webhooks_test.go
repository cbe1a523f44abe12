package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

const webhooksAppsYAML = `apps:
  - id: sales-team
    webhooks:
      - id: crm-main
        url: https://crm.example.com/hooks
        events: [notification.failed, notification.unknown]
      - id: audit
        url: http://audit.example.com
        events: ["*"]
  - id: shop
`

func TestWebhooksPerApp(t *testing.T) {
	s1, s2 := webhook.NewSecret(), webhook.NewSecret()
	c, err := FromEnv(env(
		"WXN_CONFIG", writeConfig(t, webhooksAppsYAML),
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET", s1,
		"WXN_APP_SALES_TEAM_WEBHOOK_AUDIT_SECRET", " "+s2+"\n",
	), false)
	if err != nil {
		t.Fatal(err)
	}
	sales, _ := c.App("sales-team")
	shop, _ := c.App("shop")
	if len(shop.Webhooks) != 0 || len(sales.Webhooks) != 2 {
		t.Fatalf("webhooks: sales %+v, shop %+v", sales.Webhooks, shop.Webhooks)
	}
	w := sales.Webhooks[0]
	if w.ID != "crm-main" || w.URL != "https://crm.example.com/hooks" || w.Secret != s1 ||
		w.SecretVariable != "WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET" ||
		!slices.Equal(w.Events, []string{webhook.EventNotificationFailed, webhook.EventNotificationUnknown}) {
		t.Fatalf("first webhook %+v", w)
	}
	if sales.Webhooks[1].Secret != s2 {
		t.Fatalf("second webhook's secret %q, want trimmed", sales.Webhooks[1].Secret)
	}
}

// A webhook to an event bus needs no signing secret.
func TestWebhooksEventBus(t *testing.T) {
	yml := "apps:\n  - id: shop\n    webhooks:\n      - id: bus\n        eventBusArn: arn:aws:events:eu-west-1:123456789012:event-bus/crm\n" +
		"        events: [consent.changed, batch.finished]\n"
	c, err := FromEnv(env("WXN_CONFIG", writeConfig(t, yml)), false)
	if err != nil {
		t.Fatal(err)
	}
	shop, _ := c.App("shop")
	if len(shop.Webhooks) != 1 {
		t.Fatalf("webhooks %+v", shop.Webhooks)
	}
	w := shop.Webhooks[0]
	if w.ID != "bus" || w.URL != "" || w.EventBusARN != "arn:aws:events:eu-west-1:123456789012:event-bus/crm" || w.Secret != "" ||
		!slices.Equal(w.Events, []string{webhook.EventConsentChanged, webhook.EventBatchFinished}) {
		t.Fatalf("webhook %+v", w)
	}
}

func TestWebhooksSingleApp(t *testing.T) {
	yml := "templates: []\nrules: []\nwebhooks:\n  - id: crm\n    url: https://crm.example.com/h\n    events: [notification.sent]\n"
	secret := webhook.NewSecret()
	c, err := FromEnv(env("WXN_CONFIG", writeConfig(t, yml), "WXN_WEBHOOK_CRM_SECRET", secret), false)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Default()
	if len(a.Webhooks) != 1 || a.Webhooks[0].Secret != secret || a.Webhooks[0].SecretVariable != "WXN_WEBHOOK_CRM_SECRET" {
		t.Fatalf("default app's webhooks %+v", a.Webhooks)
	}
	_, err = FromEnv(env("WXN_CONFIG", writeConfig(t, yml)), false)
	if err == nil || !strings.Contains(err.Error(), "WXN_WEBHOOK_CRM_SECRET: required") {
		t.Fatalf("missing secret: %v", err)
	}
	_, err = FromEnv(env("WXN_CONFIG", writeConfig(t, yml), "WXN_WEBHOOK_CRM_SECRET", "whsec_short"), false)
	if err == nil || !strings.Contains(err.Error(), "WXN_WEBHOOK_CRM_SECRET: not a signing secret") {
		t.Fatalf("bad secret: %v", err)
	}
	_, err = FromEnv(env("WXN_CONFIG", writeConfig(t, yml), "WXN_WEBHOOK_CRM_SECRET", "plain-text-password-0123456789"), false)
	if err == nil || !strings.Contains(err.Error(), "not a signing secret") {
		t.Fatalf("secret without whsec_: %v", err)
	}
}

func TestWebhooksInvalid(t *testing.T) {
	hook := func(id, url, events string) string {
		return "apps:\n  - id: shop\n    webhooks:\n      - id: " + id + "\n        url: " + url + "\n        events: " + events + "\n"
	}
	for _, c := range []struct{ yml, want string }{
		{hook("Bad_Id", "https://x.example.com", "['*']"), `apps[0] (shop).webhooks[0].id: "Bad_Id" is not a webhook id`},
		{hook("crm", "ftp://x.example.com", "['*']"), `apps[0] (shop).webhooks[0] (crm).url: "ftp://x.example.com" is not an http(s) URL`},
		{hook("crm", "https://", "['*']"), `webhooks[0] (crm).url:`},
		{hook("crm", "https://u:p@x.example.com", "['*']"), `.url: must not carry credentials`},
		{hook("crm", "https://x.example.com", "[]"), `webhooks[0] (crm).events: required`},
		{hook("crm", "https://x.example.com", "[notification.nope]"), `"notification.nope" is not an event type`},
		{hook("crm", "https://x.example.com", "['*', notification.sent]"), `"*" selects every event`},
		{hook("crm", "https://x.example.com", "[notification.sent, notification.sent]"), `listed twice`},
		{hook("crm", "https://x.example.com", "['*']") + "      - id: crm\n        url: https://y.example.com\n        events: ['*']\n",
			`webhooks[1] (crm).id: another webhook of the app has this id`},
		{"webhooks: [{id: crm, url: 'https://x.example.com', events: ['*']}]\napps: [{id: shop}]\n", "webhooks: with apps, each app has its own"},
		{"webhooks: [{id: crm, url: 'https://x.example.com', events: ['*'], secret: whsec_x}]\n", "field secret not found"},
		{"webhooks: [{id: bus, url: 'https://x.example.com', eventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/crm', events: ['*']}]\n",
			"webhooks[0] (bus): url and eventBusArn: give one of them"},
		{"webhooks: [{id: bus, eventBusArn: 'arn:aws:sqs:us-east-1:123456789012:q', events: ['*']}]\n",
			`webhooks[0] (bus).eventBusArn: "arn:aws:sqs:us-east-1:123456789012:q" is not an event bus ARN`},
		{"webhooks: [{id: bus, events: ['*']}]\n", `webhooks[0] (bus).url: "" is not an http(s) URL`},
	} {
		_, err := ParseFile([]byte(c.yml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\ngot %v, want %q", c.yml, err, c.want)
		}
	}
	var many strings.Builder
	many.WriteString("webhooks:\n")
	for i := range MaxWebhooks + 1 {
		many.WriteString("  - {id: h" + string(rune('a'+i)) + ", url: 'https://x.example.com', events: ['*']}\n")
	}
	if _, err := ParseFile([]byte(many.String())); err == nil || !strings.Contains(err.Error(), "at most 10 per app") {
		t.Errorf("too many webhooks: %v", err)
	}
}

// The webhook secret variables are secrets: with a secret store they come
// from the secret only, and the secret may hold them.
func TestWebhookSecretVariablesKnown(t *testing.T) {
	for _, name := range []string{
		"WXN_WEBHOOK_CRM_SECRET", "WXN_APP_SALES_WEBHOOK_CRM_SECRET", "WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET",
		"WXN_APP_MY_WEBHOOK_APP_WEBHOOK_X_SECRET",
	} {
		v, ok := lookupVariable(name)
		if !ok || !v.secret {
			t.Errorf("%s: known %v, secret %v; want a known secret", name, ok, v.secret)
		}
	}
	for _, name := range []string{
		"WXN_WEBHOOK__SECRET", "WXN_WEBHOOK_crm_SECRET", "WXN_APP_WEBHOOK_CRM_SECRET", "WXN_APP_SALES_WEBHOOK__SECRET",
		"WXN_APP_SALES_WEBHOOK_CRM_TOKEN", "WXN_WEBHOOK_CRM",
	} {
		if _, ok := lookupVariable(name); ok {
			t.Errorf("%s: known, want unknown", name)
		}
	}
	secret := webhook.NewSecret()
	get, err := WithSecret(env("WXN_WEBHOOK_CRM_SECRET", "from-env"), map[string]string{"WXN_APP_SHOP_WEBHOOK_CRM_SECRET": secret}, "the secret")
	if err != nil {
		t.Fatal(err)
	}
	if get("WXN_APP_SHOP_WEBHOOK_CRM_SECRET") != secret || get("WXN_WEBHOOK_CRM_SECRET") != "" {
		t.Fatalf("with a secret store: %q, %q", get("WXN_APP_SHOP_WEBHOOK_CRM_SECRET"), get("WXN_WEBHOOK_CRM_SECRET"))
	}
	if got := WebhookSecretVariable("sales-team", "crm-main"); got != "WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET" {
		t.Fatalf("WebhookSecretVariable = %s", got)
	}
}

// During a rotation a webhook has its previous secret too, from the
// variable of the secret with _PREVIOUS appended (a secret as well).
func TestWebhookSecretPrevious(t *testing.T) {
	cur, prev := webhook.NewSecret(), webhook.NewSecret()
	c, err := FromEnv(env(
		"WXN_CONFIG", writeConfig(t, webhooksAppsYAML),
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET", cur,
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET_PREVIOUS", " "+prev+"\n",
		"WXN_APP_SALES_TEAM_WEBHOOK_AUDIT_SECRET", cur,
	), false)
	if err != nil {
		t.Fatal(err)
	}
	sales, _ := c.App("sales-team")
	if w := sales.Webhooks[0]; w.Secret != cur || w.SecretPrevious != prev {
		t.Fatalf("crm-main: secret %q, previous %q; want both", w.Secret, w.SecretPrevious)
	}
	if w := sales.Webhooks[1]; w.SecretPrevious != "" {
		t.Fatalf("audit: previous %q, want none", w.SecretPrevious)
	}
	_, err = FromEnv(env(
		"WXN_CONFIG", writeConfig(t, webhooksAppsYAML),
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET", cur,
		"WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET_PREVIOUS", "whsec_short",
		"WXN_APP_SALES_TEAM_WEBHOOK_AUDIT_SECRET", cur,
	), false)
	if err == nil || !strings.Contains(err.Error(), "WXN_APP_SALES_TEAM_WEBHOOK_CRM_MAIN_SECRET_PREVIOUS: not a signing secret") {
		t.Fatalf("bad previous secret: %v", err)
	}
	for _, name := range []string{"WXN_WEBHOOK_CRM_SECRET_PREVIOUS", "WXN_APP_SALES_WEBHOOK_CRM_SECRET_PREVIOUS"} {
		if v, ok := lookupVariable(name); !ok || !v.secret {
			t.Errorf("%s: known %v, secret %v; want a known secret", name, ok, v.secret)
		}
	}
	if _, ok := lookupVariable("WXN_WEBHOOK_CRM_PREVIOUS"); ok {
		t.Error("WXN_WEBHOOK_CRM_PREVIOUS: known, want unknown")
	}
}
