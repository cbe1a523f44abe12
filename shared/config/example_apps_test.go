package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// TestExampleApps reads the bundled apps example as wxnotify dev --example
// apps does, and runs each app's events through its own rules: the sales
// app's lead events, the customer app's registration and appointment
// events, and no app has the other's templates.
func TestExampleApps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, ExampleApps, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := FromEnv(env("WXN_CONFIG", path), false)
	if err != nil {
		t.Fatalf("FromEnv(example apps): %v", err)
	}
	if len(c.Apps) != 2 || c.Apps[0].ID != "sales" || c.Apps[1].ID != "customer" || c.DefaultApp != "sales" {
		t.Fatalf("apps: got %d apps %+v, default %q; want sales and customer, default sales", len(c.Apps), c.Apps, c.DefaultApp)
	}
	if !c.Sandbox() {
		t.Fatal("example without secrets: want the sandbox")
	}
	events := map[string][]string{
		"sales": {`{"id":"evt-7f3a","type":"lead.assigned","occurredAt":"2026-11-21T09:30:00Z",
			"data":{"lead":{"id":"L-1001","name":"Acme Ltd","source":"官网"},"assignee":{"userId":"sales-42"}}}`},
		"customer": {`{"id":"evt-91c2","type":"customer.registered","occurredAt":"2026-11-21T09:30:00Z",
			"data":{"customer":{"userId":"customer-7","company":"Acme Ltd","number":"R-2026-0042"}}}`,
			`{"id":"evt-a7d0","type":"appointment.booked","occurredAt":"2026-11-21T09:30:00Z",
			"data":{"appointment":{"id":"A-77","service":"产品演示","at":"2026-11-25T14:00:00+08:00","advisor":"王芳"},
			"customer":{"userId":"customer-7"}}}`},
	}
	wantData := map[string]map[string]string{
		"lead.assigned":       {"thing1": "Acme Ltd", "character_string2": "L-1001", "time3": "2026-11-21 17:30", "thing4": "官网"},
		"customer.registered": {"date2": "2026年11月21日", "thing4": "Acme Ltd", "character_string9": "R-2026-0042"},
		"appointment.booked":  {"thing1": "产品演示", "time2": "2026年11月25日 14:00", "name3": "王芳", "phrase4": "已确认"},
	}
	for _, a := range c.Apps {
		catalog, err := a.File.Catalog()
		if err != nil {
			t.Fatalf("%s: catalog: %v", a.ID, err)
		}
		rules, err := a.File.CompileRules(catalog)
		if err != nil {
			t.Fatalf("%s: rules: %v", a.ID, err)
		}
		_, hasLead := catalog.Lookup("lead_assigned")
		_, hasReg := catalog.Lookup("registration")
		if hasLead != (a.ID == "sales") || hasReg != (a.ID == "customer") {
			t.Fatalf("%s: lead_assigned %v, registration %v: each template belongs to one app", a.ID, hasLead, hasReg)
		}
		for _, raw := range events[a.ID] {
			ev, err := notify.ParseEvent([]byte(raw))
			if err != nil {
				t.Fatalf("%s: event: %v", a.ID, err)
			}
			matched := rules.Match(ev)
			if len(matched) != 1 {
				t.Fatalf("%s: %s matched %d rules, want 1", a.ID, ev.Type, len(matched))
			}
			req, err := matched[0].Build(ev)
			if err != nil {
				t.Fatalf("%s: %s: build: %v", a.ID, ev.Type, err)
			}
			for k, v := range wantData[ev.Type] {
				if req.Data[k] != v {
					t.Errorf("%s: %s: %s = %q, want %q", a.ID, ev.Type, k, req.Data[k], v)
				}
			}
			if len(req.Data) != len(wantData[ev.Type]) {
				t.Errorf("%s: %s: data %v, want %v", a.ID, ev.Type, req.Data, wantData[ev.Type])
			}
		}
	}
}
