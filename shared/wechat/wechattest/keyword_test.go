package wechattest_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// kwTemplate has one keyword of every type, so that a send can put any value in any of them.
var kwTemplate = wechattest.Template{
	PriTmplID: "kw-every-type",
	Title:     "每种关键词",
	Type:      wechattest.LongTerm,
	Keywords: []wechattest.Keyword{
		{Name: "thing1"}, {Name: "number2"}, {Name: "letter3"}, {Name: "symbol4"}, {Name: "character_string5"},
		{Name: "time6"}, {Name: "date7"}, {Name: "amount8"}, {Name: "phone_number9"}, {Name: "car_number10"},
		{Name: "name11"}, {Name: "phrase12"}, {Name: "enum13", Enum: []string{"已付款", "👨‍👩‍👧"}},
		{Name: "enum_string14", Enum: []string{"已恢复"}}, {Name: "short_thing15"},
	},
}

// kwGood is a value of each keyword of kwTemplate that the rules accept.
var kwGood = map[string]string{
	"thing1": strings.Repeat("👨‍👩‍👧", 20), "number2": "339208499", "letter3": "ABCdef", "symbol4": "¥",
	"character_string5": "L-1001", "time6": "2019年10月1日 15:01", "date7": "2019年10月1日", "amount8": "￥100元",
	"phone_number9": "+86-0766-66888866", "car_number10": "粤A8Z888挂", "name11": "John Smith", "phrase12": "配送中",
	"enum13": "👨‍👩‍👧", "enum_string14": "已恢复", "short_thing15": "🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳",
}

func kwData(values map[string]string) map[string]any {
	data := map[string]any{}
	for k, v := range values {
		data[k] = map[string]string{"value": v}
	}
	return data
}

// TestSendJudgesValuesByTheRules: the fake refuses (47003, naming the field) exactly the values
// wechat.Validate refuses, and delivers the others, for every keyword type.
func TestSendJudgesValuesByTheRules(t *testing.T) {
	srv := newServer(t, wechattest.Options{Templates: []wechattest.Template{kwTemplate}})
	alice := srv.OpenID("alice")
	subscribe(t, srv, alice, map[string]string{kwTemplate.PriTmplID: "accept"})
	check := func(t *testing.T, name, value string) {
		t.Helper()
		values := map[string]string{}
		for k, v := range kwGood {
			values[k] = v
		}
		values[name] = value
		typ, _ := wechat.KeywordType(name)
		k := kwTemplate.Keywords[0]
		for _, kw := range kwTemplate.Keywords {
			if kw.Name == name {
				k = kw
			}
		}
		want := 0
		if wechat.Validate(typ, value, k.Enum...) != nil {
			want = 47003
		}
		a := send(t, srv, sendBody(alice, kwTemplate.PriTmplID, kwData(values)))
		if got := a.errcode(t); got != want {
			t.Fatalf("send %s = %q: errcode %d, want %d", name, value, got, want)
		}
		if want != 0 && !strings.HasPrefix(a.str("errmsg"), "argument invalid! data."+name+".value invalid") {
			t.Fatalf("send %s = %q: errmsg %q, want it to name data.%s", name, value, a.str("errmsg"), name)
		}
	}
	t.Run("Good", func(t *testing.T) {
		for name, v := range kwGood {
			if typ, _ := wechat.KeywordType(name); wechat.Validate(typ, v, "已付款", "👨‍👩‍👧", "已恢复") != nil {
				t.Fatalf("Validate(%q, %q) = %v, want the rules to accept it", typ, v, wechat.Validate(typ, v))
			}
			check(t, name, v)
		}
	})
	refused := []struct{ name, value string }{
		{"thing1", strings.Repeat("👨‍👩‍👧", 21)}, {"thing1", "a\u200db"},
		{"letter3", "Zoë"}, {"letter3", "ＡＢＣ"},
		{"symbol4", "- -"}, {"symbol4", "１"},
		{"character_string5", "L 1001"}, {"character_string5", " L-1001"}, {"character_string5", "L-1001…"},
		{"time6", "15:01 ~ 16:00"}, {"time6", "9:05"}, {"date7", "2018-01-01  12:00"},
		{"phone_number9", "(020) 8888 8888"}, {"phone_number9", "138１"},
		{"name11", " John"}, {"name11", "Zoë"}, {"short_thing15", strings.Repeat("🇨🇳", 6)},
	}
	t.Run("Refused", func(t *testing.T) {
		for _, r := range refused {
			if typ, _ := wechat.KeywordType(r.name); wechat.Validate(typ, r.value) == nil {
				t.Fatalf("Validate(%q, %q) = nil, want the rules to refuse it", typ, r.value)
			}
			check(t, r.name, r.value)
		}
	})
	t.Run("Random", func(t *testing.T) {
		pieces := []string{"a", "Z", "é", "0", "9", ".", "-", ":", "~", " ", "\u3000", "…", "¥", "元", "年", "月",
			"日", "中", "１", "Ａ", "🎉", "👨‍👩‍👧", "🇨🇳", "\u0301", "\u200d", "15:01", "2019-10-01", "粤A8Z888挂"}
		r := rand.New(rand.NewPCG(3, 4))
		for range 300 {
			var b strings.Builder
			for n := 1 + r.IntN(8); n > 0; n-- {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
			check(t, kwTemplate.Keywords[r.IntN(len(kwTemplate.Keywords))].Name, b.String())
		}
	})
}
