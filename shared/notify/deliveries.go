package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Delivery records: what became of each outbox entry, per subscription,
// for GET /v1/webhooks/{id}/deliveries and its replay. A record is written
// in the store.Write that settles an attempt (with the entry's delete or
// move: no extra round trip), holds every attempt, and expires with the
// retention after its last change. Items:
//
//	obl|<appid>|<sub>  sort <9999999999999 - queued at ms, 13 digits>|<delivery id>
//	obi|<appid>|<sub>  sort <delivery id>: the record's sort key (lookup by id)
//	obsub|<appid>      sort <sub>: a subscription disabled by a 410 Gone
//
// so a Query of obl lists the newest deliveries first. The outbox entry
// carries the attempts made so far, so the record is written without
// being read.

// DeliveryStatus is the state of one delivery (an event to one
// subscription).
type DeliveryStatus string

// The delivery statuses.
const (
	// DeliveryPending: queued again by a replay, not attempted since.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the last attempt was answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed: the last attempt failed; the next is at NextAttempt.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliveryDead: given up (Reason says why); a replay queues it again.
	DeliveryDead DeliveryStatus = "dead"
)

// The reasons of a dead delivery.
const (
	DeadEndpointGone      = "endpoint_gone"        // 410 Gone, or the subscription is disabled
	DeadRetriesExhausted  = "retries_exhausted"    // 24 h or 8 attempts passed
	DeadNotRetryable      = "not_retryable"        // forbidden address, invalid URL or secret
	DeadSubscriptionGone  = "subscription_removed" // no longer configured
	DeadMalformedEntry    = "malformed_entry"
	maxRecordedAttempts   = 32
	recordSortInvertedMax = 9999999999999
)

// DeliveryAttempt is one attempt of a delivery.
type DeliveryAttempt struct {
	// Number counts the delivery's attempts from 1, replays included.
	Number int       `json:"number"`
	At     time.Time `json:"at"`
	// Duration is how long the POST took.
	Duration time.Duration `json:"duration"`
	// HTTPStatus is the answer's status, 0 if none came (Error says why).
	HTTPStatus int    `json:"httpStatus,omitempty"`
	Error      string `json:"error,omitempty"`
	// NextAttempt is when the next attempt is due; zero if none is.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// WebhookDelivery is the record of one event's delivery to one
// subscription: ID is its webhook-id.
type WebhookDelivery struct {
	ID           string         `json:"id"`
	Subscription string         `json:"subscription"`
	EventType    string         `json:"eventType"`
	EventID      string         `json:"eventId"`
	Status       DeliveryStatus `json:"status"`
	// Reason says why a dead delivery was given up.
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// Replays counts the replays that queued it again.
	Replays int `json:"replays,omitempty"`
	// Attempts are the attempts, oldest first (the last 32).
	Attempts []DeliveryAttempt `json:"attempts"`
}

// deliveryRecord is the stored record: the delivery plus what a replay
// needs (the event) and the dead letter to remove then.
type deliveryRecord struct {
	WebhookDelivery
	Event   outboxEvent `json:"event"`
	DeadKey string      `json:"deadKey,omitempty"`
}

// DeliveryPage is one page of ListWebhookDeliveries.
type DeliveryPage struct {
	Deliveries []WebhookDelivery
	// Next is the cursor of the following page, "" at the end.
	Next string
}

// MaxDeliveryListLimit bounds a page of ListWebhookDeliveries.
const MaxDeliveryListLimit = 100

func (s *Service) deliveryPartition(sub string) string { return "obl|" + s.appID + "|" + sub }

func (s *Service) deliveryIndexKey(sub, id string) store.Key {
	return store.Key{Partition: "obi|" + s.appID + "|" + sub, Sort: id}
}

func (s *Service) hookStateKey(sub string) store.Key {
	return store.Key{Partition: "obsub|" + s.appID, Sort: sub}
}

// recordSort is the sort key of the record of a delivery queued at t.
func recordSort(t time.Time, id string) string {
	return fmt.Sprintf("%013d|%s", recordSortInvertedMax-min(max(t.UnixMilli(), 0), recordSortInvertedMax), id)
}

// validRecordCursor accepts what recordSort builds.
func validRecordCursor(c string) bool {
	ts, id, ok := strings.Cut(c, "|")
	if !ok || len(ts) != 13 || !validDeliveryID(id) {
		return false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return false
		}
	}
	return true
}

