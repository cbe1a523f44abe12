package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Template types (Template.Type, PubTemplateTitle.Type).
const (
	TemplateOneTime  = 2 // each acceptance allows one message
	TemplateLongTerm = 3 // accepted once, many messages (some public-service categories only)
)

// Limits of the template management APIs, checked before calling WeChat.
const (
	MaxPubTitlesLimit  = 30 // GetPubTemplateTitles limit
	MinTemplateKIDs    = 2  // AddTemplate kidList
	MaxTemplateKIDs    = 5
	MaxSceneDescLength = 15 // AddTemplate sceneDesc, in characters
)

// Template is one of the app's subscribe-message templates.
type Template struct {
	PriTmplID string `json:"priTmplId"`
	Title     string `json:"title"`
	// Content lists the keywords, one a line: "会议时间:{{date2.DATA}}\n".
	Content string `json:"content"`
	Example string `json:"example"`
	Type    int    `json:"type"` // TemplateOneTime or TemplateLongTerm
	// Keywords are parsed from Content, in its order.
	Keywords []TemplateKeyword `json:"keywords"`
}

// TemplateKeyword is one keyword of a template.
type TemplateKeyword struct {
	Name  string `json:"name"`  // the SendRequest.Data key: "thing4"
	Type  string `json:"type"`  // "thing"; "" for a type KeywordType does not know
	Label string `json:"label"` // what the user sees before the value: "会议地点"
	// Enum lists the allowed values of an enum or enum_string keyword.
	Enum []string `json:"enum,omitempty"`
}

type templateListResponse struct {
	apiStatus
	Data []struct {
		PriTmplID            string  `json:"priTmplId"`
		Title                string  `json:"title"`
		Content              string  `json:"content"`
		Example              string  `json:"example"`
		Type                 flexInt `json:"type"`
		KeywordEnumValueList []struct {
			KeywordCode   string   `json:"keywordCode"`
			EnumValueList []string `json:"enumValueList"`
		} `json:"keywordEnumValueList"`
	} `json:"data"`
}

// GetTemplates lists the app's templates with their keywords (names,
// types, labels and enum values).
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getMessageTemplateList.html
func (c *Client) GetTemplates(ctx context.Context) ([]Template, error) {
	out, err := call[templateListResponse](ctx, c, getRequest("subscribeMessage.getTemplateList", "/wxaapi/newtmpl/gettemplate", nil))
	if err != nil {
		return nil, err
	}
	list := make([]Template, 0, len(out.Data))
	for _, d := range out.Data {
		t := Template{
			PriTmplID: d.PriTmplID,
			Title:     d.Title,
			Content:   d.Content,
			Example:   d.Example,
			Type:      int(d.Type),
			Keywords:  parseKeywords(d.Content),
		}
		for _, e := range d.KeywordEnumValueList {
			name := strings.TrimSuffix(strings.TrimSpace(e.KeywordCode), ".DATA")
			for i := range t.Keywords {
				if t.Keywords[i].Name == name {
					t.Keywords[i].Enum = e.EnumValueList
				}
			}
		}
		list = append(list, t)
	}
	return list, nil
}

// parseKeywords reads the "{{name.DATA}}" placeholders of a template's
// content, each labelled with the text before it on its line. Repeated and
// malformed placeholders are skipped.
func parseKeywords(content string) []TemplateKeyword {
	var kws []TemplateKeyword
	for line := range strings.Lines(content) {
		rest := line
		for {
			open := strings.Index(rest, "{{")
			if open < 0 {
				break
			}
			end := strings.Index(rest[open+2:], "}}")
			if end < 0 {
				break
			}
			label := rest[:open]
			name := strings.TrimSuffix(strings.TrimSpace(rest[open+2:open+2+end]), ".DATA")
			rest = rest[open+2+end+2:]
			if name == "" || !isKeywordName(name) || hasKeyword(kws, name) {
				continue
			}
			typ, _ := KeywordType(name)
			kws = append(kws, TemplateKeyword{Name: name, Type: typ, Label: cleanLabel(label)})
		}
	}
	return kws
}

func hasKeyword(kws []TemplateKeyword, name string) bool {
	for _, k := range kws {
		if k.Name == name {
			return true
		}
	}
	return false
}

