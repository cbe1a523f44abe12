package notify

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// ruleSampleEvent is the lead event of docs/api.md#lead-events, with the lead's source.
const ruleSampleEvent = `{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
 "data": {"lead": {"id": "L-1001", "name": "Acme Ltd", "source": "官网"}, "assignee": {"userId": "sales-42"}}}`

const ruleLeadTmplID = "tmpl-lead-assigned"

func ruleLeadTemplate() Template {
	return Template{Alias: "lead_assigned", ID: ruleLeadTmplID, Title: "线索分配通知", Policy: PolicyTruncate,
		Keywords: []Keyword{
			{Name: "thing1", Label: "客户名称"}, {Name: "character_string2", Label: "线索编号"},
			{Name: "time3", Label: "分配时间"}, {Name: "thing4", Label: "线索来源"},
		}}
}

// ruleLeadSpec is the lead-assignment rule of the example wxnotify.yaml.
func ruleLeadSpec() RuleSpec {
	return RuleSpec{
		Name: "lead-assigned", Event: "lead.assigned", Template: "lead_assigned",
		To:   RecipientPaths{UserID: "data.assignee.userId"},
		Page: "pages/clue/clue?id={data.lead.id}",
		Fields: map[string]FieldSpec{
			"thing1":            {From: "data.lead.name", Truncate: true},
			"character_string2": {From: "data.lead.id"},
			"time3":             {From: "occurredAt", Format: FormatDateTime, Layout: "2006-01-02 15:04", TZ: "Asia/Shanghai"},
			"thing4":            {From: "data.lead.source", Default: "未知", Truncate: true},
		},
	}
}

func ruleCatalog(tb testing.TB, ts ...Template) *Catalog {
	tb.Helper()
	c, err := NewCatalog(ts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func ruleCompile(tb testing.TB, c *Catalog, specs ...RuleSpec) *Rules {
	tb.Helper()
	rs, err := CompileRules(specs, c)
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func ruleParse(tb testing.TB, body string) Event {
	tb.Helper()
	ev, err := ParseEvent([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

// ruleWantErr checks that err is a bad_request *Error on field wrapping sentinel.
func ruleWantErr(tb testing.TB, err, sentinel error, field string) {
	tb.Helper()
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("got error %v, want a *notify.Error", err)
	}
	if !errors.Is(err, sentinel) || !errors.Is(err, ErrEventMalformed) {
		tb.Fatalf("got error %v, want one wrapping %v", err, sentinel)
	}
	if e.Field != field {
		tb.Fatalf("got field %q, want %q (error %v)", e.Field, field, err)
	}
}

// ruleBuildOne builds the value of one keyword of a one-keyword template:
// the field reads data.v unless it says otherwise.
func ruleBuildOne(tb testing.TB, kw string, fs FieldSpec, value string) (string, error) {
	tb.Helper()
	c := ruleCatalog(tb, Template{Alias: "one", ID: "tmpl-one", Keywords: []Keyword{{Name: kw}}})
	if fs.From == "" && fs.Value == "" {
		fs.From = "data.v"
	}
	rs := ruleCompile(tb, c, RuleSpec{Name: "r", Event: "t", Template: "one", To: RecipientPaths{UserID: "data.to"},
		Fields: map[string]FieldSpec{kw: fs}})
	body := `{"id": "e1", "type": "t", "occurredAt": "2026-11-21T09:30:00Z", "data": {"to": "u1"`
	if value != "" {
		body += `, "v": ` + value
	}
	ev := ruleParse(tb, body+`}}`)
	req, err := rs.List()[0].Build(ev)
	if err != nil {
		return "", err
	}
	return req.Data[kw], nil
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     Event
		wantData string // the data re-encoded
	}{
		{"Sample", ruleSampleEvent,
			Event{ID: "evt-7f3a", Type: "lead.assigned", OccurredAt: time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)},
			`{"assignee":{"userId":"sales-42"},"lead":{"id":"L-1001","name":"Acme Ltd","source":"官网"}}`},
		{"UnknownFieldsIgnored", `{"id": "e", "type": "t", "source": "crm", "version": 2, "data": {}}`,
			Event{ID: "e", Type: "t"}, `{}`},
		{"NullsAreAbsent", `{"id": "e", "type": "t", "occurredAt": null, "data": null}`,
			Event{ID: "e", Type: "t"}, `null`},
		{"NoData", `{"id": "e", "type": "t"}`, Event{ID: "e", Type: "t"}, `null`},
		{"BigNumbersKeepTheirDigits", `{"id": "e", "type": "t", "data": {"n": 123456789012345678901234567890.25, "x": [1e400]}}`,
			Event{ID: "e", Type: "t"}, `{"n":123456789012345678901234567890.25,"x":[1e400]}`},
		{"OffsetKept", `{"id": "e", "type": "t", "occurredAt": "2026-11-21T17:30:00.5+08:00"}`,
			Event{ID: "e", Type: "t", OccurredAt: time.Date(2026, 11, 21, 9, 30, 0, 5e8, time.UTC)}, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ruleParse(t, tc.body)
			if got.ID != tc.want.ID || got.Type != tc.want.Type || !got.OccurredAt.Equal(tc.want.OccurredAt) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			data, err := json.Marshal(got.Data)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tc.wantData {
				t.Fatalf("got data %s, want %s", data, tc.wantData)
			}
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name  string
		body  string
		code  Code
		field string
	}{
		{"Empty", ``, CodeBadRequest, ""},
		{"NotJSON", `{"id": "e",`, CodeBadRequest, ""},
		{"TrailingData", `{"id": "e", "type": "t"} {}`, CodeBadRequest, ""},
		{"Array", `[{"id": "e", "type": "t"}]`, CodeBadRequest, ""},
		{"Null", `null`, CodeBadRequest, ""},
		{"String", `"event"`, CodeBadRequest, ""},
		{"InvalidUTF8", "{\"id\": \"e\xff\", \"type\": \"t\"}", CodeBadRequest, ""},
		{"TooLarge", `{"id": "e", "type": "t", "data": {"x": "` + strings.Repeat("a", MaxEventSize) + `"}}`, CodePayloadTooLarge, ""},
		{"NoID", `{"type": "t"}`, CodeBadRequest, "id"},
		{"NullID", `{"id": null, "type": "t"}`, CodeBadRequest, "id"},
		{"NumericID", `{"id": 7, "type": "t"}`, CodeBadRequest, "id"},
		{"EmptyID", `{"id": "", "type": "t"}`, CodeBadRequest, "id"},
		{"LongID", `{"id": "` + long + `", "type": "t"}`, CodeBadRequest, "id"},
		{"ControlInID", `{"id": "e\n1", "type": "t"}`, CodeBadRequest, "id"},
		{"NoType", `{"id": "e"}`, CodeBadRequest, "type"},
		{"ObjectType", `{"id": "e", "type": {}}`, CodeBadRequest, "type"},
		{"LongType", `{"id": "e", "type": "` + long + `"}`, CodeBadRequest, "type"},
		{"BadOccurredAt", `{"id": "e", "type": "t", "occurredAt": "2026-11-21 09:30"}`, CodeBadRequest, "occurredAt"},
		{"NumericOccurredAt", `{"id": "e", "type": "t", "occurredAt": 1795253400}`, CodeBadRequest, "occurredAt"},
		{"ArrayData", `{"id": "e", "type": "t", "data": [1]}`, CodeBadRequest, "data"},
		{"StringData", `{"id": "e", "type": "t", "data": "x"}`, CodeBadRequest, "data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tc.body))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("got %v, want a %s error on field %q", err, tc.code, tc.field)
			}
			if !errors.Is(err, ErrEventMalformed) {
				t.Fatalf("got %v, want it to wrap ErrEventMalformed", err)
			}
		})
	}
}

// FuzzParseEvent checks that ParseEvent never panics and that what it
// accepts keeps its contract and survives a round trip through JSON.
func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{
		ruleSampleEvent, `{}`, `null`, `[]`, `{"id": "e", "type": "t", "data": {"a": [1, {"b": null}]}}`,
		`{"id": "e", "type": "t", "occurredAt": "2026-11-21T09:30:00+08:00"}`, `{"id": 1}`, `{"id": "e", "type": "t", "data": 1e999}`,
	} {
		f.Add([]byte(seed))
	}
	rules := fuzzRules(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvent(body)
		if err != nil {
			if CodeOf(err) != CodeBadRequest && CodeOf(err) != CodePayloadTooLarge || !errors.Is(err, ErrEventMalformed) {
				t.Fatalf("got error %v, want a bad_request wrapping ErrEventMalformed", err)
			}
			return
		}
		if ev.ID == "" || len(ev.ID) > 256 || ev.Type == "" || len(ev.Type) > 256 {
			t.Fatalf("got id %q type %q, want both of 1 to 256 bytes", ev.ID, ev.Type)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := ParseEvent(again)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", again, err)
		}
		if ev2.ID != ev.ID || ev2.Type != ev.Type || !ev2.OccurredAt.Equal(ev.OccurredAt) {
			t.Fatalf("round trip: got %+v, want %+v", ev2, ev)
		}
		// Building with a rule never panics either.
		for _, r := range rules.List() {
			if _, err := r.Build(ev); err != nil && !errors.Is(err, ErrEventMalformed) {
				t.Fatalf("build: got %v, want nil or ErrEventMalformed", err)
			}
		}
	})
}

