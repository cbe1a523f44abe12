package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/trace"
	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// A delivered message costs the store one round trip for its
// subscribe_msg_sent_event: the event is recorded by one conditional
// Write, without reading anything first.
//
//   - The send that WeChat answered writes its msgid mark (sentMsgKey) in
//     the Write of its outcome (writeOutcome), not apart.
//   - The sent event puts its own item, sentEventKey, if absent. The item
//     is the event's done mark (a redelivery finds it and writes nothing)
//     and what SweepUnknown pairs an unknown send with: the events whose
//     msgid no send marked. The user's timeline entry and the funnel's
//     delivered counter go in the same Write.
//   - The mark is read only when the push is traced (its span then links
//     to the send's) or when a subscription wants notification.delivered,
//     whose payload the mark holds: one round trip more.
//
// Layout: u|<appid>|<openid>  sev|<templateId>|<createTime s>|<msgid>
//   {msgid, at, code, status, claimed}

// sentMarkValue is the value of a msgid mark.
type sentMarkValue struct {
	// ID is the notification WeChat answered with the msgid.
	ID string `json:"id"`
	// Traceparent is the send's span, when it was traced.
	Traceparent string `json:"tp,omitempty"`
	// Delivered is the payload of the notification's
	// notification.delivered, when a subscription wanted the event at
	// the send.
	Delivered *webhook.NotificationData `json:"delivered,omitempty"`
}

// span is the send's span context (invalid when untraced).
func (m sentMarkValue) span() trace.SpanContext {
	sc, _ := trace.ParseTraceparent(m.Traceparent)
	return sc
}

// parseSentMark reads a mark's value: JSON, or the "<id> <traceparent>"
// of marks written before the JSON shape.
func parseSentMark(b []byte) sentMarkValue {
	var m sentMarkValue
	if len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &m)
		return m
	}
	m.ID, m.Traceparent, _ = strings.Cut(string(b), " ")
	return m
}

// sentMarkFor is the mark of n, a send WeChat answered (ok false when no
// mark is needed: without push nothing reads it).
func (s *Service) sentMarkFor(ctx context.Context, n Notification) ([]byte, bool) {
	if !s.pushConfigured || n.WeChat.MsgID == "" || n.Status != StatusSent {
		return nil, false
	}
	m := sentMarkValue{ID: n.ID, Traceparent: trace.FromContext(ctx).Context().Traceparent()}
	if s.wantsEvent(webhook.EventNotificationDelivered) {
		data := s.notificationData(n)
		m.Delivered = &data
	}
	b, err := json.Marshal(m)
	return b, err == nil
}

// sentMarkOp is the Put of n's msgid mark, for the Write of its outcome.
func (s *Service) sentMarkOp(ctx context.Context, n Notification) (store.WriteOp, bool) {
	if !n.answered {
		return store.WriteOp{}, false
	}
	b, ok := s.sentMarkFor(ctx, n)
	if !ok {
		return store.WriteOp{}, false
	}
	return store.WritePut(s.sentMsgKey(n.OpenID, n.WeChat.MsgID), b, s.sentMarkOptions()), true
}

// sentMarkOptions keep a msgid mark for as long as a sweep may look for it.
func (s *Service) sentMarkOptions() store.PutOptions {
	return store.PutOptions{ExpiresAt: s.now().Add(sentLogMemory + s.unknownWindow)}
}

// sentEventPrefix is the sort prefix of a user's sent events of a
// template.
func sentEventPrefix(tmplID string) string { return "sev|" + tmplID + "|" }

func (s *Service) sentEventKey(openID, tmplID string, at time.Time, msgID string) store.Key {
	return store.Key{Partition: s.userPartition(openID),
		Sort: fmt.Sprintf("%s%010d|%s", sentEventPrefix(tmplID), at.Unix(), msgID)}
}

// sentEventItem is the value of a sent event's item.
type sentEventItem struct {
	sentEntry
	// Claimed is the unknown send SweepUnknown paired the event with.
	Claimed string `json:"claimed,omitempty"`
}

// sentEventMemory is how long a sent event's item is kept: as long as a
// sweep may pair it, and as long as WeChat may redeliver it.
const sentEventMemory = max(sentLogMemory, pushMemory)

