package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/webhook"
)

// The events beside the outcomes (see outbox.go): notification.delivered,
// consent.changed and batch.finished. Each is written to the outbox in the
// store.Write that makes the change it reports - the push item's done
// mark, the consent record, the batch record - so that a change recorded
// is an event to deliver, with no round trip of its own. Their entries are
// outbox entries like the outcomes', delivered by DeliverWebhooks.

// wantsEvent reports whether a subscription of the app takes events of
// type typ.
func (s *Service) wantsEvent(typ string) bool {
	for _, sub := range s.hooks.subs {
		if sub.Wants(typ) {
			return true
		}
	}
	return false
}

// eventOps returns the Puts (IfAbsent) of the outbox entries of one event,
// one per subscription that wants it, due at at. id identifies the event
// (webhook.DeliveryID): the same change must give the same id.
func (s *Service) eventOps(typ, id string, at time.Time, data any) ([]store.WriteOp, error) {
	if !s.wantsEvent(typ) {
		return nil, nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", typ, err)
	}
	at = at.UTC()
	ev := outboxEvent{Type: typ, ID: id, Timestamp: at, Data: json.RawMessage(raw)}
	var ops []store.WriteOp
	for _, sub := range s.hooks.subs {
		if !sub.Wants(typ) {
			continue
		}
		b, err := json.Marshal(outboxEntry{Subscription: sub.ID, Event: ev, FirstAttempt: at})
		if err != nil {
			return nil, fmt.Errorf("encode outbox entry: %w", err)
		}
		key := store.Key{Partition: s.outboxPartition(), Sort: outboxSort(at, webhook.DeliveryID(id, sub.ID))}
		ops = append(ops, store.WritePut(key, b, store.PutOptions{IfAbsent: true}))
	}
	return ops, nil
}

