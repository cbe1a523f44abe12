package wechat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// One table per keyword type: WeChat's own examples, the limit and one past it in Chinese, emoji and
// joined emoji, full-width forms, inner and outer spaces. want is "" for a value the rule accepts, else
// the Rule of the *KeywordError.

const (
	kwFamily = "👨‍👩‍👧"   // five code points joined by zero-width joiners: one character
	kwFlag   = "🇨🇳"      // two regional indicators: one character
	kwThumb  = "👍🏽"      // an emoji and a skin tone modifier: one character
	kwKeycap = "1️⃣"     // a digit, a variation selector and the keycap mark: one character
	kwEAcute = "e\u0301" // e and a combining acute accent: one character, é

	kwRuleInvisible = "contains a line break, control or invisible character"
	kwRuleSpaces    = "must not contain spaces"
	kwRuleChinese   = "must not contain Chinese characters"
	kwRuleDigits    = "must not contain digits"
	kwRuleLetters   = "must not contain letters"
	kwRuleSymbols   = "must not contain symbols"
	kwRuleWideDigit = "must not contain digits other than 0-9, such as full-width ones"
	kwRuleOtherLtr  = "must not contain letters other than A-Z and a-z, such as é or full-width ones"
	kwRuleNonASCII  = "must not contain symbols other than ASCII ones, such as … or full-width ones"
)

type kwCase struct {
	name, value, want string
}

func kwRunCases(t *testing.T, typ string, cases []kwCase, enum ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(typ, tc.value, enum...)
			got := ""
			if err != nil {
				var kerr *KeywordError
				if !errors.As(err, &kerr) {
					t.Fatalf("Validate(%q, %q) = %v, want a *KeywordError", typ, tc.value, err)
				}
				got = kerr.Rule
			}
			if got != tc.want {
				t.Errorf("Validate(%q, %q): got rule %q, want %q", typ, tc.value, got, tc.want)
			}
		})
	}
}

// kwLimit is the rule broken by a value of n characters under limit.
func kwLimit(n, limit int) string {
	return fmt.Sprintf("has %d characters, limit %d", n, limit)
}

func TestKeywordThing(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "thing", []kwCase{
		{"Example", "某某科技有限公司", ""},
		{"AllFourKinds", "Order #123 已发货", ""},
		{"Max20CJK", r("字", 20), ""},
		{"Over20CJK", r("字", 21), kwLimit(21, 20)},
		{"Max20Emoji", r("🎉", 20), ""},
		{"Over20Emoji", r("🎉", 21), kwLimit(21, 20)},
		{"JoinedEmoji", "家庭 " + kwFamily, ""},
		{"Max20JoinedEmoji", r(kwFamily, 20), ""},
		{"Over20JoinedEmoji", r(kwFamily, 21), kwLimit(21, 20)},
		{"Max20Flags", r(kwFlag, 20), ""},
		{"Over20Flags", r(kwFlag, 21), kwLimit(21, 20)},
		{"Max20SkinTones", r(kwThumb, 20), ""},
		{"Keycaps", r(kwKeycap, 20), ""},
		{"RainbowFlag", "🏳️‍🌈", ""},
		{"TagFlag", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", ""},
		{"Max20Combining", r(kwEAcute, 20), ""},
		{"Over20Combining", r(kwEAcute, 21), kwLimit(21, 20)},
		{"FullWidth", "ＡＢＣ１２３！", ""},
		{"InnerSpaces", "a b\u3000c", ""},
		{"OuterSpaces", " 已发货 ", ""},
		{"Max20WithSpaces", " " + r("字", 18) + " ", ""},
		{"SpacesCount", " " + r("字", 20), kwLimit(21, 20)},
		{"LoneJoiner", "a\u200db", kwRuleInvisible},
		{"TrailingJoiner", "🎉\u200d", kwRuleInvisible},
		{"JoinerBeforeLetter", "🎉\u200da", kwRuleInvisible},
		{"ZeroWidthSpace", "a\u200bb", kwRuleInvisible},
		{"SoftHyphen", "a\u00adb", kwRuleInvisible},
		{"ByteOrderMark", "\ufeffa", kwRuleInvisible},
		{"TagsWithoutFlag", "a\U000E0067", kwRuleInvisible},
		{"LineBreak", "a\nb", kwRuleInvisible},
		{"Blank", "\u3000 ", "is empty"},
	})
}

