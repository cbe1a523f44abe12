package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// How long applied push events are remembered (WeChat redelivers within
// seconds), and how long sent logs wait.
const (
	pushMemory    = 72 * time.Hour
	unknownMemory = 24 * time.Hour
	maxUnknown    = 200
)

// ApplyPush applies one push event from WeChat, each item at most once
// however often WeChat redelivers it. Events other than the three
// subscribe_msg_* events are ignored. It is ApplyPushDelivery without a
// delivery: two identical events (one user answering two popups of the
// same template within a second) then count once.
func (s *Service) ApplyPush(ctx context.Context, ev wechat.PushEvent) error {
	return s.ApplyPushDelivery(ctx, ev, Delivery{})
}

// Delivery is the signed request a push came in.
type Delivery struct {
	// ID is the request's timestamp and nonce. WeChat redelivers an
	// unanswered push with the same parameters, so its copies share the ID,
	// while two identical events are two deliveries.
	ID string
	// Digest is set for a plaintext push, whose signature covers the
	// timestamp and nonce but not the body: a hash of the body. The first
	// body seen with an ID is then the only one accepted with it (WeChat's
	// redeliveries repeat it); another body under the same ID replays a
	// captured push URL with a forged body and is refused (unauthorized).
	Digest string
	// Until is when the request's signature stops being accepted (its
	// timestamp plus the accepted skew): the binding of ID to Digest is
	// kept past it.
	Until time.Time
}

// ErrDeliveryReused: a plaintext push reuses the timestamp and nonce of an
// earlier push with another body.
var ErrDeliveryReused = &Error{Code: CodeUnauthorized, Message: "this push signature was already used with another body"}

// ApplyPushDelivery is ApplyPush for an event that came in the signed
// request d; see Delivery.
func (s *Service) ApplyPushDelivery(ctx context.Context, ev wechat.PushEvent, d Delivery) error {
	if d.Digest != "" {
		if err := s.bindDelivery(ctx, d); err != nil {
			return err
		}
	}
	switch ev.Event {
	case wechat.EventSubscribePopup, wechat.EventSubscribeChange, wechat.EventSubscribeSent:
	default:
		return nil
	}
	if ev.FromUserName == "" {
		return FieldError("FromUserName", "missing")
	}
	changed := false
	for i, item := range ev.Items {
		c, err := s.applyPushItemOnce(ctx, ev, d.ID, i, item)
		if err != nil {
			// Not reported: the redelivery that completes it is (with
			// Changed for what it changes itself).
			return err
		}
		changed = changed || c
	}
	s.observe.PushApplied(PushEvent{AppID: s.appID, Event: ev.Event, Changed: changed})
	return nil
}

// deliveryMemory is how long past its signature's window a plaintext
// delivery's binding is kept.
const deliveryMemory = 10 * time.Minute

// bindDelivery binds a plaintext delivery's ID to its body (see Delivery).
func (s *Service) bindDelivery(ctx context.Context, d Delivery) error {
	key := store.Key{Partition: "pushsig|" + s.appID, Sort: d.ID}
	until := d.Until
	if until.IsZero() {
		until = s.now()
	}
	_, err := s.claim(ctx, key, []byte(d.Digest), until.Add(deliveryMemory).Sub(s.now()))
	if errors.Is(err, store.ErrConflict) {
		return ErrDeliveryReused
	}
	return err
}

func pushItemKey(ev wechat.PushEvent, delivery string, i int, item wechat.PushItem) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s\x00%d\x00%s\x00%s\x00%s", ev.FromUserName, ev.CreateTime, ev.Event, i, item.TemplateID, item.MsgID, delivery))
	return hex.EncodeToString(sum[:16])
}

// pushDone is the value of a done mark.
const pushDone = "done"

