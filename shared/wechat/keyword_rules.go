package wechat

// The rules of keyword values, one row per keyword type, from WeChat's table "订阅消息参数值内容限制说明"
// on the page of subscribeMessage.send:
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html
// docs/keywords.md shows the same table with the reasons for each reading.

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keyword types, as they appear in keyword names (thing4, date2, ...).
const (
	kwThing           = "thing"
	kwNumber          = "number"
	kwLetterType      = "letter"
	kwSymbolType      = "symbol"
	kwCharacterString = "character_string"
	kwTime            = "time"
	kwDate            = "date"
	kwAmount          = "amount"
	kwPhoneNumber     = "phone_number"
	kwCarNumber       = "car_number"
	kwName            = "name"
	kwPhrase          = "phrase"
	kwEnum            = "enum"
	kwEnumString      = "enum_string"
	kwShortThing      = "short_thing"
)

// kwTruncation is what Truncate may do to a value its rule refuses.
type kwTruncation uint8

const (
	kwNoTruncation kwTruncation = iota // nothing: cutting a number, a date or a letter changes its meaning
	kwCleanOnly                        // clean (controls, invisible characters, outer spaces), never cut
	kwCutEllipsis                      // clean, then cut to the limit ending with "…"
)

// kwRule is the rule of one keyword type.
type kwRule struct {
	typ string
	// docLimit and docNote are WeChat's words, quoted: the columns 参数值限制 and 说明 of the page's table;
	// both are empty for a type the page does not list.
	docLimit, docNote string
	// example is a value the rule accepts: WeChat's own example where the page gives one.
	example string
	// reading says how the rule reads the doc where it leaves a choice, and why.
	reading string

	max      int     // characters (grapheme clusters); 0 when the syntax bounds the value
	maxHan   int     // name: the limit of a value with a Chinese character
	alphabet kwClass // the classes of character a value may hold
	// innerSpaces (name) allows single spaces between other characters, where alphabet has no kwSpace.
	innerSpaces bool
	// syntax checks a value whose characters are all in alphabet; it returns the broken rule, or "".
	syntax   func(value string, t *kwText) string
	truncate kwTruncation
}