func TestKeywordShortThing(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "short_thing", []kwCase{
		{"Example", "已完成", ""},
		{"Max5CJK", r("中", 5), ""},
		{"Over5CJK", r("中", 6), kwLimit(6, 5)},
		{"Max5JoinedEmoji", r(kwFamily, 5), ""},
		{"Over5JoinedEmoji", r(kwFamily, 6), kwLimit(6, 5)},
		{"Max5Flags", r(kwFlag, 5), ""},
		{"FullWidth", "ＯＫ！", ""},
		{"Spaces", " OK ", ""},
	})
}

func TestKeywordNumber(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "number", []kwCase{
		{"DocRequestExample", "339208499", ""},
		{"Decimal", "3.14", ""},
		{"Max32", r("9", 32), ""},
		{"Over32", r("9", 33), kwLimit(33, 32)},
		{"PointCounts", r("9", 31) + ".5", kwLimit(33, 32)},
		{"FullWidth", "１２３", kwRuleWideDigit},
		{"ArabicIndic", "٣", kwRuleWideDigit},
		{"InnerSpace", "1 2", kwRuleSpaces},
		{"OuterSpace", " 12", kwRuleSpaces},
		{"Letter", "12a", kwRuleLetters},
		{"Sign", "-1", "must contain only digits with an optional decimal part"},
		{"Exponent", "1e5", kwRuleLetters},
		{"Chinese", "十二", kwRuleChinese},
		{"Emoji", kwKeycap, kwRuleNonASCII},
	})
}

func TestKeywordLetter(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "letter", []kwCase{
		{"Example", "ABCdef", ""},
		{"Max32", r("a", 32), ""},
		{"Over32", r("a", 33), kwLimit(33, 32)},
		{"Accented", "Zoë", kwRuleOtherLtr},
		{"Combining", "Zo" + kwEAcute, kwRuleOtherLtr},
		{"Cyrillic", "Привет", kwRuleOtherLtr},
		{"Kana", "かな", kwRuleOtherLtr},
		{"FullWidth", "ＡＢＣ", kwRuleOtherLtr},
		{"InnerSpace", "ab c", kwRuleSpaces},
		{"OuterSpace", "abc ", kwRuleSpaces},
		{"Digit", "abc1", kwRuleDigits},
		{"Symbol", "a-b", kwRuleSymbols},
		{"Chinese", "中文", kwRuleChinese},
		{"Emoji", "🎉", kwRuleSymbols},
	})
}

func TestKeywordSymbol(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "symbol", []kwCase{
		{"ASCII", "!?#", ""},
		{"Currency", "¥", ""},
		{"Ellipsis", "…", ""},
		{"FullWidthPunctuation", "！？", ""},
		{"Emoji", "🎉", ""},
		{"EmojiWithSelector", "❤️", ""},
		{"JoinedEmoji", kwFamily, ""},
		{"Max5", r("-", 5), ""},
		{"Over5", r("-", 6), kwLimit(6, 5)},
		{"Max5JoinedEmoji", r(kwFamily, 5), ""},
		{"Over5JoinedEmoji", r(kwFamily, 6), kwLimit(6, 5)},
		{"Max5Flags", r(kwFlag, 5), ""},
		{"InnerSpace", "- -", kwRuleSpaces},
		{"OuterSpace", " -", kwRuleSpaces},
		{"IdeographicSpace", "-\u3000-", kwRuleSpaces},
		{"FullWidthDigit", "１", kwRuleDigits},
		{"ArabicIndicDigit", "٣", kwRuleDigits},
		{"Digit", "1", kwRuleDigits},
		{"Letter", "a", kwRuleLetters},
		{"AccentedLetter", "é", kwRuleLetters},
		{"FullWidthLetter", "Ａ", kwRuleLetters},
		{"Chinese", "中", kwRuleChinese},
	})
}

func TestKeywordCharacterString(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "character_string", []kwCase{
		{"Code", "ABC-123_x", ""},
		{"Date", "2019-10-01", ""},
		{"Digits", "2020011316024527670", ""},
		{"Max32", r("x", 32), ""},
		{"Over32", r("x", 33), kwLimit(33, 32)},
		{"InnerSpace", "A 1", kwRuleSpaces},
		{"LeadingSpace", " L-1001", kwRuleSpaces},
		{"TrailingSpace", "L-1001 ", kwRuleSpaces},
		{"IdeographicSpace", "L\u30001001", kwRuleSpaces},
		{"Accented", "é", kwRuleOtherLtr},
		{"FullWidthLetters", "ＡＢＣ", kwRuleOtherLtr},
		{"FullWidthDigits", "１２３", kwRuleWideDigit},
		{"Ellipsis", "L-1001…", kwRuleNonASCII},
		{"FullWidthSymbol", "L－1001", kwRuleNonASCII},
		{"Emoji", "L🎉", kwRuleNonASCII},
		{"JoinedEmoji", kwFamily, kwRuleNonASCII},
		{"Keycap", kwKeycap, kwRuleNonASCII},
		{"Chinese", "订单123", kwRuleChinese},
		{"HanIterationMark", "々", kwRuleChinese},
	})
}

