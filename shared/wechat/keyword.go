package wechat

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keyword value rules of subscribe messages, checked before a send so that a value WeChat would refuse
// (errcode 47003) is reported with the field and the rule instead of costing a call.
// Rules: https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html

// Keyword types of subscribe message templates, as they appear in keyword names (thing4, date2, ...).
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

// kwRuneLimit returns the maximum rune count of the types that have one; name has its own rule.
func kwRuneLimit(typ string) (int, bool) {
	switch typ {
	case kwThing:
		return 20, true
	case kwNumber, kwLetterType, kwCharacterString:
		return 32, true
	case kwPhoneNumber:
		return 17, true
	case kwCarNumber:
		return 8, true
	case kwShortThing, kwSymbolType, kwPhrase:
		return 5, true
	}
	return 0, false
}

const (
	kwNameChineseLimit = 10 // a name with at least one Chinese character
	kwNameLatinLimit   = 20 // a name without Chinese characters
	kwAmountDigits     = 10 // digits of an amount, decimals included
	kwErrorValueRunes  = 40 // runes of the value kept in a KeywordError
	kwEllipsis         = "…"
)

// kwRuleUnknownType is the Rule of a KeywordError for a type this package does not know.
const kwRuleUnknownType = "unknown keyword type"

// KeywordError reports a keyword value that breaks the rule of its type.
//
// Type is the keyword type (thing, date, ...), Value the offending value cut to its first 40 runes (so an
// error never carries a large or sensitive value in full) and Rule what is wrong, phrased to follow
// "<type> value": "has 23 characters, limit 20". For a type this package does not know, Rule is
// "unknown keyword type".
type KeywordError struct {
	Type  string
	Value string
	Rule  string
}

// Error returns "<type> value <rule>", e.g. "thing value has 23 characters, limit 20"; it never includes the
// value itself.
func (e *KeywordError) Error() string {
	if e.Rule == kwRuleUnknownType {
		return fmt.Sprintf("%s %q", kwRuleUnknownType, kwShorten(e.Type, kwErrorValueRunes))
	}
	return e.Type + " value " + e.Rule
}

func kwError(typ, value, rule string) *KeywordError {
	return &KeywordError{Type: typ, Value: kwShorten(value, kwErrorValueRunes), Rule: rule}
}

// kwShorten cuts s to at most n runes, marking a cut with an ellipsis.
func kwShorten(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i] + kwEllipsis
		}
		count++
	}
	return s
}

// IsKeywordType reports whether typ is a keyword type Validate knows: thing, number, letter, symbol,
// character_string, time, date, amount, phone_number, car_number, name, phrase, enum, enum_string or
// short_thing.
func IsKeywordType(typ string) bool {
	switch typ {
	case kwTime, kwDate, kwAmount, kwName, kwEnum, kwEnumString:
		return true
	}
	_, ok := kwRuneLimit(typ)
	return ok
}

// KeywordType returns the type of a template keyword name: "thing4" and "thing4.DATA" give "thing",
// "character_string9" gives "character_string". A name is a known type followed by at least one ASCII
// digit, optionally followed by ".DATA"; ok is false for anything else.
func KeywordType(name string) (typ string, ok bool) {
	name = strings.TrimSuffix(name, ".DATA")
	typ = strings.TrimRight(name, "0123456789")
	if len(typ) == len(name) || !IsKeywordType(typ) {
		return "", false
	}
	return typ, true
}