// applyPushItemOnce applies one item of a push unless its done mark says
// it was applied before. Every write of the application is safe to repeat
// (its counter operations are named after the item, the rest sets values),
// so a copy that finds no mark applies the item itself - also when an
// earlier attempt died half-way, or while another copy is at it - and
// WeChat's redeliveries can always finish an event. It reports whether
// applying the item changed anything (false when it was done before).
func (s *Service) applyPushItemOnce(ctx context.Context, ev wechat.PushEvent, delivery string, i int, item wechat.PushItem) (bool, error) {
	if ev.Event == wechat.EventSubscribeSent && item.MsgID != "" {
		// Its own item is its done mark: one Write (sentevent.go).
		return s.recordSentEvent(ctx, ev, item)
	}
	itemKey := pushItemKey(ev, delivery, i, item)
	if ev.Event != wechat.EventSubscribeSent {
		// A popup or change item: the consent record of its template is its
		// done mark (consentMeta.Applied), written by the conditional Write
		// that applies it, and read by the Query that reads the record
		// anyway. An item that names no template of the catalog or no
		// status changes nothing, so it needs no mark.
		changed, _, err := s.applyPushItemRetrying(ctx, ev, item, "push:"+itemKey, nil)
		return changed, err
	}
	mark := s.pushKey(itemKey)
	if done, err := s.isDone(ctx, mark); err != nil || done {
		return false, err
	}
	var sentTo string // the notification a sent event belongs to
	changed, events, err := s.applyPushItemRetrying(ctx, ev, item, "push:"+itemKey, &sentTo)
	if err != nil {
		return false, err
	}
	if ev.Event == wechat.EventSubscribeSent {
		// The sent event joins the user's timeline with the done mark.
		event, err := s.sentEventTimelineOp(ev, itemKey, item, sentTo)
		if err != nil {
			return false, err
		}
		events = append(events, event)
		if item.ErrorCode == 0 {
			// A delivery, counted in the funnel by the done mark's write.
			events = append(events, s.statAdds(s.now(), item.TemplateID, MetricDelivered)...)
		}
	}
	if len(events) > 0 {
		// The item's events (its timeline entry, notification.delivered,
		// the funnel's counter) are written with its done mark: once done,
		// a redelivery writes none again.
		return changed, s.markDoneWith(ctx, mark, pushMemory, events)
	}
	return changed, s.markDone(ctx, mark, pushMemory)
}

// markDoneWith writes the done mark of a push item, if absent, with the
// item's entries (its timeline event, outbox entries), in one Write. Every
// op is conditional, so the Write is one request on every backend: when a
// condition fails, a copy of the item or a write whose reply was lost put
// the mark and the entries (their keys are the item's), and the mark alone
// is written over. A store that cannot write across partitions gets the
// mark, then the entries (writeWithEvents).
func (s *Service) markDoneWith(ctx context.Context, key store.Key, memory time.Duration, entries []store.WriteOp) error {
	return s.retryWrite(ctx, "mark done", func() error {
		exp := s.now().Add(memory)
		put := store.WritePut(key, []byte(pushDone), store.PutOptions{IfAbsent: true, ExpiresAt: exp})
		_, err := s.writeWithEvents(ctx, put, entries)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		_, err = s.st.Put(ctx, key, []byte(pushDone), store.PutOptions{ExpiresAt: exp})
		return err
	})
}

// applyPushItemRetrying applies an item, trying again a few times when the
// store failed: WeChat gives up after three redeliveries. It returns the
// outbox entries of the events the item makes, to write with its done mark;
// for a sent event, *sentTo is set to the notification it belongs to.
func (s *Service) applyPushItemRetrying(ctx context.Context, ev wechat.PushEvent, item wechat.PushItem, op string, sentTo *string) (bool, []store.WriteOp, error) {
	var events []store.WriteOp
	changed, err := s.applyPushItem(ctx, ev, item, op, &events, sentTo)
	for wait := 10 * time.Millisecond; err != nil && CodeOf(err) == CodeStoreUnavailable && wait <= 160*time.Millisecond; wait *= 2 {
		select {
		case <-ctx.Done():
			return false, nil, err
		case <-time.After(wait):
		}
		events = nil
		changed, err = s.applyPushItem(ctx, ev, item, op, &events, sentTo)
	}
	return changed, events, err
}

