package notify

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

// A subscription may name an Amazon EventBridge event bus (EventBus)
// instead of a URL: its outbox entries are delivered, claimed, retried and
// given up exactly as HTTP deliveries are, each attempt one PutEvents
// signed with the function's AWS credentials (webhook.PutEvent).

// EventBridgeOptions configure the deliveries to event buses.
type EventBridgeOptions struct {
	// Credentials sign each PutEvents; default: the environment's
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), read
	// at each attempt, as Lambda provides them.
	Credentials func() (webhook.AWSCredentials, error)
	// Endpoint replaces the bus's regional endpoint (tests, VPC endpoints).
	Endpoint string
	// Now is the signatures' clock; default time.Now.
	Now func() time.Time
}

// newEventBridge checks the event bus subscriptions of o and fills in the
// defaults of its EventBridge options.
func newEventBridge(o WebhookOptions) (EventBridgeOptions, error) {
	for _, sub := range o.Subscriptions {
		if sub.EventBus == "" {
			continue
		}
		if sub.URL != "" {
			return EventBridgeOptions{}, fmt.Errorf("notify: webhook subscription %q has both a URL and an event bus", sub.ID)
		}
		if _, err := webhook.ParseEventBus(sub.EventBus); err != nil {
			return EventBridgeOptions{}, fmt.Errorf("notify: webhook subscription %q: %w", sub.ID, err)
		}
	}
	b := o.EventBridge
	if b.Credentials == nil {
		b.Credentials = func() (webhook.AWSCredentials, error) { return webhook.EnvAWSCredentials(os.Getenv) }
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	return b, nil
}

// deliverMessage makes one attempt to deliver msg to sub: a signed POST to
// its URL, or a PutEvents on its event bus.
func (s *Service) deliverMessage(ctx context.Context, sub WebhookSubscription, msg webhook.Message) (int, error) {
	if sub.EventBus == "" {
		return webhook.Deliver(ctx, s.hooks.client, sub.URL, sub.Secrets, msg)
	}
	bus, err := webhook.ParseEventBus(sub.EventBus)
	if err != nil {
		return 0, err
	}
	creds, err := s.bus.Credentials()
	if err != nil {
		return 0, err // retried: credentials may come
	}
	return webhook.PutEvent(ctx, s.hooks.client, bus, s.bus.Endpoint, creds, msg, s.bus.Now())
}
