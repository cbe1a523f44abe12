package platform

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/internal/jsonstr"
)

// verbatim returns the JSON string member name of the object obj with the
// bytes the platform put there, where encoding/json would replace bytes
// that are not UTF-8, and \u escapes of unpaired surrogates, with U+FFFD:
// a request or message body must reach the handler as it was sent, so that
// the JSON check behind it can refuse it rather than act on altered text.
// An unpaired surrogate is written in its three-byte form (WTF-8), which is
// not UTF-8 either. ok is false when obj has no string member of exactly
// that name (callers then use what encoding/json decoded).
func verbatim(obj []byte, name string) (b []byte, ok bool) {
	raw, ok := rawMember(obj, name)
	if !ok || len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	return unquoteVerbatim(raw), true
}

// rawMember is the member name of the object obj as it is written.
func rawMember(obj []byte, name string) (json.RawMessage, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(obj, &top) != nil {
		return nil, false
	}
	raw, ok := top[name]
	return raw, ok
}

// records is the "Records" array of a queue event, element by element.
func records(payload []byte) []json.RawMessage {
	var top struct {
		Records []json.RawMessage `json:"Records"`
	}
	_ = json.Unmarshal(payload, &top)
	return top.Records
}

// unquoteVerbatim decodes a JSON string literal whose syntax encoding/json
// has checked, keeping what it would replace (see verbatim).
func unquoteVerbatim(lit []byte) []byte {
	lit = lit[1 : len(lit)-1]
	out := make([]byte, 0, len(lit))
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch lit[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := jsonstr.Hex4(lit[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) && r < 0xdc00 && i+6 < len(lit) && lit[i+1] == '\\' && lit[i+2] == 'u' {
				if low := jsonstr.Hex4(lit[i+3 : i+7]); low >= 0xdc00 && low <= 0xdfff {
					out = utf8.AppendRune(out, utf16.DecodeRune(r, low))
					i += 6
					continue
				}
			}
			if utf16.IsSurrogate(r) {
				out = append(out, byte(0xe0|r>>12), byte(0x80|r>>6&0x3f), byte(0x80|r&0x3f))
				continue
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, lit[i])
		}
	}
	return out
}
