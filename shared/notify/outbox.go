package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/webhook"
)

// The webhook outbox: a notification's outcome event waits there for its
// delivery to each subscription of the app that wants it. An entry is
// written with the outcome, in its store.Write (see writeOutcome), so an
// outcome recorded is an event to deliver, and never one without the
// other. Entries are items of
//
//	ob|<appid>      sort <due, 13-digit Unix ms>|<delivery id>
//	obdead|<appid>  sort <given up at, 13-digit Unix ms>|<delivery id>
//
// so a Query reads the due entries first. DeliverWebhooks claims an entry
// (moves it to a lease due time, conditionally on the version it read),
// POSTs it, then deletes it, reschedules it (webhook.NextAttempt) or moves
// it to obdead. Delivery is at least once: a runner that dies after the
// POST leaves the claimed entry, which is due again when its lease ends,
// with the same webhook-id.

// MaxWebhookSubscriptions bounds the subscriptions of one app: each is one
// more operation in the outcome's Write (store.MaxWriteOps).
const MaxWebhookSubscriptions = 10

// WebhookEventAll in a subscription's Events selects every event type.
const WebhookEventAll = "*"

// WebhookSubscription is one endpoint of an app's outcome webhooks.
type WebhookSubscription struct {
	// ID names the subscription; with the event id it makes the
	// webhook-id (webhook.DeliveryID).
	ID  string
	URL string
	// Events are the event types delivered (webhook.EventTypes), or "*".
	Events []string
	// Secrets sign every delivery (whsec_...), two during a rotation.
	Secrets []string
	// EventBus, instead of URL, is the ARN of an Amazon EventBridge event
	// bus the events are put on (see eventbridge.go); no secret then.
	EventBus string
}

// Wants reports whether the subscription takes events of type t.
func (w WebhookSubscription) Wants(t string) bool {
	return slices.Contains(w.Events, WebhookEventAll) || slices.Contains(w.Events, t)
}

// WebhookOptions configure a Service's outcome webhooks.
type WebhookOptions struct {
	// App is the app's id as events name it (NotificationData.App).
	App string
	// Subscriptions are the app's endpoints; none: no event is written.
	Subscriptions []WebhookSubscription
	// AllowPrivate lets deliveries reach loopback and private addresses
	// (`wxnotify dev`, tests); never in a deployment.
	AllowPrivate bool
	// Timeout bounds one attempt (default webhook.NewClient's, 15 s).
	Timeout time.Duration
	// PageSize is how many due entries one DeliverWebhooks reads (default
	// 25).
	PageSize int
	// Workers is how many deliveries run at once (default 4).
	Workers int
	// Lease is how long a claimed entry is withheld from other runners
	// (default 1 min; at least the attempt timeout plus 30 s).
	Lease time.Duration
	// EventBridge configures the subscriptions to an event bus.
	EventBridge EventBridgeOptions
}

// webhooks is a Service's resolved WebhookOptions.
type webhooks struct {
	app      string
	subs     []WebhookSubscription
	client   *http.Client
	timeout  time.Duration
	pageSize int
	workers  int
	lease    time.Duration
}

// newWebhooks checks o and fills in the defaults.
func newWebhooks(o WebhookOptions) (webhooks, error) {
	if len(o.Subscriptions) > MaxWebhookSubscriptions {
		return webhooks{}, fmt.Errorf("notify: %d webhook subscriptions, at most %d", len(o.Subscriptions), MaxWebhookSubscriptions)
	}
	seen := map[string]bool{}
	for _, sub := range o.Subscriptions {
		switch {
		case sub.ID == "" || strings.ContainsAny(sub.ID, "|\x00"):
			return webhooks{}, fmt.Errorf("notify: webhook subscription id %q is invalid", sub.ID)
		case seen[sub.ID]:
			return webhooks{}, fmt.Errorf("notify: two webhook subscriptions have the id %q", sub.ID)
		case len(sub.Secrets) == 0 && sub.EventBus == "":
			return webhooks{}, fmt.Errorf("notify: webhook subscription %q has no secret", sub.ID)
		case len(sub.Events) == 0:
			return webhooks{}, fmt.Errorf("notify: webhook subscription %q has no events", sub.ID)
		}
		seen[sub.ID] = true
	}
	w := webhooks{app: o.App, subs: o.Subscriptions, pageSize: o.PageSize, workers: o.Workers, lease: o.Lease}
	w.client = webhook.NewClient(webhook.ClientOptions{AllowPrivate: o.AllowPrivate, Timeout: o.Timeout})
	if w.pageSize <= 0 {
		w.pageSize = 25
	}
	if w.workers <= 0 {
		w.workers = 4
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	w.timeout = timeout
	w.lease = max(w.lease, time.Minute, timeout+30*time.Second)
	return w, nil
}

// subscription returns the subscription with the id, or false.
func (w webhooks) subscription(id string) (WebhookSubscription, bool) {
	for _, sub := range w.subs {
		if sub.ID == id {
			return sub, true
		}
	}
	return WebhookSubscription{}, false
}

// outboxEvent is the event of an outbox entry.
type outboxEvent struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"` // read back as json.RawMessage (events.go)
}

