package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"wxnotify/shared/store"
	"wxnotify/shared/wechat"
)

// How long applied push events are remembered (WeChat redelivers within
// seconds) and how long an application in progress holds its claim.
const (
	pushMemory     = 72 * time.Hour
	pushClaimLease = 30 * time.Second
	unknownMemory  = 24 * time.Hour
	maxUnknown     = 200
)

// ErrPushInProgress: a copy of this push is being applied right now; answer
// so that WeChat delivers it again later rather than acknowledging a copy
// whose first application may still fail.
var ErrPushInProgress = &Error{Code: CodeWeChatUnavailable, Message: "the same push is being applied, retry"}

// ApplyPush applies one push event from WeChat, each item at most once
// however often WeChat redelivers it. Events other than the three
// subscribe_msg_* events are ignored.
func (s *Service) ApplyPush(ctx context.Context, ev wechat.PushEvent) error {
	switch ev.Event {
	case wechat.EventSubscribePopup, wechat.EventSubscribeChange, wechat.EventSubscribeSent:
	default:
		return nil
	}
	if ev.FromUserName == "" {
		return FieldError("FromUserName", "missing")
	}
	for i, item := range ev.Items {
		if err := s.applyPushItemOnce(ctx, ev, i, item); err != nil {
			return err
		}
	}
	return nil
}

func pushItemKey(ev wechat.PushEvent, i int, item wechat.PushItem) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s\x00%d\x00%s\x00%s", ev.FromUserName, ev.CreateTime, ev.Event, i, item.TemplateID, item.MsgID))
	return hex.EncodeToString(sum[:16])
}

const (
	pushApplying = "applying"
	pushDone     = "done"
)

func (s *Service) applyPushItemOnce(ctx context.Context, ev wechat.PushEvent, i int, item wechat.PushItem) error {
	key := s.pushKey(pushItemKey(ev, i, item))
	for wait := 20 * time.Millisecond; ; wait *= 2 {
		ver, err := s.st.Put(ctx, key, []byte(pushApplying), store.PutOptions{IfAbsent: true, ExpiresAt: s.now().Add(pushClaimLease)})
		if err == nil {
			if err := s.applyPushItem(ctx, ev, item); err != nil {
				// Release the claim so WeChat's redelivery applies it.
				_ = s.st.Delete(context.WithoutCancel(ctx), key, store.DeleteOptions{IfVersion: ver})
				return err
			}
			if _, err := s.st.Put(ctx, key, []byte(pushDone), store.PutOptions{IfVersion: ver, ExpiresAt: s.now().Add(pushMemory)}); err != nil {
				s.log.Warn("push applied but not marked done", "err", err)
			}
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeErr("claim push", err)
		}
		it, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue // released or expired meanwhile: claim again
		}
		if err != nil {
			return storeErr("get push", err)
		}
		if string(it.Value) == pushDone {
			return nil
		}
		if wait > 2*time.Second {
			return ErrPushInProgress
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (s *Service) applyPushItem(ctx context.Context, ev wechat.PushEvent, item wechat.PushItem) error {
	openID := ev.FromUserName
	switch ev.Event {
	case wechat.EventSubscribeSent:
		return s.settleSent(ctx, openID, item)
	}
	t, ok := s.templateByID(item.TemplateID)
	if !ok {
		s.log.Info("push for a template not in the catalog", "event", ev.Event, "template", item.TemplateID)
		return nil
	}
	status, valid := normalizeStatus(item.SubscribeStatus)
	if !valid {
		s.log.Info("push with an unknown status", "event", ev.Event, "status", item.SubscribeStatus)
		return nil
	}
	switch ev.Event {
	case wechat.EventSubscribePopup:
		return s.applyChoice(ctx, openID, t, status, SourcePopup, -1)
	case wechat.EventSubscribeChange:
		if status == StatusAccept {
			return s.updateConsent(ctx, openID, t.ID, func(m *consentMeta) {
				m.Status, m.Source = StatusAccept, SourceChange
				if t.Kind == LongTerm {
					m.LongTerm = true
				}
			})
		}
		return s.Revoke(ctx, openID, t.ID, SourceChange)
	}
	return nil
}

type unknownEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// markUnknown remembers a notification whose send got no answer, so that
// WeChat's subscribe_msg_sent_event can settle it.
func (s *Service) markUnknown(ctx context.Context, openID, tmplID, id string) error {
	return s.editUnknown(ctx, openID, tmplID, func(list []unknownEntry) []unknownEntry {
		list = append(list, unknownEntry{ID: id, At: s.now().UTC()})
		if len(list) > maxUnknown {
			list = list[len(list)-maxUnknown:]
		}
		return list
	})
}

func (s *Service) editUnknown(ctx context.Context, openID, tmplID string, edit func([]unknownEntry) []unknownEntry) error {
	key := s.unknownKey(openID, tmplID)
	for range 8 {
		var list []unknownEntry
		opts := store.PutOptions{IfAbsent: true}
		it, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			_ = json.Unmarshal(it.Value, &list)
			opts.IfAbsent, opts.IfVersion = false, it.Version
		case !errors.Is(err, store.ErrNotFound):
			return storeErr("get unknown sends", err)
		}
		list = edit(list)
		switch {
		case len(list) > 0:
			b, _ := json.Marshal(list)
			opts.ExpiresAt = s.now().Add(unknownMemory)
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
			return storeErr("put unknown sends", err)
		}
	}
	return storeErr("put unknown sends", errors.New("too many concurrent updates"))
}

// settleSent applies a subscribe_msg_sent_event: if the user has
// notifications whose outcome is unknown for this template, the oldest one is
// settled with this event's msgid and delivery status. (WeChat sends this
// event for every delivered message; without a msgid index, an event that
// belongs to a known send while an unknown one is outstanding settles the
// unknown one: its status label may then be wrong, never the ledger.)
func (s *Service) settleSent(ctx context.Context, openID string, item wechat.PushItem) error {
	var settled string
	err := s.editUnknown(ctx, openID, item.TemplateID, func(list []unknownEntry) []unknownEntry {
		settled = ""
		now := s.now()
		for len(list) > 0 && now.Sub(list[0].At) > unknownMemory {
			list = list[1:]
		}
		if len(list) > 0 {
			settled, list = list[0].ID, list[1:]
		}
		return list
	})
	if err != nil || settled == "" {
		return err
	}
	for range 8 {
		n, ver, err := s.getNotification(ctx, settled)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return storeErr("get notification", err)
		}
		if n.Status != StatusUnknown {
			return nil
		}
		n.WeChat.MsgID = item.MsgID
		n.WeChat.Errcode = item.ErrorCode
		n.WeChat.Errmsg = item.ErrorStatus
		n.Status, n.Reason = StatusSent, ""
		if item.ErrorCode != 0 {
			n.Status, n.Reason = StatusFailed, ReasonDelivery
		}
		n.UpdatedAt = s.now().UTC()
		_, err = s.putNotification(ctx, n, store.PutOptions{IfVersion: ver})
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeErr("settle notification", err)
		}
	}
	return nil
}