// cleanLabel trims spaces and a trailing ASCII or full-width colon.
func cleanLabel(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, ":：")
	return strings.TrimSpace(s)
}

// Category is one of the categories the app is registered under.
type Category struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type categoryResponse struct {
	apiStatus
	Data []struct {
		ID   flexInt `json:"id"`
		Name string  `json:"name"`
	} `json:"data"`
}

// GetCategory lists the app's categories, whose ids GetPubTemplateTitles
// takes.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getCategory.html
func (c *Client) GetCategory(ctx context.Context) ([]Category, error) {
	out, err := call[categoryResponse](ctx, c, getRequest("subscribeMessage.getCategory", "/wxaapi/newtmpl/getcategory", nil))
	if err != nil {
		return nil, err
	}
	list := make([]Category, 0, len(out.Data))
	for _, d := range out.Data {
		list = append(list, Category{ID: int(d.ID), Name: d.Name})
	}
	return list, nil
}

// PubTemplateTitle is a public template the app may add to its own.
type PubTemplateTitle struct {
	TID        string `json:"tid"` // for GetPubTemplateKeywords and AddTemplate
	Title      string `json:"title"`
	Type       int    `json:"type"` // TemplateOneTime or TemplateLongTerm
	CategoryID string `json:"categoryId"`
}

type pubTitlesResponse struct {
	apiStatus
	Count flexInt `json:"count"`
	Data  []struct {
		TID        flexString `json:"tid"`
		Title      string     `json:"title"`
		Type       flexInt    `json:"type"`
		CategoryID flexString `json:"categoryId"`
	} `json:"data"`
}

// GetPubTemplateTitles returns one page of the public templates of the
// given categories, starting at offset start, with at most limit titles
// (1..MaxPubTitlesLimit), and the total number of titles.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getPubTemplateTitleList.html
func (c *Client) GetPubTemplateTitles(ctx context.Context, ids []int, start, limit int) (titles []PubTemplateTitle, total int, err error) {
	const api = "subscribeMessage.getPubTemplateTitleList"
	switch {
	case len(ids) == 0:
		return nil, 0, fmt.Errorf("wechat %s: %w: no category ids", api, ErrInvalidArgument)
	case start < 0:
		return nil, 0, fmt.Errorf("wechat %s: %w: start %d is negative", api, ErrInvalidArgument, start)
	case limit < 1 || limit > MaxPubTitlesLimit:
		return nil, 0, fmt.Errorf("wechat %s: %w: limit %d outside 1..%d", api, ErrInvalidArgument, limit, MaxPubTitlesLimit)
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		if id <= 0 {
			return nil, 0, fmt.Errorf("wechat %s: %w: category id %d", api, ErrInvalidArgument, id)
		}
		parts[i] = strconv.Itoa(id)
	}
	q := url.Values{
		"ids":   {strings.Join(parts, ",")},
		"start": {strconv.Itoa(start)},
		"limit": {strconv.Itoa(limit)},
	}
	out, err := call[pubTitlesResponse](ctx, c, getRequest(api, "/wxaapi/newtmpl/getpubtemplatetitles", q))
	if err != nil {
		return nil, 0, err
	}
	titles = make([]PubTemplateTitle, 0, len(out.Data))
	for _, d := range out.Data {
		titles = append(titles, PubTemplateTitle{TID: string(d.TID), Title: d.Title, Type: int(d.Type), CategoryID: string(d.CategoryID)})
	}
	return titles, int(out.Count), nil
}

// PubTemplateKeyword is a keyword a public template offers.
type PubTemplateKeyword struct {
	KID     int    `json:"kid"` // for AddTemplate's kidList
	Name    string `json:"name"`
	Example string `json:"example"`
	Rule    string `json:"rule"` // the keyword type: "thing"
}

type pubKeywordsResponse struct {
	apiStatus
	Data []struct {
		KID     flexInt `json:"kid"`
		Name    string  `json:"name"`
		Example string  `json:"example"`
		Rule    string  `json:"rule"`
	} `json:"data"`
}

