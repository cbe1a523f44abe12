package wechat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Push bodies (消息推送) and the subscribe message events they carry.
// Docs: https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html and
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/

// Events of subscribe messages pushed by WeChat.
const (
	// EventSubscribePopup: the user answered a subscription popup (items: TemplateID, SubscribeStatus
	// accept or reject, PopupScene).
	EventSubscribePopup = "subscribe_msg_popup_event"
	// EventSubscribeChange: the user changed a subscription in the settings (items: TemplateID,
	// SubscribeStatus reject).
	EventSubscribeChange = "subscribe_msg_change_event"
	// EventSubscribeSent: the result of a send (items: TemplateID, MsgID, ErrorCode 0 when delivered,
	// ErrorStatus).
	EventSubscribeSent = "subscribe_msg_sent_event"
)

// ErrBadPushBody is returned (wrapped with the reason) for a push body that is neither a well-formed
// XML document nor a JSON object of the expected shape.
var ErrBadPushBody = errors.New("wechat: malformed push body")

// PushEnvelope is the body of a safe-mode (or compatible-mode) push: the encrypted event in Encrypt.
type PushEnvelope struct {
	ToUserName string
	Encrypt    string
	JSON       bool // the body was JSON, not XML
}

// PushEvent is a pushed event. Items holds the subscribe message items of the three subscribe events,
// in order; it is nil for any other event or message type, which callers ignore.
type PushEvent struct {
	ToUserName   string // the mini program's original id (gh_...)
	FromUserName string // the user's openid
	CreateTime   int64  // Unix seconds
	MsgType      string // "event" for events
	Event        string
	Items        []PushItem
}

// PushItem is one template of a subscribe message event.
type PushItem struct {
	TemplateID      string // TemplateId
	SubscribeStatus string // SubscribeStatusString: accept or reject
	PopupScene      string // where the popup was shown, a number kept as text
	MsgID           string // the msgid returned by the send; text because it can exceed 2^53
	ErrorCode       int    // 0 when the message was delivered
	ErrorStatus     string // "success" or a reason such as "fail:user refuse to accept the msg"
}

// ParsePushEnvelope parses the body of a safe-mode push, XML (<xml><ToUserName/><Encrypt/></xml>) or
// JSON ({"ToUserName", "Encrypt"}), told apart by the first character. Other fields, such as the plaintext
// ones of compatible mode, are ignored. It fails with an error matching ErrBadPushBody when the body is
// malformed or has no Encrypt.
func ParsePushEnvelope(body []byte) (PushEnvelope, error) {
	b, isJSON, err := pushDetect(body)
	if err != nil {
		return PushEnvelope{}, err
	}
	var env PushEnvelope
	if isJSON {
		var v struct{ ToUserName, Encrypt string }
		if err := json.Unmarshal(b, &v); err != nil {
			return PushEnvelope{}, fmt.Errorf("%w: %w", ErrBadPushBody, err)
		}
		env = PushEnvelope{ToUserName: v.ToUserName, Encrypt: v.Encrypt, JSON: true}
	} else {
		var v struct{ ToUserName, Encrypt string }
		if err := pushDecodeXML(b, &v); err != nil {
			return PushEnvelope{}, err
		}
		env = PushEnvelope{ToUserName: strings.TrimSpace(v.ToUserName), Encrypt: strings.TrimSpace(v.Encrypt)}
	}
	if env.Encrypt == "" {
		return PushEnvelope{}, fmt.Errorf("%w: no Encrypt field", ErrBadPushBody)
	}
	return env, nil
}

// ParsePushEvent parses a plaintext push body (or a decrypted Encrypt field), XML or JSON, told apart by
// the first character.
//
// XML wraps the items in an element named for the event (<SubscribeMsgPopupEvent><List>...</List>
// <List>...</List></SubscribeMsgPopupEvent>, likewise SubscribeMsgChangeEvent and SubscribeMsgSentEvent);
// a bare <List> under the root is accepted too. XML values are trimmed of surrounding white space.
// JSON has a top-level List that is an object for one item and an array for several; the wrapper named
// for the event ({"SubscribeMsgPopupEvent": {"List": ...}}) is accepted when List is absent. In JSON,
// CreateTime, MsgID, ErrorCode and PopupScene may be numbers or strings.
//
// Items are read only for the three subscribe events. It fails with an error matching ErrBadPushBody
// when the body is malformed or a number field is not an integer; it never panics. It reads the whole
// body: callers bound its size.
func ParsePushEvent(body []byte) (PushEvent, error) {
	b, isJSON, err := pushDetect(body)
	if err != nil {
		return PushEvent{}, err
	}
	if isJSON {
		return pushParseJSON(b)
	}
	return pushParseXML(b)
}

