package wechattest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// templateList is gettemplate's answer.
type templateList struct {
	Errcode int `json:"errcode"`
	Data    []struct {
		PriTmplID            string `json:"priTmplId"`
		Title                string `json:"title"`
		Content              string `json:"content"`
		Example              string `json:"example"`
		Type                 int    `json:"type"`
		KeywordEnumValueList []struct {
			KeywordCode   string   `json:"keywordCode"`
			EnumValueList []string `json:"enumValueList"`
		} `json:"keywordEnumValueList"`
	} `json:"data"`
}

func getTemplates(tb testing.TB, srv *wechattest.Server) templateList {
	tb.Helper()
	a := call(tb, srv, http.MethodGet, "/wxaapi/newtmpl/gettemplate", url.Values{"access_token": {stableToken(tb, srv)}}, nil)
	wantErrcode(tb, a, 0)
	raw, err := json.Marshal(a)
	if err != nil {
		tb.Fatal(err)
	}
	var l templateList
	if err := json.Unmarshal(raw, &l); err != nil {
		tb.Fatal(err)
	}
	return l
}

func TestGetTemplate(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	l := getTemplates(t, srv)
	if len(l.Data) != 3 {
		t.Fatalf("%d templates, want the 3 defaults", len(l.Data))
	}
	lead := l.Data[0]
	wantContent := "客户名称:{{thing4.DATA}}\n分配时间:{{date2.DATA}}\n线索编号:{{character_string9.DATA}}\n"
	switch {
	case lead.PriTmplID != leadTmpl, lead.Type != wechattest.OneTime, lead.Title != "线索分配通知":
		t.Fatalf("first template %+v, want the lead template", lead)
	case lead.Content != wantContent:
		t.Fatalf("content = %q, want %q", lead.Content, wantContent)
	case !strings.HasPrefix(lead.Example, "客户名称:某某科技有限公司\n"):
		t.Fatalf("example = %q, want lines of label:example", lead.Example)
	case lead.KeywordEnumValueList != nil:
		t.Fatalf("keywordEnumValueList = %v, want none without enum keywords", lead.KeywordEnumValueList)
	}
	status := l.Data[2]
	if status.Type != wechattest.LongTerm || len(status.KeywordEnumValueList) != 1 {
		t.Fatalf("status template %+v, want long-term with one enum keyword", status)
	}
	if e := status.KeywordEnumValueList[0]; e.KeywordCode != "enum_string1.DATA" || strings.Join(e.EnumValueList, ",") != "已中断,已恢复" {
		t.Fatalf("enum = %+v, want enum_string1.DATA [已中断 已恢复]", e)
	}
}

func TestSendEnumKeyword(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{statusTmpl: "accept"})
	data := func(v string) map[string]any {
		return map[string]any{
			"enum_string1": map[string]string{"value": v},
			"time2":        map[string]string{"value": "09:30"},
			"thing3":       map[string]string{"value": "ok"},
		}
	}
	wantErrcode(t, send(t, srv, sendBody(alice, statusTmpl, data("已恢复"))), 0)
	wantErrcode(t, send(t, srv, sendBody(alice, statusTmpl, data("恢复"))), 47003)
}

func TestCustomTemplatesAndPages(t *testing.T) {
	srv := newServer(t, wechattest.Options{
		Templates: []wechattest.Template{{PriTmplID: "custom", Title: "T", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "phrase1"}}}},
	})
	tm := srv.Templates()
	if len(tm) != 1 || tm[0].Content != "phrase1:{{phrase1.DATA}}\n" {
		t.Fatalf("Templates() = %+v, want the custom template with derived content", tm)
	}
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{"custom": "accept"})
	body := sendBody(alice, "custom", map[string]any{"phrase1": map[string]string{"value": "配送中"}})
	body["page"] = "any/page/at/all" // no Pages configured: any page passes
	wantErrcode(t, send(t, srv, body), 0)
}

func TestGetCategory(t *testing.T) {
	srv := newServer(t, wechattest.Options{Categories: []wechattest.Category{{ID: 616, Name: "公交"}}})
	a := call(t, srv, http.MethodGet, "/wxaapi/newtmpl/getcategory", url.Values{"access_token": {stableToken(t, srv)}}, nil)
	wantErrcode(t, a, 0)
	data, _ := a["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("data = %v, want one category", a["data"])
	}
	if c := answer(data[0].(map[string]any)); c.int(t, "id") != 616 || c.str("name") != "公交" {
		t.Fatalf("category = %v, want 616 公交", c)
	}
}

