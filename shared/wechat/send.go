package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
)

// Values of SendRequest.MiniprogramState: which version of the mini
// program a tap on the message opens.
const (
	StateDeveloper = "developer"
	StateTrial     = "trial"
	StateFormal    = "formal" // WeChat's default
)

// Values of SendRequest.Lang.
const (
	LangSimplifiedChinese = "zh_CN" // WeChat's default
	LangEnglish           = "en_US"
	LangHongKong          = "zh_HK"
	LangTaiwan            = "zh_TW"
)

// SendRequest is one subscribe message.
type SendRequest struct {
	ToUser     string // the recipient's openid
	TemplateID string // priTmplId of one of the app's templates
	// Page is the page a tap opens, such as "pages/index/index?foo=bar";
	// empty for none.
	Page string
	// Data maps keyword names without ".DATA" ("thing1", "date2") to
	// values. Every keyword of the template needs a non-empty value that
	// follows its type's rules (see Validate): WeChat refuses others with
	// 47003 naming the field (InvalidField).
	Data map[string]string
	// MiniprogramState is StateDeveloper, StateTrial, StateFormal or empty
	// (formal).
	MiniprogramState string
	// Lang is one of the Lang constants or empty (zh_CN).
	Lang string
}

// SendResult is WeChat's acknowledgement of a send.
type SendResult struct {
	// MsgID identifies the message in the later subscribe_msg_sent_event.
	// It holds all 64 bits of WeChat's msgid, which may exceed 2^53 (and so
	// must never pass through a float64). 0 when WeChat returned none.
	MsgID int64
}

// MsgIDString returns the msgid in decimal as WeChat wrote it, or "" when
// there is none.
func (r SendResult) MsgIDString() string {
	if r.MsgID == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(r.MsgID), 10)
}

type dataValue struct {
	Value string `json:"value"`
}

type sendBody struct {
	ToUser           string               `json:"touser"`
	TemplateID       string               `json:"template_id"`
	Page             string               `json:"page,omitempty"`
	Data             map[string]dataValue `json:"data"`
	MiniprogramState string               `json:"miniprogram_state,omitempty"`
	Lang             string               `json:"lang,omitempty"`
}

type sendResponse struct {
	apiStatus
	MsgID json.RawMessage `json:"msgid"`
}

// SendSubscribeMessage sends one subscribe message.
//
// Besides the Client's general errors: IsConsentGone (43101: the user holds
// no subscription), IsBadRequest (invalid openid, template, data, page or
// sensitive words; InvalidField names the bad keyword), IsRetryable
// (busy, quota, 43108 concurrent sends to one user). IsAmbiguous failures
// may have been delivered. Once WeChat answers errcode 0 the send is never
// reported as failed, even if its msgid is unreadable.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html
func (c *Client) SendSubscribeMessage(ctx context.Context, req SendRequest) (SendResult, error) {
	const api = "subscribeMessage.send"
	if err := req.check(); err != nil {
		return SendResult{}, fmt.Errorf("wechat %s: %w: %s", api, ErrInvalidArgument, err)
	}
	body := sendBody{
		ToUser:           req.ToUser,
		TemplateID:       req.TemplateID,
		Page:             req.Page,
		Data:             make(map[string]dataValue, len(req.Data)),
		MiniprogramState: req.MiniprogramState,
		Lang:             req.Lang,
	}
	for k, v := range req.Data {
		body.Data[k] = dataValue{Value: v}
	}
	r, err := postRequest(api, "/cgi-bin/message/subscribe/send", body)
	if err != nil {
		return SendResult{}, err
	}
	out, err := call[sendResponse](ctx, c, r)
	if err != nil {
		return SendResult{}, err
	}
	id, ok := parseMsgID(out.MsgID)
	if !ok {
		c.log.LogAttrs(ctx, slog.LevelWarn, "wechat send succeeded with an unreadable msgid",
			slog.String("api", api), slog.String("msgid", string(truncate(out.MsgID, 40))))
	}
	return SendResult{MsgID: id}, nil
}

// check applies the rules that hold for every template.
func (req *SendRequest) check() error {
	switch {
	case req.ToUser == "":
		return errors.New("empty touser")
	case req.TemplateID == "":
		return errors.New("empty template_id")
	case len(req.Data) == 0:
		return errors.New("no data")
	}
	for k, v := range req.Data {
		if k == "" || !isKeywordName(k) {
			return fmt.Errorf("data key %q is not a keyword name like thing1", k)
		}
		if v == "" {
			return fmt.Errorf("data.%s is empty", k)
		}
	}
	switch req.MiniprogramState {
	case "", StateDeveloper, StateTrial, StateFormal:
	default:
		return fmt.Errorf("miniprogram_state %q is not developer, trial or formal", req.MiniprogramState)
	}
	switch req.Lang {
	case "", LangSimplifiedChinese, LangEnglish, LangHongKong, LangTaiwan:
	default:
		return fmt.Errorf("lang %q is not zh_CN, en_US, zh_HK or zh_TW", req.Lang)
	}
	return nil
}

// parseMsgID reads a msgid sent as a JSON number or string. Absent, null
// and unreadable ids give 0; ok is false only for unreadable ones.
func parseMsgID(raw json.RawMessage) (id int64, ok bool) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return 0, true
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	u, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return int64(u), true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
