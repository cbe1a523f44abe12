package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// An ambiguous send (written, never answered) is recorded unknown with its
// credit spent. With push (PushConfigured), WeChat pushes a
// subscribe_msg_sent_event for every message it delivered, so once every
// send in flight at the same time has finished and marked the msgid it was
// answered with, the unmarked events of the user and template are exactly
// those of the unknown sends. SweepUnknown then settles each unknown send
// older than UnknownWindow: with an unmarked event (sent, or failed when
// the event reports a delivery failure), else as not delivered (failed,
// not_delivered) with its credit given back. A delivered message whose
// event was lost (WeChat gave up pushing it) is then counted back by
// mistake; the next send meets 43101 and zeroes the ledger, so no message
// goes out without consent.
//
// Layout: unkdue|<appid>  <callAt ms>|<id>  {openid, templateId}

// ReasonNotDelivered: an ambiguous send whose sent event never came.
const ReasonNotDelivered = "not_delivered"

func (s *Service) unknownDuePartition() string { return "unkdue|" + s.appID }

type unknownDue struct {
	OpenID     string `json:"openid"`
	TemplateID string `json:"templateId"`
}

// noteUnknownDue indexes an unknown send for SweepUnknown.
func (s *Service) noteUnknownDue(ctx context.Context, openID, tmplID, id string, callAt time.Time) error {
	b, _ := json.Marshal(unknownDue{OpenID: openID, TemplateID: tmplID})
	key := store.Key{Partition: s.unknownDuePartition(), Sort: fmt.Sprintf("%013d|%s", callAt.UnixMilli(), id)}
	return s.retryWriteN(ctx, "note unknown send", 10, func() error {
		_, err := s.st.Put(ctx, key, b, store.PutOptions{ExpiresAt: callAt.Add(sentLogMemory)})
		return err
	})
}