// pushBOM is the UTF-8 byte order mark some tools put before a body.
const pushBOM = "\xef\xbb\xbf"

// pushDetect trims a body and tells JSON ("{") from XML ("<").
func pushDetect(body []byte) (b []byte, isJSON bool, err error) {
	b = bytes.TrimSpace(bytes.TrimPrefix(body, []byte(pushBOM)))
	switch {
	case len(b) == 0:
		return nil, false, fmt.Errorf("%w: empty", ErrBadPushBody)
	case b[0] == '{':
		return b, true, nil
	case b[0] == '<':
		return b, false, nil
	}
	return nil, false, fmt.Errorf("%w: neither XML nor a JSON object", ErrBadPushBody)
}

// pushDecodeXML decodes the root element of b into v and accepts nothing but white space, comments
// and processing instructions after it.
func pushDecodeXML(b []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPushBody, err)
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadPushBody, err)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text after the root element", ErrBadPushBody)
			}
		default:
			return fmt.Errorf("%w: content after the root element", ErrBadPushBody)
		}
	}
}

// pushWrapper returns the name of the element (XML) or field (JSON) that wraps the items of event, or ""
// for events without items.
func pushWrapper(event string) string {
	switch event {
	case EventSubscribePopup:
		return "SubscribeMsgPopupEvent"
	case EventSubscribeChange:
		return "SubscribeMsgChangeEvent"
	case EventSubscribeSent:
		return "SubscribeMsgSentEvent"
	}
	return ""
}

type pushXMLEvent struct {
	ToUserName   string         `xml:"ToUserName"`
	FromUserName string         `xml:"FromUserName"`
	CreateTime   string         `xml:"CreateTime"`
	MsgType      string         `xml:"MsgType"`
	Event        string         `xml:"Event"`
	List         []pushXMLItem  `xml:"List"`
	Popup        pushXMLWrapper `xml:"SubscribeMsgPopupEvent"`
	Change       pushXMLWrapper `xml:"SubscribeMsgChangeEvent"`
	Sent         pushXMLWrapper `xml:"SubscribeMsgSentEvent"`
}

type pushXMLWrapper struct {
	List []pushXMLItem `xml:"List"`
}

type pushXMLItem struct {
	TemplateID      string `xml:"TemplateId"`
	SubscribeStatus string `xml:"SubscribeStatusString"`
	PopupScene      string `xml:"PopupScene"`
	MsgID           string `xml:"MsgID"`
	MsgIDLower      string `xml:"MsgId"` // seen in some samples
	ErrorCode       string `xml:"ErrorCode"`
	ErrorStatus     string `xml:"ErrorStatus"`
}

func pushParseXML(b []byte) (PushEvent, error) {
	var v pushXMLEvent
	if err := pushDecodeXML(b, &v); err != nil {
		return PushEvent{}, err
	}
	ev := PushEvent{
		ToUserName:   strings.TrimSpace(v.ToUserName),
		FromUserName: strings.TrimSpace(v.FromUserName),
		MsgType:      strings.TrimSpace(v.MsgType),
		Event:        strings.TrimSpace(v.Event),
	}
	var err error
	if ev.CreateTime, err = pushInt64("CreateTime", v.CreateTime); err != nil {
		return PushEvent{}, err
	}
	var list []pushXMLItem
	switch ev.Event {
	case EventSubscribePopup:
		list = v.Popup.List
	case EventSubscribeChange:
		list = v.Change.List
	case EventSubscribeSent:
		list = v.Sent.List
	default:
		return ev, nil
	}
	if len(list) == 0 {
		list = v.List
	}
	for _, x := range list {
		msgID := x.MsgID
		if strings.TrimSpace(msgID) == "" {
			msgID = x.MsgIDLower
		}
		it, err := pushItem(x.TemplateID, x.SubscribeStatus, x.PopupScene, msgID, x.ErrorCode, x.ErrorStatus, true)
		if err != nil {
			return PushEvent{}, err
		}
		ev.Items = append(ev.Items, it)
	}
	return ev, nil
}