// kwRules is the table, in the page's order; short_thing and enum_string, which the page does not list,
// close it.
var kwRules = []kwRule{
	{
		typ:      kwThing,
		docLimit: "20个以内字符",
		docNote:  "可汉字、数字、字母或符号组合",
		example:  "某某科技有限公司",
		reading: "The page does not define a character: one is what a reader sees as one (a grapheme " +
			"cluster), so a joined emoji, a flag or a letter with its accents counts one. Spaces are " +
			"none of the four kinds, but thing is free text and holds them anywhere; they count.",
		max:      20,
		alphabet: kwVisible,
		truncate: kwCutEllipsis,
	},
	{
		typ:      kwNumber,
		docLimit: "32位以内数字",
		docNote:  "只能数字,可带小数",
		example:  "339208499",
		reading: "Digits are 0-9 with one optional decimal part; no sign, no thousands separator, no " +
			"exponent. Whether the decimal point counts in the 32 is not said: it counts.",
		max:      32,
		alphabet: kwDigit | kwASCIISymbol,
		syntax:   kwCheckNumber,
	},
	{
		typ:      kwLetterType,
		docLimit: "32位以内字母",
		docNote:  "只能字母",
		example:  "ABCdef",
		reading: "Letters are English ones, A-Z and a-z: the note under the table sets 字母 against 中文 and " +
			"数字 as 英文. Accented, Cyrillic, kana and full-width letters are refused; so are spaces.",
		max:      32,
		alphabet: kwLetter,
	},
	{
		typ:      kwSymbolType,
		docLimit: "5位以内符号",
		docNote:  "只能符号",
		example:  "¥",
		reading: "A symbol is, by the note, a common one other than Chinese, English letters and digits: " +
			"punctuation and symbols, full-width ones and emoji included. A space is not a symbol, " +
			"nor a digit or letter of any form. \"Common\" is not defined: every punctuation and " +
			"symbol character passes.",
		max:      5,
		alphabet: kwASCIISymbol | kwSymbol,
	},
	{
		typ:      kwCharacterString,
		docLimit: "32位以内数字、字母或符号",
		docNote:  "可数字、字母或符号组合",
		example:  "L-1001",
		reading: "It holds codes (order numbers, tracking numbers): digits 0-9, letters A-Z and a-z and " +
			"the ASCII symbols, no space anywhere. Whether a code may hold other symbols (…, ￥, " +
			"full-width ones) is not said: they are refused, since a code is typed in ASCII. Truncate " +
			"never cuts one: a cut code is another code.",
		max:      32,
		alphabet: kwDigit | kwLetter | kwASCIISymbol,
		truncate: kwCleanOnly,
	},
	{
		typ:      kwTime,
		docLimit: "24小时制时间格式(支持+年月日),支持填时间段,两个时间点之间用“~”符号连接",
		docNote:  "例如:15:01,或:2019年10月1日 15:01",
		example:  "2019年10月1日 15:01",
		reading: "The note says \"时间格式支持HH:MM:SS或者HH:MM\": hours have two digits. A date comes first, then " +
			"one space, as in the example; \"~\" joins two points with no space around it.",
		alphabet: kwDigit | kwASCIISymbol | kwHan | kwSpace,
		syntax:   kwCheckTime,
	},
	{
		typ:      kwDate,
		docLimit: "年月日格式(支持+24小时制时间),支持填时间段,两个时间点之间用“~”符号连接",
		docNote:  "例如:2019年10月1日,或:2019年10月1日 15:01",
		example:  "2019年10月1日",
		reading: "The note lists y年m月d日, y年m月 and m月d日, or the same joined by '-', '/' or '.' (2018-01-01, " +
			"2018/01/01, 2018.01.01, 2018-01, 01-01): months and days of one or two digits, years of " +
			"four, a day that exists. A time follows after one space; the end of a range may be a " +
			"time alone when its start has one.",
		alphabet: kwDigit | kwASCIISymbol | kwHan | kwSpace,
		syntax:   kwCheckDate,
	},
	{
		typ:      kwAmount,
		docLimit: "1个币种符号+10位以内纯数字,可带小数,结尾可带“元”",
		docNote:  "可带小数",
		example:  "￥100元",
		reading: "The currency symbol (one character of Unicode category Sc: ¥ ￥ $ € £) is optional by " +
			"choice: \"100元\" is the common Chinese form and what a number field with the suffix 元 " +
			"produces. The 10 digits include the decimals; no space, no thousands separator.",
		alphabet: kwDigit | kwASCIISymbol | kwSymbol | kwHan,
		syntax:   kwCheckAmount,
	},
	{
		typ:      kwPhoneNumber,
		docLimit: "17位以内,数字、符号",
		docNote:  "电话号码,例:+86-0766-66888866",
		example:  "+86-0766-66888866",
		reading: "Digits 0-9 and ASCII symbols, at least one digit. A space is not a symbol: it is " +
			"refused, as in the example, which joins the parts with '-'. Full-width digits and " +
			"symbols are refused.",
		max:      17,
		alphabet: kwDigit | kwASCIISymbol,
		syntax:   kwCheckPhoneNumber,
	},
	{
		typ:      kwCarNumber,
		docLimit: "8位以内,第一位与最后一位可为汉字,其余为字母或数字",
		docNote:  "车牌号码:粤A8Z888挂",
		example:  "粤A8Z888挂",
		reading:  "Letters A-Z and a-z and digits 0-9, at least one of them; no space, no symbol.",
		max:      8,
		alphabet: kwHan | kwLetter | kwDigit,
		syntax:   kwCheckCarNumber,
	},
	{
		typ:      kwName,
		docLimit: "10个以内纯汉字或20个以内纯字母或符号",
		docNote:  "中文名10个汉字内;纯英文名20个字母内;中文和字母混合按中文名算,10个字内",
		example:  "张三",
		reading: "Letters are A-Z and a-z (an English name), symbols as for symbol; a value with a Chinese " +
			"character has the limit 10. A space is neither, but an English name is written with " +
			"spaces: single spaces between words pass and count, a space at either end or two in a " +
			"row do not.",
		max:         20,
		maxHan:      10,
		alphabet:    kwHan | kwLetter | kwASCIISymbol | kwSymbol,
		innerSpaces: true,
		truncate:    kwCutEllipsis,
	},
	{
		typ:      kwPhrase,
		docLimit: "5个以内汉字",
		docNote:  "5个以内纯汉字,例如:配送中",
		example:  "配送中",
		reading:  "Chinese characters only: no space, letter, digit, punctuation or emoji.",
		max:      5,
		alphabet: kwHan,
	},
	{
		typ:      kwEnum,
		docLimit: "只能上传枚举值范围内的字段值",
		docNote:  "调用接口获取参考枚举值",
		example:  "已付款",
		reading: "One of the template's values (keywordEnumValueList), compared exactly. A forum answer " +
			"from WeChat says several values joined by commas pass, the page says one value: several " +
			"are refused, with that reason. Without the list, any visible text passes and WeChat has " +
			"the last word.",
		alphabet: kwVisible,
	},
	{
		typ:      kwShortThing,
		example:  "已完成",
		reading:  "Not on the page, but templates have it: read as thing with a limit of 5 characters.",
		max:      5,
		alphabet: kwVisible,
		truncate: kwCutEllipsis,
	},
	{
		typ:     kwEnumString,
		example: "已付款",
		reading: "Not on the page, but templates have it, with values in keywordEnumValueList: read as " +
			"enum.",
		alphabet: kwVisible,
	},
}

