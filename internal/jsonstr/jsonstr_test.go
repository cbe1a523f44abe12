package jsonstr

import "testing"

func TestHex4(t *testing.T) {
	for in, want := range map[string]rune{"0000": 0, "00e9": 0xe9, "00E9": 0xe9, "d83d": 0xd83d, "FFFF": 0xffff, "4e2D": 0x4e2d} {
		if got := Hex4([]byte(in)); got != want {
			t.Errorf("Hex4(%q) = %#x, want %#x", in, got, want)
		}
	}
}