func fuzzRules(tb testing.TB) *Rules {
	c := ruleCatalog(tb, ruleLeadTemplate(), Template{Alias: "n", ID: "tmpl-n", Keywords: []Keyword{{Name: "number1"}, {Name: "date2"}}})
	return ruleCompile(tb, c, ruleLeadSpec(), RuleSpec{Name: "n", Event: "*", Template: "n", To: RecipientPaths{OpenID: "data.openid"},
		Page: "pages/a/a?x={data.x}&y={type}", Fields: map[string]FieldSpec{
			"number1": {From: "data.n", Format: FormatNumber, Decimals: new(2)},
			"date2":   {From: "data.at", Format: FormatDate},
		}})
}

func TestEventLookup(t *testing.T) {
	ev := ruleParse(t, `{"id": "evt-1", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z", "data": {
		"lead": {"id": "L-1001", "n": 12.50, "nothing": null},
		"items": [{"name": "first"}, {"name": "second"}],
		"byYear": {"2024": "y"}}}`)
	tests := []struct {
		path string
		want any // nil: absent
	}{
		{"id", "evt-1"},
		{"type", "lead.assigned"},
		{"occurredAt", "2026-11-21T09:30:00Z"},
		{"data.lead.id", "L-1001"},
		{"data.lead.n", json.Number("12.50")},
		{"data.lead.nothing", nil},
		{"data.lead.missing", nil},
		{"data.lead.id.deeper", nil},
		{"data.items.0.name", "first"},
		{"data.items.1.name", "second"},
		{"data.items.2.name", nil},
		{"data.items.01.name", nil},
		{"data.items.-1.name", nil},
		{"data.items.name", nil},
		{"data.byYear.2024", "y"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			p, err := parseEvPath(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.lookup(p); got != tc.want {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	if got := (Event{ID: "e"}).lookup(evPath{root: "data", keys: []string{"x"}}); got != nil {
		t.Fatalf("event without data: got %#v, want nil", got)
	}
}

func TestRuleFormats(t *testing.T) {
	two, zero := 2, 0
	tests := []struct {
		name  string
		kw    string
		spec  FieldSpec
		value string // JSON of data.v; "" leaves it out
		want  string
	}{
		{"TextString", "thing1", FieldSpec{}, `"Acme Ltd"`, "Acme Ltd"},
		{"TextNumberKeepsItsDigits", "character_string1", FieldSpec{}, `123456789012345678901234567890`, "123456789012345678901234567890"},
		{"TextDecimalAsWritten", "thing1", FieldSpec{}, `12.50`, "12.50"},
		{"TextBool", "thing1", FieldSpec{Format: FormatText}, `true`, "true"},
		{"TextFromID", "character_string1", FieldSpec{From: "id"}, ``, "e1"},
		{"TextFromType", "thing1", FieldSpec{From: "type"}, ``, "t"},

		{"NumberAsIs", "number1", FieldSpec{Format: FormatNumber}, `12.50`, "12.50"},
		{"NumberExponentExpanded", "number1", FieldSpec{Format: FormatNumber}, `1.5E3`, "1500"},
		{"NumberNegativeExponent", "number1", FieldSpec{Format: FormatNumber}, `15e-4`, "0.0015"},
		{"NumberRoundHalfUp", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `12.345`, "12.35"},
		{"NumberRoundDown", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `12.344999`, "12.34"},
		{"NumberRoundNegativeAwayFromZero", "thing1", FieldSpec{Format: FormatNumber, Decimals: &zero}, `-2.5`, "-3"},
		{"NumberRoundCarries", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `9.995`, "10.00"},
		{"NumberRoundToZeroHasNoSign", "thing1", FieldSpec{Format: FormatNumber, Decimals: &two}, `-0.004`, "0.00"},
		{"NumberPadded", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `7`, "7.00"},
		{"NumberSmall", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `0.005`, "0.01"},
		{"NumberBigExact", "number1", FieldSpec{Format: FormatNumber, Decimals: &two}, `12345678901234567890.125`, "12345678901234567890.13"},
		{"NumberFromString", "number1", FieldSpec{Format: FormatNumber, Decimals: &zero}, `"41.5"`, "42"},
		{"NumberSuffix", "amount1", FieldSpec{Format: FormatNumber, Decimals: &two, Suffix: "元"}, `1999.5`, "1999.50元"},

		{"DateTimeShanghai", "time1", FieldSpec{From: "occurredAt", Format: FormatDateTime, Layout: "2006-01-02 15:04"}, ``, "2026-11-21 17:30"},
		{"DateTimeDefaultLayout", "time1", FieldSpec{Format: FormatDateTime}, `"2026-11-21T09:30:00Z"`, "2026-11-21 17:30"},
		{"TimeDefaultLayout", "time1", FieldSpec{Format: FormatTime}, `"2026-11-21T09:30:00Z"`, "17:30"},
		{"DateDefaultLayout", "date1", FieldSpec{Format: FormatDate}, `"2026-11-21T20:30:00Z"`, "2026-11-22"},
		{"DateOnlyIsNotShifted", "date1", FieldSpec{Format: FormatDate, TZ: "America/New_York"}, `"2026-11-21"`, "2026-11-21"},
		{"NamedLayoutChinese", "date1", FieldSpec{Format: FormatDateTime, Layout: "datetime-zh"}, `"2026-11-21T09:30:00Z"`, "2026年11月21日 17:30"},
		{"ChineseLayout", "time1", FieldSpec{Format: FormatDateTime, Layout: "2006年1月2日 15:04"}, `"2026-01-02T01:05:00Z"`, "2026年1月2日 09:05"},
		{"OffsetInput", "time1", FieldSpec{Format: FormatDateTime}, `"2026-11-21T09:30:00-05:00"`, "2026-11-21 22:30"},
		{"FractionalInput", "time1", FieldSpec{Format: FormatDateTime}, `"2026-11-21T09:30:59.999Z"`, "2026-11-21 17:30"},
		{"UTC", "time1", FieldSpec{Format: FormatDateTime, TZ: "UTC"}, `"2026-11-21T09:30:00Z"`, "2026-11-21 09:30"},
		{"NewYork", "time1", FieldSpec{Format: FormatDateTime, TZ: "America/New_York"}, `"2026-11-21T09:30:00Z"`, "2026-11-21 04:30"},
		{"UnixSeconds", "time1", FieldSpec{Format: FormatDateTime}, `1795253400`, "2026-11-21 17:30"},
		{"UnixMilliseconds", "time1", FieldSpec{Format: FormatDateTime}, `1795253400000`, "2026-11-21 17:30"},
		{"UnixFractionalSeconds", "time1", FieldSpec{Format: FormatDateTime}, `1795253400.75`, "2026-11-21 17:30"},
		{"UnixExponent", "time1", FieldSpec{Format: FormatDateTime}, `1.7952534e12`, "2026-11-21 17:30"},
		{"UnixSecondsString", "time1", FieldSpec{Format: FormatDateTime}, `"1795253400"`, "2026-11-21 17:30"},
		{"RFC3339Layout", "character_string1", FieldSpec{Format: FormatDateTime, Layout: "rfc3339"}, `"2026-11-21T09:30:00Z"`, "2026-11-21T17:30:00+08:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ruleBuildOne(t, tc.kw, tc.spec, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuleFormatErrors(t *testing.T) {
	tests := []struct {
		name     string
		kw       string
		spec     FieldSpec
		value    string
		sentinel error
	}{
		{"Missing", "thing1", FieldSpec{}, ``, ErrMissingValue},
		{"Null", "thing1", FieldSpec{}, `null`, ErrMissingValue},
		{"Empty", "thing1", FieldSpec{}, `""`, ErrMissingValue},
		{"Blank", "thing1", FieldSpec{}, `"  "`, ErrMissingValue},
		{"TextObject", "thing1", FieldSpec{}, `{"a": 1}`, ErrInvalidValue},
		{"TextArray", "thing1", FieldSpec{}, `[1]`, ErrInvalidValue},
		{"NumberText", "number1", FieldSpec{Format: FormatNumber}, `"12 apples"`, ErrInvalidValue},
		{"NumberSpaces", "number1", FieldSpec{Format: FormatNumber}, `" 12"`, ErrInvalidValue},
		{"NumberHex", "number1", FieldSpec{Format: FormatNumber}, `"0x10"`, ErrInvalidValue},
		{"NumberBool", "number1", FieldSpec{Format: FormatNumber}, `true`, ErrInvalidValue},
		{"NumberHugeExponent", "number1", FieldSpec{Format: FormatNumber}, `1e999999999`, ErrInvalidValue},
		{"TimeText", "time1", FieldSpec{Format: FormatDateTime}, `"yesterday"`, ErrInvalidValue},
		{"TimeNoOffset", "time1", FieldSpec{Format: FormatDateTime}, `"2026-11-21T09:30:00"`, ErrInvalidValue},
		{"TimeBool", "time1", FieldSpec{Format: FormatDateTime}, `false`, ErrInvalidValue},
		{"TimeObject", "time1", FieldSpec{Format: FormatDateTime}, `{}`, ErrInvalidValue},
		{"TimeOutOfRange", "time1", FieldSpec{Format: FormatDateTime}, `1e20`, ErrInvalidValue},
		{"TimeNegativeString", "time1", FieldSpec{Format: FormatDateTime}, `"-5"`, ErrInvalidValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ruleBuildOne(t, tc.kw, tc.spec, tc.value)
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			ruleWantErr(t, err, tc.sentinel, "data.v")
			if !strings.Contains(err.Error(), "rule r: keyword "+tc.kw) {
				t.Fatalf("got %v, want the rule and keyword named", err)
			}
		})
	}
}

func TestRuleDefaultsAndConstants(t *testing.T) {
	two := 2
	tests := []struct {
		name  string
		kw    string
		spec  FieldSpec
		value string
		want  string
	}{
		{"DefaultWhenMissing", "thing1", FieldSpec{Default: "未知"}, ``, "未知"},
		{"DefaultWhenNull", "thing1", FieldSpec{Default: "未知"}, `null`, "未知"},
		{"DefaultWhenEmpty", "thing1", FieldSpec{Default: "未知"}, `""`, "未知"},
		{"DefaultWhenBlank", "thing1", FieldSpec{Default: "未知"}, `" \t"`, "未知"},
		{"ValueWinsOverDefault", "thing1", FieldSpec{Default: "未知"}, `"官网"`, "官网"},
		{"DefaultIsNotFormatted", "thing1", FieldSpec{Format: FormatDateTime, Default: "待定"}, ``, "待定"},
		{"FormattedWhenPresent", "thing1", FieldSpec{Format: FormatDateTime, Default: "待定"}, `"2026-11-21T09:30:00Z"`, "2026-11-21 17:30"},
		{"Constant", "thing1", FieldSpec{Value: "CRM"}, `"ignored"`, "CRM"},
		{"ConstantFormatted", "number1", FieldSpec{Value: "3.14159", Format: FormatNumber, Decimals: &two}, ``, "3.14"},
		{"ConstantTime", "date1", FieldSpec{Value: "2026-11-21T20:00:00Z", Format: FormatDate}, ``, "2026-11-22"},
		{"ConstantTruncated", "thing1", FieldSpec{Value: "一二三四五六七八九十一二三四五六七八九十一", Truncate: true}, ``, "一二三四五六七八九十一二三四五六七八九…"},
		{"DefaultTruncated", "thing1", FieldSpec{Default: "一二三四五六七八九十一二三四五六七八九十一", Truncate: true}, ``, "一二三四五六七八九十一二三四五六七八九…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ruleBuildOne(t, tc.kw, tc.spec, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuleTruncate(t *testing.T) {
	long := `"Acme International Trading Company Ltd"`
	tests := []struct {
		name string
		kw   string
		spec FieldSpec
		want string
	}{
		{"Thing", "thing1", FieldSpec{Truncate: true}, "Acme International…"},
		{"Name", "name1", FieldSpec{Truncate: true}, "Acme International…"},
		{"Off", "thing1", FieldSpec{}, "Acme International Trading Company Ltd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ruleBuildOne(t, tc.kw, tc.spec, long)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			typ, _ := wechat.KeywordType(tc.kw)
			if tc.spec.Truncate {
				if err := wechat.Validate(typ, got); err != nil {
					t.Fatalf("got %q, which the keyword refuses: %v", got, err)
				}
			}
		})
	}
	t.Run("ShortUnchanged", func(t *testing.T) {
		got, err := ruleBuildOne(t, "thing1", FieldSpec{Truncate: true}, `"Acme Ltd"`)
		if err != nil || got != "Acme Ltd" {
			t.Fatalf("got %q, %v, want %q", got, err, "Acme Ltd")
		}
	})
}

func TestRulePage(t *testing.T) {
	tests := []struct {
		name string
		page string
		data string
		want string
	}{
		{"None", "", `{"id": "L-1"}`, ""},
		{"Plain", "pages/index/index", `{"id": "L-1"}`, "pages/index/index"},
		{"Placeholder", "pages/clue/clue?id={data.id}", `{"id": "L-1001"}`, "pages/clue/clue?id=L-1001"},
		{"Escaped", "pages/clue/clue?id={data.id}", `{"id": "L 1&x=1+2/é?#"}`, "pages/clue/clue?id=L%201%26x%3D1%2B2%2F%C3%A9%3F%23"},
		{"Several", "/pages/a/a?id={data.id}&n={data.n}&ev={id}", `{"id": "x", "n": 12.5}`, "/pages/a/a?id=x&n=12.5&ev=e1"},
		{"ArrayIndex", "pages/a/a?first={data.items.0}", `{"id": "x", "items": ["a b"]}`, "pages/a/a?first=a%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := ruleCompile(t, ruleCatalog(t, ruleLeadTemplate()), RuleSpec{Name: "p", Event: "t", Template: "lead_assigned",
				To: RecipientPaths{UserID: "id"}, Page: tc.page, Fields: map[string]FieldSpec{
					"thing1": {Value: "a"}, "character_string2": {Value: "b"}, "time3": {Value: "10:00"}, "thing4": {Value: "d"},
				}})
			req, err := rs.List()[0].Build(ruleParse(t, `{"id": "e1", "type": "t", "data": `+tc.data+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if req.Page != tc.want {
				t.Fatalf("got page %q, want %q", req.Page, tc.want)
			}
			if err := CheckPage(req.Page); err != nil {
				t.Fatalf("page %q: got %v, want a valid page", req.Page, err)
			}
		})
	}
	for _, tc := range []struct {
		name, data string
		sentinel   error
	}{
		{"Missing", `{}`, ErrMissingValue},
		{"Object", `{"id": {}}`, ErrInvalidValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := ruleCompile(t, ruleCatalog(t, ruleLeadTemplate()), RuleSpec{Name: "p", Event: "t", Template: "lead_assigned",
				To: RecipientPaths{UserID: "id"}, Page: "pages/a/a?id={data.id}", Fields: map[string]FieldSpec{
					"thing1": {Value: "a"}, "character_string2": {Value: "b"}, "time3": {Value: "10:00"}, "thing4": {Value: "d"},
				}})
			_, err := rs.List()[0].Build(ruleParse(t, `{"id": "e1", "type": "t", "data": `+tc.data+`}`))
			ruleWantErr(t, err, tc.sentinel, "data.id")
		})
	}
}

func TestRuleRecipient(t *testing.T) {
	openID := "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
	userPath, openIDPath := RecipientPaths{UserID: "data.assignee.userId"}, RecipientPaths{OpenID: "data.openids.0"}
	tests := []struct {
		name     string
		to       RecipientPaths
		data     string // data members besides the lead
		want     Recipient
		sentinel error // nil: no error
	}{
		{"UserID", userPath, `"assignee": {"userId": "sales-42"}`, Recipient{UserID: "sales-42"}, nil},
		{"NumericUserID", userPath, `"assignee": {"userId": 42}`, Recipient{UserID: "42"}, nil},
		{"OpenID", openIDPath, `"openids": ["` + openID + `"]`, Recipient{OpenID: openID}, nil},
		{"Missing", userPath, `"assignee": {}`, Recipient{}, ErrNoRecipient},
		{"Null", userPath, `"assignee": {"userId": null}`, Recipient{}, ErrNoRecipient},
		{"Empty", userPath, `"assignee": {"userId": ""}`, Recipient{}, ErrNoRecipient},
		{"Object", userPath, `"assignee": {"userId": {"id": 1}}`, Recipient{}, ErrNoRecipient},
		{"Bool", userPath, `"assignee": {"userId": true}`, Recipient{}, ErrNoRecipient},
		{"InvalidUserID", userPath, `"assignee": {"userId": "sales 42"}`, Recipient{}, ErrNoRecipient},
		{"InvalidOpenID", openIDPath, `"openids": ["not an openid!"]`, Recipient{}, ErrNoRecipient},
		{"NoOpenIDs", openIDPath, `"openids": []`, Recipient{}, ErrNoRecipient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := ruleLeadSpec()
			spec.To = tc.to
			rs := ruleCompile(t, ruleCatalog(t, ruleLeadTemplate()), spec)
			ev := ruleParse(t, `{"id": "e1", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
				"data": {"lead": {"id": "L-1", "name": "Acme"}, `+tc.data+`}}`)
			req, err := rs.List()[0].Build(ev)
			if tc.sentinel != nil {
				ruleWantErr(t, err, tc.sentinel, tc.to.UserID+tc.to.OpenID)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.To != tc.want {
				t.Fatalf("got recipient %+v, want %+v", req.To, tc.want)
			}
		})
	}
}

func TestRuleBuildLeadAssigned(t *testing.T) {
	catalog := ruleCatalog(t, ruleLeadTemplate())
	tmpl, _ := catalog.Lookup("lead_assigned")
	rs := ruleCompile(t, catalog, ruleLeadSpec())
	tests := []struct {
		name   string
		source string // JSON value of data.lead.source, "" to leave it out
		want   string // thing4
	}{
		{"WithSource", `"官网"`, "官网"},
		{"WithoutSource", ``, "未知"},
		{"LongSource", `"二〇二六年秋季全国客户答谢会现场登记表格单"`, "二〇二六年秋季全国客户答谢会现场登记表…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lead := `{"id": "L-1001", "name": "Acme Ltd"`
			if tc.source != "" {
				lead += `, "source": ` + tc.source
			}
			ev := ruleParse(t, `{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
				"data": {"lead": `+lead+`}, "assignee": {"userId": "sales-42"}}}`)
			matched := rs.Match(ev)
			if len(matched) != 1 {
				t.Fatalf("got %d rules, want 1", len(matched))
			}
			req, err := matched[0].Build(ev)
			if err != nil {
				t.Fatal(err)
			}
			want := SendRequest{
				To: Recipient{UserID: "sales-42"}, Template: "lead_assigned", Page: "pages/clue/clue?id=L-1001", Source: FromEvent,
				Data:           map[string]string{"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": tc.want},
				IdempotencyKey: EventKey("evt-7f3a", Recipient{UserID: "sales-42"}, ruleLeadTmplID),
			}
			if !maps.Equal(req.Data, want.Data) {
				t.Fatalf("got data %v, want %v", req.Data, want.Data)
			}
			req.Data, want.Data = nil, nil
			if req.To != want.To || req.Template != want.Template || req.Page != want.Page || req.Source != want.Source ||
				req.IdempotencyKey != want.IdempotencyKey {
				t.Fatalf("got %+v, want %+v", req, want)
			}
		})
	}
	t.Run("PassesCheck", func(t *testing.T) {
		req, err := rs.List()[0].Build(ruleParse(t, ruleSampleEvent))
		if err != nil {
			t.Fatal(err)
		}
		checked, err := tmpl.Check(req.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(checked, req.Data) {
			t.Fatalf("got checked data %v, want it unchanged from %v", checked, req.Data)
		}
	})
}

func TestEventKey(t *testing.T) {
	rs := ruleCompile(t, ruleCatalog(t, ruleLeadTemplate(), Template{Alias: "other", ID: "tmpl-other", Keywords: []Keyword{{Name: "thing1"}}}),
		ruleLeadSpec(),
		RuleSpec{Name: "other", Event: "lead.assigned", Template: "other", To: RecipientPaths{UserID: "data.assignee.userId"},
			Fields: map[string]FieldSpec{"thing1": {From: "data.lead.name"}}})
	lead, other := rs.List()[0], rs.List()[1]
	key := func(r *Rule, body string) string {
		t.Helper()
		req, err := r.Build(ruleParse(t, body))
		if err != nil {
			t.Fatal(err)
		}
		return req.IdempotencyKey
	}
	first := key(lead, ruleSampleEvent)
	if !regexp.MustCompile(`^event:[0-9a-f]{64}$`).MatchString(first) {
		t.Fatalf("got key %q, want event: and 64 hex digits", first)
	}
	tests := []struct {
		name string
		rule *Rule
		body string
		same bool
	}{
		{"SameEventAgain", lead, ruleSampleEvent, true},
		{"SameEventOtherData", lead, strings.Replace(ruleSampleEvent, "Acme Ltd", "Acme Inc", 1), true},
		{"OtherRecipient", lead, strings.Replace(ruleSampleEvent, "sales-42", "sales-43", 1), false},
		{"OtherEvent", lead, strings.Replace(ruleSampleEvent, "evt-7f3a", "evt-7f3b", 1), false},
		{"OtherTemplate", other, ruleSampleEvent, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := key(tc.rule, tc.body); (got == first) != tc.same {
				t.Fatalf("got key %q against %q, want same=%v", got, first, tc.same)
			}
		})
	}
	t.Run("Unambiguous", func(t *testing.T) {
		pairs := [][2]string{
			{EventKey("e", Recipient{UserID: "abc"}, "t"), EventKey("e", Recipient{OpenID: "abc"}, "t")},
			{EventKey("ab", Recipient{UserID: "c"}, "t"), EventKey("a", Recipient{UserID: "bc"}, "t")},
			{EventKey("e\x00x", Recipient{UserID: "u"}, "t"), EventKey("e", Recipient{UserID: "x\x00u"}, "t")},
		}
		for _, p := range pairs {
			if p[0] == p[1] {
				t.Fatalf("got the same key %q for different parts", p[0])
			}
		}
	})
}

func TestRulesMatch(t *testing.T) {
	c := ruleCatalog(t, Template{Alias: "one", ID: "tmpl-one", Keywords: []Keyword{{Name: "thing1"}}})
	spec := func(name, event string) RuleSpec {
		return RuleSpec{Name: name, Event: event, Template: "one", To: RecipientPaths{UserID: "data.u"},
			Fields: map[string]FieldSpec{"thing1": {Value: "x"}}}
	}
	rs := ruleCompile(t, c, spec("assigned", "lead.assigned"), spec("any-lead", "lead.*"), spec("all", "*"), spec("closed", "lead.closed"))
	tests := []struct {
		eventType string
		want      []string
	}{
		{"lead.assigned", []string{"assigned", "any-lead", "all"}},
		{"lead.closed", []string{"any-lead", "all", "closed"}},
		{"lead.", []string{"all"}},
		{"lead", []string{"all"}},
		{"Lead.assigned", []string{"all"}},
		{"order.paid", []string{"all"}},
	}
	for _, tc := range tests {
		t.Run(tc.eventType, func(t *testing.T) {
			var got []string
			for _, r := range rs.Match(Event{ID: "e", Type: tc.eventType}) {
				got = append(got, r.Name())
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	none := ruleCompile(t, c, spec("assigned", "lead.assigned"))
	if got := none.Match(Event{ID: "e", Type: "order.paid"}); got != nil {
		t.Fatalf("no rule: got %v, want nil", got)
	}
	var nilRules *Rules
	if got := nilRules.Match(Event{ID: "e", Type: "x"}); got != nil {
		t.Fatalf("nil rules: got %v, want nil", got)
	}
	if r := rs.List()[1]; r.Event() != "lead.*" || r.Template() != "one" {
		t.Fatalf("got event %q template %q, want lead.* and one", r.Event(), r.Template())
	}
}

func TestCompileRulesErrors(t *testing.T) {
	num := Template{Alias: "num", ID: "tmpl-num", Keywords: []Keyword{{Name: "number1"}, {Name: "character_string2"}, {Name: "phrase3", Label: "状态"}}}
	enum := Template{Alias: "enum", ID: "tmpl-enum", Policy: PolicyReject,
		Keywords: []Keyword{{Name: "enum1", Enum: []string{"新", "旧"}}, {Name: "thing2"}}}
	c := ruleCatalog(t, ruleLeadTemplate(), num, enum)
	lead := func(edit func(*RuleSpec)) []RuleSpec {
		s := ruleLeadSpec()
		s.Fields = maps.Clone(s.Fields)
		edit(&s)
		return []RuleSpec{s}
	}
	field := func(kw string, f FieldSpec) []RuleSpec {
		return lead(func(s *RuleSpec) { s.Fields[kw] = f })
	}
	numRule := func(kw string, f FieldSpec) []RuleSpec {
		fields := map[string]FieldSpec{"number1": {From: "data.n"}, "character_string2": {From: "data.s"}, "phrase3": {Value: "配送中"}}
		fields[kw] = f
		return []RuleSpec{{Name: "n", Event: "x", Template: "num", To: RecipientPaths{OpenID: "data.o"}, Fields: fields}}
	}
	two, big := 2, 21
	const r0 = "rules[0] (lead-assigned)"
	tests := []struct {
		name  string
		specs []RuleSpec
		want  string
	}{
		{"NoName", lead(func(s *RuleSpec) { s.Name = "" }), "rules[0].name: required"},
		{"DuplicateName", append(lead(func(*RuleSpec) {}), ruleLeadSpec()), "rules[1] (lead-assigned).name: \"lead-assigned\" is used twice"},
		{"NoEvent", lead(func(s *RuleSpec) { s.Event = "" }), r0 + ".event: required"},
		{"InnerWildcard", lead(func(s *RuleSpec) { s.Event = "lead.*.done" }), r0 + ".event: * may only end"},
		{"EventWithSpace", lead(func(s *RuleSpec) { s.Event = "lead assigned" }), r0 + ".event:"},
		{"NoTemplate", lead(func(s *RuleSpec) { s.Template = "" }), r0 + ".template: required"},
		{"UnknownTemplate", lead(func(s *RuleSpec) { s.Template = "lead_asigned" }), r0 + ".template: \"lead_asigned\" is not a template"},
		{"BothRecipients", lead(func(s *RuleSpec) { s.To.OpenID = "data.openid" }), r0 + ".to: give userId or openid, not both"},
		{"NoRecipient", lead(func(s *RuleSpec) { s.To = RecipientPaths{} }), r0 + ".to: give userId or openid"},
		{"RecipientOutsideEvent", lead(func(s *RuleSpec) { s.To.UserID = "assignee.userId" }), r0 + ".to.userId: \"assignee.userId\" is not a path"},
		{"RecipientWholeData", lead(func(s *RuleSpec) { s.To = RecipientPaths{OpenID: "data"} }), r0 + ".to.openid:"},
		{"RecipientEmptySegment", lead(func(s *RuleSpec) { s.To.UserID = "data..userId" }), r0 + ".to.userId:"},
		{"RecipientBelowID", lead(func(s *RuleSpec) { s.To.UserID = "id.x" }), r0 + ".to.userId:"},
		{"PagePlaceholderInPath", lead(func(s *RuleSpec) { s.Page = "pages/{data.kind}/index" }), r0 + ".page: placeholders are allowed only in the query"},
		{"PageUnclosed", lead(func(s *RuleSpec) { s.Page = "pages/a/a?id={data.lead.id" }), r0 + ".page: a { without its }"},
		{"PageUnopened", lead(func(s *RuleSpec) { s.Page = "pages/a/a?id=data.lead.id}" }), r0 + ".page: a } without its {"},
		{"PageBadPlaceholder", lead(func(s *RuleSpec) { s.Page = "pages/a/a?id={lead.id}" }), r0 + ".page: placeholder:"},
		{"PageNotAPage", lead(func(s *RuleSpec) { s.Page = "https://example.com/?id={data.lead.id}" }), r0 + ".page: must be a mini program page path"},
		{"MissingKeyword", lead(func(s *RuleSpec) { delete(s.Fields, "time3") }), r0 + ".fields.time3: required: template lead_assigned has keyword time3 (time, 分配时间)"},
		{"ExtraKeyword", field("thing9", FieldSpec{Value: "x"}), r0 + ".fields.thing9: template lead_assigned has no keyword thing9"},
		{"FromAndValue", field("thing1", FieldSpec{From: "data.lead.name", Value: "x"}), r0 + ".fields.thing1: give from or value, not both"},
		{"NeitherFromNorValue", field("thing1", FieldSpec{Default: "x"}), r0 + ".fields.thing1: give from"},
		{"DefaultWithValue", field("thing1", FieldSpec{Value: "x", Default: "y"}), r0 + ".fields.thing1.default: applies only with from"},
		{"BadFrom", field("thing1", FieldSpec{From: "lead.name"}), r0 + ".fields.thing1.from: \"lead.name\" is not a path"},
		{"UnknownFormat", field("thing1", FieldSpec{From: "id", Format: "money"}), r0 + ".fields.thing1.format: \"money\" is not"},
		{"LayoutOnText", field("thing1", FieldSpec{From: "id", Layout: "2006"}), r0 + ".fields.thing1.layout: applies only"},
		{"TZOnNumber", field("thing1", FieldSpec{From: "id", Format: FormatNumber, TZ: "UTC"}), r0 + ".fields.thing1.tz: applies only"},
		{"DecimalsOnText", field("thing1", FieldSpec{From: "id", Decimals: &two}), r0 + ".fields.thing1.decimals: applies only"},
		{"DecimalsOutOfRange", field("thing1", FieldSpec{From: "id", Format: FormatNumber, Decimals: &big}), r0 + ".fields.thing1.decimals: must be 0 to 20"},
		{"SuffixOnDate", field("thing1", FieldSpec{From: "id", Format: FormatDate, Suffix: "日"}), r0 + ".fields.thing1.suffix: applies only"},
		{"TruncateTime", field("time3", FieldSpec{From: "occurredAt", Format: FormatTime, Truncate: true}), r0 + ".fields.time3.truncate: time keywords cannot be shortened"},
		{"TruncateCode", field("character_string2", FieldSpec{From: "data.lead.id", Truncate: true}), r0 + ".fields.character_string2.truncate: character_string keywords cannot be shortened (only thing, short_thing and name)"},
		{"UnknownZone", field("time3", FieldSpec{From: "occurredAt", Format: FormatTime, TZ: "Asia/Beijing"}), r0 + ".fields.time3.tz: \"Asia/Beijing\" is not a time zone"},
		{"LocalZone", field("time3", FieldSpec{From: "occurredAt", Format: FormatTime, TZ: "Local"}), r0 + ".fields.time3.tz: name a zone"},
		{"LayoutWithoutElements", field("time3", FieldSpec{From: "occurredAt", Format: FormatTime, Layout: "HH:mm"}), r0 + ".fields.time3.layout: \"HH:mm\" has no date or time element"},
		{"LayoutTheKeywordRefuses", field("time3", FieldSpec{From: "occurredAt", Format: FormatDateTime, Layout: "2006-01-02T15:04"}), r0 + ".fields.time3.layout: \"2006-01-02T15:04\" gives values like \"2026-10-01T07:59\", which a time keyword refuses"},
		{"DateLayoutForTime", field("time3", FieldSpec{From: "occurredAt", Format: FormatDate}), r0 + ".fields.time3.layout: \"2006-01-02\" gives values like"},
		{"ValueTheKeywordRefuses", field("character_string2", FieldSpec{Value: "线索"}), r0 + ".fields.character_string2.value: character_string value must not contain Chinese characters"},
		{"ValueNotANumber", field("thing1", FieldSpec{Value: "abc", Format: FormatNumber}), r0 + ".fields.thing1.value: the value is not a number"},
		{"ValueNotATime", field("time3", FieldSpec{Value: "noon", Format: FormatTime}), r0 + ".fields.time3.value: the value is not an RFC 3339 time"},
		{"DefaultTheKeywordRefuses", field("character_string2", FieldSpec{From: "data.lead.id", Default: "无"}), r0 + ".fields.character_string2.default: character_string value must not contain Chinese characters"},
		{"DefaultTooLongWithoutTruncate", numRule("character_string2", FieldSpec{From: "data.s", Default: strings.Repeat("x", 33)}), "rules[0] (n).fields.character_string2.default: character_string value has 33 characters, limit 32"},
		{"NumberSuffixTheKeywordRefuses", numRule("number1", FieldSpec{From: "data.n", Format: FormatNumber, Suffix: "元"}), "rules[0] (n).fields.number1.format: number gives values like \"12345.678元\", which a number keyword refuses"},
		{"NumberForPhrase", numRule("phrase3", FieldSpec{From: "data.n", Format: FormatNumber}), "rules[0] (n).fields.phrase3.format: number gives values like"},
		{"EnumValueNotListed", []RuleSpec{{Name: "e", Event: "x", Template: "enum", To: RecipientPaths{UserID: "data.u"},
			Fields: map[string]FieldSpec{"enum1": {Value: "中"}, "thing2": {From: "data.t"}}}}, "rules[0] (e).fields.enum1.value: enum value is not one of the template's enum values"},
		{"EnumTruncate", []RuleSpec{{Name: "e", Event: "x", Template: "enum", To: RecipientPaths{UserID: "data.u"},
			Fields: map[string]FieldSpec{"enum1": {From: "data.e", Truncate: true}, "thing2": {From: "data.t"}}}}, "rules[0] (e).fields.enum1.truncate: enum keywords cannot be shortened"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := CompileRules(tc.specs, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (rules %v), want an error containing %q", err, rs, tc.want)
			}
		})
	}
	t.Run("NilCatalog", func(t *testing.T) {
		if _, err := CompileRules([]RuleSpec{ruleLeadSpec()}, nil); err == nil || !strings.Contains(err.Error(), r0+".template") {
			t.Fatalf("got %v, want an error naming %s.template", err, r0)
		}
	})
	t.Run("NoRules", func(t *testing.T) {
		rs, err := CompileRules(nil, c)
		if err != nil || len(rs.List()) != 0 {
			t.Fatalf("got %v, %v, want no rules and no error", rs, err)
		}
	})
}

func TestLoadZone(t *testing.T) {
	missing := func(string) (*time.Location, error) { return nil, errors.New("no zoneinfo") }
	tests := []struct {
		name    string
		zone    string
		load    func(string) (*time.Location, error)
		wantErr bool
		want    string // the sample event's 09:30Z in the zone
	}{
		{"Database", "Asia/Shanghai", time.LoadLocation, false, "17:30"},
		{"ShanghaiWithoutDatabase", "Asia/Shanghai", missing, false, "17:30"},
		{"OtherWithoutDatabase", "Asia/Tokyo", missing, true, ""},
	}
	at := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := loadZone(tc.zone, tc.load)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if got := at.In(loc).Format("15:04"); got != tc.want {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
			}
		})
	}
}

// TestRuleSendsOnce runs the lead rule's request through the send path on a
// real store and the fake WeChat: the same event delivered three times sends
// one message, with the data and page the rule built.
func TestRuleSendsOnce(t *testing.T) {
	ctx := context.Background()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "rules.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	fake := wechattest.NewServer(wechattest.Options{AppID: "wxrules", Templates: []wechattest.Template{{
		PriTmplID: ruleLeadTmplID, Title: "线索分配通知", Type: 2,
		Keywords: []wechattest.Keyword{{Name: "thing1"}, {Name: "character_string2"}, {Name: "time3"}, {Name: "thing4"}},
	}}})
	t.Cleanup(fake.Close)
	cfg := wechat.Config{AppID: "wxrules", Secret: fake.Secret(), BaseURL: fake.URL()}
	if cfg.Tokens, err = wechat.NewStoreTokenSource(bolt, cfg, wechat.TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	wx, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	catalog := ruleCatalog(t, ruleLeadTemplate())
	sessions, err := NewSessions(make([]byte, 32), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{AppID: "wxrules", Store: bolt, WeChat: wx, Catalog: catalog, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Bind(ctx, "sales-42", fake.Login("sales"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // credits enough for every delivery: only idempotency stops the repeats
		if _, err := fake.Subscribe(res.OpenID, map[string]string{ruleLeadTmplID: "accept"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bolt.Put(ctx, svc.creditsKey(res.OpenID, ruleLeadTmplID), store.FormatCounter(3), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	rules := ruleCompile(t, catalog, ruleLeadSpec())
	var ids []string
	for range 3 {
		ev := ruleParse(t, ruleSampleEvent)
		for _, r := range rules.Match(ev) {
			req, err := r.Build(ev)
			if err != nil {
				t.Fatal(err)
			}
			n, err := svc.Send(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if n.Status != StatusSent {
				t.Fatalf("got status %s (%s), want sent", n.Status, n.Reason)
			}
			ids = append(ids, n.ID)
		}
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("got notifications %v, want the same one three times", ids)
	}
	msgs := fake.Messages(res.OpenID)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	want := map[string]string{"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "官网"}
	if !maps.Equal(msgs[0].Data, want) || msgs[0].Page != "pages/clue/clue?id=L-1001" {
		t.Fatalf("got message data %v page %q, want %v and pages/clue/clue?id=L-1001", msgs[0].Data, msgs[0].Page, want)
	}
}

func TestFormatNumberNeverUsesExponents(t *testing.T) {
	f := ruleField{decimals: -1}
	for _, in := range []string{"1e400", "1e-400", "-123.456e2", "0.000", "100e-2"} {
		got, ok := f.formatNumber(in)
		if !ok || strings.ContainsAny(got, "eE") || !utf8.ValidString(got) {
			t.Fatalf("formatNumber(%q): got %q, %v, want plain digits", in, got, ok)
		}
	}
	for in, want := range map[string]string{"-123.456e2": "-12345.6", "0.000": "0.000", "100e-2": "1.00", "-0": "0"} {
		if got, _ := f.formatNumber(in); got != want {
			t.Fatalf("formatNumber(%q): got %q, want %q", in, got, want)
		}
	}
}
