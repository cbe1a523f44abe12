package wechattest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// maxSubscribeIDs is how many template ids one wx.requestSubscribeMessage call may carry.
const maxSubscribeIDs = 3

// Subscription statuses of wx.requestSubscribeMessage.
const (
	StatusAccept          = "accept"
	StatusAcceptWithAudio = "acceptWithAudio"
	StatusAcceptWithAlert = "acceptWithAlert"
	StatusReject          = "reject"
	StatusBan             = "ban"
	StatusFilter          = "filter"
)

// user is a WeChat user of the mini program.
type user struct {
	openid  string
	name    string // the name given to Login, "" for users only seen by Subscribe
	mainOff bool   // the user switched subscribe messages off
	subs    map[string]*subscription
	inbox   []Message // the messages delivered, oldest first (see Retention)
}

// subscription is WeChat's truth for a user and a template.
type subscription struct {
	credits  int  // one-time: messages the user still allows
	accepted bool // long-term: the user accepted and did not turn it off
}

// userLocked is the user of openid, created when unknown; s.mu must be held.
func (s *Server) userLocked(openid string) *user {
	u := s.users[openid]
	if u == nil {
		u = &user{openid: openid, subs: make(map[string]*subscription)}
		s.users[openid] = u
	}
	return u
}

// knows reports whether openid is a user of this mini program, made known by Login or Subscribe.
func (s *Server) knows(openid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[openid] != nil
}

// sub is u's subscription to template id, created when missing.
func (u *user) sub(id string) *subscription {
	sb := u.subs[id]
	if sb == nil {
		sb = &subscription{}
		u.subs[id] = sb
	}
	return sb
}

// SubscribeError is the fail result of wx.requestSubscribeMessage: {errCode, errMsg}.
type SubscribeError struct {
	ErrCode int
	ErrMsg  string // "requestSubscribeMessage:fail ..."
}

func (e *SubscribeError) Error() string {
	return e.ErrMsg + " (errCode " + strconv.Itoa(e.ErrCode) + ")"
}

// Result is the object the mini program's fail callback receives.
func (e *SubscribeError) Result() map[string]any {
	return map[string]any{"errCode": e.ErrCode, "errMsg": e.ErrMsg}
}

func subscribeFail(code int, msg string) *SubscribeError {
	return &SubscribeError{ErrCode: code, ErrMsg: "requestSubscribeMessage:fail " + msg}
}

// Subscribe plays wx.requestSubscribeMessage for the user openid answering each template id of choices
// with a status: accept (or acceptWithAudio, acceptWithAlert), reject, ban or filter. It returns the exact
// success object the mini program would get: {"errMsg": "requestSubscribeMessage:ok", "<id>": "<status>"}.
//
// WeChat's truth changes as it would: each accept of a one-time template grants one credit (credits
// accumulate and do not expire); an accept of a long-term template accepts it, a reject turns it off; a
// reject of a one-time template grants nothing and leaves earlier credits; ban and filter change nothing.
// When push is set, a subscribe_msg_popup_event with one item per accept or reject is pushed (ban and
// filter are not pushed) before Subscribe returns, unless PushConfig.Async.
//
// As WeChat's fail callback, it returns a *SubscribeError without changing anything: 10001 when choices
// is empty, 20003 for more than 3 ids, 20001 when an id is not a template of the account, 20002 when
// one-time and long-term templates are mixed, 20004 when the user switched subscribe messages off
// (SetMainSwitch). An unknown status or an empty openid is a plain error. The openid becomes known to the
// fake, so that sends to it are not 40003.
func (s *Server) Subscribe(openid string, choices map[string]string) (map[string]any, error) {
	if openid == "" {
		return nil, errors.New("wechattest: subscribe: empty openid")
	}
	for id, st := range choices {
		switch st {
		case StatusAccept, StatusAcceptWithAudio, StatusAcceptWithAlert, StatusReject, StatusBan, StatusFilter:
		default:
			return nil, fmt.Errorf("wechattest: subscribe: template %s: invalid status %q", id, st)
		}
	}
	res, ev, err := s.subscribe(openid, choices)
	if err != nil {
		return nil, err
	}
	if len(ev.Items) > 0 {
		s.emit(ev)
	}
	return res, nil
}