// GetPubTemplateKeywords lists the keywords of public template tid.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getPubTemplateKeyWordsById.html
func (c *Client) GetPubTemplateKeywords(ctx context.Context, tid string) ([]PubTemplateKeyword, error) {
	const api = "subscribeMessage.getPubTemplateKeyWordsById"
	if err := checkTID(tid); err != nil {
		return nil, fmt.Errorf("wechat %s: %w", api, err)
	}
	out, err := call[pubKeywordsResponse](ctx, c, getRequest(api, "/wxaapi/newtmpl/getpubtemplatekeywords", url.Values{"tid": {tid}}))
	if err != nil {
		return nil, err
	}
	list := make([]PubTemplateKeyword, 0, len(out.Data))
	for _, d := range out.Data {
		list = append(list, PubTemplateKeyword{KID: int(d.KID), Name: d.Name, Example: d.Example, Rule: d.Rule})
	}
	return list, nil
}

type addTemplateBody struct {
	TID       string `json:"tid"`
	KIDList   []int  `json:"kidList"`
	SceneDesc string `json:"sceneDesc,omitempty"`
}

type addTemplateResponse struct {
	apiStatus
	PriTmplID string `json:"priTmplId"`
}

// AddTemplate adds public template tid with the keywords kidList (in the
// order given, MinTemplateKIDs..MaxTemplateKIDs distinct ids) to the app's
// templates and returns the new priTmplId. sceneDesc, at most
// MaxSceneDescLength characters, describes where the app sends it.
// WeChat answers CodeTemplateExists when this combination was already
// added.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/addMessageTemplate.html
func (c *Client) AddTemplate(ctx context.Context, tid string, kidList []int, sceneDesc string) (priTmplID string, err error) {
	const api = "subscribeMessage.addTemplate"
	if err := checkAddTemplate(tid, kidList, sceneDesc); err != nil {
		return "", fmt.Errorf("wechat %s: %w", api, err)
	}
	r, err := postRequest(api, "/wxaapi/newtmpl/addtemplate", addTemplateBody{TID: tid, KIDList: kidList, SceneDesc: sceneDesc})
	if err != nil {
		return "", err
	}
	out, err := call[addTemplateResponse](ctx, c, r)
	if err != nil {
		return "", err
	}
	if out.PriTmplID == "" {
		return "", &TransportError{API: api, Written: true, Err: errors.New("answer without priTmplId")}
	}
	return out.PriTmplID, nil
}

func checkAddTemplate(tid string, kidList []int, sceneDesc string) error {
	if err := checkTID(tid); err != nil {
		return err
	}
	if n := len(kidList); n < MinTemplateKIDs || n > MaxTemplateKIDs {
		return fmt.Errorf("%w: %d keyword ids, want %d..%d", ErrInvalidArgument, n, MinTemplateKIDs, MaxTemplateKIDs)
	}
	for i, kid := range kidList {
		if kid <= 0 {
			return fmt.Errorf("%w: keyword id %d", ErrInvalidArgument, kid)
		}
		for _, prev := range kidList[:i] {
			if prev == kid {
				return fmt.Errorf("%w: keyword id %d repeated", ErrInvalidArgument, kid)
			}
		}
	}
	if n := utf8.RuneCountInString(sceneDesc); n > MaxSceneDescLength {
		return fmt.Errorf("%w: sceneDesc has %d characters, limit %d", ErrInvalidArgument, n, MaxSceneDescLength)
	}
	return nil
}

// checkTID accepts a public template id: decimal digits.
func checkTID(tid string) error {
	if tid == "" || len(tid) > 20 || strings.Trim(tid, "0123456789") != "" {
		return fmt.Errorf("%w: tid %q is not a decimal id", ErrInvalidArgument, tid)
	}
	return nil
}

type delTemplateBody struct {
	PriTmplID string `json:"priTmplId"`
}

// DelTemplate removes priTmplID from the app's templates.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/deleteMessageTemplate.html
func (c *Client) DelTemplate(ctx context.Context, priTmplID string) error {
	const api = "subscribeMessage.deleteTemplate"
	if priTmplID == "" {
		return fmt.Errorf("wechat %s: %w: empty priTmplId", api, ErrInvalidArgument)
	}
	r, err := postRequest(api, "/wxaapi/newtmpl/deltemplate", delTemplateBody{PriTmplID: priTmplID})
	if err != nil {
		return err
	}
	_, err = call[apiStatus](ctx, c, r)
	return err
}