func TestGetPubTemplateTitles(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tok := stableToken(t, srv)
	q := func(ids, start, limit string) url.Values {
		v := url.Values{"access_token": {tok}, "ids": {ids}, "start": {start}, "limit": {limit}}
		for k, vs := range v {
			if vs[0] == "" {
				delete(v, k)
			}
		}
		return v
	}
	tests := []struct {
		name      string
		query     url.Values
		want      int
		wantCount int64
		wantData  int
	}{
		{"OK", q("616,627", "0", "30"), 0, 3, 3},
		{"OKPaged", q("616,627", "1", "1"), 0, 3, 1},
		{"OKPastTheEnd", q("616", "5", "10"), 0, 2, 0},
		{"ErrNoIDs", q("", "0", "10"), 200018, 0, 0},
		{"ErrBadIDs", q("a,b", "0", "10"), 200019, 0, 0},
		{"ErrNoStart", q("616", "", "10"), 200016, 0, 0},
		{"ErrLimitTooLarge", q("616", "0", "31"), 200017, 0, 0},
		{"ErrLimitZero", q("616", "0", "0"), 200017, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, http.MethodGet, "/wxaapi/newtmpl/getpubtemplatetitles", tt.query, nil)
			wantErrcode(t, a, tt.want)
			if tt.want != 0 {
				return
			}
			if got := a.int(t, "count"); got != tt.wantCount {
				t.Fatalf("count = %d, want %d", got, tt.wantCount)
			}
			data, ok := a["data"].([]any)
			if !ok || len(data) != tt.wantData {
				t.Fatalf("data = %v, want %d titles", a["data"], tt.wantData)
			}
		})
	}
}

func TestGetPubTemplateKeywords(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tok := stableToken(t, srv)
	a := call(t, srv, http.MethodGet, "/wxaapi/newtmpl/getpubtemplatekeywords", url.Values{"access_token": {tok}, "tid": {"401"}}, nil)
	wantErrcode(t, a, 0)
	data, _ := a["data"].([]any)
	if len(data) != 4 {
		t.Fatalf("data = %v, want 4 keywords", a["data"])
	}
	if k := answer(data[0].(map[string]any)); k.int(t, "kid") != 1 || k.str("rule") != "thing" || k.str("name") == "" {
		t.Fatalf("first keyword %v, want kid 1, rule thing and a name", k)
	}
	wantErrcode(t, call(t, srv, http.MethodGet, "/wxaapi/newtmpl/getpubtemplatekeywords", url.Values{"access_token": {tok}, "tid": {"999"}}, nil), 200014)
}

func TestAddAndDelTemplate(t *testing.T) {
	srv := newServer(t, wechattest.Options{})
	tok := url.Values{"access_token": {stableToken(t, srv)}}
	add := func(body any) answer {
		return call(t, srv, http.MethodPost, "/wxaapi/newtmpl/addtemplate", tok, body)
	}
	a := add(map[string]any{"tid": "401", "kidList": []int{4, 2}, "sceneDesc": "线索分配"})
	wantErrcode(t, a, 0)
	id := a.str("priTmplId")
	if len(id) != 43 {
		t.Fatalf("priTmplId = %q, want 43 characters", id)
	}
	l := getTemplates(t, srv)
	last := l.Data[len(l.Data)-1]
	if last.PriTmplID != id || last.Content != "客户名称:{{thing4.DATA}}\n分配时间:{{date2.DATA}}\n" {
		t.Fatalf("added template %+v, want %s with thing4 and date2 in kidList order", last, id)
	}

	tests := []struct {
		name string
		body any
		want int
	}{
		{"ErrAlreadyAdded", map[string]any{"tid": 401, "kidList": []int{4, 2}}, 200022},
		{"ErrUnknownTID", map[string]any{"tid": "999", "kidList": []int{1, 2}}, 200014},
		{"ErrOneKeyword", map[string]any{"tid": "401", "kidList": []int{1}}, 200020},
		{"ErrUnknownKeyword", map[string]any{"tid": "401", "kidList": []int{1, 9}}, 200020},
		{"ErrRepeatedKeyword", map[string]any{"tid": "401", "kidList": []int{1, 1}}, 200020},
		{"ErrSceneDesc", map[string]any{"tid": "401", "kidList": []int{1, 3}, "sceneDesc": strings.Repeat("长", 16)}, 200021},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, add(tt.body), tt.want)
		})
	}

	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{id: "accept"})
	data := map[string]any{"thing4": map[string]string{"value": "Acme"}, "date2": map[string]string{"value": "2026-11-21"}}
	wantErrcode(t, send(t, srv, sendBody(alice, id, data)), 0)

	wantErrcode(t, call(t, srv, http.MethodPost, "/wxaapi/newtmpl/deltemplate", tok, map[string]string{"priTmplId": id}), 0)
	wantErrcode(t, call(t, srv, http.MethodPost, "/wxaapi/newtmpl/deltemplate", tok, map[string]string{"priTmplId": id}), 40037)
	wantErrcode(t, send(t, srv, sendBody(alice, id, data)), 40037)
	if got := len(getTemplates(t, srv).Data); got != 3 {
		t.Fatalf("%d templates after deltemplate, want 3", got)
	}
}

func TestAddTemplateLimit(t *testing.T) {
	var many []wechattest.Template
	for i := range 25 {
		many = append(many, wechattest.Template{PriTmplID: "t" + string(rune('a'+i)), Title: "T", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{{Name: "thing1"}}})
	}
	srv := newServer(t, wechattest.Options{Templates: many})
	a := call(t, srv, http.MethodPost, "/wxaapi/newtmpl/addtemplate", url.Values{"access_token": {stableToken(t, srv)}}, map[string]any{"tid": "401", "kidList": []int{1, 2}})
	wantErrcode(t, a, 200012)
}