// subscribe applies the choices of openid and returns the result and the popup event to push.
func (s *Server) subscribe(openid string, choices map[string]string) (map[string]any, wechat.PushEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(choices) == 0:
		return nil, wechat.PushEvent{}, subscribeFail(10001, "TmplIds can't be empty")
	case len(choices) > maxSubscribeIDs:
		return nil, wechat.PushEvent{}, subscribeFail(20003, "Templates count out of max bounds")
	}
	// Template ids in a stable order, so that pushed items are deterministic.
	ids := slices.Sorted(maps.Keys(choices))
	kind := 0
	for _, id := range ids {
		t := s.template(id)
		if t == nil {
			return nil, wechat.PushEvent{}, subscribeFail(20001, "No template data return, verify the template id exist")
		}
		if kind != 0 && t.Type != kind {
			return nil, wechat.PushEvent{}, subscribeFail(20002, "Templates type must be same")
		}
		kind = t.Type
	}
	u := s.userLocked(openid)
	if u.mainOff {
		return nil, wechat.PushEvent{}, subscribeFail(20004, "The main switch is switched off")
	}
	result := map[string]any{"errMsg": "requestSubscribeMessage:ok"}
	ev := s.event(openid, wechat.EventSubscribePopup)
	for _, id := range ids {
		st := choices[id]
		result[id] = st
		sb := u.sub(id)
		switch st {
		case StatusAccept, StatusAcceptWithAudio, StatusAcceptWithAlert:
			if kind == OneTime {
				sb.credits++
			} else {
				sb.accepted = true
			}
			ev.Items = append(ev.Items, wechat.PushItem{TemplateID: id, SubscribeStatus: StatusAccept, PopupScene: "0"})
		case StatusReject:
			sb.accepted = false
			ev.Items = append(ev.Items, wechat.PushItem{TemplateID: id, SubscribeStatus: StatusReject, PopupScene: "0"})
		}
	}
	return result, ev, nil
}

// Unsubscribe plays the user turning template id off in the mini program's settings: its credits drop to
// zero, a long-term acceptance ends, sends answer 43101 until the user accepts again, and when push is set
// a subscribe_msg_change_event (reject) is pushed. It fails when openid or id is unknown.
func (s *Server) Unsubscribe(openid, id string) error {
	ev, err := s.unsubscribe(openid, id)
	if err != nil {
		return err
	}
	s.emit(ev)
	return nil
}

// unsubscribe turns id off for openid and returns the change event to push.
func (s *Server) unsubscribe(openid, id string) (wechat.PushEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[openid]
	switch {
	case u == nil:
		return wechat.PushEvent{}, fmt.Errorf("wechattest: unsubscribe: unknown openid %s", openid)
	case s.template(id) == nil:
		return wechat.PushEvent{}, fmt.Errorf("wechattest: unsubscribe: unknown template %s", id)
	}
	sb := u.sub(id)
	sb.credits, sb.accepted = 0, false
	ev := s.event(openid, wechat.EventSubscribeChange)
	ev.Items = []wechat.PushItem{{TemplateID: id, SubscribeStatus: StatusReject}}
	return ev, nil
}

// SetMainSwitch plays the user switching all subscribe messages of the mini program on or off: while off,
// sends answer 43101 and Subscribe fails with 20004; credits are kept. It fails when openid is unknown.
func (s *Server) SetMainSwitch(openid string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[openid]
	if u == nil {
		return fmt.Errorf("wechattest: main switch: unknown openid %s", openid)
	}
	u.mainOff = !on
	return nil
}

// Credits is the number of one-time messages the user openid still allows for template id: WeChat's
// truth, which no API exposes.
func (s *Server) Credits(openid, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[openid]; u != nil {
		if sb := u.subs[id]; sb != nil {
			return sb.credits
		}
	}
	return 0
}

// Accepted reports whether a send to openid with template id would pass WeChat's subscription check now:
// a credit left for a one-time template, an acceptance for a long-term one, and subscribe messages
// switched on.
func (s *Server) Accepted(openid, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[openid]
	t := s.template(id)
	if u == nil || t == nil {
		return false
	}
	return u.allows(t)
}

// allows reports whether u may receive a message of t now.
func (u *user) allows(t *template) bool {
	if u.mainOff {
		return false
	}
	sb := u.subs[t.PriTmplID]
	if sb == nil {
		return false
	}
	if t.Type == OneTime {
		return sb.credits > 0
	}
	return sb.accepted
}