// outboxEntry is the value of an outbox item.
type outboxEntry struct {
	Subscription string      `json:"subscription"`
	Event        outboxEvent `json:"event"`
	// Attempt counts the failed attempts.
	Attempt      int       `json:"attempt"`
	FirstAttempt time.Time `json:"firstAttempt"`
	LastError    string    `json:"lastError,omitempty"`
	// Record is the sort key of the delivery's record (recordSort of the
	// first queueing; empty until the first attempt is settled).
	Record string `json:"record,omitempty"`
	// Created is when the delivery was first queued, for a replay (zero:
	// FirstAttempt).
	Created time.Time `json:"created,omitzero"`
	// Attempts are the delivery's attempts so far, for its record.
	Attempts []DeliveryAttempt `json:"attempts,omitempty"`
	// Replays counts the replays that queued it again.
	Replays int `json:"replays,omitempty"`
}

func (s *Service) outboxPartition() string { return "ob|" + s.appID }

func (s *Service) outboxDeadPartition() string { return "obdead|" + s.appID }

// outboxSort is the sort key of a delivery due at t.
func outboxSort(t time.Time, deliveryID string) string {
	return fmt.Sprintf("%013d|%s", max(t.UnixMilli(), 0), deliveryID)
}

// outcomeEventType is the event type of a notification's outcome, "" for
// none (a pending record).
func outcomeEventType(st Status) string {
	switch st {
	case StatusSent:
		return webhook.EventNotificationSent
	case StatusFailed:
		return webhook.EventNotificationFailed
	case StatusSkipped:
		return webhook.EventNotificationSkipped
	case StatusUnknown:
		return webhook.EventNotificationUnknown
	}
	return ""
}

// notificationData is the webhook payload of n (never its openid).
func (s *Service) notificationData(n Notification) webhook.NotificationData {
	return webhook.NotificationData{
		NotificationID: n.ID, App: s.hooks.app, UserID: n.To.UserID,
		Template: n.Template, TemplateID: n.TemplateID, Status: string(n.Status), Reason: n.Reason,
		Source: string(n.Source), BatchID: batchIDOf(n), IdempotencyKey: n.IdempotencyKey,
	}
}

// outboxOps returns the Puts (IfAbsent) of the outbox entries of n's
// outcome, one per subscription that wants its event, due at the outcome
// time (n.UpdatedAt) so that the same outcome always gives the same keys.
func (s *Service) outboxOps(n Notification) ([]store.WriteOp, error) {
	typ := outcomeEventType(n.Status)
	if typ == "" || len(s.hooks.subs) == 0 {
		return nil, nil
	}
	at := n.UpdatedAt
	if at.IsZero() {
		at = n.CreatedAt
	}
	ev := outboxEvent{Type: typ, ID: n.ID + ":" + string(n.Status), Timestamp: at.UTC(), Data: s.notificationData(n)}
	var ops []store.WriteOp
	for _, sub := range s.hooks.subs {
		if !sub.Wants(typ) {
			continue
		}
		b, err := json.Marshal(outboxEntry{Subscription: sub.ID, Event: ev, FirstAttempt: at.UTC()})
		if err != nil {
			return nil, fmt.Errorf("encode outbox entry: %w", err)
		}
		key := store.Key{Partition: s.outboxPartition(), Sort: outboxSort(at, webhook.DeliveryID(ev.ID, sub.ID))}
		ops = append(ops, store.WritePut(key, b, store.PutOptions{IfAbsent: true}))
	}
	return ops, nil
}

