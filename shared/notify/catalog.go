package notify

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Kind tells one-time templates (one credit per accept) from long-term ones
// (accepted until turned off).
type Kind string

// Template kinds.
const (
	OneTime  Kind = "one-time"
	LongTerm Kind = "long-term"
)

// Policy decides what happens to data that breaks a keyword rule.
type Policy string

// Validation policies.
const (
	// PolicyReject refuses the send with bad_request naming the field.
	PolicyReject Policy = "reject"
	// PolicyTruncate shortens text values (rune-aware, ending with an
	// ellipsis) where the keyword type allows it, and rejects the rest.
	PolicyTruncate Policy = "truncate"
)

// Keyword is one data field of a template: its name ("thing4"), its type
// ("thing"), an optional label and, for enum types, the allowed values.
type Keyword struct {
	Name  string
	Type  string
	Label string
	Enum  []string
}

// Template is one subscribe-message template of the catalog.
type Template struct {
	Alias    string
	ID       string // WeChat's priTmplId
	Title    string
	Kind     Kind
	Policy   Policy
	Keywords []Keyword
}

// Catalog is the validated, read-only set of templates wxnotify may send.
type Catalog struct {
	list    []Template
	byAlias map[string]int
	byID    map[string]int
}

// NewCatalog validates templates and indexes them by alias and id. Errors
// name the template and the field.
func NewCatalog(templates []Template) (*Catalog, error) {
	c := &Catalog{byAlias: map[string]int{}, byID: map[string]int{}}
	for i, t := range templates {
		where := fmt.Sprintf("templates[%d]", i)
		if t.Alias != "" {
			where = fmt.Sprintf("templates[%d] (%s)", i, t.Alias)
		}
		switch {
		case t.Alias == "":
			return nil, fmt.Errorf("%s.alias: required", where)
		case t.ID == "":
			return nil, fmt.Errorf("%s.id: required", where)
		case strings.ContainsAny(t.Alias, " |\t\n"):
			return nil, fmt.Errorf("%s.alias: must not contain spaces or '|'", where)
		}
		if _, dup := c.byAlias[t.Alias]; dup {
			return nil, fmt.Errorf("%s.alias: %q is used twice", where, t.Alias)
		}
		if _, dup := c.byID[t.ID]; dup {
			return nil, fmt.Errorf("%s.id: %q is used twice", where, t.ID)
		}
		switch t.Kind {
		case "":
			t.Kind = OneTime
		case OneTime, LongTerm:
		default:
			return nil, fmt.Errorf("%s.kind: %q is not one-time or long-term", where, t.Kind)
		}
		switch t.Policy {
		case "":
			t.Policy = PolicyReject
		case PolicyReject, PolicyTruncate:
		default:
			return nil, fmt.Errorf("%s.policy: %q is not reject or truncate", where, t.Policy)
		}
		if len(t.Keywords) == 0 {
			return nil, fmt.Errorf("%s.keywords: at least one keyword is required", where)
		}
		seen := map[string]bool{}
		kws := make([]Keyword, len(t.Keywords))
		for j, kw := range t.Keywords {
			typ, ok := wechat.KeywordType(kw.Name)
			if !ok {
				return nil, fmt.Errorf("%s.keywords.%s: not a keyword name of a known type (like thing4 or date2)", where, kw.Name)
			}
			if kw.Type != "" && kw.Type != typ {
				return nil, fmt.Errorf("%s.keywords.%s: type %q does not match the name's type %q", where, kw.Name, kw.Type, typ)
			}
			if seen[kw.Name] {
				return nil, fmt.Errorf("%s.keywords.%s: listed twice", where, kw.Name)
			}
			seen[kw.Name] = true
			kw.Type = typ
			kw.Enum = slices.Clone(kw.Enum)
			kws[j] = kw
		}
		t.Keywords = kws
		c.byAlias[t.Alias] = len(c.list)
		c.byID[t.ID] = len(c.list)
		c.list = append(c.list, t)
	}
	return c, nil
}

// Lookup finds a template by alias or by WeChat template id.
func (c *Catalog) Lookup(ref string) (Template, bool) {
	if i, ok := c.byAlias[ref]; ok {
		return c.list[i], true
	}
	if i, ok := c.byID[ref]; ok {
		return c.list[i], true
	}
	return Template{}, false
}

// Templates returns the catalog in configuration order.
func (c *Catalog) Templates() []Template { return slices.Clone(c.list) }

// Keyword returns the template's keyword with the name.
func (t Template) Keyword(name string) (Keyword, bool) {
	for _, kw := range t.Keywords {
		if kw.Name == name {
			return kw, true
		}
	}
	return Keyword{}, false
}

// Check validates data against the template's keywords before anything is
// sent: every keyword present, no unknown key, every value within its
// type's rule. Under PolicyTruncate, text values that are too long are
// shortened instead of refused. It returns the data to send, or a
// bad_request *Error naming the field ("data.thing4").
func (t Template) Check(data map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(t.Keywords))
	for name := range data {
		if _, ok := t.Keyword(name); !ok {
			// The first unknown key in order is the one named.
			for _, name := range slices.Sorted(maps.Keys(data)) {
				if _, ok := t.Keyword(name); !ok {
					return nil, FieldError("data."+name, "template %s has no keyword %s", t.Alias, name)
				}
			}
		}
	}
	for _, kw := range t.Keywords {
		v, ok := data[kw.Name]
		if !ok {
			return nil, FieldError("data."+kw.Name, "missing value for keyword %s (%s)", kw.Name, kw.Type)
		}
		v, _, err := t.checkValue(kw, v)
		if err != nil {
			return nil, FieldError("data."+kw.Name, "%v", err)
		}
		out[kw.Name] = v
	}
	return out, nil
}

// checkValue applies the keyword's rule to v, and the template's policy
// to a value the rule refuses: the value to send, whether truncation
// changed it, or the rule's *wechat.KeywordError. Check and CheckFields
// both judge a value with it.
func (t Template) checkValue(kw Keyword, v string) (string, bool, error) {
	err := wechat.Validate(kw.Type, v, kw.Enum...)
	if err != nil && t.Policy == PolicyTruncate {
		if cut, ok := wechat.Truncate(kw.Type, v); ok {
			return cut, cut != v, nil
		}
	}
	if err != nil {
		return "", false, err
	}
	return v, false, nil
}
