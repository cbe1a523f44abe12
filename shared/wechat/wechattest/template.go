package wechattest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Template types, as getTemplateList's type field.
const (
	OneTime  = 2 // one-time subscription: each accept allows one message
	LongTerm = 3 // long-term subscription: accepted once, many messages
)

// maxPrivateTemplates is how many templates an account may hold (addtemplate answers 200012 beyond).
const maxPrivateTemplates = 25

// Template is a private template of the account, as getTemplateList lists it.
type Template struct {
	PriTmplID string
	Title     string
	Type      int // OneTime or LongTerm
	Keywords  []Keyword
	// Content is derived from the keywords when empty: one "Label:{{name.DATA}}\n" line per keyword.
	Content string
	// Example is derived from the keywords' examples when empty: one "Label:example\n" line per keyword.
	Example string
}

// Keyword is a keyword of a template.
type Keyword struct {
	Name    string // type and number, as in the content and the data of a send: "thing4"
	Label   string // what the user reads before the value, "客户名称"; Name when empty
	Example string
	Enum    []string // the allowed values of an enum or enum_string keyword (keywordEnumValueList)
}

// Category is a category of the account (getcategory).
type Category struct {
	ID   int
	Name string
}

// PubTemplate is a title of the public template library.
type PubTemplate struct {
	TID        int
	Title      string
	Type       int // OneTime or LongTerm
	CategoryID int
	Keywords   []PubKeyword
}

// PubKeyword is a keyword of a public template title; a template added with it gets the keyword Rule
// followed by KID ("thing" and 4 give "thing4").
type PubKeyword struct {
	KID     int
	Name    string
	Example string
	Rule    string   // the keyword's type: "thing", "date", ...
	Enum    []string // values of an enum or enum_string keyword
}

// template is a Template with what the fake derives from it.
type template struct {
	Template
	types map[string]string // keyword name -> type
	tid   int               // the library title it was added from (addtemplate), 0 otherwise
	kids  []int
}

func isEnum(typ string) bool { return typ == "enum" || typ == "enum_string" }

// newTemplate checks t and derives its content, example and keyword types.
func newTemplate(t Template) (*template, error) {
	if t.PriTmplID == "" {
		return nil, errors.New("wechattest: template without PriTmplID")
	}
	if t.Type != OneTime && t.Type != LongTerm {
		return nil, fmt.Errorf("wechattest: template %s: type %d, want %d (one-time) or %d (long-term)", t.PriTmplID, t.Type, OneTime, LongTerm)
	}
	if len(t.Keywords) == 0 {
		return nil, fmt.Errorf("wechattest: template %s has no keywords", t.PriTmplID)
	}
	tm := &template{Template: t, types: make(map[string]string, len(t.Keywords))}
	tm.Keywords = make([]Keyword, len(t.Keywords))
	var content, example strings.Builder
	for i, k := range t.Keywords {
		typ, ok := wechat.KeywordType(k.Name)
		if !ok || strings.HasSuffix(k.Name, ".DATA") {
			return nil, fmt.Errorf("wechattest: template %s: invalid keyword name %q", t.PriTmplID, k.Name)
		}
		if _, dup := tm.types[k.Name]; dup {
			return nil, fmt.Errorf("wechattest: template %s: duplicate keyword %s", t.PriTmplID, k.Name)
		}
		if isEnum(typ) && len(k.Enum) == 0 {
			return nil, fmt.Errorf("wechattest: template %s: enum keyword %s without values", t.PriTmplID, k.Name)
		}
		tm.types[k.Name] = typ
		if k.Label == "" {
			k.Label = k.Name
		}
		k.Enum = slices.Clone(k.Enum)
		tm.Keywords[i] = k
		fmt.Fprintf(&content, "%s:{{%s.DATA}}\n", k.Label, k.Name)
		fmt.Fprintf(&example, "%s:%s\n", k.Label, k.Example)
	}
	if tm.Content == "" {
		tm.Content = content.String()
	}
	if tm.Example == "" {
		tm.Example = example.String()
	}
	return tm, nil
}

// cloneLibrary is a deep copy of lib.
func cloneLibrary(lib []PubTemplate) []PubTemplate {
	if lib == nil {
		return nil
	}
	out := make([]PubTemplate, len(lib))
	for i, p := range lib {
		p.Keywords = slices.Clone(p.Keywords)
		for j := range p.Keywords {
			p.Keywords[j].Enum = slices.Clone(p.Keywords[j].Enum)
		}
		out[i] = p
	}
	return out
}

