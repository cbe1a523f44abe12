package notify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// The user timeline: what happened to one WeChat user of the app, newest
// first. Each event is an item of the user's own partition,
//
//	u|<appid>|<openid>   tl|<listSort(at, ref)>   the event (JSON)
//
// written in the store.Write that records what it tells, never in a call
// of its own:
//
//   - a consent change (a report, a popup or change event, a setting, a
//     43101 answer) with the consent state (updateConsent): one partition,
//     so that Write is allowed on Redis Cluster too;
//   - a notification's outcome with the record and its history entries
//     (writeOutcome);
//   - a subscribe_msg_sent_event with the push item's done mark
//     (markDoneWith).
//
// An event expires retention after it happened, as notification records
// do. Its value holds everything the timeline answers, so a page is one
// Query (and the read of the userId's binding), whatever the history's
// size.

// Timeline event types.
const (
	TimelineConsent      = "consent"      // the user's standing for a template changed
	TimelineNotification = "notification" // a notification's outcome was recorded
	TimelineSentEvent    = "sent_event"   // WeChat's subscribe_msg_sent_event came
)

// TimelineEvent is one event of a user's timeline.
type TimelineEvent struct {
	Type       string    `json:"type"`
	At         time.Time `json:"at"`
	TemplateID string    `json:"templateId"`
	// Status is the consent status (consent), the notification's status
	// (notification) or WeChat's ErrorStatus (sent_event).
	Status string `json:"status,omitempty"`
	// Source says where a consent change came from.
	Source Source `json:"source,omitempty"`
	// Notification is the notification's id: of the outcome, or of the
	// send a sent event belongs to when it is known.
	Notification string `json:"notification,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Errcode      int    `json:"errcode,omitempty"`
	MsgID        string `json:"msgid,omitempty"`
}

// timelinePrefix starts the sort keys of timeline events.
const timelinePrefix = "tl|"

// timelineOp returns the Put (IfAbsent) of ev in openID's timeline; ref
// makes its key unique (the same ref and time: the same event).
func (s *Service) timelineOp(openID, ref string, ev TimelineEvent) (store.WriteOp, error) {
	ev.At = ev.At.UTC()
	b, err := marshalTimelineEvent(ev)
	if err != nil {
		return store.WriteOp{}, err
	}
	key := store.Key{Partition: s.userPartition(openID), Sort: timelinePrefix + listSort(ev.At, ref)}
	return store.WritePut(key, b, store.PutOptions{IfAbsent: true, ExpiresAt: ev.At.Add(s.retention)}), nil
}

// outcomeTimelineOp is the timeline event of n's outcome (ok false when n
// reached no user).
func (s *Service) outcomeTimelineOp(n Notification) (store.WriteOp, bool, error) {
	if n.OpenID == "" || n.Status == StatusPending {
		return store.WriteOp{}, false, nil
	}
	at := n.UpdatedAt
	if at.IsZero() {
		at = n.CreatedAt
	}
	op, err := s.timelineOp(n.OpenID, n.ID+":"+string(n.Status), TimelineEvent{Type: TimelineNotification, At: at,
		TemplateID: n.TemplateID, Status: string(n.Status), Notification: n.ID, Reason: n.Reason,
		Errcode: n.WeChat.Errcode, MsgID: n.WeChat.MsgID})
	return op, err == nil, err
}

// sentEventTimelineOp is the timeline event of a subscribe_msg_sent_event
// item; notification is the send it belongs to, "" when unknown.
func (s *Service) sentEventTimelineOp(ev wechat.PushEvent, itemKey string, item wechat.PushItem, notification string) (store.WriteOp, error) {
	at := time.Unix(ev.CreateTime, 0)
	if ev.CreateTime <= 0 {
		at = s.now()
	}
	return s.timelineOp(ev.FromUserName, "push:"+itemKey, TimelineEvent{Type: TimelineSentEvent, At: at,
		TemplateID: item.TemplateID, Status: item.ErrorStatus, Notification: notification, Errcode: item.ErrorCode,
		MsgID: item.MsgID})
}

// MaxTimelineLimit bounds a page of Timeline.
const MaxTimelineLimit = 100

// TimelineFilter bounds a timeline by time; zero fields bound nothing.
type TimelineFilter struct {
	Since time.Time // at or after
	Until time.Time // before
}

// TimelinePage is one page of Timeline.
type TimelinePage struct {
	OpenID string
	Events []TimelineEvent
	// Next is the cursor of the following page, "" at the end.
	Next string
}

// userNotFound is the error of a userId nothing is known of.
func userNotFound() error {
	return &Error{Code: CodeUserNotFound, Field: "userId", Message: "nothing is known of this userId"}
}

// Timeline returns the events of the WeChat user bound to userID, newest
// first, at most limit (1..MaxTimelineLimit) per page, after the cursor a
// previous page answered ("" for the first). user_not_found when no user
// is bound to userID. A page costs the read of the binding and one Query
// (more only when expired events, not yet removed, fill a page).
func (s *Service) Timeline(ctx context.Context, userID string, f TimelineFilter, cursor string, limit int) (TimelinePage, error) {
	if err := CheckUserID("userId", userID); err != nil {
		return TimelinePage{}, err
	}
	if limit < 1 || limit > MaxTimelineLimit {
		return TimelinePage{}, FieldError("limit", "must be 1 to %d", MaxTimelineLimit)
	}
	if cursor != "" && !validListCursor(cursor) {
		return TimelinePage{}, FieldError("cursor", "is not a cursor this list answered")
	}
	var bounds listQuery
	if err := bounds.setTimes(f.Since, f.Until); err != nil {
		return TimelinePage{}, err
	}
	b, err := s.getBinding(ctx, userID)
	if err != nil {
		return TimelinePage{}, err
	}
	page, err := s.openIDTimeline(ctx, b.OpenID, bounds, cursor, limit)
	page.OpenID = b.OpenID
	if err == nil {
		err = s.linkSentEvents(ctx, b.OpenID, page.Events)
	}
	return page, err
}

// linkSentEvents names the notification of each sent event that has
// none: a sent event is recorded without reading which send it belongs
// to (sentevent.go). The send's own entry on the page names it; else its
// msgid mark is read (one read per such event, while the mark is kept).
func (s *Service) linkSentEvents(ctx context.Context, openID string, events []TimelineEvent) error {
	byMsg := map[string]string{}
	for _, ev := range events {
		if ev.Type == TimelineNotification && ev.MsgID != "" {
			byMsg[ev.MsgID] = ev.Notification
		}
	}
	for i := range events {
		ev := &events[i]
		if ev.Type != TimelineSentEvent || ev.Notification != "" || ev.MsgID == "" {
			continue
		}
		if id, ok := byMsg[ev.MsgID]; ok {
			ev.Notification = id
			continue
		}
		marked, m, err := s.readSentMark(ctx, openID, ev.MsgID)
		if err != nil {
			return err
		}
		if marked {
			ev.Notification = m.ID
		}
	}
	return nil
}

// maxTimelineQueries bounds the Queries of one page.
const maxTimelineQueries = 4

// openIDTimeline is Timeline for an openid, within checked bounds.
func (s *Service) openIDTimeline(ctx context.Context, openID string, bounds listQuery, cursor string, limit int) (TimelinePage, error) {
	after := bounds.start
	if cursor != "" {
		after = cursor
	}
	var out TimelinePage
	for range maxTimelineQueries {
		q := store.Query{Partition: s.userPartition(openID), Prefix: timelinePrefix, Limit: limit - len(out.Events)}
		if after != "" {
			q.After = timelinePrefix + after
		}
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return TimelinePage{}, storeErr("query timeline", err)
		}
		for _, it := range page.Items {
			sk := it.Key.Sort[len(timelinePrefix):]
			if bounds.since != "" && len(sk) >= 16 && sk[:16] > bounds.since {
				return out, nil // older than since
			}
			after = sk
			var ev TimelineEvent
			if json.Unmarshal(it.Value, &ev) != nil {
				continue
			}
			out.Events = append(out.Events, ev)
		}
		if page.Next == "" {
			return out, nil
		}
		if len(out.Events) == limit {
			break
		}
		// A short page (expired events skipped): go on from where the
		// store stopped.
		if next, ok := strings.CutPrefix(page.Next, timelinePrefix); ok && validListCursor(next) {
			after = next
		}
	}
	out.Next = after
	return out, nil
}

// UserBinding is the WeChat user a userId is bound to.
type UserBinding struct {
	OpenID  string
	BoundAt time.Time
}

// UserOverview is what is known of a userId in the app.
type UserOverview struct {
	UserID   string
	Bindings []UserBinding
	// Profile is the bound user's record; nil when the user never logged
	// in (only WeChat's pushes recorded it).
	Profile *User
	// Consents is the ledger: every template of the catalog.
	Consents []Consent
	// LastPromptAt and LastAcceptAt are the latest over every template.
	LastPromptAt time.Time
	LastAcceptAt time.Time
}

// UserOverview returns the bindings, profile and ledger of userID, in two
// reads and one query; user_not_found when no user is bound to it.
func (s *Service) UserOverview(ctx context.Context, userID string) (UserOverview, error) {
	if err := CheckUserID("userId", userID); err != nil {
		return UserOverview{}, err
	}
	b, err := s.getBinding(ctx, userID)
	if err != nil {
		return UserOverview{}, err
	}
	out := UserOverview{UserID: userID, Bindings: []UserBinding{{OpenID: b.OpenID, BoundAt: b.BoundAt}}}
	u, err := s.User(ctx, b.OpenID)
	switch {
	case err == nil:
		u.SessionKey = ""
		out.Profile = &u
	case CodeOf(err) != CodeNotFound:
		return UserOverview{}, err
	}
	if out.Consents, err = s.Consents(ctx, b.OpenID); err != nil {
		return UserOverview{}, err
	}
	for _, c := range out.Consents {
		if c.LastPromptAt.After(out.LastPromptAt) {
			out.LastPromptAt = c.LastPromptAt
		}
		if c.LastAcceptAt.After(out.LastAcceptAt) {
			out.LastAcceptAt = c.LastAcceptAt
		}
	}
	return out, nil
}

// Binding returns the WeChat user of the app bound to userID, in one
// read; user_not_found when none is.
func (s *Service) Binding(ctx context.Context, userID string) (UserBinding, error) {
	if err := CheckUserID("userId", userID); err != nil {
		return UserBinding{}, err
	}
	b, err := s.getBinding(ctx, userID)
	return UserBinding(b), err
}

// getBinding reads userID's binding; user_not_found when there is none.
func (s *Service) getBinding(ctx context.Context, userID string) (binding, error) {
	var b binding
	it, err := s.st.Get(ctx, s.bindingKey(userID))
	if errors.Is(err, store.ErrNotFound) {
		return b, userNotFound()
	}
	if err != nil {
		return b, storeErr("get binding", err)
	}
	if err := json.Unmarshal(it.Value, &b); err != nil {
		return b, storeErr("decode binding", err)
	}
	return b, nil
}