// validDeliveryID accepts the shape of a webhook-id: msg_ and 1 to 60
// ASCII letters and digits.
func validDeliveryID(id string) bool {
	rest, ok := strings.CutPrefix(id, "msg_")
	if !ok || rest == "" || len(rest) > 60 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// nextAttemptNumber is the number of the entry's next attempt.
func (e *outboxEntry) nextAttemptNumber() int {
	if n := len(e.Attempts); n > 0 {
		return e.Attempts[n-1].Number + 1
	}
	return 1
}

// addAttempt appends a to the entry's attempts, keeping the last ones.
func (e *outboxEntry) addAttempt(a DeliveryAttempt) {
	e.Attempts = append(e.Attempts, a)
	if n := len(e.Attempts); n > maxRecordedAttempts {
		e.Attempts = slices.Clone(e.Attempts[n-maxRecordedAttempts:])
	}
}

// recordOps are the Puts of the record of entry e's delivery id, in the
// state given, and of its index item, both expiring with the retention.
func (s *Service) recordOps(e *outboxEntry, id string, st DeliveryStatus, reason string, next time.Time, deadKey string) ([]store.WriteOp, error) {
	if e.Record == "" {
		e.Record = recordSort(e.FirstAttempt, id)
	}
	now := s.now()
	created := e.FirstAttempt
	if !e.Created.IsZero() {
		created = e.Created
	}
	rec := deliveryRecord{WebhookDelivery: WebhookDelivery{ID: id, Subscription: e.Subscription, EventType: e.Event.Type,
		EventID: e.Event.ID, Status: st, Reason: reason, CreatedAt: created.UTC(), UpdatedAt: now.UTC(), NextAttempt: next,
		Replays: e.Replays, Attempts: e.Attempts}, Event: e.Event, DeadKey: deadKey}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode delivery record: %w", err)
	}
	opts := store.PutOptions{ExpiresAt: now.Add(s.retention)}
	return []store.WriteOp{
		store.WritePut(store.Key{Partition: s.deliveryPartition(e.Subscription), Sort: e.Record}, b, opts),
		store.WritePut(s.deliveryIndexKey(e.Subscription, id), []byte(e.Record), opts),
	}, nil
}

// applyApart applies ops one by one, for a store that cannot write them
// in one Write (Redis Cluster): Puts and Deletes, conditions kept.
func (s *Service) applyApart(ctx context.Context, ops []store.WriteOp) error {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case store.PutKind:
			_, err = s.st.Put(ctx, op.Key, op.Value, op.Put)
		case store.DeleteKind:
			err = s.st.Delete(ctx, op.Key, op.Delete)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeWith writes ops and extra in one Write; on a store that refuses
// it (ErrInvalidWrite) ops first, then extra apart.
func (s *Service) writeWith(ctx context.Context, ops, extra []store.WriteOp) ([]int64, error) {
	vers, err := s.st.Write(ctx, append(slices.Clip(ops), extra...))
	if errors.Is(err, store.ErrInvalidWrite) && len(extra) > 0 {
		if vers, err = s.st.Write(ctx, ops); err == nil {
			err = s.applyApart(ctx, extra)
		}
	}
	return vers, err
}

// hookState is the stored state of a subscription disabled by a 410.
type hookState struct {
	Disabled   bool      `json:"disabled"`
	Reason     string    `json:"reason"`
	DisabledAt time.Time `json:"disabledAt"`
}

// disabledSubscriptions returns the ids of the app's disabled
// subscriptions.
func (s *Service) disabledSubscriptions(ctx context.Context) (map[string]bool, error) {
	p, err := s.st.Query(ctx, store.Query{Partition: "obsub|" + s.appID, Limit: 100})
	if err != nil {
		return nil, storeErr("query webhook subscription states", err)
	}
	out := map[string]bool{}
	for _, it := range p.Items {
		var st hookState
		if json.Unmarshal(it.Value, &st) == nil && st.Disabled {
			out[it.Key.Sort] = true
		}
	}
	return out, nil
}

// disableOp is the Put of the state of subscription sub disabled now.
func (s *Service) disableOp(sub string) store.WriteOp {
	b, _ := json.Marshal(hookState{Disabled: true, Reason: DeadEndpointGone, DisabledAt: s.now().UTC()})
	return store.WritePut(s.hookStateKey(sub), b, store.PutOptions{})
}

// buryDisabled moves the outbox item (key, ver) of a disabled
// subscription's entry e to the dead letters, reason endpoint_gone.
func (s *Service) buryDisabled(ctx context.Context, key store.Key, ver int64, e outboxEntry) error {
	e.LastError = DeadEndpointGone
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode outbox entry: %w", err)
	}
	return s.buryEntry(ctx, key, ver, b, &e, DeadEndpointGone)
}