// recordSentEvent applies a subscribe_msg_sent_event item that carries a
// msgid (see above). It reports whether it recorded the event (false for
// a redelivery).
func (s *Service) recordSentEvent(ctx context.Context, ev wechat.PushEvent, item wechat.PushItem) (bool, error) {
	openID := ev.FromUserName
	at := s.now()
	if ev.CreateTime > 0 {
		at = time.Unix(ev.CreateTime, 0)
	}
	at = at.UTC()
	delivered := item.ErrorCode == 0
	wantDelivered := delivered && s.wantsEvent(webhook.EventNotificationDelivered)
	var mark sentMarkValue
	marked := false
	if span := trace.FromContext(ctx); span.Recording() || wantDelivered {
		var err error
		if marked, mark, err = s.readSentMark(ctx, openID, item.MsgID); err != nil {
			return false, err
		}
		if send := mark.span(); send.IsValid() {
			// The event settles a traced send: the push's span links to it.
			span.AddLink(send, trace.String("wxnotify.link", "settled send"))
		}
	}
	b, err := json.Marshal(sentEventItem{sentEntry: sentEntry{MsgID: item.MsgID, At: at, Code: item.ErrorCode,
		Status: item.ErrorStatus}})
	if err != nil {
		return false, err
	}
	put := store.WritePut(s.sentEventKey(openID, item.TemplateID, at, item.MsgID), b,
		store.PutOptions{IfAbsent: true, ExpiresAt: s.now().Add(sentEventMemory)})
	tl, err := s.timelineOp(openID, "sent:"+item.MsgID, TimelineEvent{Type: TimelineSentEvent, At: at,
		TemplateID: item.TemplateID, Status: item.ErrorStatus, Notification: mark.ID, Errcode: item.ErrorCode,
		MsgID: item.MsgID})
	if err != nil {
		return false, err
	}
	entries := []store.WriteOp{tl}
	if delivered {
		entries = append(entries, s.statAdds(s.now(), item.TemplateID, MetricDelivered)...)
	}
	if wantDelivered && marked && mark.ID != "" {
		if mark.Delivered != nil {
			data := *mark.Delivered
			data.Status, data.Reason = "delivered", ""
			ops, err := s.eventOps(webhook.EventNotificationDelivered, mark.ID+":delivered", at, data)
			if err != nil {
				return false, err
			}
			entries = append(entries, ops...)
		} else if err := s.noteDelivered(ctx, mark.ID, at, &entries); err != nil {
			return false, err // a mark without the payload: the notification is read
		}
	}
	recorded := false
	err = s.retryWrite(ctx, "record sent event", func() error {
		for {
			_, err := s.writeWithEvents(ctx, put, entries)
			var wc *store.WriteConflict
			switch {
			case err == nil:
				recorded = true
				return nil
			case errors.As(err, &wc) && wc.Index > 0 && wc.Index <= len(entries):
				// An entry exists (its keys are the event's): without it.
				entries = append(entries[:wc.Index-1:wc.Index-1], entries[wc.Index:]...)
			case errors.Is(err, store.ErrConflict):
				// The item is there: a redelivery, or this Write whose
				// reply was lost. Its entries were written with it.
				if _, gerr := s.st.Get(ctx, put.Key); gerr == nil {
					recorded = false
					return nil
				} else if !errors.Is(gerr, store.ErrNotFound) {
					return gerr
				}
				// A condition the store could not place, not the item's:
				// the entries that exist are dropped.
				ops, derr := s.dropExistingEntries(ctx, append([]store.WriteOp{put}, entries...), err)
				if derr != nil {
					return derr
				}
				entries = ops[1:]
			default:
				return err
			}
		}
	})
	return recorded && err == nil, err
}

// readSentMark reads msgID's mark, trying again a few times when the store
// fails: whether it is there and its value.
func (s *Service) readSentMark(ctx context.Context, openID, msgID string) (bool, sentMarkValue, error) {
	if msgID == "" {
		return false, sentMarkValue{}, nil
	}
	var (
		m     sentMarkValue
		found bool
	)
	err := s.retryWrite(ctx, "get msgid mark", func() error {
		it, err := s.st.Get(ctx, s.sentMsgKey(openID, msgID))
		switch {
		case err == nil:
			m, found = parseSentMark(it.Value), true
			return nil
		case errors.Is(err, store.ErrNotFound):
			return nil
		}
		return err
	})
	return found, m, err
}

// sentCandidate is a sent event SweepUnknown may pair an unknown send with.
type sentCandidate struct {
	entry sentEntry
	// key and version locate its item; legacy events of the sent log have
	// none.
	key     store.Key
	version int64
}

// unclaimedSentEvents returns the sent events of the user and template
// made from first to last that no send marked and no sweep claimed,
// oldest first. known caches the marks read.
func (s *Service) unclaimedSentEvents(ctx context.Context, openID, tmplID string, first, last time.Time, known map[string]bool) ([]sentCandidate, error) {
	prefix := sentEventPrefix(tmplID)
	q := store.Query{Partition: s.userPartition(openID), Prefix: prefix,
		After: fmt.Sprintf("%s%010d", prefix, first.Unix()), Limit: 100}
	var out []sentCandidate
	for range maxSweepEventPages {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return nil, storeErr("query sent events", err)
		}
		for _, it := range page.Items {
			var ev sentEventItem
			if json.Unmarshal(it.Value, &ev) != nil {
				continue
			}
			if ev.At.After(last) {
				return out, nil
			}
			if ev.Claimed != "" || ev.At.Before(first) {
				continue
			}
			marked, ok := known[ev.MsgID]
			if !ok {
				if marked, err = s.isMarked(ctx, openID, ev.MsgID); err != nil {
					return nil, err
				}
				known[ev.MsgID] = marked
			}
			if !marked {
				out = append(out, sentCandidate{entry: ev.sentEntry, key: it.Key, version: it.Version})
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	return out, nil
}

// maxSweepEventPages bounds the pages of sent events one unknown send's
// settlement reads (100 events each, within the send's window).
const maxSweepEventPages = 10

// claimSentEventOp is the Write op that marks a candidate's item claimed
// by the unknown send id, on the version read (nil for a legacy event).
func (s *Service) claimSentEventOp(c sentCandidate, id string) (*store.WriteOp, error) {
	if c.version == 0 {
		return nil, nil
	}
	b, err := json.Marshal(sentEventItem{sentEntry: c.entry, Claimed: id})
	if err != nil {
		return nil, err
	}
	op := store.WritePut(c.key, b, store.PutOptions{IfVersion: c.version, ExpiresAt: s.now().Add(sentEventMemory)})
	return &op, nil
}