// claim takes key for this caller with a put-if-absent of the caller's own
// value mine, kept for ttl, trying again when the store fails; a claim
// found after a lost reply is recognised as ours by its value.
// ErrConflict: someone else holds or held it.
func (s *Service) claim(ctx context.Context, key store.Key, mine []byte, ttl time.Duration) (int64, error) {
	var err error
	for attempt, wait := 0, 10*time.Millisecond; attempt < 5; attempt, wait = attempt+1, wait*2 {
		var ver int64
		ver, err = s.st.Put(ctx, key, mine, store.PutOptions{IfAbsent: true, ExpiresAt: s.now().Add(ttl)})
		if err == nil {
			return ver, nil
		}
		if errors.Is(err, store.ErrConflict) {
			it, gerr := s.st.Get(ctx, key)
			switch {
			case gerr == nil && string(it.Value) == string(mine):
				return it.Version, nil
			case gerr == nil:
				return 0, err
			}
			err = gerr // or gone meanwhile (not found): claim again
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	return 0, storeErr("claim", err)
}

// applyPushItem applies one item; op names its counter operations. It
// reports whether the item changed the ledger or kept a sent event for a
// send: false when it was ignored, or when it is a one-time accept that
// confirmed a client report (or met the credit cap). The outbox entries of
// the events to write with the item's done mark are added to events; for a
// sent event, *sentTo is set to the notification it belongs to, when known.
func (s *Service) applyPushItem(ctx context.Context, ev wechat.PushEvent, item wechat.PushItem, op string, events *[]store.WriteOp, sentTo *string) (bool, error) {
	openID := ev.FromUserName
	switch ev.Event {
	case wechat.EventSubscribeSent:
		kept, id, err := s.settleSent(ctx, openID, ev.CreateTime, item, events)
		*sentTo = id
		return kept, err
	}
	t, ok := s.templateByID(item.TemplateID)
	if !ok {
		s.log.Info("push for a template not in the catalog", "event", ev.Event, "template", item.TemplateID)
		return false, nil
	}
	status, valid := normalizeStatus(item.SubscribeStatus)
	if !valid {
		s.log.Info("push with an unknown status", "event", ev.Event, "status", item.SubscribeStatus)
		return false, nil
	}
	switch ev.Event {
	case wechat.EventSubscribePopup:
		credited, applied, err := s.applyChoice(ctx, openID, t, status, SourcePopup, -1, op)
		return err == nil && (credited || (applied && (status != StatusAccept || t.Kind != OneTime))), err
	case wechat.EventSubscribeChange:
		if status == StatusAccept {
			return s.acceptChange(ctx, openID, t, op)
		}
		return s.revokeOp(ctx, openID, t.ID, SourceChange, op)
	}
	return false, nil
}

// sentLog pairs WeChat's subscribe_msg_sent_events with the sends whose
// outcome was ambiguous, for one user and template. Events carry only
// WeChat's msgid, which an unanswered send never learns, so the pairing is
// made by SweepUnknown once every send that was in flight at the same time
// has finished: by then each send that got its answer has marked its msgid
// (sentMsgKey), and the events left unmarked belong to the unknown sends.
// Unknown holds the notifications waiting to be settled; Events the recent
// events no send has claimed.
type sentLog struct {
	Unknown []unknownEntry `json:"unknown,omitempty"`
	Events  []sentEntry    `json:"events,omitempty"`
}

type unknownEntry struct {
	ID     string    `json:"id"`
	CallAt time.Time `json:"callAt"` // when the request went to WeChat
	// Decided says that SweepUnknown paired it with Match (nil: no event
	// came), which it is resolving.
	Decided bool       `json:"decided,omitempty"`
	Match   *sentEntry `json:"match,omitempty"`
}

type sentEntry struct {
	MsgID  string    `json:"msgid"`
	At     time.Time `json:"at"` // the event's CreateTime (seconds)
	Code   int       `json:"code"`
	Status string    `json:"status,omitempty"`
}

// sentLogMemory bounds how long both sides wait for each other;
// clockSkew how much earlier than our call WeChat's CreateTime of the
// event may read (whole seconds, and two clocks).
const (
	sentLogMemory = unknownMemory
	maxSentEvents = 50
	clockSkew     = 5 * time.Second
)

func (l *sentLog) prune(now time.Time) {
	for len(l.Unknown) > 0 && now.Sub(l.Unknown[0].CallAt) > sentLogMemory {
		l.Unknown = l.Unknown[1:]
	}
	for len(l.Events) > 0 && now.Sub(l.Events[0].At) > sentLogMemory {
		l.Events = l.Events[1:]
	}
	if len(l.Events) > maxSentEvents {
		l.Events = l.Events[len(l.Events)-maxSentEvents:]
	}
	if len(l.Unknown) > maxUnknown {
		l.Unknown = l.Unknown[len(l.Unknown)-maxUnknown:]
	}
}

// editSentLog applies edit to the user's sent log for a template with
// optimistic concurrency.
func (s *Service) editSentLog(ctx context.Context, openID, tmplID string, edit func(*sentLog)) error {
	key := s.unknownKey(openID, tmplID)
	for range 8 {
		var l sentLog
		opts := store.PutOptions{IfAbsent: true}
		it, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			_ = json.Unmarshal(it.Value, &l)
			opts.IfAbsent, opts.IfVersion = false, it.Version
		case !errors.Is(err, store.ErrNotFound):
			return storeErr("get sent log", err)
		}
		edit(&l)
		l.prune(s.now())
		switch {
		case len(l.Unknown) > 0 || len(l.Events) > 0:
			b, _ := json.Marshal(l)
			opts.ExpiresAt = s.now().Add(sentLogMemory)
			_, err = s.st.Put(ctx, key, b, opts)
		case it.Version > 0:
			err = s.st.Delete(ctx, key, store.DeleteOptions{IfVersion: it.Version})
		default:
			return nil // nothing stored, nothing to store
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeErr("put sent log", err)
		}
	}
	return storeErr("put sent log", errors.New("too many concurrent updates"))
}

// sentMsgKey marks a msgid WeChat answered a send with: the sent event of
// that message belongs to a send that knows its outcome.
func (s *Service) sentMsgKey(openID, msgID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "sent|" + msgID}
}

