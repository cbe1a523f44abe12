package httpapi

import (
	"errors"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// CheckJSON names the field of what it refuses by its path, and refuses
// exactly the strings encoding/json would change: invalid UTF-8 and \u
// escapes of unpaired surrogates.
func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		field      string // "" and ok: accepted
		ok         bool
	}{
		{"Plain", `{"a":"b","c":[1,"d",{"e":null}]}`, "", true},
		{"NonASCII", `{"thing4":"官网","emoji":"😀"}`, "", true},
		{"SurrogatePair", `{"a":"\ud83d\ude00","b":"\uD83D\uDE00"}`, "", true},
		{"ReplacementChar", `{"a":"\ufffd","b":"` + "\uFFFD" + `"}`, "", true},
		{"EscapedBackslashThenU", `{"a":"\\ud800"}`, "", true},
		{"EscapedQuoteThenEscape", `{"a":"\"\ud800"}`, "a", false},
		{"TopLevelValue", "\"\xff\"", "", false},
		{"TopLevelKey", "{\"co\xffde\":1}", "co\uFFFDde", false},
		{"Member", "{\"a\":{\"b\":\"\xff\"}}", "a.b", false},
		{"AfterNestedObject", "{\"a\":{\"x\":{}},\"b\":\"\xff\"}", "b", false},
		{"ArrayElement", "{\"a\":[\"x\",{\"y\":1},\"\xff\"]}", "a[2]", false},
		{"NestedArrays", "{\"a\":[[],[\"x\",\"\xff\"]]}", "a[1][1]", false},
		{"TopLevelArray", "[{\"id\":\"e1\"},{\"id\":\"\xff\"}]", "[1].id", false},
		{"NestedKey", "{\"a\":[{\"\xff\":1}]}", "a[0].\uFFFD", false},
		{"LoneLowAtEnd", `{"a":"x\udc00"}`, "a", false},
		{"HighAtEnd", `{"a":"x\ud800"}`, "a", false},
		{"HighThenShortEscape", `{"a":"\ud800\n"}`, "a", false},
		{"DuplicateNestedKey", `{"a":{"b":1,"b":2}}`, "a.b", false},
		{"DuplicateInArray", `[{"id":"e1","id":"e2"}]`, "[0].id", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body))
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckJSON(%q): got %v, want accepted", tc.body, err)
				}
				return
			}
			var e *notify.Error
			if !errors.As(err, &e) || e.Code != notify.CodeBadRequest || e.Field != tc.field {
				t.Fatalf("CheckJSON(%q): got %#v, want bad_request naming %q", tc.body, err, tc.field)
			}
		})
	}
}
