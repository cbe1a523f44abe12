package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

// MaxWebhooks bounds the webhooks of one app (each is one more operation
// in the Write of a notification's outcome).
const MaxWebhooks = 10

// WebhookSpec is one outcome webhook of an app in wxnotify.yaml, under
// apps[].webhooks (or webhooks: at the top of the single-app shape):
//
//	webhooks:
//	  - id: crm
//	    url: https://crm.example.com/wxnotify/events
//	    events: [notification.failed, notification.unknown]   # or ["*"]
//	  - id: bus
//	    eventBusArn: arn:aws:events:us-east-1:123456789012:event-bus/crm
//	    events: ["*"]
//
// Its signing secret (whsec_..., webhook.NewSecret) is the variable (or
// secret key) WebhookSecretVariable names. A webhook to an Amazon
// EventBridge event bus (eventBusArn instead of url) has none: its
// PutEvents are signed with the function's AWS credentials.
type WebhookSpec struct {
	ID          string   `yaml:"id"`
	URL         string   `yaml:"url,omitempty"`
	EventBusARN string   `yaml:"eventBusArn,omitempty"`
	Events      []string `yaml:"events"`
}

// Webhook is a WebhookSpec with its signing secret read.
type Webhook struct {
	ID          string
	URL         string
	EventBusARN string
	Events      []string
	Secret      string
	// SecretVariable names the variable the secret was read from.
	SecretVariable string
	// SecretPrevious is the secret being rotated out (the variable
	// SecretVariable with _PREVIOUS appended), or "": while it is set,
	// every delivery carries a signature with each secret.
	SecretPrevious string
}

// previousSuffix ends the variable of a webhook's previous signing secret.
const previousSuffix = "_PREVIOUS"

// WebhookSecretVariable names the variable of the signing secret of
// webhook id of app: WXN_APP_<APP>_WEBHOOK_<ID>_SECRET, or for the
// single-app shape (app "") WXN_WEBHOOK_<ID>_SECRET; ids are upper-cased
// with '-' as '_'.
func WebhookSecretVariable(app, id string) string {
	name := "WXN_WEBHOOK_" + upperVar(id) + "_SECRET"
	if app == "" {
		return name
	}
	return AppVariable(app, name)
}

func upperVar(id string) string { return strings.ToUpper(strings.ReplaceAll(id, "-", "_")) }

// slugOfVar reports whether part of a variable name is an id upper-cased
// with '-' as '_'.
func slugOfVar(part string) bool {
	return part != "" && strings.ToUpper(part) == part && CheckAppID(strings.ToLower(strings.ReplaceAll(part, "_", "-"))) == nil
}

