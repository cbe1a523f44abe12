package wechat

// Fuzz targets for the parsers of WeChat's answers: errmsg, the response
// envelope, msgid and template content.

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func FuzzInvalidField(f *testing.F) {
	for _, s := range []string{
		"argument invalid! data.thing1.value invalid rid: 6627e1e8-1f0b8b0f-4b7f4b3c",
		"argument invalid! data.character_string12.value invalid",
		"data.",
		"data..value",
		"data.\u00e9.value",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := InvalidField(&Error{Code: CodeInvalidData, Msg: msg})
		if got == "" {
			return
		}
		name, ok := strings.CutPrefix(got, "data.")
		if !ok || name == "" || !isKeywordName(name) || !strings.Contains(msg, got) {
			t.Fatalf("InvalidField(%q) = %q, want data.<keyword name> taken from the message", msg, got)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"errcode":0,"errmsg":"ok","msgid":3395159288267931652}`,
		`{"msgid":"12"}`,
		`{"errcode":"40001","errmsg":"invalid credential"}`,
		`{"errcode":47003,"msgid":{}}`,
		`{"errcode":1e3}`,
		`null`,
		`<html>`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out sendResponse
		err := decodeResponse(data, &out)
		if e, ok := errors.AsType[*Error](err); ok && e.Code == 0 {
			t.Fatalf("decodeResponse(%q) = *Error with errcode 0", data)
		}
		if err == nil && out.ErrCode != 0 {
			t.Fatalf("decodeResponse(%q) = nil with errcode %d", data, out.ErrCode)
		}
		if err == nil {
			parseMsgID(out.MsgID) // must not panic on anything that decoded
		}
	})
}

func FuzzParseMsgID(f *testing.F) {
	for _, s := range []string{"3395159288267931652", `"9007199254740993"`, "18446744073709551615", "18446744073709551616", "-1", "1.5", "null", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, ok := parseMsgID([]byte(raw))
		if !ok || id == 0 {
			return
		}
		text := SendResult{MsgID: id}.MsgIDString()
		want, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(raw), `"`), 10, 64)
		if err != nil || text != strconv.FormatUint(want, 10) {
			t.Fatalf("parseMsgID(%q) gave %q, want the same number", raw, text)
		}
	})
}

func FuzzParseKeywords(f *testing.F) {
	for _, s := range []string{
		"会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n",
		"订单号：{{character_string1.DATA}}\r\n 状态 ： {{ enum_string2.DATA }}",
		"{{thing1.DATA}}{{thing1.DATA}} {{.DATA}} {{ }} {{unclosed",
		"}}{{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		seen := map[string]bool{}
		for _, k := range parseKeywords(content) {
			if k.Name == "" || !isKeywordName(k.Name) || seen[k.Name] || !strings.Contains(content, k.Name) {
				t.Fatalf("parseKeywords(%q) gave keyword %+v", content, k)
			}
			seen[k.Name] = true
			if typ, ok := KeywordType(k.Name); typ != k.Type || (!ok && k.Type != "") {
				t.Fatalf("parseKeywords(%q) gave type %q for %s, want %q", content, k.Type, k.Name, typ)
			}
		}
	})
}
