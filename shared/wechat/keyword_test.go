package wechat

import (
	"errors"
	mrand "math/rand"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
	"unicode"
	"unicode/utf8"
)

// kwTestTypes lists every keyword type Validate knows.
var kwTestTypes = []string{
	"thing", "number", "letter", "symbol", "character_string", "time", "date", "amount", "phone_number",
	"car_number", "name", "phrase", "enum", "enum_string", "short_thing",
}

func TestKeywordType(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"thing4", "thing", true},
		{"thing4.DATA", "thing", true},
		{"character_string9", "character_string", true},
		{"short_thing1", "short_thing", true},
		{"enum_string2", "enum_string", true},
		{"enum3", "enum", true},
		{"phone_number12", "phone_number", true},
		{"car_number1.DATA", "car_number", true},
		{"date2", "date", true},
		{"thing", "", false},
		{"thing.DATA", "", false},
		{"4", "", false},
		{"", "", false},
		{"thingy4", "", false},
		{"Thing4", "", false},
		{"thing4a", "", false},
		{"thing4.data", "", false},
		{"string1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := KeywordType(tt.name)
			if got != tt.want || ok != tt.ok {
				t.Errorf("KeywordType(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestIsKeywordType(t *testing.T) {
	for _, typ := range kwTestTypes {
		if !IsKeywordType(typ) {
			t.Errorf("IsKeywordType(%q) = false, want true", typ)
		}
	}
	for _, typ := range []string{"", "thing4", "string", "THING", "enums"} {
		if IsKeywordType(typ) {
			t.Errorf("IsKeywordType(%q) = true, want false", typ)
		}
	}
}

func TestValidateValid(t *testing.T) {
	valid := map[string][]string{
		"thing": {"配送中", "Order #123 已发货", "a b", strings.Repeat("字", 20), "派对 🎉", "全角　空格",
			"café", "e\u0301", "100%", "(备注)"},
		"short_thing":      {"已完成", "12345", "OK!"},
		"number":           {"0", "123", "3.14", "00123", strings.Repeat("9", 32), "1.0"},
		"letter":           {"abc", "ABCdef", strings.Repeat("a", 32)},
		"symbol":           {"-", "¥", "…", "!?#", "🎉", "❤️", "！？", kwFamily},
		"character_string": {"ABC-123_x", "order#2019", strings.Repeat("x", 32), "2019-10-01"},
		"time": {"15:01", "15:01:05", "09:05", "00:00", "23:59:59", "2019年10月1日 15:01",
			"2019-10-01 15:01", "2019/10/01 15:01:05", "10月1日 15:01", "15:01~16:00",
			"2019年10月1日 15:01~16:00", "2019-10-01 15:01~2019-10-02 09:00"},
		"date": {"2019年10月1日", "2019年10月", "10月1日", "2018-01-01", "2018/01/01", "2018.01.01", "2018-01",
			"01-01", "2018-1-1", "2019年10月1日 15:01", "2018/01/01 12:00~2018/01/02",
			"2018-01-01~2018-01-31", "2019年10月1日 15:01~16:00", "2020-02-29", "02-29", "2000-02-29",
			"2019年10月1日~2019年10月7日", "2019-12-31 23:59:59"},
		"amount": {"￥100元", "¥8.80", "$9.99", "€1", "£0.5", "100元", "100", "1234567890", "12345678.90",
			"¥1234567890元"},
		"phone_number": {"+86-0766-66888866", "13800138000", "(020)88888888", "+1-555-0100", "110"},
		"car_number":   {"粤A8Z888挂", "京A12345", "粤B12345D", "AB1234", "a1"},
		"name": {"张三", "欧阳娜娜", "John Smith", "O'Brien", strings.Repeat("张", 10), "张San",
			strings.Repeat("a", 20), "Jean-Luc Picard"},
		"phrase":      {"配送中", "已发货", strings.Repeat("中", 5)},
		"enum":        {"任意值"},
		"enum_string": {"any value"},
	}
	for _, typ := range kwTestTypes {
		values := valid[typ]
		if len(values) == 0 {
			t.Fatalf("no valid values listed for %s", typ)
		}
		for _, v := range values {
			t.Run(typ+"/"+v, func(t *testing.T) {
				if err := Validate(typ, v); err != nil {
					t.Errorf("Validate(%q, %q) = %v, want nil", typ, v, err)
				}
			})
		}
	}
}

func TestValidateInvalid(t *testing.T) {
	invalid := map[string][]string{
		"thing": {strings.Repeat("字", 21), "line\nbreak", "cr\rhere", "tab\there", "zero\u200dwidth",
			"bidi\u202eoverride", "nul\x00", "bad\xffutf8", "line\u2028sep", "private\ue000use"},
		"short_thing": {"已完成配送了", "123456"},
		"number": {"-1", "+1", "1,000", "1.", ".5", "1.2.3", "12a", "１２", strings.Repeat("9", 33), "1 2", "1e5",
			" 1", "¥1"},
		"letter":           {"abc1", "ab c", "中文", strings.Repeat("a", 33), "a-b", "a_b", "Zoë", "Привет", "ＡＢＣ"},
		"symbol":           {"a", "1", "中", "------", "!a", "é", "- -", "１"},
		"character_string": {"订单123", strings.Repeat("x", 33), "a\nb", "々", "é", "a b", " L-1", "L-1…"},
		"time": {"24:00", "15:60", "15:1", "15", "15:01:60", "2019-10-01", "15:01~", "~15:01",
			"15:01~2019-10-02", "3pm", "15：01", "15:01~16:00~17:00", "2019-13-01 15:01", "115:01",
			"15:01:05:07", "2019年10月1日", "15:01 16:00", "a15:01", "9:05", "15:01 ~ 16:00", "2019年10月1日15:01",
			"2019-10-01  15:01"},
		"date": {"2019-02-29", "2019-13-01", "2019-00-10", "2019-01-32", "2019-04-31", "15:01", "2019年", "10月",
			"2019/01-01", "19-01-01", "2019-01-01 25:00", "2018/01/01~15:00", "2019年10月1号", "tomorrow",
			"2018-01-01~", "2019年13月1日", "1900-02-29", "2019-", "2019--01", "2019-01-01-01", "10月1日1",
			"2019年10月1日 ", "2019年10月1日~2019年10月1日~", "２０１９-01-01", "2019-01-01T15:01"},
		"amount": {"¥", "元", "¥¥100", "100$", "¥1,000", "¥-5", "12345678901", "¥1234567890.5", "RMB100",
			"¥ 100", "100.元", "¥.5", "100元元", "abc"},
		"phone_number": {"400-ABC-1234", "+86-0766-668888661", "---", "电话13800138000", "１３８", "(020) 8888 8888",
			"138１"},
		"car_number": {"粤A8Z888挂X", "A粤1234", "粤A-12345", "粤挂", "粤A 12345", "粤", "粤AÉ1234"},
		"name": {strings.Repeat("张", 11), "张" + strings.Repeat("a", 10), strings.Repeat("a", 21), "John2",
			"R2-D2", "Zoë", " John"},
		"phrase":      {"配送中ok", "配送 中", strings.Repeat("中", 6), "配送中！", "abc"},
		"enum":        {"a\nb"},
		"enum_string": {"\t"},
	}
	for _, typ := range kwTestTypes {
		// Rules shared by every type.
		values := append([]string{"", " ", "\u3000\u3000", "a\nb", "\x00", "\xff"}, invalid[typ]...)
		for _, v := range values {
			t.Run(typ+"/"+v, func(t *testing.T) {
				err := Validate(typ, v)
				var kerr *KeywordError
				if !errors.As(err, &kerr) {
					t.Fatalf("Validate(%q, %q) = %v, want a *KeywordError", typ, v, err)
				}
				if kerr.Type != typ {
					t.Errorf("Type = %q, want %q", kerr.Type, typ)
				}
				if kerr.Rule == "" || kerr.Rule == kwRuleUnknownType {
					t.Errorf("Rule = %q, want the broken rule", kerr.Rule)
				}
			})
		}
	}
}

func TestValidateErrorMessage(t *testing.T) {
	tests := []struct {
		name, typ, value string
		enum             []string
		want             string
	}{
		{"TooLong", "thing", strings.Repeat("字", 23), nil, "thing value has 23 characters, limit 20"},
		{"Empty", "number", "", nil, "number value is empty"},
		{"Blank", "thing", "   ", nil, "thing value is empty"},
		{"Control", "thing", "a\nb", nil, "thing value contains a line break, control or invisible character"},
		{"InvalidUTF8", "thing", "\xff", nil, "thing value is not valid utf-8"},
		{"NotDigits", "number", "-1", nil, "number value must contain only digits with an optional decimal part"},
		{"NotInAlphabet", "character_string", "L 1", nil, "character_string value must not contain spaces"},
		{"NameChinese", "name", strings.Repeat("张", 11), nil,
			"name value has 11 characters, limit 10 with Chinese characters"},
		{"NameLatin", "name", strings.Repeat("a", 21), nil, "name value has 21 characters, limit 20"},
		{"NotInEnum", "enum", "已发货", []string{"待付款", "已付款"}, "enum value is not one of the template's enum values"},
		{"UnknownType", "thingy", "x", nil, `unknown keyword type "thingy"`},
		{"UnknownLongType", strings.Repeat("x", 50), "x", nil,
			`unknown keyword type "` + strings.Repeat("x", 40) + `…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.typ, tt.value, tt.enum...)
			if err == nil {
				t.Fatalf("Validate(%q, %q) = nil, want an error", tt.typ, tt.value)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateUnknownType(t *testing.T) {
	err := Validate("thing4", "x")
	var kerr *KeywordError
	if !errors.As(err, &kerr) {
		t.Fatalf("got %v, want a *KeywordError", err)
	}
	if kerr.Rule != "unknown keyword type" || kerr.Type != "thing4" {
		t.Errorf("got %+v, want Type thing4 and Rule %q", kerr, "unknown keyword type")
	}
}

func TestValidateEnum(t *testing.T) {
	list := []string{"待付款", "已付款", "已发货"}
	tests := []struct {
		name, typ, value string
		enum             []string
		ok               bool
	}{
		{"InList", "enum", "已付款", list, true},
		{"InListString", "enum_string", "已发货", list, true},
		{"NotInList", "enum", "已取消", list, false},
		{"CaseMatters", "enum_string", "OK", []string{"ok"}, false},
		{"NoListAnyValue", "enum", "已取消", nil, true},
		{"NoListEmpty", "enum_string", "", nil, false},
		{"IgnoredForThing", "thing", "已取消", list, true},
		{"IgnoredForNumberStillChecked", "number", "abc", []string{"abc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.typ, tt.value, tt.enum...)
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%q, %q, %q) = %v, want ok %v", tt.typ, tt.value, tt.enum, err, tt.ok)
			}
		})
	}
}

func TestKeywordErrorCutsValue(t *testing.T) {
	long := strings.Repeat("秘", 500)
	err := Validate("thing", long)
	var kerr *KeywordError
	if !errors.As(err, &kerr) {
		t.Fatalf("got %v, want a *KeywordError", err)
	}
	if got := utf8.RuneCountInString(kerr.Value); got != 41 {
		t.Errorf("Value has %d runes, want 41 (40 and an ellipsis)", got)
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(kerr.Value, "…")) {
		t.Errorf("Value %q is not the start of the value", kerr.Value)
	}
	if strings.Contains(err.Error(), "秘") {
		t.Errorf("Error() = %q, want no part of the value", err.Error())
	}
	if !errors.As(Validate("thing", "a\nb"), &kerr) || kerr.Value != "a\nb" {
		t.Errorf("got %+v, want Value %q unchanged", kerr, "a\nb")
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, typ, value, want string
		ok                     bool
	}{
		{"ValidUnchanged", "thing", "配送中", "配送中", true},
		{"ValidUnchangedWithSpaces", "thing", "  a  b ", "  a  b ", true},
		{"ValidOtherType", "date", "2019-10-01", "2019-10-01", true},
		{"ThingLong", "thing", strings.Repeat("字", 25), strings.Repeat("字", 19) + "…", true},
		{"ThingExactly21", "thing", strings.Repeat("a", 21), strings.Repeat("a", 19) + "…", true},
		{"ThingLineBreak", "thing", "line1\nline2", "line1 line2", true},
		{"ThingCRLFRun", "thing", "a\r\n\r\nb", "a b", true},
		{"ThingTab", "thing", "a\tb", "a b", true},
		{"ThingBreakNextToSpace", "thing", "a \n b", "a  b", true},
		{"ThingLeadingBreaks", "thing", "\n\n x \n", "x", true},
		{"ThingZeroWidth", "thing", "a\u200db", "ab", true},
		{"ThingInvalidUTF8", "thing", "ab\xffcd", "ab\ufffdcd", true},
		{"ThingCutAtSpace", "thing", strings.Repeat("a", 18) + " " + strings.Repeat("b", 11),
			strings.Repeat("a", 18) + "…", true},
		{"ThingJoinedEmoji", "thing", strings.Repeat(kwFamily, 25), strings.Repeat(kwFamily, 19) + "…", true},
		{"ThingFlags", "thing", strings.Repeat(kwFlag, 25), strings.Repeat(kwFlag, 19) + "…", true},
		{"ThingSkinTones", "thing", strings.Repeat(kwThumb, 25), strings.Repeat(kwThumb, 19) + "…", true},
		{"ThingCombiningMarks", "thing", strings.Repeat(kwEAcute, 25), strings.Repeat(kwEAcute, 19) + "…", true},
		{"ThingKeepsJoinedEmojiDropsLoneJoiner", "thing", "a\u200db " + kwFamily, "ab " + kwFamily, true},
		{"ThingCutAtIdeographicSpace", "thing", strings.Repeat("字", 18) + "\u3000" + strings.Repeat("字", 5),
			strings.Repeat("字", 18) + "…", true},
		{"ThingOnlyBreaks", "thing", "\n\r\n", "\n\r\n", false},
		{"ThingEmpty", "thing", "", "", false},
		{"ShortThing", "short_thing", "已完成配送了", "已完成配…", true},
		{"ShortThingJoinedEmoji", "short_thing", strings.Repeat(kwFamily, 6), strings.Repeat(kwFamily, 4) + "…", true},
		{"CharacterStringNotCut", "character_string", strings.Repeat("x", 40), strings.Repeat("x", 40), false},
		{"CharacterStringValid", "character_string", "L-1001", "L-1001", true},
		{"CharacterStringCleaned", "character_string", "L-1001\n", "L-1001", true},
		{"CharacterStringInnerSpace", "character_string", "L 1001", "L 1001", false},
		{"CharacterStringChinese", "character_string", "订单" + strings.Repeat("x", 40),
			"订单" + strings.Repeat("x", 40), false},
		{"NameChinese", "name", strings.Repeat("张", 12), strings.Repeat("张", 9) + "…", true},
		{"NameLatin", "name", strings.Repeat("a", 25), strings.Repeat("a", 19) + "…", true},
		{"NameMixed", "name", "张" + strings.Repeat("a", 15), "张" + strings.Repeat("a", 8) + "…", true},
		{"NameDigit", "name", "John2", "John2", false},
		{"NameCutBeforeSpace", "name", "Jean-Luc Picard de la Barre", "Jean-Luc Picard de…", true},
		{"Number", "number", strings.Repeat("1", 33), strings.Repeat("1", 33), false},
		{"Letter", "letter", strings.Repeat("a", 40), strings.Repeat("a", 40), false},
		{"Phrase", "phrase", "配送中心处理中", "配送中心处理中", false},
		{"Date", "date", "2019-13-01", "2019-13-01", false},
		{"Amount", "amount", "¥12345678901", "¥12345678901", false},
		{"Enum", "enum", "a\nb", "a\nb", false},
		{"EnumNeverVouched", "enum", "已付款", "已付款", false},
		{"EnumStringNeverVouched", "enum_string", "ok", "ok", false},
		{"UnknownType", "thingy", "x", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Truncate(tt.typ, tt.value)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Truncate(%q, %q) = %q, %v; want %q, %v", tt.typ, tt.value, got, ok, tt.want, tt.ok)
			}
			if ok {
				if err := Validate(tt.typ, got); err != nil {
					t.Errorf("Validate(%q, %q) = %v, want nil", tt.typ, got, err)
				}
			}
		})
	}
}

// kwRandomString builds a string from pieces chosen to hit every class and rule boundary: mixed scripts,
// full-width forms, emoji sequences, combining marks, spaces of several kinds and invisible characters.
func kwRandomString(r *rand.Rand) string {
	pieces := []string{
		"a", "Z", "é", "Я", "か", "한", "ー", "0", "9", ".", "-", "+", ":", "~", "#", " ", "  ", "\u3000", "…",
		"¥", "元", "年", "月", "日", "中", "字", "々", "Ａ", "ｚ", "１", "٣", "！", "－", "～", "🎉", "❤️", kwFamily,
		kwFlag, "🇨", kwThumb, kwKeycap, "🏳️‍🌈", "e", "\u0301", "\u20e3", "\ufe0f", "\U0001F3FD", "\U000E0067",
		"\n", "\r\n", "\t", "\x00", "\u200b", "\u200c", "\u200d", "\u00ad", "\u202e", "\ufeff", "\ue000",
		"\U000E007F", "\xff", "\xe4\xb8", "2019-10-01", "15:01", "粤A8Z888挂", "\u00a0", "\ufffd",
	}
	var b strings.Builder
	for n := r.IntN(48); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestTruncateProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	truncated := 0
	for range 20000 {
		s := kwRandomString(r)
		for _, typ := range kwTestTypes {
			got, ok := Truncate(typ, s)
			kwCheckTruncate(t, typ, s, got, ok)
			if ok && got != s {
				truncated++
			}
		}
	}
	if truncated == 0 {
		t.Error("no value was ever truncated: the generator misses the interesting cases")
	}
}

// TestTruncatePropertyQuick runs the same contract on testing/quick's strings, whose code points are drawn
// from the whole of Unicode.
func TestTruncatePropertyQuick(t *testing.T) {
	contract := func(typIndex uint8, s string) bool {
		typ := kwTestTypes[int(typIndex)%len(kwTestTypes)]
		got, ok := Truncate(typ, s)
		kwCheckTruncate(t, typ, s, got, ok)
		return true
	}
	if err := quick.Check(contract, &quick.Config{MaxCount: 5000, Rand: mrand.New(mrand.NewSource(1))}); err != nil {
		t.Error(err)
	}
}

// kwCheckTruncate checks the contract of Truncate on one input and its outputs: a value it vouches for
// passes Validate, and a cut keeps whole characters of the cleaned value, never ending with a space.
func kwCheckTruncate(tb testing.TB, typ, value, got string, ok bool) {
	tb.Helper()
	enum := typ == "enum" || typ == "enum_string"
	valid := Validate(typ, value) == nil && !enum
	switch {
	case enum && ok:
		tb.Fatalf("Truncate(%q, %q) = %q, true; want false for an enum type", typ, value, got)
	case valid && (got != value || !ok):
		tb.Fatalf("Truncate(%q, %q) = %q, %v; want the valid value unchanged and true", typ, value, got, ok)
	case !ok && got != value:
		tb.Fatalf("Truncate(%q, %q) = %q, false; want the value unchanged", typ, value, got)
	case ok && !valid:
		if err := Validate(typ, got); err != nil {
			tb.Fatalf("Truncate(%q, %q) = %q, true but Validate: %v", typ, value, got, err)
		}
		clean := kwClean(value)
		if got == clean {
			return
		}
		if !CanTruncate(typ) {
			tb.Fatalf("Truncate(%q, %q) = %q, true; want the cleaned value %q: %s is never cut", typ, value, got, clean, typ)
		}
		kept, cut := strings.CutSuffix(got, "…")
		if !cut || !kwIsCharPrefix(clean, kept) {
			tb.Fatalf("Truncate(%q, %q) = %q, true; want whole characters of %q and an ellipsis", typ, value, got, clean)
		}
		if strings.TrimRightFunc(kept, unicode.IsSpace) != kept {
			tb.Fatalf("Truncate(%q, %q) = %q, true; want no space before the ellipsis", typ, value, got)
		}
	}
}

// kwIsCharPrefix reports whether p is s's first characters, cut between two grapheme clusters.
func kwIsCharPrefix(s, p string) bool {
	n := 0
	for _, c := range kwChars(s) {
		if n == len(p) {
			break
		}
		n += len(c)
	}
	return n == len(p) && s[:n] == p
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"配送中", "2019年10月1日 15:01", "+86-0766-66888866", "粤A8Z888挂", "￥100元",
		"15:01~16:00", "2018/01/01 12:00~2018/01/02", "张San", "a\nb", "\xff", ""} {
		f.Add(uint8(0), s, "")
	}
	f.Add(uint8(12), "已付款", "已付款")
	f.Fuzz(func(t *testing.T, typIndex uint8, value, enum string) {
		typ := kwTestTypes[int(typIndex)%len(kwTestTypes)]
		err := Validate(typ, value, enum)
		if err == nil {
			if strings.TrimSpace(value) == "" || !utf8.ValidString(value) {
				t.Fatalf("Validate(%q, %q) = nil for an empty or invalid value", typ, value)
			}
			r, _ := kwRuleOf(typ)
			text := kwScan(value)
			if text.all&kwInvisible != 0 || text.all&^(r.alphabet|kwSpace) != 0 {
				t.Fatalf("Validate(%q, %q) = nil for a value outside the alphabet", typ, value)
			}
			if limit := r.limit(text); limit > 0 && text.len() > limit {
				t.Fatalf("Validate(%q, %q) = nil for %d characters, limit %d", typ, value, text.len(), limit)
			}
			return
		}
		var kerr *KeywordError
		if !errors.As(err, &kerr) {
			t.Fatalf("Validate(%q, %q) = %v, want a *KeywordError", typ, value, err)
		}
		if n := utf8.RuneCountInString(kerr.Value); n > kwErrorValueRunes+1 {
			t.Fatalf("Value has %d runes, want at most %d", n, kwErrorValueRunes+1)
		}
	})
}

func FuzzTruncate(f *testing.F) {
	for _, s := range []string{strings.Repeat("字", 25), "line1\nline2", "a\u200db", "ab\xffcd", "张" +
		strings.Repeat("a", 15), "\n\r\n", "John2"} {
		f.Add(uint8(0), s)
		f.Add(uint8(10), s)
	}
	f.Fuzz(func(t *testing.T, typIndex uint8, value string) {
		typ := kwTestTypes[int(typIndex)%len(kwTestTypes)]
		got, ok := Truncate(typ, value)
		kwCheckTruncate(t, typ, value, got, ok)
	})
}