// checkLibrary checks that every keyword of lib makes a valid template keyword.
func checkLibrary(lib []PubTemplate) error {
	for _, p := range lib {
		if p.Type != OneTime && p.Type != LongTerm {
			return fmt.Errorf("wechattest: library title %d: type %d, want %d or %d", p.TID, p.Type, OneTime, LongTerm)
		}
		for _, k := range p.Keywords {
			typ, ok := wechat.KeywordType(k.Rule + strconv.Itoa(k.KID))
			if !ok || k.KID <= 0 || typ != k.Rule {
				return fmt.Errorf("wechattest: library title %d: invalid keyword %d rule %q", p.TID, k.KID, k.Rule)
			}
			if isEnum(typ) && len(k.Enum) == 0 {
				return fmt.Errorf("wechattest: library title %d: enum keyword %d without values", p.TID, k.KID)
			}
		}
	}
	return nil
}

// addTemplate adds t to the account; s.mu must be held (or s not shared yet).
func (s *Server) addTemplate(t Template) error {
	tm, err := newTemplate(t)
	if err != nil {
		return err
	}
	if s.template(t.PriTmplID) != nil {
		return fmt.Errorf("wechattest: duplicate template %s", t.PriTmplID)
	}
	s.templates = append(s.templates, tm)
	return nil
}

// template is the account's template id, nil if none; s.mu must be held.
func (s *Server) template(id string) *template {
	for _, t := range s.templates {
		if t.PriTmplID == id {
			return t
		}
	}
	return nil
}

// clone is a deep copy of t.
func (t *template) clone() Template {
	c := t.Template
	c.Keywords = make([]Keyword, len(t.Keywords))
	for i, k := range t.Keywords {
		k.Enum = slices.Clone(k.Enum)
		c.Keywords[i] = k
	}
	return c
}

// Templates are the account's templates, in the order getTemplateList lists them.
func (s *Server) Templates() []Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Template, len(s.templates))
	for i, t := range s.templates {
		out[i] = t.clone()
	}
	return out
}

type templateBody struct {
	PriTmplID            string     `json:"priTmplId"`
	Title                string     `json:"title"`
	Content              string     `json:"content"`
	Example              string     `json:"example"`
	Type                 int        `json:"type"`
	KeywordEnumValueList []enumBody `json:"keywordEnumValueList,omitempty"`
}

type enumBody struct {
	KeywordCode   string   `json:"keywordCode"`
	EnumValueList []string `json:"enumValueList"`
}

type listBody[T any] struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
	Count   *int   `json:"count,omitempty"`
	Data    []T    `json:"data"`
}

// handleGetTemplate serves GET /wxaapi/newtmpl/gettemplate
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getMessageTemplateList.html):
// the account's templates with keywordEnumValueList ({keywordCode: "enum_string2.DATA", enumValueList})
// for the keywords that have values.
func (s *Server) handleGetTemplate(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	body := listBody[templateBody]{Errmsg: "ok", Data: make([]templateBody, 0, len(s.templates))}
	for _, t := range s.templates {
		tb := templateBody{PriTmplID: t.PriTmplID, Title: t.Title, Content: t.Content, Example: t.Example, Type: t.Type}
		for _, k := range t.Keywords {
			if len(k.Enum) > 0 {
				tb.KeywordEnumValueList = append(tb.KeywordEnumValueList, enumBody{KeywordCode: k.Name + ".DATA", EnumValueList: slices.Clone(k.Enum)})
			}
		}
		body.Data = append(body.Data, tb)
	}
	return reply{body: body}
}

type categoryBody struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// handleGetCategory serves GET /wxaapi/newtmpl/getcategory
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getCategory.html).
func (s *Server) handleGetCategory(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	body := listBody[categoryBody]{Errmsg: "ok", Data: make([]categoryBody, 0, len(s.categories))}
	for _, c := range s.categories {
		body.Data = append(body.Data, categoryBody(c))
	}
	return reply{body: body}
}

type titleBody struct {
	TID        int    `json:"tid"`
	Title      string `json:"title"`
	Type       int    `json:"type"`
	CategoryID string `json:"categoryId"`
}

