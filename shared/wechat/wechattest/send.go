package wechattest

import (
	"cmp"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// firstMsgID is where msgids start: WeChat's documented example, above 2^53 like real msgids.
const firstMsgID int64 = 3395159288267931652

// Message is a subscribe message WeChat delivered.
type Message struct {
	OpenID           string
	TemplateID       string
	Data             map[string]string // keyword name -> value
	Page             string
	MiniprogramState string // as sent, "formal" when omitted
	Lang             string // as sent, "zh_CN" when omitted
	MsgID            int64
	SentAt           time.Time // on the fake's clock
}

func (m Message) clone() Message {
	m.Data = maps.Clone(m.Data)
	return m
}

// inboxRef names a kept message: its user and msgid.
type inboxRef struct {
	u     *user
	msgID int64
}

// Messages are the messages delivered to openid, oldest first: with Retention, the most recent ones.
func (s *Server) Messages(openid string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[openid]
	if u == nil {
		return nil
	}
	var out []Message
	for _, m := range u.inbox {
		out = append(out, m.clone())
	}
	return out
}

// AllMessages are all the messages delivered, oldest first: with Retention, the most recent ones.
func (s *Server) AllMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, u := range s.users {
		for _, m := range u.inbox {
			out = append(out, m.clone())
		}
	}
	// msgids grow with every delivery.
	slices.SortFunc(out, func(a, b Message) int { return cmp.Compare(a.MsgID, b.MsgID) })
	return out
}

// Delivered is the number of messages delivered, those Retention dropped included.
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// keepLocked puts m in u's inbox and drops what Retention no longer keeps: u's oldest message beyond
// InboxMessages, the oldest of all beyond Messages; s.mu must be held.
func (s *Server) keepLocked(u *user, m Message) {
	s.delivered++
	if s.discardMessages {
		return
	}
	if n := s.retention.InboxMessages; n > 0 && len(u.inbox) >= n {
		u.inbox = slices.Delete(u.inbox, 0, len(u.inbox)-n+1)
	}
	u.inbox = append(u.inbox, m)
	n := s.retention.Messages
	if n == 0 {
		return
	}
	// s.kept is a ring of the last n messages delivered, some of which InboxMessages already dropped: the
	// entry m replaces is the oldest, and its message goes unless it went already (it would be the oldest
	// of its inbox).
	ref := inboxRef{u: u, msgID: m.MsgID}
	if len(s.kept) < n {
		s.kept = append(s.kept, ref)
		return
	}
	old := s.kept[s.keptNext]
	if in := old.u.inbox; len(in) > 0 && in[0].MsgID == old.msgID {
		old.u.dropOldest()
	}
	s.kept[s.keptNext] = ref
	s.keptNext = (s.keptNext + 1) % n
}

// dropOldest removes u's oldest message. An inbox left far below its capacity moves to a smaller array,
// so that a user who once had many messages does not keep their room.
func (u *user) dropOldest() {
	u.inbox = slices.Delete(u.inbox, 0, 1)
	switch {
	case len(u.inbox) == 0:
		u.inbox = nil
	case cap(u.inbox) >= 4*len(u.inbox):
		u.inbox = slices.Clone(u.inbox)
	}
}

type sendBody struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
	MsgID   int64  `json:"msgid"`
}

// handleSend serves POST /cgi-bin/message/subscribe/send?access_token=
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html)
// with the JSON body {touser, template_id, page, data, miniprogram_state, lang}, keys matched exactly.
//
// Checks, in this order: the token (41001, 40001, 42001); the daily quota (45009); the body, a JSON object
// with string fields (47001); touser, an openid the fake issued through Login or Subscribe (40003);
// template_id, a template of the account (40037); page, one of Options.Pages when set, with an optional
// query (41030); miniprogram_state (developer|trial|formal) and lang (zh_CN|en_US|zh_HK|zh_TW), where the
// fake chose 47003 ("argument invalid! miniprogram_state invalid"), the documented code for an invalid
// argument; data, every keyword of the template present as {"value": "..."} and valid for its type
// (wechat.Validate), no other key, else 47003 naming the first bad field as WeChat does
// ("argument invalid! data.thing1.value invalid rid: ..."); the user's subscription: a one-time credit
// (consumed by the send) or a long-term acceptance, subscribe messages switched on, else 43101.
//
// A success answers {"errcode": 0, "errmsg": "ok", "msgid": N}, msgid a unique JSON number above 2^53,
// records the Message and, when push is set, pushes a subscribe_msg_sent_event once the answer is written
// (or dropped), as WeChat does after answering.
func (s *Server) handleSend(r *http.Request) reply {
	rep, stranger := s.send(r)
	if stranger != "" {
		// Outside s.mu: the Multi asks the other Servers, which lock their own.
		if m := s.multi.Load(); m != nil {
			m.refusedOpenID(s, stranger)
		}
	}
	return rep
}