// Validate checks value against the rule of keyword type typ (a type such as "thing", not a keyword name
// such as "thing4": see KeywordType). It returns nil or a *KeywordError.
//
// Characters are counted as Unicode code points (runes), in these classes:
//   - Chinese: a rune of the Han script;
//   - digit: an ASCII digit 0-9;
//   - letter: a letter of any other script (Latin, Cyrillic, kana, ...);
//   - symbol: any other printable rune: punctuation, symbols, emoji, other digits, and spaces (U+0020,
//     the ideographic space U+3000 and the other space separators);
//   - a combining mark counts in the class of the rune it follows.
//
// Every type refuses an empty value (spaces only count as empty), invalid UTF-8, line breaks, tabs,
// control and format characters (such as zero-width joiners or bidi controls), private-use and
// unassigned code points.
//
// The rules of each type:
//   - thing: at most 20 characters of any class; short_thing: at most 5;
//   - number: at most 32 characters, ASCII digits with an optional decimal part ("12", "3.14"); no sign,
//     no thousands separators;
//   - letter: at most 32 letters; symbol: at most 5 symbols;
//   - character_string: at most 32 characters, no Chinese;
//   - phone_number: at most 17 digits and symbols, at least one digit ("+86-0766-66888866");
//   - car_number: at most 8 characters, ASCII letters and digits, the first and the last may be Chinese
//     ("粤A8Z888挂");
//   - name: Chinese characters, letters and symbols (no digits); at most 10 characters when it contains a
//     Chinese character, else at most 20;
//   - phrase: at most 5 Chinese characters ("配送中");
//   - date: a date, optionally followed by a 24-hour time, or a range of two joined by "~" whose end may be
//     a time alone when its start has a time. Dates: "2019年10月1日", "2019年10月", "10月1日", and with "-",
//     "/" or "." as separator "2018-01-01", "2018-01", "01-01" (months and days of one or two digits, years
//     of four; the date must exist). Times: "15:01" or "15:01:05", hours of one or two digits. A time
//     follows its date after spaces (or directly after "日"); spaces around "~" are allowed;
//   - time: a 24-hour time, optionally preceded by a date, or a range of two joined by "~", each with a time;
//   - amount: an optional currency symbol (one rune of Unicode category Sc: ¥ ￥ $ € £ ...), then at most
//     10 digits (decimals included, "12345678.90") with an optional decimal part, then an optional "元":
//     "￥100元", "$9.99", "100元" and "100" pass. The symbol is optional by choice: "100元" is the
//     common Chinese form, and requiring a symbol would refuse values that are plainly amounts;
//   - enum, enum_string: one of enum, compared exactly. With no enum values given (the caller does not know
//     the template's keywordEnumValueList), any value passing the shared rules is accepted, and WeChat has
//     the last word. enum is ignored for the other types.
func Validate(typ, value string, enum ...string) error {
	if !IsKeywordType(typ) {
		return kwError(typ, value, kwRuleUnknownType)
	}
	if strings.TrimFunc(value, unicode.IsSpace) == "" {
		return kwError(typ, value, "is empty")
	}
	if !utf8.ValidString(value) {
		return kwError(typ, value, "is not valid utf-8")
	}
	st := kwScan(value)
	if st.other > 0 {
		return kwError(typ, value, "contains a line break, control or invisible character")
	}
	if rule := kwCheck(typ, value, st, enum); rule != "" {
		return kwError(typ, value, rule)
	}
	return nil
}

// kwCheck applies the rule of typ to a non-empty, printable value and returns the broken rule, or "".
func kwCheck(typ, value string, st kwStats, enum []string) string {
	switch typ {
	case kwThing, kwShortThing:
		// every printable rune is allowed
	case kwNumber:
		if !kwIsDecimal(value) {
			return "must contain only digits with an optional decimal part"
		}
	case kwLetterType:
		if st.letter != st.runes {
			return "must contain only letters"
		}
	case kwSymbolType:
		if st.symbol != st.runes {
			return "must contain only symbols"
		}
	case kwCharacterString:
		if st.han > 0 {
			return "must not contain Chinese characters"
		}
	case kwPhoneNumber:
		if st.digit+st.symbol != st.runes {
			return "must contain only digits and symbols"
		}
		if st.digit == 0 {
			return "must contain a digit"
		}
	case kwCarNumber:
		if !kwIsCarNumber(value) {
			return "must be letters and digits, the first and the last may be Chinese"
		}
	case kwName:
		if st.digit > 0 {
			return "must contain only Chinese characters, letters and symbols"
		}
		if st.han > 0 && st.runes > kwNameChineseLimit {
			return fmt.Sprintf("has %d characters, limit %d with Chinese characters", st.runes, kwNameChineseLimit)
		}
		if st.runes > kwNameLatinLimit {
			return fmt.Sprintf("has %d characters, limit %d", st.runes, kwNameLatinLimit)
		}
	case kwPhrase:
		if st.han != st.runes {
			return "must contain only Chinese characters"
		}
	case kwDate:
		if !kwIsDateRange(value) {
			return "is not a date or date range such as 2019年10月1日, 2018-01-01 15:01 or 2018/01/01~2018/01/02"
		}
	case kwTime:
		if !kwIsTimeRange(value) {
			return "is not a 24-hour time or time range such as 15:01, 15:01:05 or 2019年10月1日 15:01~16:00"
		}
	case kwAmount:
		if !kwIsAmount(value) {
			return "must be an optional currency symbol, at most 10 digits with optional decimals and an optional 元"
		}
	case kwEnum, kwEnumString:
		if len(enum) > 0 && !kwContains(enum, value) {
			return "is not one of the template's enum values"
		}
	}
	if limit, ok := kwRuneLimit(typ); ok && st.runes > limit {
		return fmt.Sprintf("has %d characters, limit %d", st.runes, limit)
	}
	return ""
}

func kwContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// kwClass is the character class of a rune.
type kwClass uint8

const (
	kwOther  kwClass = iota // not printable: control, line break, format, private-use, unassigned
	kwHan                   // Chinese
	kwDigit                 // ASCII digit
	kwLetter                // letter of a script other than Han
	kwSymbol                // any other printable rune, spaces included
)

