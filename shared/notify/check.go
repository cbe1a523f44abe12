package notify

import (
	"errors"
	"maps"
	"slices"
)

// FieldResult is the judgement of one data field of a send, as Check would
// make it, for views that show every field at once (the console's test
// send) where Check stops at the first refusal.
type FieldResult struct {
	Field   string // "data.thing4", as a bad_request names it
	Keyword string // "thing4"
	Type    string // the keyword's type, "" for a key the template does not have
	Value   string // the value given
	Given   bool   // whether a value was given at all
	// Send is the value that would be sent: Value, or what the template's
	// policy truncated it to. Empty when the field is refused.
	Send      string
	Truncated bool // the policy changed the value (Send != Value)
	// Code is "" when the field passes, else bad_request, the code of the
	// refusal Send would answer; Rule then is its message, the broken rule
	// ("thing value has 21 characters, limit 20").
	Code Code
	Rule string
}

// OK reports whether the field passes.
func (r FieldResult) OK() bool { return r.Code == "" }

// CheckFields judges every field of data as Check does - the same rules,
// the same truncation policy - without stopping at the first refusal: one
// result per keyword of the template, in the template's order, then one per
// key of data the template does not have, sorted. Check refuses data
// exactly when a result is not OK.
func (t Template) CheckFields(data map[string]string) []FieldResult {
	out := make([]FieldResult, 0, len(t.Keywords))
	for _, kw := range t.Keywords {
		r := FieldResult{Field: "data." + kw.Name, Keyword: kw.Name, Type: kw.Type}
		v, ok := data[kw.Name]
		r.Value, r.Given = v, ok
		if !ok {
			r.Code, r.Rule = CodeBadRequest, "missing value for keyword "+kw.Name+" ("+kw.Type+")"
			out = append(out, r)
			continue
		}
		send, cut, err := t.checkValue(kw, v)
		if err != nil {
			r.Code, r.Rule = CodeBadRequest, err.Error()
		} else {
			r.Send, r.Truncated = send, cut
		}
		out = append(out, r)
	}
	for _, name := range slices.Sorted(maps.Keys(data)) {
		if _, ok := t.Keyword(name); !ok {
			out = append(out, FieldResult{Field: "data." + name, Keyword: name, Value: data[name], Given: true,
				Code: CodeBadRequest, Rule: "template " + t.Alias + " has no keyword " + name})
		}
	}
	return out
}

// SendCheck is what CheckSend finds of a send request.
type SendCheck struct {
	Template Template
	// Request is the refusal of the request's other fields (to, page,
	// miniprogramState, lang, idempotencyKey): a bad_request *Error naming
	// the field, or nil.
	Request error
	Fields  []FieldResult
}

// OK reports whether Send would take the request: no refusal of the
// request's fields nor of its data.
func (c SendCheck) OK() bool {
	if c.Request != nil {
		return false
	}
	for _, f := range c.Fields {
		if !f.OK() {
			return false
		}
	}
	return true
}

// CheckSend validates req as Send does, and nothing more: no store read,
// no credit, no call to WeChat. An unknown or missing template is the
// error (bad_request naming "template"); every other refusal is in the
// SendCheck, with every data field judged (CheckFields).
func (s *Service) CheckSend(req SendRequest) (SendCheck, error) {
	t, err := s.prepareFields(&req)
	if t.Alias == "" {
		return SendCheck{}, err
	}
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return SendCheck{}, err
	}
	return SendCheck{Template: t, Request: err, Fields: t.CheckFields(req.Data)}, nil
}