func TestKeywordPhoneNumber(t *testing.T) {
	kwRunCases(t, "phone_number", []kwCase{
		{"DocExample", "+86-0766-66888866", ""},
		{"Mobile", "13800138000", ""},
		{"Parentheses", "(020)88888888", ""},
		{"Extension", "020-88888888#123", ""},
		{"Max17", "+86-0766-66888866", ""},
		{"Over17", "+86-0766-668888661", kwLimit(18, 17)},
		{"InnerSpaces", "(020) 8888 8888", kwRuleSpaces},
		{"LeadingSpace", " 13800138000", kwRuleSpaces},
		{"TrailingSpace", "13800138000 ", kwRuleSpaces},
		{"IdeographicSpace", "+86\u300013800138000", kwRuleSpaces},
		{"FullWidthDigit", "138１", kwRuleWideDigit},
		{"FullWidthDigits", "１３８", kwRuleWideDigit},
		{"FullWidthSymbol", "+86－13800138000", kwRuleNonASCII},
		{"Ellipsis", "138…", kwRuleNonASCII},
		{"Letters", "400-ABC-1234", kwRuleLetters},
		{"Chinese", "电话13800138000", kwRuleChinese},
		{"NoDigit", "---", "must contain a digit"},
	})
}

func TestKeywordCarNumber(t *testing.T) {
	kwRunCases(t, "car_number", []kwCase{
		{"DocExample", "粤A8Z888挂", ""},
		{"Plain", "京A12345", ""},
		{"Max8", "粤AD12345", ""},
		{"Over8", "粤A123456挂", kwLimit(9, 8)},
		{"FullWidthLetter", "粤Ａ12345", kwRuleOtherLtr},
		{"FullWidthDigit", "粤A１2345", kwRuleWideDigit},
		{"InnerSpace", "粤A 12345", kwRuleSpaces},
		{"OuterSpace", " 粤A12345", kwRuleSpaces},
		{"Symbol", "粤A-12345", kwRuleSymbols},
		{"ChineseInside", "A粤1234", "must have Chinese characters only first and last"},
		{"OnlyChinese", "粤挂", "must contain a letter or digit"},
	})
}

func TestKeywordName(t *testing.T) {
	r := strings.Repeat
	const nameSpaces = "must not start or end with a space, nor have two in a row"
	kwRunCases(t, "name", []kwCase{
		{"Chinese", "张三", ""},
		{"Max10Chinese", r("张", 10), ""},
		{"Over10Chinese", r("张", 11), "has 11 characters, limit 10 with Chinese characters"},
		{"MixedCountsAsChinese", "张" + r("a", 9), ""},
		{"OverMixed", "张" + r("a", 10), "has 11 characters, limit 10 with Chinese characters"},
		{"Latin", "John Smith", ""},
		{"Max20Latin", r("a", 20), ""},
		{"Over20Latin", r("a", 21), kwLimit(21, 20)},
		{"Symbols", "O'Brien", ""},
		{"MiddleDot", "阿沛·阿旺晋美", ""},
		{"Accented", "Zoë", kwRuleOtherLtr},
		{"Combining", "Zo" + kwEAcute, kwRuleOtherLtr},
		{"FullWidthLetters", "ＪＯＨＮ", kwRuleOtherLtr},
		{"Cyrillic", "Иван", kwRuleOtherLtr},
		{"LeadingSpace", " John", nameSpaces},
		{"TrailingSpace", "John ", nameSpaces},
		{"TwoSpaces", "John  Smith", nameSpaces},
		{"Digit", "John2", kwRuleDigits},
		{"FullWidthDigit", "John１", kwRuleDigits},
	})
}

func TestKeywordPhrase(t *testing.T) {
	r := strings.Repeat
	kwRunCases(t, "phrase", []kwCase{
		{"DocExample", "配送中", ""},
		{"Max5", r("中", 5), ""},
		{"Over5", r("中", 6), kwLimit(6, 5)},
		{"InnerSpace", "配送 中", kwRuleSpaces},
		{"OuterSpace", "配送中 ", kwRuleSpaces},
		{"IdeographicSpace", "配送\u3000中", kwRuleSpaces},
		{"Letters", "配送中ok", kwRuleLetters},
		{"FullWidthLetters", "配送中ＯＫ", kwRuleLetters},
		{"Punctuation", "配送中！", kwRuleSymbols},
		{"Emoji", "配送中🎉", kwRuleSymbols},
		{"JoinedEmoji", "配送" + kwFamily, kwRuleSymbols},
	})
}