// kwRuleOf returns the rule of typ.
func kwRuleOf(typ string) (*kwRule, bool) {
	for i := range kwRules {
		if kwRules[i].typ == typ {
			return &kwRules[i], true
		}
	}
	return nil, false
}

func (r *kwRule) isEnum() bool { return r.typ == kwEnum || r.typ == kwEnumString }

// limit returns the character limit of a value; 0 for none.
func (r *kwRule) limit(t *kwText) int {
	if r.maxHan > 0 && t.all&kwHan != 0 {
		return r.maxHan
	}
	return r.max
}

// kwDigits returns the length of the run of ASCII digits at the start of s.
func kwDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// kwIsDecimal reports whether s is digits with an optional "." and more digits.
func kwIsDecimal(s string) bool {
	n := kwDigits(s)
	if n == 0 {
		return false
	}
	if n == len(s) {
		return true
	}
	if s[n] != '.' {
		return false
	}
	f := kwDigits(s[n+1:])
	return f > 0 && n+1+f == len(s)
}

func kwCheckNumber(s string, _ *kwText) string {
	if !kwIsDecimal(s) {
		return "must contain only digits with an optional decimal part"
	}
	return ""
}

// kwCheckAmount accepts [currency symbol] digits [. digits] [元] with at most 10 digits.
func kwCheckAmount(s string, _ *kwText) string {
	if r, size := utf8.DecodeRuneInString(s); unicode.Is(unicode.Sc, r) {
		s = s[size:]
	}
	s = strings.TrimSuffix(s, "元")
	if !kwIsDecimal(s) || len(s)-strings.Count(s, ".") > 10 {
		return "must be an optional currency symbol, at most 10 digits with optional decimals and an optional 元"
	}
	return ""
}

func kwCheckPhoneNumber(_ string, t *kwText) string {
	if t.all&kwDigit == 0 {
		return "must contain a digit"
	}
	return ""
}

// kwCheckCarNumber accepts Chinese characters only first and last, and needs a letter or digit.
func kwCheckCarNumber(_ string, t *kwText) string {
	for i, c := range t.classes {
		if c == kwHan && i != 0 && i != len(t.classes)-1 {
			return "must have Chinese characters only first and last"
		}
	}
	if t.all&(kwLetter|kwDigit) == 0 {
		return "must contain a letter or digit"
	}
	return ""
}

// KeywordRule returns what WeChat's table says of keyword type typ - the
// limit (参数值限制) and the note (说明), quoted, and an example value the
// rule accepts - for operators' views such as the console's template
// catalog. ok is false for an unknown type; limit and note are empty for a
// type the page does not list.
func KeywordRule(typ string) (limit, note, example string, ok bool) {
	r, ok := kwRuleOf(typ)
	if !ok {
		return "", "", "", false
	}
	return r.docLimit, r.docNote, r.example, true
}
