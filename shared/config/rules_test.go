package config

import (
	"maps"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// exampleRules compiles the bundled example's rules.
func exampleRules(tb testing.TB) (*notify.Catalog, *notify.Rules) {
	tb.Helper()
	f, err := ParseFile(Example)
	if err != nil {
		tb.Fatal(err)
	}
	catalog, err := f.Catalog()
	if err != nil {
		tb.Fatal(err)
	}
	rules, err := f.CompileRules(catalog)
	if err != nil {
		tb.Fatal(err)
	}
	return catalog, rules
}

func parseEvent(tb testing.TB, body string) notify.Event {
	tb.Helper()
	ev, err := notify.ParseEvent([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

// TestExampleLeadRule runs the sample event of docs/api.md#lead-events through the example's
// lead-assignment rule: the data passes the template's check unchanged.
func TestExampleLeadRule(t *testing.T) {
	catalog, rules := exampleRules(t)
	tmpl, ok := catalog.Lookup("lead_assigned")
	if !ok {
		t.Fatal("lead_assigned template missing from the example")
	}
	tests := []struct {
		name  string
		event string
		want  map[string]string
	}{
		{"APISample", `{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
 "data": {"lead": {"id": "L-1001", "name": "Acme Ltd"}, "assignee": {"userId": "sales-42"}}}`,
			map[string]string{"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "未知"}},
		{"WithSource", `{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
 "data": {"lead": {"id": "L-1001", "name": "Acme Ltd", "source": "官网"}, "assignee": {"userId": "sales-42"}}}`,
			map[string]string{"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "官网"}},
		{"LongName", `{"id": "evt-7f3b", "type": "lead.assigned", "occurredAt": "2026-11-21T16:05:00Z",
 "data": {"lead": {"id": "L-1002", "name": "深圳市前海国际供应链管理服务有限公司华南区分公司"}, "assignee": {"userId": "sales-42"}}}`,
			map[string]string{"thing1": "深圳市前海国际供应链管理服务有限公司华…", "character_string2": "L-1002", "time3": "2026-11-22 00:05", "thing4": "未知"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := parseEvent(t, tc.event)
			matched := rules.Match(ev)
			if len(matched) != 1 || matched[0].Name() != "lead-assigned" {
				t.Fatalf("got %d rules, want the lead-assigned rule alone", len(matched))
			}
			req, err := matched[0].Build(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(req.Data, tc.want) {
				t.Fatalf("got data %v, want %v", req.Data, tc.want)
			}
			checked, err := tmpl.Check(req.Data)
			if err != nil {
				t.Fatalf("got %v, want data that passes the template's check", err)
			}
			if !maps.Equal(checked, req.Data) {
				t.Fatalf("got checked data %v, want it unchanged", checked)
			}
			if err := wechat.Validate("time", req.Data["time3"]); err != nil {
				t.Fatalf("time3 %q: got %v, want a valid time", req.Data["time3"], err)
			}
			if req.To != (notify.Recipient{UserID: "sales-42"}) || req.Template != "lead_assigned" || req.Source != notify.FromEvent {
				t.Fatalf("got to %+v template %q source %q, want sales-42, lead_assigned, event", req.To, req.Template, req.Source)
			}
			if want := "pages/clue/clue?id=" + tc.want["character_string2"]; req.Page != want {
				t.Fatalf("got page %q, want %q", req.Page, want)
			}
			if want := notify.EventKey(ev.ID, req.To, tmpl.ID); req.IdempotencyKey != want {
				t.Fatalf("got idempotency key %q, want %q", req.IdempotencyKey, want)
			}
		})
	}
	if got := rules.Match(parseEvent(t, `{"id": "e", "type": "lead.closed"}`)); len(got) != 0 {
		t.Fatalf("lead.closed: got %d rules, want none", len(got))
	}
}

const rulesTemplatesYAML = `templates:
  - alias: order_paid
    id: tmpl-order
    keywords:
      - name: character_string1
      - name: amount2
      - name: date3
      - name: thing4
      - name: number5
`

func TestParseFileRules(t *testing.T) {
	raw := rulesTemplatesYAML + `rules:
  - name: order-paid
    event: order.*
    template: order_paid
    to: {openid: data.buyer.openid}
    page: pages/order/order?id={data.order.id}&from={type}
    fields:
      character_string1: {from: data.order.id}
      amount2: {from: data.order.total, format: number, decimals: 2, suffix: 元}
      date3: {from: data.order.paidAt, format: date, layout: date-zh, tz: UTC}
      thing4: {value: 100}
      number5: {from: data.order.items, format: number, decimals: 0}
`
	f, err := ParseFile([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Rules[0].Fields["number5"].Decimals; got == nil || *got != 0 {
		t.Fatalf("number5 decimals: got %v, want 0 (set, not absent)", got)
	}
	if got := f.Rules[0].Fields["character_string1"].Decimals; got != nil {
		t.Fatalf("character_string1 decimals: got %v, want nil", *got)
	}
	catalog, err := f.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := f.CompileRules(catalog)
	if err != nil {
		t.Fatal(err)
	}
	ev := parseEvent(t, `{"id": "o-1", "type": "order.paid", "data": {"buyer": {"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
		"order": {"id": "A 1", "total": 1999.995, "paidAt": 1795253400000, "items": 2.5}}}`)
	matched := rules.Match(ev)
	if len(matched) != 1 {
		t.Fatalf("got %d rules, want 1", len(matched))
	}
	req, err := matched[0].Build(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"character_string1": "A 1", "amount2": "2000.00元", "date3": "2026年11月21日", "thing4": "100", "number5": "3"}
	if !maps.Equal(req.Data, want) {
		t.Fatalf("got data %v, want %v", req.Data, want)
	}
	if want := "pages/order/order?id=A%201&from=order.paid"; req.Page != want {
		t.Fatalf("got page %q, want %q", req.Page, want)
	}
	if req.To.OpenID != "o6_bmjrPTlm6_2sgVt7hMZOPfL2M" || req.To.UserID != "" {
		t.Fatalf("got recipient %+v, want the openid", req.To)
	}
}

func TestParseFileRuleErrors(t *testing.T) {
	rule := func(body string) string {
		return rulesTemplatesYAML + "rules:\n  - name: paid\n    event: order.paid\n    template: order_paid\n" + body
	}
	fields := "    fields:\n      character_string1: {from: data.id}\n      amount2: {from: data.total}\n" +
		"      date3: {from: occurredAt, format: date}\n      thing4: {value: x}\n      number5: {value: 1}\n"
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"UnknownRuleKey", rule("    too: {userId: data.u}\n" + fields), "field too not found"},
		{"UnknownFieldKey", rule("    to: {userId: data.u}\n" + strings.Replace(fields, "{from: data.id}", "{form: data.id}", 1)), "field form not found"},
		{"UnknownRecipientKey", rule("    to: {user: data.u}\n" + fields), "field user not found"},
		{"DecimalsNotANumber", rule("    to: {userId: data.u}\n" + strings.Replace(fields, "{from: data.total}", "{from: data.total, format: number, decimals: two}", 1)), "invalid yaml"},
		{"NoRecipient", rule(fields), "rules[0] (paid).to: give userId or openid"},
		{"BadPath", rule("    to: {userId: assignee}\n" + fields), "rules[0] (paid).to.userId: \"assignee\" is not a path"},
		{"UnknownTemplate", strings.Replace(rule("    to: {userId: data.u}\n"+fields), "template: order_paid", "template: order_payed", 1), "rules[0] (paid).template: \"order_payed\" is not a template"},
		{"MissingKeyword", rule("    to: {userId: data.u}\n" + strings.Replace(fields, "      thing4: {value: x}\n", "", 1)), "rules[0] (paid).fields.thing4: required"},
		{"BadZone", rule("    to: {userId: data.u}\n" + strings.Replace(fields, "format: date}", "format: date, tz: Mars/Olympus}", 1)), "rules[0] (paid).fields.date3.tz: \"Mars/Olympus\" is not a time zone"},
		{"RemovedTemplate", strings.Replace(rule("    to: {userId: data.u}\n"+fields), "    id: tmpl-order\n", "    id: tmpl-order\n    removed: true\n", 1), "rules[0] (paid).template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