func TestKeywordTime(t *testing.T) {
	const (
		notTime   = "is not a time HH:MM or HH:MM:SS, optionally after a date and a space, or two joined by ~: 15:01, 2019年10月1日 15:01, 15:01~16:00"
		spaceEnds = "must not start or end with a space"
		tildeGap  = "must not have spaces around ~"
		twoSpaces = "must have one ASCII space between a date and its time"
	)
	kwRunCases(t, "time", []kwCase{
		{"DocExample", "15:01", ""},
		{"DocExampleWithDate", "2019年10月1日 15:01", ""},
		{"Seconds", "15:01:05", ""},
		{"Range", "15:01~16:00", ""},
		{"RangeWithDate", "2019年10月1日 15:01~16:00", ""},
		{"RangeOfTwoDates", "2019-10-01 15:01~2019-10-02 09:00", ""},
		{"Midnight", "00:00", ""},
		{"OneDigitHour", "9:05", notTime},
		{"Hour24", "24:00", notTime},
		{"NoSpaceAfterDay", "2019年10月1日15:01", notTime},
		{"SpacesAroundTilde", "15:01 ~ 16:00", tildeGap},
		{"TwoSpaces", "2019-10-01  15:01", twoSpaces},
		{"LeadingSpace", " 15:01", spaceEnds},
		{"TrailingSpace", "15:01 ", spaceEnds},
		{"IdeographicSpace", "2019-10-01\u300015:01", twoSpaces},
		{"FullWidthDigits", "１５:01", kwRuleWideDigit},
		{"FullWidthColon", "15：01", kwRuleNonASCII},
		{"FullWidthTilde", "15:01～16:00", kwRuleNonASCII},
		{"Letters", "3pm", kwRuleLetters},
	})
}

func TestKeywordDate(t *testing.T) {
	const (
		notDate   = "is not a date (2019年10月1日, 2018-01-01, 2018/01, 01-01), optionally with a space and a time HH:MM, or two joined by ~"
		spaceEnds = "must not start or end with a space"
		tildeGap  = "must not have spaces around ~"
		twoSpaces = "must have one ASCII space between a date and its time"
	)
	kwRunCases(t, "date", []kwCase{
		{"DocExample", "2019年10月1日", ""},
		{"DocExampleWithTime", "2019年10月1日 15:01", ""},
		{"DocRequestExample", "2015年01月05日", ""},
		{"DocDash", "2018-01-01", ""},
		{"DocSlash", "2018/01/01", ""},
		{"DocDot", "2018.01.01", ""},
		{"DocYearMonth", "2018-01", ""},
		{"DocMonthDay", "01-01", ""},
		{"ChineseYearMonth", "2019年10月", ""},
		{"ChineseMonthDay", "10月1日", ""},
		{"OneDigitMonthDay", "2018-1-1", ""},
		{"Range", "2018-01-01~2018-01-31", ""},
		{"RangeEndTime", "2019年10月1日 15:01~16:00", ""},
		{"LeapDay", "2020-02-29", ""},
		{"NoLeapDay", "2019-02-29", notDate},
		{"OneDigitHour", "2019年10月1日 9:05", notDate},
		{"NoSpaceAfterDay", "2019年10月1日15:01", notDate},
		{"SpacesAroundTilde", "2018/01/01 ~ 2018/01/02", tildeGap},
		{"TwoSpaces", "2018-01-01  12:00", twoSpaces},
		{"LeadingSpace", " 2018-01-01", spaceEnds},
		{"TrailingSpace", "2019年10月1日 ", spaceEnds},
		{"FullWidthDigits", "２０１９-01-01", kwRuleWideDigit},
		{"Letters", "2019-01-01T15:01", kwRuleLetters},
	})
}

