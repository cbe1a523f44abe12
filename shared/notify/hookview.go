package notify

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

// What the ops console shows of the webhooks: the subscriptions without
// their secrets, the deliveries of one notification's events, and the
// sent event that settled a notification.

// WebhookInfo is a subscription as an operator sees it: never its
// secrets, only how many sign its deliveries.
type WebhookInfo struct {
	ID       string
	URL      string
	EventBus string
	Events   []string
	// Secrets is how many secrets sign each delivery: 1, 2 during a
	// rotation (the _PREVIOUS one too), 0 for an event bus.
	Secrets int
}

// Rotating reports whether a secret is being rotated out.
func (w WebhookInfo) Rotating() bool { return w.Secrets > 1 }

// Webhooks returns the app's subscriptions, in the order of the
// configuration.
func (s *Service) Webhooks() []WebhookInfo {
	out := make([]WebhookInfo, 0, len(s.hooks.subs))
	for _, sub := range s.hooks.subs {
		out = append(out, WebhookInfo{ID: sub.ID, URL: sub.URL, EventBus: sub.EventBus, Events: slices.Clone(sub.Events),
			Secrets: len(sub.Secrets)})
	}
	return out
}

// notificationEvents are the event types of a notification with the
// suffix of their event id (<notification id>:<suffix>, outboxOps and
// deliveredOps).
var notificationEvents = []struct{ typ, suffix string }{
	{webhook.EventNotificationSent, string(StatusSent)},
	{webhook.EventNotificationFailed, string(StatusFailed)},
	{webhook.EventNotificationSkipped, string(StatusSkipped)},
	{webhook.EventNotificationUnknown, string(StatusUnknown)},
	{webhook.EventNotificationDelivered, "delivered"},
}

// maxDeliveryLookups is how many delivery reads NotificationDeliveries
// makes at once.
const maxDeliveryLookups = 8

// NotificationDeliveries returns the records of the deliveries of the
// events of notification id (its outcomes and notification.delivered),
// by subscription then event type. There is no index from a notification
// to its deliveries, and none is needed: an event's id is derived from
// the notification id (<id>:<status>, <id>:delivered), and a delivery's
// webhook-id from the event id and the subscription id
// (webhook.DeliveryID), so each candidate - every event type each
// subscription wants - is one read of the index by id (and one more of
// the record when there is one), made 8 at a time. A delivery the
// batch tick has not attempted yet has no record and is not listed.
func (s *Service) NotificationDeliveries(ctx context.Context, id string) ([]WebhookDelivery, error) {
	type candidate struct{ sub, id string }
	var cands []candidate
	for _, sub := range s.hooks.subs {
		for _, ev := range notificationEvents {
			if sub.Wants(ev.typ) {
				cands = append(cands, candidate{sub.ID, webhook.DeliveryID(id+":"+ev.suffix, sub.ID)})
			}
		}
	}
	found := make([]*WebhookDelivery, len(cands))
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxDeliveryLookups)
	for i, c := range cands {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rec, _, err := s.getDelivery(ctx, c.sub, c.id)
			switch {
			case err == nil:
				if rec.Attempts == nil {
					rec.Attempts = []DeliveryAttempt{}
				}
				found[i] = &rec.WebhookDelivery
			case CodeOf(err) != CodeDeliveryNotFound:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	var out []WebhookDelivery
	for i := range cands {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] != nil {
			out = append(out, *found[i])
		}
	}
	return out, nil
}

// sentEventWindow is how long after the settlement of a notification its
// sent event is looked for in the user's timeline, and sentEventPages how
// many pages of the timeline are read.
const (
	sentEventWindow = time.Hour
	sentEventPages  = 2
)

// SentEvent returns WeChat's subscribe_msg_sent_event that reported the
// message of n (the event that settled an unknown send, or confirmed a
// sent one), as the user's timeline holds it (sentEventTimelineOp). Only
// a notification with a msgid has one: it is found by that msgid, or by
// the notification id the event was paired with, among the timeline's
// events from the send (less the clock skew) to an hour after the
// notification's last change, at most two pages of 100 of them (the
// newest first): the event of a busier user may not be found. false
// when there is none.
func (s *Service) SentEvent(ctx context.Context, n Notification) (TimelineEvent, bool, error) {
	if n.OpenID == "" || n.WeChat.MsgID == "" {
		return TimelineEvent{}, false, nil
	}
	var bounds listQuery
	last := n.CreatedAt
	if n.UpdatedAt.After(last) {
		last = n.UpdatedAt
	}
	if err := bounds.setTimes(n.CreatedAt.Add(-clockSkew), last.Add(sentEventWindow)); err != nil {
		return TimelineEvent{}, false, err
	}
	cursor := ""
	for range sentEventPages {
		page, err := s.openIDTimeline(ctx, n.OpenID, bounds, cursor, MaxTimelineLimit)
		if err != nil {
			return TimelineEvent{}, false, err
		}
		for _, ev := range page.Events {
			if ev.Type == TimelineSentEvent && ev.TemplateID == n.TemplateID && (ev.Notification == n.ID || ev.MsgID == n.WeChat.MsgID) {
				// An event is recorded without reading which send it
				// belongs to (sentevent.go): its msgid says it is n's.
				ev.Notification = n.ID
				return ev, true, nil
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	return TimelineEvent{}, false, nil
}