// pushItem builds an item from its text fields; trimAll trims every field (XML), else only the numbers.
func pushItem(templateID, status, scene, msgID, code, errStatus string, trimAll bool) (PushItem, error) {
	if trimAll {
		templateID, status, errStatus = strings.TrimSpace(templateID), strings.TrimSpace(status), strings.TrimSpace(errStatus)
	}
	it := PushItem{
		TemplateID:      templateID,
		SubscribeStatus: status,
		PopupScene:      strings.TrimSpace(scene),
		MsgID:           strings.TrimSpace(msgID),
		ErrorStatus:     errStatus,
	}
	n, err := pushInt64("ErrorCode", code)
	if err != nil {
		return PushItem{}, err
	}
	if int64(int(n)) != n {
		return PushItem{}, fmt.Errorf("%w: ErrorCode out of range", ErrBadPushBody)
	}
	it.ErrorCode = int(n)
	return it, nil
}

// pushInt64 parses an integer field; empty means 0.
func pushInt64(field, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not an integer", ErrBadPushBody, field, kwShorten(s, 32))
	}
	return n, nil
}

// pushFlex is a JSON value that may be a string or a number; a number keeps its literal text.
type pushFlex string

func (f *pushFlex) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = pushFlex(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = pushFlex(b)
		return nil
	}
	return errors.New("want a number or a string")
}

type pushJSONEvent struct {
	ToUserName   string          `json:"ToUserName"`
	FromUserName string          `json:"FromUserName"`
	CreateTime   pushFlex        `json:"CreateTime"`
	MsgType      string          `json:"MsgType"`
	Event        string          `json:"Event"`
	List         json.RawMessage `json:"List"`
	Popup        json.RawMessage `json:"SubscribeMsgPopupEvent"`
	Change       json.RawMessage `json:"SubscribeMsgChangeEvent"`
	Sent         json.RawMessage `json:"SubscribeMsgSentEvent"`
}

type pushJSONItem struct {
	TemplateID      string   `json:"TemplateId"`
	SubscribeStatus string   `json:"SubscribeStatusString"`
	PopupScene      pushFlex `json:"PopupScene"`
	MsgID           pushFlex `json:"MsgID"`
	ErrorCode       pushFlex `json:"ErrorCode"`
	ErrorStatus     string   `json:"ErrorStatus"`
}

func pushParseJSON(b []byte) (PushEvent, error) {
	var v pushJSONEvent
	if err := json.Unmarshal(b, &v); err != nil {
		return PushEvent{}, fmt.Errorf("%w: %w", ErrBadPushBody, err)
	}
	ev := PushEvent{ToUserName: v.ToUserName, FromUserName: v.FromUserName, MsgType: v.MsgType, Event: v.Event}
	var err error
	if ev.CreateTime, err = pushInt64("CreateTime", string(v.CreateTime)); err != nil {
		return PushEvent{}, err
	}
	var wrapper json.RawMessage
	switch ev.Event {
	case EventSubscribePopup:
		wrapper = v.Popup
	case EventSubscribeChange:
		wrapper = v.Change
	case EventSubscribeSent:
		wrapper = v.Sent
	default:
		return ev, nil
	}
	list := v.List
	if pushJSONAbsent(list) && !pushJSONAbsent(wrapper) {
		// {"SubscribeMsgPopupEvent": {"List": ...}}, or the items right inside the wrapper.
		list = wrapper
		if bytes.HasPrefix(wrapper, []byte("{")) {
			var w struct{ List json.RawMessage }
			if err := json.Unmarshal(wrapper, &w); err != nil {
				return PushEvent{}, fmt.Errorf("%w: %w", ErrBadPushBody, err)
			}
			if !pushJSONAbsent(w.List) {
				list = w.List
			}
		}
	}
	if ev.Items, err = pushJSONItems(list); err != nil {
		return PushEvent{}, err
	}
	return ev, nil
}

func pushJSONAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// pushJSONItems reads a List: an object for one item, an array for several.
func pushJSONItems(raw json.RawMessage) ([]PushItem, error) {
	if pushJSONAbsent(raw) {
		return nil, nil
	}
	var list []pushJSONItem
	switch raw[0] {
	case '{':
		list = make([]pushJSONItem, 1)
		if err := json.Unmarshal(raw, &list[0]); err != nil {
			return nil, fmt.Errorf("%w: List: %w", ErrBadPushBody, err)
		}
	case '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("%w: List: %w", ErrBadPushBody, err)
		}
	default:
		return nil, fmt.Errorf("%w: List is neither an object nor an array", ErrBadPushBody)
	}
	var items []PushItem
	for _, x := range list {
		it, err := pushItem(x.TemplateID, x.SubscribeStatus, string(x.PopupScene), string(x.MsgID),
			string(x.ErrorCode), x.ErrorStatus, false)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// MarshalPushEvent encodes ev the way WeChat pushes it, as XML (text in CDATA sections, items wrapped in
// the element named for the event) or as JSON (numbers as strings, as in WeChat's samples; List an
// object for one item and an array for several, absent for none). Each item has its TemplateId, the
// other fields when not empty, and ErrorCode when not zero or when the event is subscribe_msg_sent_event.
// It fails when ev has items but an event other than the three subscribe events, or, for XML, when a
// field holds a character XML cannot carry.
func MarshalPushEvent(ev PushEvent, asJSON bool) ([]byte, error) {
	wrapper := pushWrapper(ev.Event)
	if wrapper == "" && len(ev.Items) > 0 {
		return nil, fmt.Errorf("wechat: push event %q cannot carry items", kwShorten(ev.Event, 40))
	}
	sent := ev.Event == EventSubscribeSent
	if asJSON {
		return pushMarshalJSON(ev, sent)
	}
	return pushMarshalXML(ev, wrapper, sent)
}

type pushJSONOut struct {
	ToUserName   string `json:"ToUserName"`
	FromUserName string `json:"FromUserName"`
	CreateTime   string `json:"CreateTime"`
	MsgType      string `json:"MsgType"`
	Event        string `json:"Event"`
	List         any    `json:"List,omitempty"`
}

type pushJSONItemOut struct {
	TemplateID      string `json:"TemplateId"`
	SubscribeStatus string `json:"SubscribeStatusString,omitempty"`
	PopupScene      string `json:"PopupScene,omitempty"`
	MsgID           string `json:"MsgID,omitempty"`
	ErrorCode       string `json:"ErrorCode,omitempty"`
	ErrorStatus     string `json:"ErrorStatus,omitempty"`
}

func pushMarshalJSON(ev PushEvent, sent bool) ([]byte, error) {
	out := pushJSONOut{
		ToUserName:   ev.ToUserName,
		FromUserName: ev.FromUserName,
		CreateTime:   strconv.FormatInt(ev.CreateTime, 10),
		MsgType:      ev.MsgType,
		Event:        ev.Event,
	}
	items := make([]pushJSONItemOut, len(ev.Items))
	for i, it := range ev.Items {
		items[i] = pushJSONItemOut{
			TemplateID:      it.TemplateID,
			SubscribeStatus: it.SubscribeStatus,
			PopupScene:      it.PopupScene,
			MsgID:           it.MsgID,
			ErrorStatus:     it.ErrorStatus,
		}
		if it.ErrorCode != 0 || sent {
			items[i].ErrorCode = strconv.Itoa(it.ErrorCode)
		}
	}
	switch len(items) {
	case 0:
	case 1:
		out.List = items[0]
	default:
		out.List = items
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("wechat: encode push event: %w", err)
	}
	return b, nil
}

// pushCDATA is text written as a CDATA section.
type pushCDATA struct {
	Text string `xml:",cdata"`
}

type pushXMLOut struct {
	XMLName      xml.Name        `xml:"xml"`
	ToUserName   pushCDATA       `xml:"ToUserName"`
	FromUserName pushCDATA       `xml:"FromUserName"`
	CreateTime   int64           `xml:"CreateTime"`
	MsgType      pushCDATA       `xml:"MsgType"`
	Event        pushCDATA       `xml:"Event"`
	Wrapper      *pushXMLListOut `xml:",omitempty"`
}

type pushXMLListOut struct {
	XMLName xml.Name
	List    []pushXMLItemOut `xml:"List"`
}

type pushXMLItemOut struct {
	TemplateID      pushCDATA  `xml:"TemplateId"`
	SubscribeStatus *pushCDATA `xml:"SubscribeStatusString,omitempty"`
	PopupScene      string     `xml:"PopupScene,omitempty"`
	MsgID           string     `xml:"MsgID,omitempty"`
	ErrorCode       *int       `xml:"ErrorCode,omitempty"`
	ErrorStatus     *pushCDATA `xml:"ErrorStatus,omitempty"`
}

func pushMarshalXML(ev PushEvent, wrapper string, sent bool) ([]byte, error) {
	if err := pushXMLSafe("ToUserName", ev.ToUserName, "FromUserName", ev.FromUserName,
		"MsgType", ev.MsgType, "Event", ev.Event); err != nil {
		return nil, err
	}
	out := pushXMLOut{
		ToUserName:   pushCDATA{ev.ToUserName},
		FromUserName: pushCDATA{ev.FromUserName},
		CreateTime:   ev.CreateTime,
		MsgType:      pushCDATA{ev.MsgType},
		Event:        pushCDATA{ev.Event},
	}
	if len(ev.Items) > 0 {
		w := &pushXMLListOut{XMLName: xml.Name{Local: wrapper}}
		for _, it := range ev.Items {
			if err := pushXMLSafe("TemplateId", it.TemplateID, "SubscribeStatusString", it.SubscribeStatus,
				"PopupScene", it.PopupScene, "MsgID", it.MsgID, "ErrorStatus", it.ErrorStatus); err != nil {
				return nil, err
			}
			x := pushXMLItemOut{
				TemplateID:  pushCDATA{it.TemplateID},
				PopupScene:  it.PopupScene,
				MsgID:       it.MsgID,
				ErrorStatus: pushOptCDATA(it.ErrorStatus),
			}
			x.SubscribeStatus = pushOptCDATA(it.SubscribeStatus)
			if it.ErrorCode != 0 || sent {
				code := it.ErrorCode
				x.ErrorCode = &code
			}
			w.List = append(w.List, x)
		}
		out.Wrapper = w
	}
	b, err := xml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("wechat: encode push event: %w", err)
	}
	return b, nil
}

