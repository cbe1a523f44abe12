package wechat

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keyword value rules of subscribe messages, checked before a send so that a value WeChat would refuse
// (errcode 47003) is reported with the field and the rule instead of costing a call. The rules are one
// table, kwRules (keyword_rules.go); docs/keywords.md explains each row.

const (
	kwErrorValueRunes = 40 // runes of the value kept in a KeywordError
	kwEllipsis        = "…"
)

// kwRuleUnknownType is the Rule of a KeywordError for a type this package does not know.
const kwRuleUnknownType = "unknown keyword type"

// KeywordError reports a keyword value that breaks the rule of its type.
//
// Type is the keyword type (thing, date, ...), Value the offending value cut to at most its first 40
// runes, at a character boundary, marked with "…" (so an error never carries a large or sensitive value
// in full) and Rule what is wrong, phrased to follow "<type> value": "has 23 characters, limit 20". For
// a type this package does not know, Rule is "unknown keyword type".
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

// kwShorten cuts s to at most n runes, marking a cut with an ellipsis. It cuts between characters when
// the first one is shorter than n runes, so that a joined emoji is kept whole or dropped.
func kwShorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	end, runes := 0, 0
	if utf8.ValidString(s) {
		for _, c := range kwChars(s) {
			k := utf8.RuneCountInString(c)
			if runes+k > n {
				break
			}
			end, runes = end+len(c), runes+k
		}
	}
	if end == 0 {
		for i := range s {
			if runes == n {
				end = i
				break
			}
			runes++
		}
	}
	return s[:end] + kwEllipsis
}

