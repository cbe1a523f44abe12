package wechat_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

func TestGetTemplates(t *testing.T) {
	const answer = `{"errcode":0,"errmsg":"ok","data":[
		{"priTmplId":"9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU","title":"会议提醒",
		 "content":"会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n","example":"会议时间:2016年8月8日\n会议地点:TIT会议室\n","type":2},
		{"priTmplId":"cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME","title":"发货通知",
		 "content":"订单号：{{character_string1.DATA}}\r\n 状态 ： {{ enum_string2.DATA }}\n金额:{{amount3.DATA}} 备注:{{thing4.DATA}}\n{{thing4.DATA}}\n坏的:{{.DATA}} {{bad name.DATA}} {{unclosed\n新类型:{{future9.DATA}}",
		 "example":"","type":"3",
		 "keywordEnumValueList":[{"keywordCode":"enum_string2.DATA","enumValueList":["未发货","已发货"]},
		                         {"keywordCode":"enum_string7.DATA","enumValueList":["x"]}]}
	]}`
	var path, token string
	srv := serveJSON(t, answer, func(r *http.Request, _ []byte) {
		path, token = r.URL.Path, r.URL.Query().Get("access_token")
	})
	got, err := newClient(t, srv.URL).GetTemplates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if path != "/wxaapi/newtmpl/gettemplate" || token != testToken {
		t.Errorf("got path %q token %q, want /wxaapi/newtmpl/gettemplate with the token", path, token)
	}
	want := []wechat.Template{
		{
			PriTmplID: "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU",
			Title:     "会议提醒",
			Content:   "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n",
			Example:   "会议时间:2016年8月8日\n会议地点:TIT会议室\n",
			Type:      wechat.TemplateOneTime,
			Keywords: []wechat.TemplateKeyword{
				{Name: "date2", Type: "date", Label: "会议时间"},
				{Name: "thing1", Type: "thing", Label: "会议地点"},
			},
		},
		{
			PriTmplID: "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME",
			Title:     "发货通知",
			Content:   "订单号：{{character_string1.DATA}}\r\n 状态 ： {{ enum_string2.DATA }}\n金额:{{amount3.DATA}} 备注:{{thing4.DATA}}\n{{thing4.DATA}}\n坏的:{{.DATA}} {{bad name.DATA}} {{unclosed\n新类型:{{future9.DATA}}",
			Type:      wechat.TemplateLongTerm,
			Keywords: []wechat.TemplateKeyword{
				{Name: "character_string1", Type: "character_string", Label: "订单号"},
				{Name: "enum_string2", Type: "enum_string", Label: "状态", Enum: []string{"未发货", "已发货"}},
				{Name: "amount3", Type: "amount", Label: "金额"},
				{Name: "thing4", Type: "thing", Label: "备注"},
				{Name: "future9", Type: "", Label: "新类型"},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}

func TestGetCategory(t *testing.T) {
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","data":[{"id":616,"name":"公交"},{"id":"627","name":"出租车"}]}`, func(r *http.Request, _ []byte) {
		if r.URL.Path != "/wxaapi/newtmpl/getcategory" {
			t.Errorf("got path %q, want /wxaapi/newtmpl/getcategory", r.URL.Path)
		}
	})
	got, err := newClient(t, srv.URL).GetCategory(t.Context())
	want := []wechat.Category{{ID: 616, Name: "公交"}, {ID: 627, Name: "出租车"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got (%v, %v), want %v", got, err, want)
	}
}

func TestGetPubTemplateTitles(t *testing.T) {
	const answer = `{"errcode":0,"errmsg":"ok","count":55,"data":[
		{"tid":99,"title":"付款成功通知","type":2,"categoryId":"616"},
		{"tid":"100","title":"出行提醒","type":3,"categoryId":627}]}`
	var query url.Values
	srv := serveJSON(t, answer, func(r *http.Request, _ []byte) {
		if r.URL.Path != "/wxaapi/newtmpl/getpubtemplatetitles" {
			t.Errorf("got path %q, want /wxaapi/newtmpl/getpubtemplatetitles", r.URL.Path)
		}
		query = r.URL.Query()
	})
	c := newClient(t, srv.URL)
	titles, total, err := c.GetPubTemplateTitles(t.Context(), []int{2, 616}, 0, 30)
	if err != nil {
		t.Fatal(err)
	}
	want := []wechat.PubTemplateTitle{
		{TID: "99", Title: "付款成功通知", Type: 2, CategoryID: "616"},
		{TID: "100", Title: "出行提醒", Type: 3, CategoryID: "627"},
	}
	if !reflect.DeepEqual(titles, want) || total != 55 {
		t.Errorf("got (%v, %d), want (%v, 55)", titles, total, want)
	}
	if got := query.Get("ids") + "|" + query.Get("start") + "|" + query.Get("limit"); got != "2,616|0|30" {
		t.Errorf("got ids|start|limit %q, want 2,616|0|30", got)
	}

	for name, args := range map[string]struct {
		ids          []int
		start, limit int
	}{
		"NoIDs":         {nil, 0, 10},
		"BadID":         {[]int{0}, 0, 10},
		"NegativeStart": {[]int{2}, -1, 10},
		"ZeroLimit":     {[]int{2}, 0, 0},
		"LimitAbove30":  {[]int{2}, 0, 31},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.GetPubTemplateTitles(t.Context(), args.ids, args.start, args.limit); !errors.Is(err, wechat.ErrInvalidArgument) {
				t.Errorf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestGetPubTemplateKeywords(t *testing.T) {
	const answer = `{"errcode":0,"errmsg":"ok","count":2,"data":[
		{"kid":1,"name":"物品名称","example":"名称","rule":"thing"},
		{"kid":"2","name":"金额","example":"¥100","rule":"amount"}]}`
	var tid string
	srv := serveJSON(t, answer, func(r *http.Request, _ []byte) { tid = r.URL.Query().Get("tid") })
	c := newClient(t, srv.URL)
	got, err := c.GetPubTemplateKeywords(t.Context(), "99")
	want := []wechat.PubTemplateKeyword{
		{KID: 1, Name: "物品名称", Example: "名称", Rule: "thing"},
		{KID: 2, Name: "金额", Example: "¥100", Rule: "amount"},
	}
	if err != nil || !reflect.DeepEqual(got, want) || tid != "99" {
		t.Errorf("got (%v, %v) for tid %q, want %v for tid 99", got, err, tid, want)
	}
	for _, bad := range []string{"", "9a", "-1", strings.Repeat("9", 21)} {
		if _, err := c.GetPubTemplateKeywords(t.Context(), bad); !errors.Is(err, wechat.ErrInvalidArgument) {
			t.Errorf("tid %q: got %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestAddTemplate(t *testing.T) {
	var body map[string]any
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok","priTmplId":"9Aw5ZV1j9xdWTFEkqCpZ7jWySL7aGN6rQom4gXINfJs"}`, func(r *http.Request, b []byte) {
		if r.Method != http.MethodPost || r.URL.Path != "/wxaapi/newtmpl/addtemplate" {
			t.Errorf("got %s %s, want POST /wxaapi/newtmpl/addtemplate", r.Method, r.URL.Path)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
	})
	c := newClient(t, srv.URL)
	id, err := c.AddTemplate(t.Context(), "401", []int{1, 2}, "测试数据")
	if err != nil || id != "9Aw5ZV1j9xdWTFEkqCpZ7jWySL7aGN6rQom4gXINfJs" {
		t.Fatalf("got (%q, %v), want the new priTmplId", id, err)
	}
	want := map[string]any{"tid": "401", "kidList": []any{1.0, 2.0}, "sceneDesc": "测试数据"}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("got body %v, want %v", body, want)
	}

	tests := []struct {
		name      string
		tid       string
		kids      []int
		sceneDesc string
		wantErr   bool
	}{
		{"OneKid", "401", []int{1}, "", true},
		{"SixKids", "401", []int{1, 2, 3, 4, 5, 6}, "", true},
		{"FiveKids", "401", []int{1, 2, 3, 4, 5}, "", false},
		{"RepeatedKid", "401", []int{3, 3}, "", true},
		{"ZeroKid", "401", []int{0, 3}, "", true},
		{"SceneDesc15", "401", []int{1, 2}, strings.Repeat("景", 15), false},
		{"SceneDesc16", "401", []int{1, 2}, strings.Repeat("景", 16), true},
		{"BadTID", "t401", []int{1, 2}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AddTemplate(t.Context(), tt.tid, tt.kids, tt.sceneDesc)
			if tt.wantErr != errors.Is(err, wechat.ErrInvalidArgument) || (!tt.wantErr && err != nil) {
				t.Errorf("got %v, want invalid argument: %v", err, tt.wantErr)
			}
		})
	}
}

func TestAddTemplateExists(t *testing.T) {
	srv := serveJSON(t, `{"errcode":200022,"errmsg":"already added"}`, nil)
	_, err := newClient(t, srv.URL).AddTemplate(t.Context(), "401", []int{1, 2}, "")
	if got := wechat.ErrCode(err); got != wechat.CodeTemplateExists {
		t.Errorf("got errcode %d, want %d", got, wechat.CodeTemplateExists)
	}
}

func TestDelTemplate(t *testing.T) {
	var body string
	srv := serveJSON(t, `{"errcode":0,"errmsg":"ok"}`, func(r *http.Request, b []byte) { body = string(b) })
	c := newClient(t, srv.URL)
	if err := c.DelTemplate(t.Context(), "wDYzYZVxobJivW9oMpSCpuvACOfJXQIoKUm0PY397Tc"); err != nil {
		t.Fatal(err)
	}
	if want := `{"priTmplId":"wDYzYZVxobJivW9oMpSCpuvACOfJXQIoKUm0PY397Tc"}`; strings.TrimSpace(body) != want {
		t.Errorf("got body %s, want %s", body, want)
	}
	if err := c.DelTemplate(t.Context(), ""); !errors.Is(err, wechat.ErrInvalidArgument) {
		t.Errorf("got %v, want ErrInvalidArgument", err)
	}
}