// handleGetPubTemplateTitles serves GET /wxaapi/newtmpl/getpubtemplatetitles?ids=&start=&limit=
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getPubTemplateTitleList.html):
// the library titles of the comma-separated category ids, count being their total. ids missing 200018,
// not numbers 200019; start missing or negative 200016; limit missing or outside 1..30 200017.
func (s *Server) handleGetPubTemplateTitles(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	q := r.URL.Query()
	if q.Get("ids") == "" {
		return s.fail(200018, "")
	}
	var ids []int
	for f := range strings.SplitSeq(q.Get("ids"), ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return s.fail(200019, "")
		}
		ids = append(ids, id)
	}
	start, err := strconv.Atoi(q.Get("start"))
	if err != nil || start < 0 {
		return s.fail(200016, "")
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 30 {
		return s.fail(200017, "")
	}
	var all []titleBody
	for _, p := range s.library {
		if slices.Contains(ids, p.CategoryID) {
			all = append(all, titleBody{TID: p.TID, Title: p.Title, Type: p.Type, CategoryID: strconv.Itoa(p.CategoryID)})
		}
	}
	count := len(all)
	body := listBody[titleBody]{Errmsg: "ok", Count: &count, Data: []titleBody{}}
	if start < len(all) {
		body.Data = all[start:min(start+limit, len(all))]
	}
	return reply{body: body}
}

type keywordBody struct {
	KID     int    `json:"kid"`
	Name    string `json:"name"`
	Example string `json:"example"`
	Rule    string `json:"rule"`
}

// pub is the library title tid, nil if none; s.mu must be held.
func (s *Server) pub(tid int) *PubTemplate {
	for i := range s.library {
		if s.library[i].TID == tid {
			return &s.library[i]
		}
	}
	return nil
}

// handleGetPubTemplateKeywords serves GET /wxaapi/newtmpl/getpubtemplatekeywords?tid=
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/getPubTemplateKeyWordsById.html);
// a missing or unknown tid is 200014.
func (s *Server) handleGetPubTemplateKeywords(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	tid, err := strconv.Atoi(r.URL.Query().Get("tid"))
	p := s.pub(tid)
	if err != nil || p == nil {
		return s.fail(200014, "")
	}
	count := len(p.Keywords)
	body := listBody[keywordBody]{Errmsg: "ok", Count: &count, Data: make([]keywordBody, 0, count)}
	for _, k := range p.Keywords {
		body.Data = append(body.Data, keywordBody{KID: k.KID, Name: k.Name, Example: k.Example, Rule: k.Rule})
	}
	return reply{body: body}
}

type addTemplateBody struct {
	Errcode   int    `json:"errcode"`
	Errmsg    string `json:"errmsg"`
	PriTmplID string `json:"priTmplId"`
}

// handleAddTemplate serves POST /wxaapi/newtmpl/addtemplate with {tid, kidList, sceneDesc}
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/addMessageTemplate.html):
// it adds a template made of the title's keywords in kidList order and answers its priTmplId. tid (a
// string, or a number) missing or unknown 200014; kidList not 2 to 5 distinct kids of the title 200020;
// sceneDesc over 15 characters 200021; 25 templates already 200012; the same tid and kidList already
// added 200022.
func (s *Server) handleAddTemplate(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	m, ok := decodeObject(r)
	if !ok {
		return s.fail(47001, "")
	}
	tid, ok := tidField(m["tid"])
	p := s.pub(tid)
	if !ok || p == nil {
		return s.fail(200014, "")
	}
	var kids []int
	if err := json.Unmarshal(m["kidList"], &kids); err != nil || len(kids) < 2 || len(kids) > 5 {
		return s.fail(200020, "")
	}
	kws := make([]Keyword, 0, len(kids))
	for i, kid := range kids {
		j := slices.IndexFunc(p.Keywords, func(k PubKeyword) bool { return k.KID == kid })
		if j < 0 || slices.Contains(kids[:i], kid) {
			return s.fail(200020, "")
		}
		k := p.Keywords[j]
		kws = append(kws, Keyword{Name: k.Rule + strconv.Itoa(k.KID), Label: k.Name, Example: k.Example, Enum: k.Enum})
	}
	desc, ok := stringField(m, "sceneDesc")
	if !ok || utf8.RuneCountInString(desc) > 15 {
		return s.fail(200021, "")
	}
	for _, t := range s.templates {
		if t.tid == tid && slices.Equal(t.kids, kids) {
			return s.fail(200022, "")
		}
	}
	if len(s.templates) >= maxPrivateTemplates {
		return s.fail(200012, "")
	}
	tm, err := newTemplate(Template{PriTmplID: randomString(43, tokenAlphabet), Title: p.Title, Type: p.Type, Keywords: kws})
	if err != nil {
		return s.fail(-1, "")
	}
	tm.tid, tm.kids = tid, kids
	s.templates = append(s.templates, tm)
	return reply{body: addTemplateBody{Errmsg: "ok", PriTmplID: tm.PriTmplID}}
}