// maxDisableSweep bounds the outbox items one disabling examines; the
// rest of the subscription's entries are buried when due.
const maxDisableSweep = 1000

// sweepDisabled moves the outbox entries of subscription sub (just
// disabled) to the dead letters, reason endpoint_gone, entries due later
// included.
func (s *Service) sweepDisabled(ctx context.Context, sub string) error {
	after := ""
	for examined := 0; examined < maxDisableSweep; {
		page, err := s.st.Query(ctx, store.Query{Partition: s.outboxPartition(), After: after, Limit: 100})
		if err != nil {
			return storeErr("query webhook outbox", err)
		}
		for _, it := range page.Items {
			examined++
			var e outboxEntry
			_, id, _ := strings.Cut(it.Key.Sort, "|")
			if json.Unmarshal(it.Value, &e) != nil || e.Subscription != sub || id == "" {
				continue
			}
			if err := s.buryDisabled(ctx, it.Key, it.Version, e); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		after = page.Next
	}
	return nil
}

// checkSubscription returns webhook_not_found for an id that names no
// subscription of the app.
func (s *Service) checkSubscription(id string) error {
	if _, ok := s.hooks.subscription(id); !ok {
		return Errorf(CodeWebhookNotFound, "no webhook %q in this app", id)
	}
	return nil
}

// ListWebhookDeliveries returns the deliveries of subscription sub,
// newest first (by when they were queued), at most limit
// (1..MaxDeliveryListLimit), after the cursor a previous page answered;
// status, when not empty, selects one status. A page examines at most
// ten times limit records, so with a status it may be short (even empty)
// with a cursor to continue.
func (s *Service) ListWebhookDeliveries(ctx context.Context, sub string, status DeliveryStatus, cursor string, limit int) (DeliveryPage, error) {
	if err := s.checkSubscription(sub); err != nil {
		return DeliveryPage{}, err
	}
	switch status {
	case "", DeliveryPending, DeliveryDelivered, DeliveryFailed, DeliveryDead:
	default:
		return DeliveryPage{}, FieldError("status", "must be pending, delivered, failed or dead")
	}
	if limit < 1 || limit > MaxDeliveryListLimit {
		return DeliveryPage{}, FieldError("limit", "must be 1 to %d", MaxDeliveryListLimit)
	}
	if cursor != "" && !validRecordCursor(cursor) {
		return DeliveryPage{}, FieldError("cursor", "is not a cursor this list answered")
	}
	var out DeliveryPage
	after := cursor
	for budget := examineFactor * limit; budget > 0; {
		q := store.Query{Partition: s.deliveryPartition(sub), After: after, Limit: limit - len(out.Deliveries)}
		if status != "" {
			q.Limit = min(budget, store.MaxQueryLimit)
		}
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return DeliveryPage{}, storeErr("query webhook deliveries", err)
		}
		for _, it := range page.Items {
			budget--
			after = it.Key.Sort
			var rec deliveryRecord
			if json.Unmarshal(it.Value, &rec) != nil || (status != "" && rec.Status != status) {
				continue
			}
			if rec.Attempts == nil {
				rec.Attempts = []DeliveryAttempt{}
			}
			out.Deliveries = append(out.Deliveries, rec.WebhookDelivery)
			if len(out.Deliveries) == limit {
				break
			}
		}
		if len(out.Deliveries) == limit {
			break
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
	out.Next = after
	return out, nil
}

// getDelivery reads the record of delivery id of subscription sub.
func (s *Service) getDelivery(ctx context.Context, sub, id string) (deliveryRecord, store.Item, error) {
	notFound := Errorf(CodeDeliveryNotFound, "no delivery %q for webhook %q", id, sub)
	if !validDeliveryID(id) {
		return deliveryRecord{}, store.Item{}, notFound
	}
	idx, err := s.st.Get(ctx, s.deliveryIndexKey(sub, id))
	if errors.Is(err, store.ErrNotFound) {
		return deliveryRecord{}, store.Item{}, notFound
	}
	if err != nil {
		return deliveryRecord{}, store.Item{}, storeErr("read delivery index", err)
	}
	it, err := s.st.Get(ctx, store.Key{Partition: s.deliveryPartition(sub), Sort: string(idx.Value)})
	if errors.Is(err, store.ErrNotFound) {
		return deliveryRecord{}, store.Item{}, notFound
	}
	if err != nil {
		return deliveryRecord{}, store.Item{}, storeErr("read delivery record", err)
	}
	var rec deliveryRecord
	if err := json.Unmarshal(it.Value, &rec); err != nil || rec.ID != id {
		return deliveryRecord{}, store.Item{}, notFound
	}
	return rec, it, nil
}

// ReplayWebhookDelivery queues delivery id (a webhook-id) of subscription
// sub again, as a new attempt with the same webhook-id and body, due now:
// a delivered or dead delivery becomes pending (a dead one leaves the dead
// letters). A delivery already queued (pending or failed) is answered as
// it is: replaying is idempotent. webhook_not_found, delivery_not_found,
// webhook_disabled (the subscription is disabled: enable it first).
func (s *Service) ReplayWebhookDelivery(ctx context.Context, sub, id string) (WebhookDelivery, error) {
	if err := s.checkSubscription(sub); err != nil {
		return WebhookDelivery{}, err
	}
	for range 3 {
		rec, it, err := s.getDelivery(ctx, sub, id)
		if err != nil {
			return WebhookDelivery{}, err
		}
		state, err := s.WebhookStatus(ctx, sub)
		if err != nil {
			return WebhookDelivery{}, err
		}
		if state.Disabled {
			return WebhookDelivery{}, Errorf(CodeWebhookDisabled, "webhook %q is disabled (its endpoint answered 410 Gone): enable it first", sub)
		}
		if rec.Status == DeliveryPending || rec.Status == DeliveryFailed {
			return rec.WebhookDelivery, nil
		}
		now := s.now()
		e := outboxEntry{Subscription: sub, Event: rec.Event, FirstAttempt: now.UTC(), Record: it.Key.Sort,
			Created: rec.CreatedAt, Attempts: rec.Attempts, Replays: rec.Replays + 1}
		b, err := json.Marshal(e)
		if err != nil {
			return WebhookDelivery{}, fmt.Errorf("encode outbox entry: %w", err)
		}
		recOps, err := s.recordOps(&e, id, DeliveryPending, "", now.UTC(), "")
		if err != nil {
			return WebhookDelivery{}, err
		}
		recOps[0].Put.IfVersion = it.Version // two replays at once: one wins
		ops := append(recOps, store.WritePut(store.Key{Partition: s.outboxPartition(), Sort: outboxSort(now, id)}, b, store.PutOptions{IfAbsent: true}))
		if rec.DeadKey != "" {
			ops = append(ops, store.WriteDelete(store.Key{Partition: s.outboxDeadPartition(), Sort: rec.DeadKey}, store.DeleteOptions{}))
		}
		_, err = s.st.Write(ctx, ops)
		if errors.Is(err, store.ErrInvalidWrite) {
			err = s.applyApart(ctx, ops)
		}
		if errors.Is(err, store.ErrConflict) {
			continue // replayed or settled meanwhile: read again
		}
		if err != nil {
			return WebhookDelivery{}, storeErr("queue webhook replay", err)
		}
		var out deliveryRecord
		if err := json.Unmarshal(recOps[0].Value, &out); err != nil {
			return WebhookDelivery{}, err
		}
		return out.WebhookDelivery, nil
	}
	return WebhookDelivery{}, Errorf(CodeConflict, "delivery %q is changing: retry", id)
}

// WebhookState is a subscription's id and whether it is enabled.
type WebhookState struct {
	ID       string
	Disabled bool
	// Reason and DisabledAt say why and since when it is disabled.
	Reason     string
	DisabledAt time.Time
}

// EnableWebhook enables subscription sub again after a 410 Gone disabled
// it (enabling an enabled one changes nothing). Its dead deliveries stay
// dead: replay those wanted.
func (s *Service) EnableWebhook(ctx context.Context, sub string) (WebhookState, error) {
	if err := s.checkSubscription(sub); err != nil {
		return WebhookState{}, err
	}
	if err := s.st.Delete(ctx, s.hookStateKey(sub), store.DeleteOptions{}); err != nil {
		return WebhookState{}, storeErr("enable webhook", err)
	}
	return WebhookState{ID: sub}, nil
}

// WebhookStatus returns the state of subscription sub.
func (s *Service) WebhookStatus(ctx context.Context, sub string) (WebhookState, error) {
	if err := s.checkSubscription(sub); err != nil {
		return WebhookState{}, err
	}
	it, err := s.st.Get(ctx, s.hookStateKey(sub))
	if errors.Is(err, store.ErrNotFound) {
		return WebhookState{ID: sub}, nil
	}
	if err != nil {
		return WebhookState{}, storeErr("read webhook state", err)
	}
	var st hookState
	_ = json.Unmarshal(it.Value, &st)
	return WebhookState{ID: sub, Disabled: st.Disabled, Reason: st.Reason, DisabledAt: st.DisabledAt}, nil
}
