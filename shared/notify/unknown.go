package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"wxnotify/shared/store"
)

// An ambiguous send (written, never answered) is recorded unknown with its
// credit spent, and waits in the user's sent log for WeChat's
// subscribe_msg_sent_event, which WeChat pushes for every message it
// delivered. With push enabled and an UnknownWindow set (WXN_UNKNOWN_WINDOW),
// SweepUnknown closes the ones whose event never came: after UnknownWindow the message is taken as not delivered,
// the notification becomes failed (not_delivered) and the credit comes back.
// A delivered message whose event was lost (WeChat gave up pushing it) is
// then counted back by mistake; the next send meets 43101 and zeroes the
// ledger, so no message goes out without consent.
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
	if !s.pushConfigured || s.unknownWindow <= 0 {
		return nil // nothing will close it: it stays unknown
	}
	b, _ := json.Marshal(unknownDue{OpenID: openID, TemplateID: tmplID})
	key := store.Key{Partition: s.unknownDuePartition(), Sort: fmt.Sprintf("%013d|%s", callAt.UnixMilli(), id)}
	return s.retryWrite(ctx, "note unknown send", func() error {
		_, err := s.st.Put(ctx, key, b, store.PutOptions{ExpiresAt: callAt.Add(sentLogMemory)})
		return err
	})
}

// SweepUnknown closes the unknown sends older than UnknownWindow whose sent
// event never came (see above) and returns how many it closed. Each is
// taken out of the user's sent log first, so a sent event arriving at the
// same time settles it or the sweep does, never both; overlapping sweeps
// are safe. It stops after maxSweep entries or when ctx ends.
func (s *Service) SweepUnknown(ctx context.Context) (closed int, err error) {
	if !s.pushConfigured || s.unknownWindow <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.unknownWindow).UnixMilli()
	q := store.Query{Partition: s.unknownDuePartition(), Limit: 100}
	for seen := 0; seen < maxSweep; {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return closed, storeErr("query unknown sends", err)
		}
		for _, it := range page.Items {
			ms, id, _ := strings.Cut(it.Key.Sort, "|")
			at, _ := strconv.ParseInt(ms, 10, 64)
			if at > cutoff {
				return closed, nil
			}
			if err := ctx.Err(); err != nil {
				return closed, err
			}
			seen++
			ok, err := s.closeUnknown(ctx, it, id)
			if err != nil {
				return closed, err
			}
			if ok {
				closed++
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	return closed, nil
}

func (s *Service) closeUnknown(ctx context.Context, it store.Item, id string) (bool, error) {
	var d unknownDue
	if json.Unmarshal(it.Value, &d) != nil || d.OpenID == "" {
		_ = s.st.Delete(ctx, it.Key, store.DeleteOptions{})
		return false, nil
	}
	// Take it out of the sent log: whoever removes it settles it.
	var mine bool
	if err := s.editSentLog(ctx, d.OpenID, d.TemplateID, func(l *sentLog) {
		mine = false
		for i, u := range l.Unknown {
			if u.ID == id {
				l.Unknown = append(l.Unknown[:i:i], l.Unknown[i+1:]...)
				mine = true
				return
			}
		}
	}); err != nil {
		return false, err
	}
	if mine {
		if err := s.closeUnknownNotification(ctx, id); err != nil {
			return false, err
		}
	}
	if err := s.st.Delete(ctx, it.Key, store.DeleteOptions{}); err != nil {
		return mine, storeErr("drop unknown send", err)
	}
	return mine, nil
}

// closeUnknownNotification marks an unknown notification not delivered and
// gives its credit back.
func (s *Service) closeUnknownNotification(ctx context.Context, id string) error {
	for range 8 {
		n, ver, err := s.getNotification(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return storeErr("get notification", err)
		}
		if n.Status != StatusUnknown {
			return nil
		}
		n.Status, n.Reason, n.UpdatedAt = StatusFailed, ReasonNotDelivered, s.now().UTC()
		_, err = s.putNotification(ctx, n, store.PutOptions{IfVersion: ver})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return storeErr("close notification", err)
		}
		if t, ok := s.catalog.Lookup(n.TemplateID); ok {
			return s.giveBack(ctx, n.OpenID, t)
		}
		return nil
	}
	return nil
}