// DeliverWebhooks delivers the app's due outbox entries, at most one page
// of them, and reports how many were delivered and how many attempts
// failed (rescheduled or given up). No attempt starts that the deadline
// (zero: none) would cut. Entries another runner claimed are left to it.
func (s *Service) DeliverWebhooks(ctx context.Context, deadline time.Time) (delivered, failed int, err error) {
	if len(s.hooks.subs) == 0 {
		// Entries of removed subscriptions stay until one is configured
		// again; none is written meanwhile.
		return 0, 0, nil
	}
	now := s.now()
	page, err := s.st.Query(ctx, store.Query{Partition: s.outboxPartition(), Limit: s.hooks.pageSize})
	if err != nil {
		return 0, 0, storeErr("query webhook outbox", err)
	}
	due := fmt.Sprintf("%013d", now.UnixMilli())
	disabled := map[string]bool{}
	if len(page.Items) > 0 && page.Items[0].Key.Sort[:min(13, len(page.Items[0].Key.Sort))] <= due {
		if disabled, err = s.disabledSubscriptions(ctx); err != nil {
			return 0, 0, err
		}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, s.hooks.workers)
	)
	for _, it := range page.Items {
		if len(it.Key.Sort) < 13 || it.Key.Sort[:13] > due {
			break // sorted by due time: the rest is later
		}
		if !deadline.IsZero() && time.Until(deadline) < s.hooks.timeout {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ok, tried, err := s.deliverEntry(ctx, it, disabled)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case ok:
				delivered++
			case tried:
				failed++
			}
		})
	}
	wg.Wait()
	return delivered, failed, errors.Join(errs...)
}

// deliverEntry claims, delivers and settles one outbox item: ok when the
// endpoint took it, tried when an attempt was made (or it was given up).
// An entry another runner claimed first is skipped (false, false, nil).
// The Write that settles an attempt also writes the delivery's record.
func (s *Service) deliverEntry(ctx context.Context, it store.Item, disabled map[string]bool) (ok, tried bool, err error) {
	var e outboxEntry
	_, deliveryID, _ := strings.Cut(it.Key.Sort, "|")
	if jerr := json.Unmarshal(it.Value, &e); jerr != nil || deliveryID == "" {
		return false, true, s.buryEntry(ctx, it.Key, it.Version, it.Value, nil, DeadMalformedEntry)
	}
	sub, found := s.hooks.subscription(e.Subscription)
	if !found {
		return false, true, s.buryEntry(ctx, it.Key, it.Version, it.Value, nil, DeadSubscriptionGone)
	}
	if disabled[sub.ID] {
		return false, true, s.buryDisabled(ctx, it.Key, it.Version, e)
	}
	// The claim: moved to the lease's end, so that no other runner takes
	// it meanwhile, and due again there if this one dies.
	now := s.now()
	leased := store.Key{Partition: it.Key.Partition, Sort: outboxSort(now.Add(s.hooks.lease), deliveryID)}
	vers, err := s.moveEntry(ctx, it.Key, it.Version, leased, it.Value, nil)
	if errors.Is(err, store.ErrConflict) {
		return false, false, nil // claimed by another runner
	}
	if err != nil {
		return false, false, storeErr("claim outbox entry", err)
	}
	ver := vers[1]
	msg, err := webhook.NewMessage(webhook.Event{Type: e.Event.Type, ID: e.Event.ID, Timestamp: e.Event.Timestamp, Data: e.Event.Data}, sub.ID)
	if err != nil {
		return false, true, s.buryEntry(ctx, leased, ver, it.Value, nil, err.Error())
	}
	if msg.ID != deliveryID {
		return false, true, s.buryEntry(ctx, leased, ver, it.Value, nil, "delivery id does not match the entry")
	}
	attempt := DeliveryAttempt{Number: e.nextAttemptNumber(), At: now.UTC()}
	start := time.Now()
	status, derr := s.deliverMessage(ctx, sub, msg)
	attempt.Duration, attempt.HTTPStatus = time.Since(start), status
	ctx = context.WithoutCancel(ctx) // the attempt was made: settle it
	if derr == nil {
		e.addAttempt(attempt)
		rec, err := s.recordOps(&e, deliveryID, DeliveryDelivered, "", time.Time{}, "")
		if err != nil {
			return true, true, err
		}
		if _, err := s.writeWith(ctx, []store.WriteOp{store.WriteDelete(leased, store.DeleteOptions{IfVersion: ver})}, rec); err != nil && !errors.Is(err, store.ErrConflict) {
			return true, true, storeErr("delete delivered outbox entry", err)
		}
		return true, true, nil
	}
	e.Attempt++
	e.LastError = derr.Error()
	attempt.Error = derr.Error()
	log := s.log.With("subscription", sub.ID, "webhook_id", msg.ID, "event", e.Event.Type, "attempt", attempt.Number, "status", status)
	next, retry := webhook.NextAttempt(e.FirstAttempt, s.now(), e.Attempt)
	if !webhook.Retryable(derr) || !retry {
		e.addAttempt(attempt)
		reason := DeadRetriesExhausted
		var extra []store.WriteOp
		switch {
		case webhook.Disable(derr):
			reason = DeadEndpointGone
			extra = append(extra, s.disableOp(sub.ID))
			log.Warn("webhook endpoint answered 410 Gone: subscription disabled (POST /v1/webhooks/{id}/enable to enable it again)", "err", derr)
		case !webhook.Retryable(derr):
			reason = DeadNotRetryable
		}
		log.Error("webhook delivery given up", "err", derr, "reason", reason)
		b, merr := json.Marshal(e)
		if merr != nil {
			return false, true, fmt.Errorf("encode outbox entry: %w", merr)
		}
		if err := s.buryEntry(ctx, leased, ver, b, &e, reason, extra...); err != nil {
			return false, true, err
		}
		if reason == DeadEndpointGone {
			return false, true, s.sweepDisabled(ctx, sub.ID)
		}
		return false, true, nil
	}
	attempt.NextAttempt = next.UTC()
	e.addAttempt(attempt)
	rec, err := s.recordOps(&e, deliveryID, DeliveryFailed, "", next.UTC(), "")
	if err != nil {
		return false, true, err
	}
	b, merr := json.Marshal(e)
	if merr != nil {
		return false, true, fmt.Errorf("encode outbox entry: %w", merr)
	}
	log.Info("webhook delivery failed, to be retried", "err", derr, "next", next)
	if _, err := s.moveEntry(ctx, leased, ver, store.Key{Partition: leased.Partition, Sort: outboxSort(next, deliveryID)}, b, rec); err != nil && !errors.Is(err, store.ErrConflict) {
		return false, true, storeErr("reschedule outbox entry", err)
	}
	return false, true, nil
}