// UnmarshalJSON keeps an entry's data as the JSON it was written as, for
// every event type: delivered as is, the very bytes on every attempt.
func (e *outboxEvent) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type      string          `json:"type"`
		ID        string          `json:"id"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = outboxEvent{Type: raw.Type, ID: raw.ID, Timestamp: raw.Timestamp}
	if len(raw.Data) > 0 {
		e.Data = raw.Data
	}
	return nil
}

// writeWithEvents writes the record put and the entries events (outbox
// and timeline entries, the funnel's counter Adds) in one store.Write and
// returns the record's new version; without events it is the record's
// Put. A failed condition wraps store.ErrConflict. On a
// store that cannot write across partitions at once (Redis Cluster) the
// record is written first, then the entries, then the counters: a change is never reported
// that was not made, and one whose entries are then lost is logged.
func (s *Service) writeWithEvents(ctx context.Context, put store.WriteOp, events []store.WriteOp) (int64, error) {
	if len(events) == 0 {
		return s.st.Put(ctx, put.Key, put.Value, put.Put)
	}
	versions, err := s.st.Write(ctx, append([]store.WriteOp{put}, events...))
	if err == nil {
		return versions[0], nil
	}
	if !errors.Is(err, store.ErrInvalidWrite) {
		return 0, err
	}
	ver, err := s.st.Put(ctx, put.Key, put.Value, put.Put)
	if err != nil {
		return 0, err
	}
	events, adds := splitAdds(events)
	s.writeEventsApart(ctx, events)
	s.writeStatsApart(ctx, adds)
	return ver, nil
}

// writeEventsApart writes entries (Puts if absent: outbox and timeline
// entries) one by one, after the record they follow, on a store that
// cannot write them with it; an entry lost is logged.
func (s *Service) writeEventsApart(ctx context.Context, entries []store.WriteOp) {
	for _, op := range entries {
		if perr := s.retryWrite(ctx, "write outbox entry", func() error {
			_, err := s.st.Put(ctx, op.Key, op.Value, op.Put)
			if errors.Is(err, store.ErrConflict) {
				return nil // written before
			}
			return err
		}); perr != nil {
			s.log.Error("webhook event lost", "entry", op.Key.Sort, "err", perr)
		}
	}
}

// deliveredOps returns the outbox entries of notification.delivered for
// n, a message WeChat's sent event reported delivered at at.
func (s *Service) deliveredOps(n Notification, at time.Time) ([]store.WriteOp, error) {
	if !s.wantsEvent(webhook.EventNotificationDelivered) {
		return nil, nil
	}
	data := s.notificationData(n)
	data.Status, data.Reason = "delivered", ""
	return s.eventOps(webhook.EventNotificationDelivered, n.ID+":delivered", at, data)
}

// consentHint tells updateConsent what its caller knows of the change.
type consentHint struct {
	// op names the operation (a report, a push item), for the event's id:
	// a repeat of the operation gives the same webhook-id.
	op string
	// granted: a credit was granted, a change even when the status stays.
	granted bool
	// credits, when known, is what the counter holds after the change.
	credits *int64
}

// consentEventOps returns the outbox entries of consent.changed when the
// edit from old to m changes the consent (its status, a long-term
// acceptance, or a credit granted), none otherwise. The userId bound to
// the openid and, unless hint knows them, the credits are read: only when
// a subscription wants the event.
func (s *Service) consentEventOps(ctx context.Context, openID, tmplID string, old, m consentMeta, hint consentHint) ([]store.WriteOp, error) {
	if !s.wantsEvent(webhook.EventConsentChanged) {
		return nil, nil
	}
	if old.Status == m.Status && old.LongTerm == m.LongTerm && !hint.granted {
		return nil, nil
	}
	t, ok := s.catalog.Lookup(tmplID)
	if !ok || t.ID != tmplID {
		return nil, nil
	}
	data := webhook.ConsentData{App: s.hooks.app, Template: t.Alias, TemplateID: t.ID, Kind: string(t.Kind),
		Status: m.Status, PreviousStatus: old.Status, Source: string(m.Source), At: m.UpdatedAt}
	if it, err := s.st.Get(ctx, s.profileKey(openID)); err == nil {
		var u User
		if json.Unmarshal(it.Value, &u) == nil {
			data.UserID = u.UserID
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, storeErr("get user", err)
	}
	switch {
	case t.Kind == LongTerm:
		data.Sendable = m.LongTerm
	case hint.credits != nil:
		data.Credits = *hint.credits
	default:
		it, err := s.st.Get(ctx, s.creditsKey(openID, tmplID))
		switch {
		case err == nil:
			data.Credits, _ = store.ParseCounter(it.Value)
		case !errors.Is(err, store.ErrNotFound):
			return nil, storeErr("get credits", err)
		}
	}
	if t.Kind != LongTerm {
		data.Credits = max(data.Credits, 0)
		data.Sendable = data.Credits > 0
	}
	// The id names the change: the operation when there is one (its repeat
	// is the same change), else the time of the edit.
	id := "consent:" + HashID(openID) + ":" + tmplID + ":"
	if hint.op != "" {
		id += hint.op + ":" + m.Status
	} else {
		id += fmt.Sprint(m.UpdatedAt.UnixNano())
	}
	return s.eventOps(webhook.EventConsentChanged, id, m.UpdatedAt, data)
}

// batchEventOps returns the outbox entries of batch.finished for b, a
// batch that ends (done or cancelled) with this write.
func (s *Service) batchEventOps(b Batch) ([]store.WriteOp, error) {
	if b.Status != BatchDone && b.Status != BatchCancelled {
		return nil, nil
	}
	data := webhook.BatchData{BatchID: b.ID, App: s.hooks.app, Status: string(b.Status), Template: b.Template,
		TemplateID: b.TemplateID, Total: b.Total, Sent: b.Sent, Skipped: b.Skipped, Failed: b.Failed, Unknown: b.Unknown,
		Pending: b.Pending()}
	return s.eventOps(webhook.EventBatchFinished, b.ID+":"+string(b.Status), b.UpdatedAt, data)
}