func TestKeywordAmount(t *testing.T) {
	const notAmount = "must be an optional currency symbol, at most 10 digits with optional decimals and an optional 元"
	kwRunCases(t, "amount", []kwCase{
		{"FullWidthYuanSign", "￥100元", ""},
		{"Yen", "¥8.80", ""},
		{"Dollar", "$9.99", ""},
		{"Yuan", "100元", ""},
		{"Plain", "100", ""},
		{"Max10Digits", "12345678.90", ""},
		{"Over10Digits", "12345678901", notAmount},
		{"InnerSpace", "¥ 100", kwRuleSpaces},
		{"OuterSpace", " ¥100", kwRuleSpaces},
		{"FullWidthDigits", "¥１００", kwRuleWideDigit},
		{"Letters", "RMB100", kwRuleLetters},
		{"Separator", "¥1,000", notAmount},
	})
}

func TestKeywordEnum(t *testing.T) {
	const notInList = "is not one of the template's enum values"
	for _, typ := range []string{"enum", "enum_string"} {
		t.Run(typ, func(t *testing.T) {
			kwRunCases(t, typ, []kwCase{
				{"InList", "已付款", ""},
				{"NotInList", "已取消", notInList},
				{"SpaceAround", " 已付款", notInList},
				{"TwoValues", "待付款,已付款", "holds several of the template's enum values, where WeChat's page allows one"},
				{"TwoValuesOneUnknown", "待付款,已取消", notInList},
				{"Invisible", "已付款\u200b", kwRuleInvisible},
			}, "待付款", "已付款", kwFamily)
			kwRunCases(t, typ, []kwCase{
				{"NoListAnyValue", "任意值", ""},
				{"NoListJoinedEmoji", kwFamily, ""},
				{"NoListInvisible", "a\u200db", kwRuleInvisible},
			})
		})
	}
}

// TestKeywordRulesTable checks the table itself: one row per type, each example passing its own rule,
// an ellipsis in the alphabet of every type Truncate cuts.
func TestKeywordRulesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range kwRules {
		t.Run(r.typ, func(t *testing.T) {
			if seen[r.typ] {
				t.Fatalf("type %s has two rows", r.typ)
			}
			seen[r.typ] = true
			if r.reading == "" || r.example == "" {
				t.Errorf("got reading %q, example %q; want both", r.reading, r.example)
			}
			enum := []string(nil)
			if r.isEnum() {
				enum = []string{r.example}
			}
			if err := Validate(r.typ, r.example, enum...); err != nil {
				t.Errorf("Validate(%q, example %q) = %v, want nil", r.typ, r.example, err)
			}
			if r.truncate == kwCutEllipsis && (r.max == 0 || Validate(r.typ, "中"+kwEllipsis) != nil) {
				t.Errorf("%s is cut with an ellipsis, but has no limit or refuses %q", r.typ, "中"+kwEllipsis)
			}
			if got, want := CanTruncate(r.typ), r.truncate == kwCutEllipsis; got != want {
				t.Errorf("CanTruncate(%q) = %v, want %v", r.typ, got, want)
			}
		})
	}
	for _, typ := range kwTestTypes {
		if !seen[typ] {
			t.Errorf("type %s has no row", typ)
		}
	}
}

// TestKeywordsDocQuotesTheRules keeps docs/keywords.md quoting WeChat's words of every row, and the note
// that defines a symbol.
func TestKeywordsDocQuotesTheRules(t *testing.T) {
	raw, err := os.ReadFile("../../docs/keywords.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	const symbols = "符号表示除中文、英文、数字外的常见符号,不能带有换行等控制字符"
	if !strings.Contains(doc, symbols) {
		t.Errorf("docs/keywords.md does not quote the page's note %q", symbols)
	}
	for _, r := range kwRules {
		for _, quote := range []string{"`" + r.typ + "`", r.docLimit, r.docNote, "`" + r.example + "`"} {
			if quote != "" && !strings.Contains(doc, quote) {
				t.Errorf("docs/keywords.md does not show %q of the %s row", quote, r.typ)
			}
		}
	}
}

// TestKeywordSimpleCharacters: every code point kwSimple lets skip the segmentation is a character of its
// own next to any other such code point (CR LF aside), as UAX #29 segments them.
func TestKeywordSimpleCharacters(t *testing.T) {
	var simple []rune
	for r := rune(0); r <= 0xffff; r++ {
		if kwSimple(string(r)) && utf8.ValidRune(r) {
			simple = append(simple, r)
		}
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, r := range simple {
		for _, next := range []rune{r, 'a', '中', '\u3000', simple[rnd.IntN(len(simple))], simple[rnd.IntN(len(simple))]} {
			pair := string(r) + string(next)
			if pair == "\r\n" {
				continue
			}
			if got := uniseg.GraphemeClusterCount(pair); got != 2 {
				t.Fatalf("%q is %d characters, want 2: %U is not simple", pair, got, r)
			}
		}
	}
}