// markSent records the msgid of a send WeChat answered, for as long as a
// sweep may look for it, by itself: a send writes it with its outcome
// (sentMarkOp), and this is for an outcome that could not be written.
// Only with push: nothing else reads it. Its value (sentMarkValue) is the
// notification id, the traceparent of the send's span when traced (the
// push handler that meets the message's sent event links its span to the
// send) and the payload of notification.delivered when a subscription
// wants it.
func (s *Service) markSent(ctx context.Context, n Notification) {
	value, ok := s.sentMarkFor(ctx, n)
	if !ok {
		return
	}
	err := s.retryWrite(ctx, "mark msgid", func() error {
		_, err := s.st.Put(ctx, s.sentMsgKey(n.OpenID, n.WeChat.MsgID), value, s.sentMarkOptions())
		return err
	})
	if err != nil {
		// Its sent event may then settle an unknown send of the same user
		// and template that WeChat never got: that send's credit stays
		// spent (fewer messages, never one without consent).
		s.log.Warn("msgid of a sent message not marked", "err", err, "notification", n.ID)
	}
}

// isMarked reports whether msgID is the answer of a send we know.
func (s *Service) isMarked(ctx context.Context, openID, msgID string) (bool, error) {
	marked, _, _, err := s.sentMark(ctx, openID, msgID)
	return marked, err
}

// sentMark reads msgID's mark (markSent): whether it is there, the id of
// the notification that wrote it and the span context of its send
// (invalid when untraced).
func (s *Service) sentMark(ctx context.Context, openID, msgID string) (bool, string, trace.SpanContext, error) {
	marked, m, err := s.readSentMark(ctx, openID, msgID)
	return marked, m.ID, m.span(), err
}