// tidField reads a tid given as a string ("401", as documented) or as a number.
func tidField(raw json.RawMessage) (int, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, true
	}
	return 0, false
}

// handleDelTemplate serves POST /wxaapi/newtmpl/deltemplate with {priTmplId}
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/deleteMessageTemplate.html).
// The fake answers 40037 (invalid template_id) for an id the account does not hold; sends with a deleted
// template fail with 40037.
func (s *Server) handleDelTemplate(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep, ok := s.checkToken(r, s.Now()); !ok {
		return rep
	}
	m, ok := decodeObject(r)
	if !ok {
		return s.fail(47001, "")
	}
	id, ok := stringField(m, "priTmplId")
	if !ok {
		return s.fail(47001, "")
	}
	i := slices.IndexFunc(s.templates, func(t *template) bool { return t.PriTmplID == id })
	if id == "" || i < 0 {
		return s.fail(40037, "")
	}
	s.templates = slices.Delete(s.templates, i, i+1)
	return reply{body: errorBody{Errmsg: "ok"}}
}

// DefaultTemplates are the templates of a Server whose Options.Templates is nil: two one-time templates
// and a long-term one with an enum keyword.
func DefaultTemplates() []Template {
	return []Template{
		{
			PriTmplID: "zun-LzcQyW-edafCVvzPkK4de2Rllr1fFpw2A_x0oXE",
			Title:     "线索分配通知",
			Type:      OneTime,
			Keywords: []Keyword{
				{Name: "thing4", Label: "客户名称", Example: "某某科技有限公司"},
				{Name: "date2", Label: "分配时间", Example: "2026-11-21"},
				{Name: "character_string9", Label: "线索编号", Example: "L-1001"},
			},
		},
		{
			PriTmplID: "Bq2ZhXK0m4Yt8c9XkQfJ7uV3sLwN5aPdRbEeGiHjTk0",
			Title:     "线索日报",
			Type:      OneTime,
			Keywords: []Keyword{
				{Name: "thing1", Label: "日报名称", Example: "每日线索汇总"},
				{Name: "number2", Label: "新增线索", Example: "7"},
			},
		},
		{
			PriTmplID: "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME",
			Title:     "服务状态提醒",
			Type:      LongTerm,
			Keywords: []Keyword{
				{Name: "enum_string1", Label: "服务状态", Example: "已恢复", Enum: []string{"已中断", "已恢复"}},
				{Name: "time2", Label: "更新时间", Example: "2026-11-21 09:30"},
				{Name: "thing3", Label: "说明", Example: "线索同步已恢复"},
			},
		},
	}
}

// DefaultCategories are the categories of a Server whose Options.Categories is nil.
func DefaultCategories() []Category {
	return []Category{{ID: 616, Name: "企业管理"}, {ID: 627, Name: "工具"}}
}

// DefaultLibrary is the public template library of a Server whose Options.Library is nil.
func DefaultLibrary() []PubTemplate {
	return []PubTemplate{
		{TID: 401, Title: "线索分配通知", Type: OneTime, CategoryID: 616, Keywords: []PubKeyword{
			{KID: 1, Name: "线索名称", Example: "某某科技有限公司", Rule: "thing"},
			{KID: 2, Name: "分配时间", Example: "2026-11-21", Rule: "date"},
			{KID: 3, Name: "线索编号", Example: "L-1001", Rule: "character_string"},
			{KID: 4, Name: "客户名称", Example: "张三", Rule: "thing"},
		}},
		{TID: 402, Title: "待办提醒", Type: OneTime, CategoryID: 616, Keywords: []PubKeyword{
			{KID: 1, Name: "待办事项", Example: "回访客户", Rule: "thing"},
			{KID: 2, Name: "截止时间", Example: "2026-11-21 18:00", Rule: "time"},
			{KID: 3, Name: "待办数量", Example: "3", Rule: "number"},
		}},
		{TID: 501, Title: "服务状态提醒", Type: LongTerm, CategoryID: 627, Keywords: []PubKeyword{
			{KID: 1, Name: "服务状态", Example: "已恢复", Rule: "enum_string", Enum: []string{"已中断", "已恢复"}},
			{KID: 2, Name: "更新时间", Example: "2026-11-21 09:30", Rule: "time"},
			{KID: 3, Name: "说明", Example: "线索同步已恢复", Rule: "thing"},
		}},
	}
}