func kwClassOf(r rune) kwClass {
	switch {
	case r >= '0' && r <= '9':
		return kwDigit
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return kwLetter
	case r < utf8.RuneSelf:
		if r >= ' ' && r < 0x7f {
			return kwSymbol
		}
		return kwOther
	case unicode.Is(unicode.Han, r):
		return kwHan
	case !unicode.IsGraphic(r):
		return kwOther
	case unicode.IsLetter(r):
		return kwLetter
	}
	return kwSymbol
}

// kwStats counts the runes of a value by class.
type kwStats struct {
	runes, han, digit, letter, symbol, other int
}

// kwScan classifies the runes of s; a combining mark counts in the class of the rune before it.
func kwScan(s string) kwStats {
	var st kwStats
	prev := kwSymbol
	for _, r := range s {
		c := kwClassOf(r)
		if c != kwOther && st.runes > 0 && unicode.Is(unicode.M, r) {
			c = prev
		}
		st.runes++
		switch c {
		case kwHan:
			st.han++
		case kwDigit:
			st.digit++
		case kwLetter:
			st.letter++
		case kwSymbol:
			st.symbol++
		default:
			st.other++
		}
		prev = c
	}
	return st
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

// kwIsAmount reports whether s is [currency symbol] digits [. digits] [元] with at most 10 digits.
func kwIsAmount(s string) bool {
	if r, size := utf8.DecodeRuneInString(s); unicode.Is(unicode.Sc, r) {
		s = s[size:]
	}
	s = strings.TrimSuffix(s, "元")
	if !kwIsDecimal(s) {
		return false
	}
	return len(s)-strings.Count(s, ".") <= kwAmountDigits
}

// kwIsCarNumber reports whether s is ASCII letters and digits, with the first and the last rune allowed
// to be Chinese, and at least one letter or digit.
func kwIsCarNumber(s string) bool {
	runes := []rune(s)
	plain := 0
	for i, r := range runes {
		switch c := kwClassOf(r); {
		case r < utf8.RuneSelf && (c == kwLetter || c == kwDigit):
			plain++
		case c == kwHan && (i == 0 || i == len(runes)-1):
		default:
			return false
		}
	}
	return plain > 0
}

// Truncate returns value shortened so that it passes Validate(typ, ·), for the free-text types thing,
// short_thing, name and character_string, and ok = true. A value that already passes Validate is
// returned unchanged with ok = true, whatever its type, except enum and enum_string: Truncate does not
// know their values, so it always answers ok = false for them and only Validate with the list decides.
//
// Otherwise, line breaks, tabs and control characters become single spaces, other invisible characters
// (format, private-use, unassigned) are removed, runs of spaces they leave are collapsed and the ends
// trimmed; then a value over the limit keeps its first runes and ends with an ellipsis "…" (one rune), the
// whole within the limit. For name the limit is 10 when the cleaned value contains a Chinese character,
// else 20. If the result still breaks the rule (a digit in a name, Chinese in a character_string), or
// the type is not one of those four (cutting a number, a date or an amount changes its meaning, and letter
// cannot end with an ellipsis), Truncate returns value unchanged and ok = false.
func Truncate(typ, value string) (string, bool) {
	if typ == kwEnum || typ == kwEnumString {
		return value, false
	}
	if Validate(typ, value) == nil {
		return value, true
	}
	var limit int
	switch typ {
	case kwThing, kwShortThing, kwCharacterString:
		limit, _ = kwRuneLimit(typ)
	case kwName:
		limit = kwNameLatinLimit
	default:
		return value, false
	}
	s := kwClean(value)
	if typ == kwName && kwScan(s).han > 0 {
		limit = kwNameChineseLimit
	}
	s = kwCut(s, limit)
	if Validate(typ, s) != nil {
		return value, false
	}
	return s, true
}

// kwClean replaces line breaks, tabs and control characters with spaces, drops other invisible runes and
// invalid UTF-8 bytes become U+FFFD; a replaced run becomes one space, and the ends are trimmed.
func kwClean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pending := false // a replaced run waits to be written as one space
	lastSpace := true
	for _, r := range s {
		if kwClassOf(r) == kwOther {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				pending = true
			}
			continue
		}
		space := unicode.IsSpace(r)
		if pending && !lastSpace && !space {
			b.WriteByte(' ')
		}
		pending = false
		b.WriteRune(r)
		lastSpace = space
	}
	return strings.TrimFunc(b.String(), unicode.IsSpace)
}

// kwCut shortens s to at most limit runes, the last being an ellipsis when anything was cut.
func kwCut(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	keep := 0
	for i := range s {
		if keep == limit-1 {
			return strings.TrimRightFunc(s[:i], unicode.IsSpace) + kwEllipsis
		}
		keep++
	}
	return s
}