// awaitSentEvent records a send whose outcome is ambiguous: SweepUnknown
// settles it with an unclaimed sent event, or closes it as not delivered,
// once UnknownWindow has passed. Without push nothing will: it stays
// unknown.
func (s *Service) awaitSentEvent(ctx context.Context, openID, tmplID, id string, callAt time.Time) error {
	if !s.pushConfigured {
		return nil
	}
	// Tried longer than a single write: a send left unrecorded here stays
	// unknown, its credit spent.
	err := s.retryWriteN(ctx, "record unknown send", 10, func() error {
		return s.editSentLog(ctx, openID, tmplID, func(l *sentLog) {
			if !slices.ContainsFunc(l.Unknown, func(u unknownEntry) bool { return u.ID == id }) {
				l.Unknown = append(l.Unknown, unknownEntry{ID: id, CallAt: callAt.UTC()})
			}
		})
	})
	if err != nil {
		return err
	}
	return s.noteUnknownDue(ctx, openID, tmplID, id, callAt)
}

// settleSent applies a subscribe_msg_sent_event: the event of a message
// whose send got its answer is done with; any other is kept for
// SweepUnknown, which pairs it with an unknown send (the send may not even
// know yet that its outcome is ambiguous, or may not have marked its msgid
// yet: the sweep looks again). It reports whether it kept the event, and
// the notification whose msgid the event carries ("" when no send marked
// it). The event of a known send that reports the message delivered adds
// the entries of notification.delivered to events (to write with the
// item's done mark); the notification is read for them only when a
// subscription wants the event.
func (s *Service) settleSent(ctx context.Context, openID string, createTime int64, item wechat.PushItem, events *[]store.WriteOp) (bool, string, error) {
	if !s.pushConfigured {
		return false, "", nil // nothing sweeps: keep nothing
	}
	marked, id, send, err := s.sentMark(ctx, openID, item.MsgID)
	if err != nil || marked {
		if send.IsValid() {
			// The event settles a traced send: the push's span links to it.
			trace.FromContext(ctx).AddLink(send, trace.String("wxnotify.link", "settled send"))
		}
		if err == nil && item.ErrorCode == 0 && id != "" && s.wantsEvent(webhook.EventNotificationDelivered) {
			err = s.noteDelivered(ctx, id, time.Unix(createTime, 0), events)
		}
		return false, id, err
	}
	ev := sentEntry{MsgID: item.MsgID, At: time.Unix(createTime, 0).UTC(), Code: item.ErrorCode, Status: item.ErrorStatus}
	kept := false
	err = s.editSentLog(ctx, openID, item.TemplateID, func(l *sentLog) {
		kept = false
		for _, e := range l.Events {
			if e.MsgID == ev.MsgID {
				return // a redelivered event: keep one
			}
		}
		l.Events = append(l.Events, ev)
		kept = true
	})
	return kept && err == nil, "", err
}

// noteDelivered adds to events the entries of notification.delivered for
// the notification id, which a sent event reported delivered at at. A
// notification gone (past the retention) has none.
func (s *Service) noteDelivered(ctx context.Context, id string, at time.Time, events *[]store.WriteOp) error {
	n, _, err := s.getNotification(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return storeErr("get notification", err)
	}
	ops, err := s.deliveredOps(n, at)
	*events = append(*events, ops...)
	return err
}

// applySentEvent sets a notification's outcome from WeChat's sent event;
// a delivered message also gets notification.delivered (writeOutcome).
func applySentEvent(n *Notification, ev sentEntry) {
	n.WeChat = WeChatResult{Errcode: ev.Code, Errmsg: ev.Status, MsgID: ev.MsgID}
	n.Status, n.Reason = StatusSent, ""
	n.deliveredAt = ev.At
	if ev.Code != 0 {
		n.Status, n.Reason, n.deliveredAt = StatusFailed, ReasonDelivery, time.Time{}
	}
}
