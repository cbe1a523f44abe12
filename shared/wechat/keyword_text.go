package wechat

// Characters of keyword values: what counts as one character, and the class each belongs to.

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// kwClass is the class of one character (a grapheme cluster); classes are bits so that an alphabet is a
// set of them.
type kwClass uint16

const (
	kwSpace       kwClass = 1 << iota // a space separator: U+0020, the ideographic space U+3000, U+00A0 ...
	kwDigit                           // 0-9
	kwLetter                          // A-Z, a-z
	kwASCIISymbol                     // printable ASCII other than letters, digits and the space: ! # - _ ( ) ...
	kwSymbol                          // any other punctuation or symbol, emoji included: … ¥ ！ 🎉 👨‍👩‍👧 1️⃣
	kwHan                             // a Chinese character (a character of the Han script)
	kwOtherLetter                     // a letter of another script or form: é, Я, か, 한, full-width Ａ
	kwNumeral                         // a digit or numeral other than 0-9: full-width １, ٣, ①
	kwMark                            // a combining mark with no letter before it, or a space carrying one
	kwInvisible                       // a control, format, private-use or unassigned code point
)

// kwVisible is every class but kwInvisible: the alphabet of free text.
const kwVisible = kwSpace | kwDigit | kwLetter | kwASCIISymbol | kwSymbol | kwHan | kwOtherLetter | kwNumeral | kwMark

const kwJoiner = '\u200d' // ZERO WIDTH JOINER

// kwChars returns the characters of s: its extended grapheme clusters (Unicode UAX #29), what a reader
// sees as one character. A joined emoji (👨‍👩‍👧), a flag (🇨🇳) and a letter with its combining
// marks (é written as e and U+0301) are one character each.
func kwChars(s string) []string {
	var out []string
	state := -1
	for s != "" {
		var c string
		c, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		out = append(out, c)
	}
	return out
}

// kwClassOf returns the class of the character c (a grapheme cluster of a valid UTF-8 string).
//
// A character of several code points takes the class of its first, with these exceptions: a keycap
// (1️⃣) is a symbol; a letter or digit carrying marks (é as e and U+0301) is a letter or numeral other
// than A-Z and 0-9; a space carrying a mark, or a mark alone, is kwMark. It is invisible when a code
// point in it is: a zero-width joiner is visible only between two symbols of an emoji sequence (👨‍👩‍👧),
// tag characters only after a symbol (the flags of 🏴 and tags), other format characters never.
func kwClassOf(c string) kwClass {
	first, size := utf8.DecodeRuneInString(c)
	base := kwRuneClass(first)
	if size == len(c) || base == kwInvisible {
		return base
	}
	emoji := base == kwSymbol || base == kwASCIISymbol
	keycap := false
	rest := c[size:]
	for i, r := range rest {
		switch {
		case r == '\u20e3': // COMBINING ENCLOSING KEYCAP
			keycap = true
		case unicode.Is(unicode.M, r):
		case r == kwJoiner:
			next, size := utf8.DecodeRuneInString(rest[i+utf8.RuneLen(r):])
			if !emoji || size == 0 || !unicode.In(next, unicode.S, unicode.P) {
				return kwInvisible
			}
		case r >= 0xe0020 && r <= 0xe007f: // tags of a subdivision flag
			if !emoji {
				return kwInvisible
			}
		case kwRuneClass(r) == kwInvisible:
			return kwInvisible
		}
	}
	switch base {
	case kwDigit, kwNumeral:
		if keycap {
			return kwSymbol
		}
		return kwNumeral
	case kwLetter, kwOtherLetter:
		return kwOtherLetter
	case kwASCIISymbol, kwSymbol:
		return kwSymbol
	case kwSpace, kwMark:
		return kwMark
	}
	return base // kwHan: a Chinese character with a variation selector or marks
}

// kwRuneClass returns the class of a code point standing alone.
func kwRuneClass(r rune) kwClass {
	switch {
	case r >= '0' && r <= '9':
		return kwDigit
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return kwLetter
	case r == ' ':
		return kwSpace
	case r > ' ' && r < 0x7f:
		return kwASCIISymbol
	case r < utf8.RuneSelf:
		return kwInvisible // C0 controls and DEL
	case unicode.Is(unicode.Han, r):
		return kwHan
	case unicode.Is(unicode.Zs, r):
		return kwSpace
	case unicode.IsLetter(r):
		return kwOtherLetter
	case unicode.IsNumber(r):
		return kwNumeral
	case unicode.IsMark(r):
		return kwMark
	case unicode.IsPunct(r), unicode.IsSymbol(r):
		return kwSymbol
	}
	return kwInvisible // Cc, Cf, Co, Cs, Zl, Zp and unassigned code points
}