// moveEntry deletes the item at from (at version ver) and puts value at to,
// with the extra ops, in one Write; it returns the Write's versions.
func (s *Service) moveEntry(ctx context.Context, from store.Key, ver int64, to store.Key, value []byte, extra []store.WriteOp) ([]int64, error) {
	if from == to {
		ops := []store.WriteOp{store.WritePut(to, value, store.PutOptions{IfVersion: ver})}
		vers, err := s.writeWith(ctx, ops, extra)
		if err != nil {
			return nil, err
		}
		return []int64{0, vers[0]}, nil
	}
	return s.writeWith(ctx, []store.WriteOp{
		store.WriteDelete(from, store.DeleteOptions{IfVersion: ver}),
		store.WritePut(to, value, store.PutOptions{IfAbsent: true}),
	}, extra)
}

// buryEntry moves an outbox item to the dead letters (kept for the
// retention). With e (the entry decoded), the delivery's record says dead
// for reason, and extra ops are written, in the same Write; without, the
// reason is noted in the dead letter.
func (s *Service) buryEntry(ctx context.Context, from store.Key, ver int64, value []byte, e *outboxEntry, reason string, extra ...store.WriteOp) error {
	if e == nil {
		s.log.Error("webhook outbox entry given up", "entry", from.Sort, "reason", reason)
		var m map[string]any
		if json.Unmarshal(value, &m) == nil && m != nil {
			m["lastError"] = reason
			if b, err := json.Marshal(m); err == nil {
				value = b
			}
		}
	}
	_, id, _ := strings.Cut(from.Sort, "|")
	now := s.now()
	to := store.Key{Partition: s.outboxDeadPartition(), Sort: outboxSort(now, id)}
	dead := store.PutOptions{ExpiresAt: now.Add(s.retention)}
	if e != nil {
		rec, err := s.recordOps(e, id, DeliveryDead, reason, time.Time{}, to.Sort)
		if err != nil {
			return err
		}
		extra = append(rec, extra...)
	}
	_, err := s.st.Write(ctx, append([]store.WriteOp{
		store.WriteDelete(from, store.DeleteOptions{IfVersion: ver}),
		store.WritePut(to, value, dead),
	}, extra...))
	if errors.Is(err, store.ErrInvalidWrite) {
		// A store that cannot write across partitions at once (Redis
		// Cluster): the dead letter first, so that none is lost.
		if _, err = s.st.Put(ctx, to, value, dead); err == nil {
			if err = s.st.Delete(ctx, from, store.DeleteOptions{IfVersion: ver}); err == nil {
				err = s.applyApart(ctx, extra)
			}
		}
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return storeErr("move outbox entry to the dead letters", err)
	}
	return nil
}