// send does handleSend's work under s.mu. It also returns touser when the send is refused with 40003
// because that openid is no user of this mini program, "" otherwise.
func (s *Server) send(r *http.Request) (reply, string) {
	m, okBody := decodeObject(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if rep, ok := s.checkToken(r, now); !ok {
		return rep, ""
	}
	if !s.quotas.send.take(day(now), s.sendQuota) {
		return s.fail(45009, ""), ""
	}
	if !okBody {
		return s.fail(47001, ""), ""
	}
	var f [5]string
	for i, key := range []string{"touser", "template_id", "page", "miniprogram_state", "lang"} {
		v, ok := stringField(m, key)
		if !ok {
			return s.fail(47001, ""), ""
		}
		f[i] = v
	}
	openid, id, page, state, lang := f[0], f[1], f[2], f[3], f[4]
	u := s.users[openid]
	if u == nil {
		return s.fail(40003, ""), openid
	}
	t := s.template(id)
	if t == nil {
		return s.fail(40037, ""), ""
	}
	if !s.validPage(page) {
		return s.fail(41030, ""), ""
	}
	if state == "" {
		state = "formal"
	}
	if lang == "" {
		lang = "zh_CN"
	}
	switch {
	case !slices.Contains([]string{"developer", "trial", "formal"}, state):
		return s.fail(47003, "argument invalid! miniprogram_state invalid"), ""
	case !slices.Contains([]string{"zh_CN", "en_US", "zh_HK", "zh_TW"}, lang):
		return s.fail(47003, "argument invalid! lang invalid"), ""
	}
	data, bad := t.check(m["data"])
	if bad != "" {
		return s.fail(47003, "argument invalid! data."+bad+".value invalid"), ""
	}
	if !u.allows(t) {
		return s.fail(43101, ""), ""
	}
	if t.Type == OneTime {
		u.subs[id].credits--
	}
	s.lastMsgID += 1 + rand.Int64N(1<<20)
	// The user's openid and the template's id are shared by every message kept, not copied.
	msg := Message{OpenID: u.openid, TemplateID: t.PriTmplID, Data: data, Page: page, MiniprogramState: state, Lang: lang, MsgID: s.lastMsgID, SentAt: now}
	s.keepLocked(u, msg)
	ev := s.event(openid, wechat.EventSubscribeSent)
	ev.Items = []wechat.PushItem{{TemplateID: id, MsgID: strconv.FormatInt(msg.MsgID, 10), ErrorCode: 0, ErrorStatus: "success"}}
	return reply{body: sendBody{Errmsg: "ok", MsgID: msg.MsgID}, after: s.pushLaterLocked(ev)}, ""
}

// validPage reports whether page may be sent: empty, or any page when Options.Pages is empty, else one
// of them, optionally followed by "?query"; s.mu need not be held.
func (s *Server) validPage(page string) bool {
	if page == "" || len(s.pages) == 0 {
		return true
	}
	path, _, _ := strings.Cut(page, "?")
	return slices.Contains(s.pages, path)
}

// check reads the data of a send for t: the values by keyword, or the name of the first bad field (a
// keyword missing or invalid, in the template's order, then an extra key, in sorted order).
func (t *template) check(raw json.RawMessage) (map[string]string, string) {
	var entries map[string]json.RawMessage
	if len(raw) > 0 && json.Unmarshal(raw, &entries) != nil {
		return nil, t.Keywords[0].Name
	}
	data := make(map[string]string, len(t.Keywords))
	for _, k := range t.Keywords {
		e, ok := entries[k.Name]
		if !ok {
			return nil, k.Name
		}
		var v map[string]json.RawMessage
		if json.Unmarshal(e, &v) != nil {
			return nil, k.Name
		}
		var value string
		if json.Unmarshal(v["value"], &value) != nil {
			return nil, k.Name
		}
		if wechat.Validate(t.types[k.Name], value, k.Enum...) != nil {
			return nil, k.Name
		}
		data[k.Name] = value
	}
	var extra []string
	for name := range entries {
		if _, ok := t.types[name]; !ok {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, extra[0]
	}
	return data, ""
}