// kwText is a value seen as characters: the class of each, in order.
type kwText struct {
	classes []kwClass
	all     kwClass // the union of classes
	buf     [32]kwClass
}

// kwScan classifies the characters of s.
func kwScan(s string) *kwText {
	t := &kwText{}
	t.classes = t.buf[:0]
	if kwSimple(s) {
		for _, r := range s {
			class := kwRuneClass(r)
			t.classes = append(t.classes, class)
			t.all |= class
		}
		return t
	}
	state := -1
	for s != "" {
		var c string
		c, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		class := kwClassOf(c)
		t.classes = append(t.classes, class)
		t.all |= class
	}
	return t
}

// kwSimple reports whether every code point of s is a character of its own, whatever surrounds it: it is
// Latin before the combining marks (U+0300), CJK punctuation, a CJK ideograph of the main block or a
// full-width form of ASCII. (A CR LF pair is one character, but both are controls and refused.) Most
// values are simple, and skip the segmentation.
func kwSimple(s string) bool {
	for _, r := range s {
		switch {
		case r < 0x300, r >= 0x4e00 && r <= 0x9fff, r >= 0xff01 && r <= 0xff5e:
		case r >= 0x3000 && r <= 0x303f && (r < 0x302a || r > 0x302f):
		default:
			return false
		}
	}
	return true
}

// len returns the number of characters.
func (t *kwText) len() int { return len(t.classes) }

// kwForbidden returns the rule broken by a character of class c outside alphabet, phrased to follow
// "must not contain".
func kwForbidden(c, alphabet kwClass) string {
	switch c {
	case kwSpace:
		return "spaces"
	case kwDigit:
		return "digits"
	case kwLetter:
		return "letters"
	case kwHan:
		return "Chinese characters"
	case kwNumeral:
		if alphabet&kwDigit != 0 {
			return "digits other than 0-9, such as full-width ones"
		}
		return "digits"
	case kwOtherLetter:
		if alphabet&kwLetter != 0 {
			return "letters other than A-Z and a-z, such as é or full-width ones"
		}
		return "letters"
	case kwSymbol:
		if alphabet&kwASCIISymbol != 0 {
			return "symbols other than ASCII ones, such as … or full-width ones"
		}
		return "symbols"
	case kwASCIISymbol:
		return "symbols"
	case kwMark:
		return "a combining mark without a letter before it"
	}
	return "invisible characters"
}

// kwClean makes free text printable: line breaks, tabs and other controls become spaces, other invisible
// code points (format characters such as a lone zero-width joiner, private-use and unassigned ones) are
// dropped, invalid UTF-8 bytes become U+FFFD; a run of spaces and replaced controls becomes one space, and
// the ends are trimmed. Joiners and tags that belong to an emoji sequence are kept.
func kwClean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pending := false // a replaced control waits to be written as one space
	lastSpace := true
	for _, c := range kwChars(strings.ToValidUTF8(s, "\ufffd")) {
		if kwClassOf(c) == kwInvisible {
			var brk bool
			if c, brk = kwVisibleRunes(c); brk {
				pending = true
			}
			if c == "" {
				continue
			}
		}
		space := kwClassOf(c) == kwSpace
		if pending && !lastSpace && !space {
			b.WriteByte(' ')
		}
		pending = false
		b.WriteString(c)
		lastSpace = space
	}
	return strings.TrimFunc(b.String(), unicode.IsSpace)
}

// kwVisibleRunes returns the code points of an invisible character c that are visible alone, and brk true
// when a control or line break was among them: a break the caller turns into a space.
func kwVisibleRunes(c string) (visible string, brk bool) {
	var b strings.Builder
	for _, r := range c {
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			brk = true
		case kwRuneClass(r) != kwInvisible:
			b.WriteRune(r)
		}
	}
	return b.String(), brk
}

// kwCut shortens s to at most limit characters, the last being an ellipsis "…" when anything was cut; the
// kept part never ends with a space.
func kwCut(s string, limit int) string {
	chars := kwChars(s)
	if len(chars) <= limit {
		return s
	}
	keep := chars[:limit-1]
	for len(keep) > 0 && kwClassOf(keep[len(keep)-1]) == kwSpace {
		keep = keep[:len(keep)-1]
	}
	return strings.Join(keep, "") + kwEllipsis
}
