// Package jsonstr holds what the edge's byte-level readers of JSON string
// literals share (httpapi's UTF-8 check, platform's verbatim unquoting).
package jsonstr

// Hex4 decodes the four hex digits of a \u escape; the caller has checked
// that they are hex digits.
func Hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