// lookupWebhookVariable recognises the webhook secret variables
// (WXN_WEBHOOK_<ID>_SECRET, WXN_APP_<APP>_WEBHOOK_<ID>_SECRET, and each
// with _PREVIOUS appended): secrets.
func lookupWebhookVariable(name string) (variable, bool) {
	if base, ok := strings.CutSuffix(name, previousSuffix); ok {
		if v, ok := lookupWebhookVariable(base); ok {
			return variable{name: name, secret: v.secret}, true
		}
	}
	mid, ok := strings.CutSuffix(name, "_SECRET")
	if !ok {
		return variable{}, false
	}
	if id, ok := strings.CutPrefix(mid, "WXN_WEBHOOK_"); ok && slugOfVar(id) {
		return variable{name: name, secret: true}, true
	}
	rest, ok := strings.CutPrefix(mid, "WXN_APP_")
	if !ok {
		return variable{}, false
	}
	const sep = "_WEBHOOK_"
	for i := strings.Index(rest, sep); i >= 0; {
		if slugOfVar(rest[:i]) && slugOfVar(rest[i+len(sep):]) {
			return variable{name: name, secret: true}, true
		}
		j := strings.Index(rest[i+1:], sep)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return variable{}, false
}

// checkWebhooks validates the webhooks of one app; where names it in
// errors ("webhooks" or "apps[0] (sales).webhooks").
func checkWebhooks(where string, specs []WebhookSpec) error {
	if len(specs) > MaxWebhooks {
		return fmt.Errorf("%s: %d webhooks, at most %d per app", where, len(specs), MaxWebhooks)
	}
	ids := map[string]bool{}
	for i, w := range specs {
		at := fmt.Sprintf("%s[%d]", where, i)
		if !appIDPattern.MatchString(w.ID) || strings.HasSuffix(w.ID, "-") || strings.Contains(w.ID, "--") {
			return fmt.Errorf("%s.id: %q is not a webhook id: 1 to 32 of a-z, 0-9 and single inner '-', starting with a letter", at, w.ID)
		}
		at += " (" + w.ID + ")"
		if ids[w.ID] {
			return fmt.Errorf("%s.id: another webhook of the app has this id", at)
		}
		ids[w.ID] = true
		switch {
		case w.EventBusARN != "" && w.URL != "":
			return fmt.Errorf("%s: url and eventBusArn: give one of them", at)
		case w.EventBusARN != "":
			if _, err := webhook.ParseEventBus(w.EventBusARN); err != nil {
				return fmt.Errorf("%s.eventBusArn: %q is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)", at, w.EventBusARN)
			}
		default:
			if err := checkWebhookURL(w.URL); err != nil {
				return fmt.Errorf("%s.url: %w", at, err)
			}
		}
		if err := checkWebhookEvents(w.Events); err != nil {
			return fmt.Errorf("%s.events: %w", at, err)
		}
	}
	return nil
}

func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", raw)
	}
	if u.User != nil {
		return errors.New("must not carry credentials (the deliveries are signed)")
	}
	return nil
}

func checkWebhookEvents(events []string) error {
	if len(events) == 0 {
		return errors.New(`required: a list of event types, or ["*"] for all`)
	}
	for i, e := range events {
		switch {
		case e == "*":
			if len(events) > 1 {
				return errors.New(`"*" selects every event: list nothing else with it`)
			}
		case !webhook.KnownType(e):
			return fmt.Errorf("%q is not an event type (%s)", e, strings.Join(webhook.EventTypes, ", "))
		case slices.Contains(events[:i], e):
			return fmt.Errorf("%q is listed twice", e)
		}
	}
	return nil
}

// resolveWebhooks reads the signing secret of each webhook of app ("" for
// the single-app shape) through getenv: required, a whsec_ secret; and
// the previous one during a rotation (<variable>_PREVIOUS), optional.
func resolveWebhooks(app string, specs []WebhookSpec, getenv func(string) string) ([]Webhook, error) {
	var out []Webhook
	for _, w := range specs {
		if w.EventBusARN != "" {
			// IAM authenticates the PutEvents: no signing secret.
			out = append(out, Webhook{ID: w.ID, EventBusARN: w.EventBusARN, Events: slices.Clone(w.Events)})
			continue
		}
		name := WebhookSecretVariable(app, w.ID)
		secret := strings.TrimSpace(getenv(name))
		if secret == "" {
			return nil, fmt.Errorf("%s: required: the signing secret of webhook %q (whsec_ and base64, e.g. from `openssl rand -base64 32`)", name, w.ID)
		}
		if _, err := webhook.Sign(secret, "msg_check", time.Unix(0, 0), nil); err != nil {
			return nil, fmt.Errorf("%s: not a signing secret: whsec_ followed by the base64 of 24 to 64 bytes", name)
		}
		prev := strings.TrimSpace(getenv(name + previousSuffix))
		if prev != "" {
			if _, err := webhook.Sign(prev, "msg_check", time.Unix(0, 0), nil); err != nil {
				return nil, fmt.Errorf("%s: not a signing secret: whsec_ followed by the base64 of 24 to 64 bytes", name+previousSuffix)
			}
		}
		if prev == secret {
			prev = ""
		}
		out = append(out, Webhook{ID: w.ID, URL: w.URL, Events: slices.Clone(w.Events), Secret: secret, SecretVariable: name, SecretPrevious: prev})
	}
	return out, nil
}
