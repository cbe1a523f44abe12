package config

import (
	// Rules name IANA time zones (Asia/Shanghai by default); embedding the
	// database makes them load on machines and runtimes without zoneinfo.
	_ "time/tzdata"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// RuleSpec is one rule of wxnotify.yaml: lead events of a type become a
// notification (see notify.RuleSpec for the meaning of each key, and the
// bundled example for a complete rule):
//
//	rules:
//	  - name: lead-assigned
//	    event: lead.assigned
//	    template: lead_assigned
//	    to: {userId: data.assignee.userId}
//	    page: pages/clue/clue?id={data.lead.id}
//	    fields:
//	      thing1: {from: data.lead.name, truncate: true}
//	      time3: {from: occurredAt, format: datetime, layout: "2006-01-02 15:04", tz: Asia/Shanghai}
type RuleSpec struct {
	Name     string               `yaml:"name"`
	Event    string               `yaml:"event"`
	Template string               `yaml:"template"`
	To       RecipientSpec        `yaml:"to"`
	Page     string               `yaml:"page,omitempty"`
	Fields   map[string]FieldSpec `yaml:"fields"`
}

// RecipientSpec is exactly one path to the recipient: a bound userId or an
// openid.
type RecipientSpec struct {
	UserID string `yaml:"userId,omitempty"`
	OpenID string `yaml:"openid,omitempty"`
}

// FieldSpec is the value of one template keyword in a rule.
type FieldSpec struct {
	From     string `yaml:"from,omitempty"`
	Value    string `yaml:"value,omitempty"`
	Default  string `yaml:"default,omitempty"`
	Format   string `yaml:"format,omitempty"`
	Layout   string `yaml:"layout,omitempty"`
	TZ       string `yaml:"tz,omitempty"`
	Decimals *int   `yaml:"decimals,omitempty"`
	Suffix   string `yaml:"suffix,omitempty"`
	Truncate bool   `yaml:"truncate,omitempty"`
}

// CompileRules compiles the file's rules against the catalog (see
// notify.CompileRules); errors name the rule and the field, as in
// "rules[0] (lead-assigned).fields.thing1.from: ...". ParseFile has already
// checked them against the file's own catalog.
func (f File) CompileRules(catalog *notify.Catalog) (*notify.Rules, error) {
	specs := make([]notify.RuleSpec, len(f.Rules))
	for i, r := range f.Rules {
		specs[i] = notify.RuleSpec{
			Name: r.Name, Event: r.Event, Template: r.Template, Page: r.Page,
			To:     notify.RecipientPaths{UserID: r.To.UserID, OpenID: r.To.OpenID},
			Fields: make(map[string]notify.FieldSpec, len(r.Fields)),
		}
		for name, fs := range r.Fields {
			specs[i].Fields[name] = notify.FieldSpec{
				From: fs.From, Value: fs.Value, Default: fs.Default, Format: notify.Format(fs.Format),
				Layout: fs.Layout, TZ: fs.TZ, Decimals: fs.Decimals, Suffix: fs.Suffix, Truncate: fs.Truncate,
			}
		}
	}
	return notify.CompileRules(specs, catalog)
}