// IsKeywordType reports whether typ is a keyword type Validate knows: thing, number, letter, symbol,
// character_string, time, date, amount, phone_number, car_number, name, phrase, enum, short_thing or
// enum_string.
func IsKeywordType(typ string) bool {
	_, ok := kwRuleOf(typ)
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
// such as "thing4": see KeywordType). It returns nil or a *KeywordError whose Rule says what is wrong.
//
// The rules are WeChat's table on the page of subscribeMessage.send
// (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html),
// read as docs/keywords.md explains: where the page leaves a doubt, the reading that WeChat surely accepts
// is taken, and a value that could be read either way is refused with the reason.
//
// A character is what a reader sees as one: an extended grapheme cluster (Unicode UAX #29), so that a
// joined emoji (👨‍👩‍👧), a flag (🇨🇳) or a letter and its combining accents count one. Characters are:
//   - Chinese: of the Han script;
//   - digits: 0-9 only; letters: A-Z and a-z only (the page's 英文);
//   - symbols: punctuation and symbols, full-width ones and emoji included; ASCII symbols are the
//     printable ASCII ones other than letters, digits and the space;
//   - spaces (U+0020, the ideographic space U+3000, U+00A0 ...), which are no symbol;
//   - other letters (é, Я, か, full-width Ａ) and digits (full-width １, ٣), which only free text holds.
//
// Every type refuses an empty value (spaces only count as empty), invalid UTF-8, line breaks, tabs,
// control and format characters (a zero-width joiner outside an emoji sequence, bidi controls, ...),
// private-use and unassigned code points. Then, by type:
//   - thing: at most 20 characters of any kind, spaces included; short_thing: at most 5;
//   - number: at most 32 characters, digits with an optional decimal part ("12", "3.14");
//   - letter: at most 32 letters; symbol: at most 5 symbols;
//   - character_string: at most 32 digits, letters and ASCII symbols, no space ("L-1001");
//   - phone_number: at most 17 digits and ASCII symbols, at least one digit, no space ("+86-0766-66888866");
//   - car_number: at most 8 letters and digits, the first and the last may be Chinese ("粤A8Z888挂");
//   - name: Chinese characters, letters and symbols, single spaces between words; at most 10 characters
//     when it holds a Chinese character, else at most 20;
//   - phrase: at most 5 Chinese characters ("配送中");
//   - date: a date, optionally followed by one space and a time, or two joined by "~" (no spaces around it)
//     whose end may be a time alone when its start has a time. Dates: "2019年10月1日", "2019年10月",
//     "10月1日", and with "-", "/" or "." "2018-01-01", "2018-01", "01-01" (months and days of one or two
//     digits, years of four; the day must exist). Times: "15:01" or "15:01:05", 24-hour, two-digit hours;
//   - time: a time, optionally after a date and one space, or two joined by "~", each with a time;
//   - amount: an optional currency symbol (Unicode category Sc: ¥ ￥ $ € £ ...), at most 10 digits
//     (decimals included) with an optional decimal part, an optional "元": "￥100元", "$9.99", "100";
//   - enum, enum_string: one of enum, compared exactly. With no enum values given (the caller does not know
//     the template's keywordEnumValueList), any value passing the shared rules is accepted, and WeChat has
//     the last word. enum is ignored for the other types.
func Validate(typ, value string, enum ...string) error {
	r, ok := kwRuleOf(typ)
	if !ok {
		return kwError(typ, value, kwRuleUnknownType)
	}
	if strings.TrimFunc(value, unicode.IsSpace) == "" {
		return kwError(typ, value, "is empty")
	}
	if !utf8.ValidString(value) {
		return kwError(typ, value, "is not valid utf-8")
	}
	if rule := r.check(value, kwScan(value), enum); rule != "" {
		return kwError(typ, value, rule)
	}
	return nil
}

// check applies the rule to a non-empty, valid UTF-8 value and returns the broken rule, or "".
func (r *kwRule) check(value string, t *kwText, enum []string) string {
	if t.all&kwInvisible != 0 {
		return "contains a line break, control or invisible character"
	}
	alphabet := r.alphabet
	if r.innerSpaces {
		alphabet |= kwSpace
	}
	for _, c := range t.classes {
		if c&alphabet == 0 {
			return "must not contain " + kwForbidden(c, alphabet)
		}
	}
	if r.innerSpaces && t.all&kwSpace != 0 {
		for i, c := range t.classes {
			if c == kwSpace && (i == 0 || i == len(t.classes)-1 || t.classes[i+1] == kwSpace) {
				return "must not start or end with a space, nor have two in a row"
			}
		}
	}
	if r.syntax != nil {
		if rule := r.syntax(value, t); rule != "" {
			return rule
		}
	}
	if r.isEnum() && len(enum) > 0 && !slices.Contains(enum, value) {
		if parts := strings.Split(value, ","); len(parts) > 1 && !slices.ContainsFunc(parts, func(p string) bool {
			return !slices.Contains(enum, p)
		}) {
			return "holds several of the template's enum values, where WeChat's page allows one"
		}
		return "is not one of the template's enum values"
	}
	if limit := r.limit(t); limit > 0 && t.len() > limit {
		if r.maxHan > 0 && t.all&kwHan != 0 {
			return fmt.Sprintf("has %d characters, limit %d with Chinese characters", t.len(), limit)
		}
		return fmt.Sprintf("has %d characters, limit %d", t.len(), limit)
	}
	return ""
}

// Truncate returns value made to pass Validate(typ, ·) and ok = true, for the types whose values it may
// change: thing, short_thing and name are cleaned and cut, character_string is only cleaned. A value that
// already passes Validate is returned unchanged with ok = true, whatever its type, except enum and
// enum_string: Truncate does not know their values, so it always answers ok = false for them and only
// Validate with the list decides.
//
// Cleaning turns line breaks, tabs and other controls into single spaces, drops other invisible code
// points (a zero-width joiner outside an emoji sequence, bidi controls, private-use and unassigned ones),
// turns invalid UTF-8 into U+FFFD, collapses the runs of spaces it leaves and trims the ends. Cutting keeps
// the first characters of a value over its limit (whole grapheme clusters: a joined emoji, a flag or a
// letter and its accents are never split), drops the spaces they end with and adds an ellipsis "…", the
// whole within the limit; for name the limit is 10 when the cleaned value holds a Chinese character, else
// 20. A character_string is never cut: a code cut short is another code.
//
// If the result still breaks the rule (a digit in a name, Chinese in a character_string, a code over 32
// characters), or the type is none of those four (cutting a number, a date or an amount changes its
// meaning, and letter, symbol and phrase have no room for an ellipsis in their alphabet), Truncate returns
// value unchanged and ok = false.
func Truncate(typ, value string) (string, bool) {
	r, ok := kwRuleOf(typ)
	if !ok || r.isEnum() {
		return value, false
	}
	if Validate(typ, value) == nil {
		return value, true
	}
	if r.truncate == kwNoTruncation {
		return value, false
	}
	s := kwClean(value)
	if r.truncate == kwCutEllipsis {
		if limit := r.limit(kwScan(s)); limit > 0 {
			s = kwCut(s, limit)
		}
	}
	if Validate(typ, s) != nil {
		return value, false
	}
	return s, true
}

// CanTruncate reports whether Truncate may shorten a value of type typ that is too long: true for thing,
// short_thing and name.
func CanTruncate(typ string) bool {
	r, ok := kwRuleOf(typ)
	return ok && r.truncate == kwCutEllipsis
}
