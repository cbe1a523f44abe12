package wechattest

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"wxnotify/shared/wechat"
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

// Messages are the messages delivered to openid, oldest first.
func (s *Server) Messages(openid string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.OpenID == openid {
			out = append(out, m.clone())
		}
	}
	return out
}

// AllMessages are all the messages delivered, oldest first.
func (s *Server) AllMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.clone()
	}
	return out
}

// Delivered is the number of messages delivered.
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages) + s.discarded
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
	m, okBody := decodeObject(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if rep, ok := s.checkToken(r, now); !ok {
		return rep
	}
	if !s.quotas.send.take(day(now), s.sendQuota) {
		return s.fail(45009, "")
	}
	if !okBody {
		return s.fail(47001, "")
	}
	var f [5]string
	for i, key := range []string{"touser", "template_id", "page", "miniprogram_state", "lang"} {
		v, ok := stringField(m, key)
		if !ok {
			return s.fail(47001, "")
		}
		f[i] = v
	}
	openid, id, page, state, lang := f[0], f[1], f[2], f[3], f[4]
	u := s.users[openid]
	if u == nil {
		return s.fail(40003, "")
	}
	t := s.template(id)
	if t == nil {
		return s.fail(40037, "")
	}
	if !s.validPage(page) {
		return s.fail(41030, "")
	}
	if state == "" {
		state = "formal"
	}
	if lang == "" {
		lang = "zh_CN"
	}
	switch {
	case !slices.Contains([]string{"developer", "trial", "formal"}, state):
		return s.fail(47003, "argument invalid! miniprogram_state invalid")
	case !slices.Contains([]string{"zh_CN", "en_US", "zh_HK", "zh_TW"}, lang):
		return s.fail(47003, "argument invalid! lang invalid")
	}
	data, bad := t.check(m["data"])
	if bad != "" {
		return s.fail(47003, "argument invalid! data."+bad+".value invalid")
	}
	if !u.allows(t) {
		return s.fail(43101, "")
	}
	if t.Type == OneTime {
		u.subs[id].credits--
	}
	s.lastMsgID += 1 + rand.Int64N(1<<20)
	msg := Message{OpenID: openid, TemplateID: id, Data: data, Page: page, MiniprogramState: state, Lang: lang, MsgID: s.lastMsgID, SentAt: now}
	if s.discardMessages {
		s.discarded++
	} else {
		s.messages = append(s.messages, msg)
	}
	ev := s.event(openid, wechat.EventSubscribeSent)
	ev.Items = []wechat.PushItem{{TemplateID: id, MsgID: strconv.FormatInt(msg.MsgID, 10), ErrorCode: 0, ErrorStatus: "success"}}
	return reply{body: sendBody{Errmsg: "ok", MsgID: msg.MsgID}, after: s.pushLaterLocked(ev)}
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