// SweepUnknown settles the unknown sends older than UnknownWindow (see
// above) and returns how many it settled. Each is taken out of the user's
// sent log, together with the event it is paired with, in one conditional
// write, so overlapping sweeps settle each send once. It stops after
// maxSweep entries or when ctx ends.
func (s *Service) SweepUnknown(ctx context.Context) (settled int, err error) {
	if !s.pushConfigured {
		return 0, nil
	}
	cutoff := s.now().Add(-s.unknownWindow).UnixMilli()
	q := store.Query{Partition: s.unknownDuePartition(), Limit: 100}
	for seen := 0; seen < maxSweep; {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return settled, storeErr("query unknown sends", err)
		}
		for _, it := range page.Items {
			ms, id, _ := strings.Cut(it.Key.Sort, "|")
			at, _ := strconv.ParseInt(ms, 10, 64)
			if at > cutoff {
				return settled, nil
			}
			if err := ctx.Err(); err != nil {
				return settled, err
			}
			seen++
			ok, err := s.settleDue(ctx, it, id)
			if err != nil {
				return settled, err
			}
			if ok {
				settled++
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	return settled, nil
}

// settleDue settles one due unknown send. The decision (which sent event
// it is paired with, or none) is recorded in the send's entry of the sent
// log, with the event claimed (sentevent.go), in one conditional write; then the
// notification is resolved and the entry and the due index dropped. Each
// step is safe to repeat, so a sweep that dies half-way is completed by the
// next, and overlapping sweeps settle each send once.
func (s *Service) settleDue(ctx context.Context, it store.Item, id string) (bool, error) {
	var d unknownDue
	if json.Unmarshal(it.Value, &d) != nil || d.OpenID == "" {
		_ = s.st.Delete(ctx, it.Key, store.DeleteOptions{})
		return false, nil
	}
	// The events of sends that got their answer are marked by now.
	known := map[string]bool{}
	var (
		entry unknownEntry
		mine  bool
	)
	key := s.unknownKey(d.OpenID, d.TemplateID)
	for attempt := 0; ; attempt++ {
		if attempt == 8 {
			return false, storeErr("put sent log", errors.New("too many concurrent updates"))
		}
		cur, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			break // settled already, log and all
		}
		if err != nil {
			return false, storeErr("get sent log", err)
		}
		var l sentLog
		_ = json.Unmarshal(cur.Value, &l)
		// The sent log's own events, kept by wxnotify before sent events
		// had items of their own.
		for _, e := range l.Events {
			if _, ok := known[e.MsgID]; !ok {
				if known[e.MsgID], err = s.isMarked(ctx, d.OpenID, e.MsgID); err != nil {
					return false, err
				}
			}
		}
		l.Events = slices.DeleteFunc(l.Events, func(e sentEntry) bool { return known[e.MsgID] })
		i := slices.IndexFunc(l.Unknown, func(u unknownEntry) bool { return u.ID == id })
		if i < 0 {
			break // settled already
		}
		u := &l.Unknown[i]
		var claim *store.WriteOp
		if !u.Decided {
			// The oldest unclaimed event made while the call could still be
			// processed.
			first, last := u.CallAt.Add(-clockSkew), u.CallAt.Add(s.sendLease+clockSkew)
			cands, err := s.unclaimedSentEvents(ctx, d.OpenID, d.TemplateID, first, last, known)
			if err != nil {
				return false, err
			}
			for _, e := range l.Events {
				if !e.At.Before(first) && !e.At.After(last) {
					cands = append(cands, sentCandidate{entry: e})
					break
				}
			}
			if len(cands) > 0 {
				best := cands[0]
				for _, c := range cands[1:] {
					if c.entry.At.Before(best.entry.At) {
						best = c
					}
				}
				match := best.entry
				u.Match = &match
				if best.version == 0 {
					l.Events = slices.DeleteFunc(l.Events, func(e sentEntry) bool { return e.MsgID == best.entry.MsgID })
				} else if claim, err = s.claimSentEventOp(best, id); err != nil {
					return false, err
				}
			}
			u.Decided = true
		}
		entry = *u
		l.prune(s.now())
		b, err := json.Marshal(l)
		if err != nil {
			return false, err
		}
		// The decision and the claim of its event in one conditional
		// Write: two sweeps never pair one event with two sends.
		ops := []store.WriteOp{store.WritePut(key, b, store.PutOptions{IfVersion: cur.Version, ExpiresAt: s.now().Add(sentLogMemory)})}
		if claim != nil {
			ops = append(ops, *claim)
		}
		_, err = s.st.Write(ctx, ops)
		if err == nil {
			mine = true
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, storeErr("put sent log", err)
		}
	}
	if mine {
		var err error
		if entry.Match != nil {
			_, err = s.resolveUnknown(ctx, id, func(n *Notification) { applySentEvent(n, *entry.Match) })
		} else {
			err = s.closeUnknownNotification(ctx, id)
		}
		if err != nil {
			return false, err
		}
		if err := s.editSentLog(ctx, d.OpenID, d.TemplateID, func(l *sentLog) {
			l.Unknown = slices.DeleteFunc(l.Unknown, func(u unknownEntry) bool { return u.ID == id })
		}); err != nil {
			return false, err
		}
	}
	if err := s.st.Delete(ctx, it.Key, store.DeleteOptions{}); err != nil {
		return mine, storeErr("drop unknown send", err)
	}
	return mine, nil
}

// closeUnknownNotification marks an unknown notification not delivered and
// gives its credit back, if it took one and the counter was not zeroed
// since. Repeated, it gives back nothing more.
func (s *Service) closeUnknownNotification(ctx context.Context, id string) error {
	if _, err := s.resolveUnknown(ctx, id, func(u *Notification) {
		u.Status, u.Reason = StatusFailed, ReasonNotDelivered
	}); err != nil {
		return err
	}
	n, _, err := s.getNotification(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return storeErr("get notification", err)
	case n.Status != StatusFailed || n.Reason != ReasonNotDelivered:
		return nil
	}
	if t, ok := s.catalog.Lookup(n.TemplateID); ok {
		return s.giveBack(ctx, n.OpenID, t, n.ID)
	}
	return nil
}

// resolveUnknown applies resolve to a notification that is still unknown
// and records it; it reports whether it did (false: gone or no longer
// unknown). The settled outcome is reported to the observer, its Duration
// counted from the notification's creation (a retry's claim is not kept).
// A settling write whose reply was lost is not reported: the next sweep
// finds the notification settled and cannot tell by whom.
func (s *Service) resolveUnknown(ctx context.Context, id string, resolve func(*Notification)) (bool, error) {
	for range 8 {
		n, ver, err := s.getNotification(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, storeErr("get notification", err)
		}
		if n.Status != StatusUnknown {
			return false, nil
		}
		prior := n
		resolve(&n)
		n.UpdatedAt = s.now().UTC()
		// With its history entries; those of the unknown outcome exist.
		_, err = s.writeOutcome(ctx, n, ver, &prior)
		if err == nil {
			s.reportOutcome(n, n.CreatedAt, false)
			return true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, storeErr("settle notification", err)
		}
	}
	return false, nil
}