func pushOptCDATA(s string) *pushCDATA {
	if s == "" {
		return nil
	}
	return &pushCDATA{s}
}

// pushXMLSafe checks that each value of the name, value pairs is UTF-8 made of characters XML allows.
func pushXMLSafe(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		s := pairs[i+1]
		ok := utf8.ValidString(s)
		for _, r := range s {
			if !ok {
				break
			}
			ok = r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) ||
				(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		}
		if !ok {
			return fmt.Errorf("wechat: push field %s has a character XML cannot carry", pairs[i])
		}
	}
	return nil
}

// MarshalPushEnvelope encodes the body of a safe-mode push, as XML
// (<xml><ToUserName><![CDATA[...]]></ToUserName><Encrypt><![CDATA[...]]></Encrypt></xml>) or JSON
// ({"ToUserName": ..., "Encrypt": ...}). It fails only for XML when a value holds a character XML cannot
// carry.
func MarshalPushEnvelope(toUserName, encrypt string, asJSON bool) ([]byte, error) {
	if asJSON {
		b, err := json.Marshal(struct {
			ToUserName string `json:"ToUserName"`
			Encrypt    string `json:"Encrypt"`
		}{toUserName, encrypt})
		if err != nil {
			return nil, fmt.Errorf("wechat: encode push envelope: %w", err)
		}
		return b, nil
	}
	if err := pushXMLSafe("ToUserName", toUserName, "Encrypt", encrypt); err != nil {
		return nil, err
	}
	b, err := xml.Marshal(struct {
		XMLName    xml.Name  `xml:"xml"`
		ToUserName pushCDATA `xml:"ToUserName"`
		Encrypt    pushCDATA `xml:"Encrypt"`
	}{ToUserName: pushCDATA{toUserName}, Encrypt: pushCDATA{encrypt}})
	if err != nil {
		return nil, fmt.Errorf("wechat: encode push envelope: %w", err)
	}
	return b, nil
}
