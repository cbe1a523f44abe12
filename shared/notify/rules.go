package notify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Event is a lead system's event in its canonical form, whatever the
// transport (docs/api.md#lead-events):
//
//	{"id": "evt-7f3a", "type": "lead.assigned", "occurredAt": "2026-11-21T09:30:00Z",
//	 "data": {"lead": {"id": "L-1001", "name": "Acme Ltd"}, "assignee": {"userId": "sales-42"}}}
//
// Data is the decoded "data" object: nested objects are map[string]any,
// arrays []any, and numbers json.Number, so that large ids and amounts keep
// every digit.
type Event struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurredAt,omitzero"` // zero when the event has none
	Data       map[string]any `json:"data,omitempty"`
	// App optionally names the app (its id or AppID) the event is for; the
	// edge routes it (a queue's event without one goes to the default
	// app, a webhook's must name the route's app).
	App string `json:"app,omitempty"`
}

// MaxEventSize bounds an encoded event (256 KiB, the message limit of SQS
// and EventBridge).
const MaxEventSize = 256 << 10

// maxEventIdent bounds an event's id and type, in bytes.
const maxEventIdent = 256

// Errors of malformed events. Every error of ParseEvent and Rule.Build is a
// bad_request *Error that wraps ErrEventMalformed: the event can never be
// processed as it is, so a queue should not redeliver it. Build's errors also
// wrap one of ErrNoRecipient, ErrMissingValue and ErrInvalidValue.
var (
	ErrEventMalformed = errors.New("malformed event")
	// ErrNoRecipient: the event has no usable value at the rule's recipient path.
	ErrNoRecipient = fmt.Errorf("%w: no recipient", ErrEventMalformed)
	// ErrMissingValue: a path a field or the page needs is missing, null or
	// empty, and no default applies.
	ErrMissingValue = fmt.Errorf("%w: missing value", ErrEventMalformed)
	// ErrInvalidValue: a value is present but cannot be used, e.g. an object
	// where text is needed, or text where a number or a time is needed.
	ErrInvalidValue = fmt.Errorf("%w: invalid value", ErrEventMalformed)
)

// malformedEvent builds a bad_request *Error that wraps a malformed-event sentinel.
func malformedEvent(sentinel error, field, format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// ParseEvent decodes one canonical event. It is strict about what rules rely
// on and lenient about the rest:
//   - the body is one JSON object of valid UTF-8, at most MaxEventSize bytes
//     (larger: payload_too_large);
//   - "id" and "type" are required strings of 1 to 256 bytes without control
//     characters;
//   - "occurredAt", when present and not null, is an RFC 3339 time;
//   - "data", when present and not null, is an object;
//   - other top-level fields are ignored, so lead systems may add their own.
//
// Errors are *Error values naming the field ("id", "occurredAt", ...) and
// wrapping ErrEventMalformed. ParseEvent never panics, whatever the input.
func ParseEvent(body []byte) (Event, error) {
	if len(body) > MaxEventSize {
		return Event{}, &Error{Code: CodePayloadTooLarge, Err: ErrEventMalformed,
			Message: fmt.Sprintf("an event must be at most %d bytes", MaxEventSize)}
	}
	if !utf8.Valid(body) {
		return Event{}, malformedEvent(ErrEventMalformed, "", "an event must be valid UTF-8")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		if !json.Valid(body) {
			return Event{}, malformedEvent(ErrEventMalformed, "", "an event must be valid JSON")
		}
		return Event{}, malformedEvent(ErrEventMalformed, "", "an event must be a JSON object")
	}
	var ev Event
	var err error
	if ev.ID, err = eventIdent(top, "id"); err != nil {
		return Event{}, err
	}
	if ev.Type, err = eventIdent(top, "type"); err != nil {
		return Event{}, err
	}
	if raw, ok := top["occurredAt"]; ok && !isJSONNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return Event{}, malformedEvent(ErrEventMalformed, "occurredAt", "must be a string")
		}
		if ev.OccurredAt, err = time.Parse(time.RFC3339, s); err != nil {
			return Event{}, malformedEvent(ErrEventMalformed, "occurredAt", "must be an RFC 3339 time such as 2026-11-21T09:30:00Z")
		}
	}
	if raw, ok := top["app"]; ok && !isJSONNull(raw) {
		if json.Unmarshal(raw, &ev.App) != nil || !IsAppRef(ev.App) {
			return Event{}, malformedEvent(ErrEventMalformed, "app", "must be an app id or AppID (1 to 64 letters, digits, '-' or '_')")
		}
	}
	if raw, ok := top["data"]; ok && !isJSONNull(raw) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&ev.Data) != nil {
			return Event{}, malformedEvent(ErrEventMalformed, "data", "must be a JSON object")
		}
	}
	return ev, nil
}

// isJSONNull reports whether a raw value (as json.Unmarshal leaves it in a
// map: no surrounding spaces) is null.
func isJSONNull(raw json.RawMessage) bool { return string(raw) == "null" }

// IsAppRef reports whether s can name an app: an app id or an AppID, 1 to
// 64 ASCII letters, digits, '-' or '_'. Events and routes name apps so.
func IsAppRef(s string) bool {
	return s != "" && len(s) <= 64 && strings.TrimFunc(s, func(r rune) bool {
		return r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}) == ""
}

// eventIdent reads the required identifier field of an event.
func eventIdent(top map[string]json.RawMessage, field string) (string, error) {
	raw, ok := top[field]
	if !ok || isJSONNull(raw) {
		return "", malformedEvent(ErrEventMalformed, field, "required")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", malformedEvent(ErrEventMalformed, field, "must be a string")
	}
	if s == "" || len(s) > maxEventIdent {
		return "", malformedEvent(ErrEventMalformed, field, "must be 1 to %d bytes", maxEventIdent)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", malformedEvent(ErrEventMalformed, field, "must not contain control characters")
	}
	return s, nil
}

// EventKey is the idempotency key of the notification an event sends to one
// recipient with one template: the same event delivered again (queue
// redeliveries, replays, webhook retries) maps to the same key and sends
// once; another recipient or another template maps to another key.
//
// The key is "event:" followed by the hex SHA-256 of the length-prefixed
// (uvarint) parts: the event id, "userId" or "openid", the recipient, and
// the template's WeChat id (not its alias, so that renaming an alias does not
// resend). Length prefixes keep the join unambiguous whatever the parts hold.
func EventKey(eventID string, to Recipient, templateID string) string {
	kind, who := "userId", to.UserID
	if who == "" {
		kind, who = "openid", to.OpenID
	}
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, part := range []string{"wxnotify-event-v1", eventID, kind, who, templateID} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(part)))])
		h.Write([]byte(part))
	}
	return "event:" + hex.EncodeToString(h.Sum(nil))
}

// Format tells how a rule field turns an event value into keyword text.
type Format string

// Field formats.
const (
	// FormatText writes the value as text: strings as they are, numbers as
	// their JSON text, booleans as true or false. It is the default.
	FormatText Format = "text"
	// FormatNumber writes a number in plain decimal notation (never an
	// exponent), exactly: every digit of the JSON text is kept. With
	// Decimals it rounds half away from zero to that many decimals.
	FormatNumber Format = "number"
	// FormatDate, FormatTime and FormatDateTime write an instant in a time
	// zone with a layout; they differ only in their default layout (date,
	// time and datetime, see FieldSpec.Layout).
	FormatDate     Format = "date"
	FormatTime     Format = "time"
	FormatDateTime Format = "datetime"
)

// DefaultTimeZone is the zone of date and time fields that name none: the
// one WeChat users read. Where the time zone database is missing (the binary
// does not embed time/tzdata and the machine has no zoneinfo), it is taken
// as the fixed offset +08:00, exact for China since 1991.
const DefaultTimeZone = "Asia/Shanghai"

const maxDecimals = 20

// RuleSpec is one rule as configured: events whose type matches Event
// become a notification with Template to the recipient the event names.
type RuleSpec struct {
	// Name identifies the rule in errors and logs; unique.
	Name string
	// Event is an event type, matched exactly, or a prefix followed by "*"
	// ("lead.*" matches "lead.assigned"; "*" alone matches every type).
	Event string
	// Template is the alias (or WeChat id) of a catalog template.
	Template string
	// To names where the event holds the recipient.
	To RecipientPaths
	// Page is the mini program page to open, with {path} placeholders in its
	// query ("pages/clue/clue?id={data.lead.id}"); values are escaped as
	// JavaScript's encodeURIComponent does, so decodeURIComponent restores them.
	Page string
	// Fields maps every keyword of the template (and no other) to its value.
	Fields map[string]FieldSpec
}

// RecipientPaths is exactly one path: to a bound userId or to an openid.
//
// A path is dot-separated, into the event as a whole: "id", "type",
// "occurredAt", or "data" followed by object keys and array indexes
// ("data.assignee.userId", "data.items.0.name"). Keys containing dots cannot
// be named.
type RecipientPaths struct {
	UserID string
	OpenID string
}

// FieldSpec is the value of one keyword: taken From an event path or a
// constant Value, then formatted.
type FieldSpec struct {
	From  string // an event path (see RecipientPaths)
	Value string // a constant, formatted like an event value
	// Default replaces a From value that is missing, null or blank. It is
	// the keyword's text as it is: the format does not apply to it.
	Default string
	Format  Format // text (default), number, date, time or datetime
	// Layout (date, time, datetime) is a Go layout ("2006-01-02 15:04",
	// "2006年1月2日 15:04") or one of the names date (2006-01-02), time
	// (15:04), datetime (2006-01-02 15:04), date-zh (2006年1月2日),
	// datetime-zh (2006年1月2日 15:04) and rfc3339. Values are RFC 3339
	// strings, dates (2006-01-02, taken in TZ), or Unix times in seconds or,
	// from 1e11 on, milliseconds (numbers or strings of digits).
	Layout string
	TZ     string // IANA zone of date and time formats, default DefaultTimeZone
	// Decimals (number) rounds to that many decimals, 0 to 20, half away
	// from zero; nil keeps the number's own decimals.
	Decimals *int
	Suffix   string // number: appended, e.g. "元"
	// Truncate shortens text that is too long for the keyword with
	// wechat.Truncate (thing, short_thing and name only).
	Truncate bool
}

// Rules is a compiled, read-only set of rules, safe for concurrent use.
type Rules struct {
	list []*Rule
}

// Rule is one compiled rule.
type Rule struct {
	name     string
	event    string
	prefix   string // of a wildcard pattern
	wildcard bool
	tmpl     Template
	toOpenID bool
	to       evPath
	page     []pagePart
	fields   []ruleField // in the template's keyword order
}

// CompileRules validates specs against the catalog and compiles them. The
// error of an invalid rule names the rule and the field, as in
// "rules[0] (lead-assigned).fields.thing1.from: ...". It checks that names
// are unique, event patterns well-formed, templates in the catalog, exactly
// one recipient path given, the page a valid page path, every keyword of
// the template (and no other) given a field, and each field's options valid
// for its format; layouts and number formats are tried on sample values,
// and constants and defaults on the keyword's rule.
func CompileRules(specs []RuleSpec, catalog *Catalog) (*Rules, error) {
	if catalog == nil {
		catalog = &Catalog{}
	}
	rs := &Rules{list: make([]*Rule, 0, len(specs))}
	names := map[string]bool{}
	for i, spec := range specs {
		where := fmt.Sprintf("rules[%d]", i)
		if spec.Name != "" {
			where = fmt.Sprintf("rules[%d] (%s)", i, spec.Name)
		}
		if spec.Name == "" {
			return nil, fmt.Errorf("%s.name: required", where)
		}
		if names[spec.Name] {
			return nil, fmt.Errorf("%s.name: %q is used twice", where, spec.Name)
		}
		names[spec.Name] = true
		r, err := compileRule(where, spec, catalog)
		if err != nil {
			return nil, err
		}
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

func compileRule(where string, spec RuleSpec, catalog *Catalog) (*Rule, error) {
	r := &Rule{name: spec.Name, event: spec.Event}
	switch ev := spec.Event; {
	case ev == "":
		return nil, fmt.Errorf("%s.event: required (an event type such as lead.assigned, or a prefix with * such as lead.*)", where)
	case len(ev) > maxEventIdent || strings.ContainsFunc(ev, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return nil, fmt.Errorf("%s.event: must be at most %d bytes without spaces", where, maxEventIdent)
	case strings.Contains(strings.TrimSuffix(ev, "*"), "*"):
		return nil, fmt.Errorf("%s.event: * may only end the pattern (lead.*)", where)
	}
	r.prefix, r.wildcard = strings.CutSuffix(spec.Event, "*")

	if spec.Template == "" {
		return nil, fmt.Errorf("%s.template: required", where)
	}
	t, ok := catalog.Lookup(spec.Template)
	if !ok {
		return nil, fmt.Errorf("%s.template: %q is not a template of the catalog", where, spec.Template)
	}
	r.tmpl = t

	var err error
	switch to := spec.To; {
	case to.UserID != "" && to.OpenID != "":
		return nil, fmt.Errorf("%s.to: give userId or openid, not both", where)
	case to.UserID != "":
		if r.to, err = parseEvPath(to.UserID); err != nil {
			return nil, fmt.Errorf("%s.to.userId: %w", where, err)
		}
	case to.OpenID != "":
		r.toOpenID = true
		if r.to, err = parseEvPath(to.OpenID); err != nil {
			return nil, fmt.Errorf("%s.to.openid: %w", where, err)
		}
	default:
		return nil, fmt.Errorf("%s.to: give userId or openid, a path to the recipient such as data.assignee.userId", where)
	}

	if r.page, err = parsePage(spec.Page); err != nil {
		return nil, fmt.Errorf("%s.page: %w", where, err)
	}

	for _, name := range slices.Sorted(maps.Keys(spec.Fields)) {
		if _, ok := t.Keyword(name); !ok {
			return nil, fmt.Errorf("%s.fields.%s: template %s has no keyword %s", where, name, t.Alias, name)
		}
	}
	for _, kw := range t.Keywords {
		fw := where + ".fields." + kw.Name
		fs, ok := spec.Fields[kw.Name]
		if !ok {
			return nil, fmt.Errorf("%s: required: template %s has keyword %s (%s)", fw, t.Alias, kw.Name, kwDescription(kw))
		}
		f, err := compileField(fw, t, kw, fs)
		if err != nil {
			return nil, err
		}
		r.fields = append(r.fields, f)
	}
	return r, nil
}

func kwDescription(kw Keyword) string {
	if kw.Label != "" {
		return kw.Type + ", " + kw.Label
	}
	return kw.Type
}

// List returns the rules in configuration order.
func (rs *Rules) List() []*Rule {
	if rs == nil {
		return nil
	}
	return slices.Clone(rs.list)
}

// Match returns the rules whose event pattern matches the event's type, in
// configuration order; none when no rule applies.
func (rs *Rules) Match(ev Event) []*Rule {
	if rs == nil {
		return nil
	}
	var out []*Rule
	for _, r := range rs.list {
		if r.Matches(ev.Type) {
			out = append(out, r)
		}
	}
	return out
}

// Name returns the rule's name.
func (r *Rule) Name() string { return r.name }

// Event returns the rule's event pattern.
func (r *Rule) Event() string { return r.event }

// Template returns the alias of the rule's template.
func (r *Rule) Template() string { return r.tmpl.Alias }

// Matches reports whether the rule applies to events of the type: the
// pattern itself, or for "prefix*" any longer type that starts with prefix.
func (r *Rule) Matches(eventType string) bool {
	if r.wildcard {
		return len(eventType) > len(r.prefix) && strings.HasPrefix(eventType, r.prefix)
	}
	return eventType == r.event
}

// Build turns an event into the send request the rule describes: the
// recipient, the template alias, the keyword data, the page, Source
// FromEvent and the idempotency key EventKey(event id, recipient, template
// id). It does not check the data against the template's keyword rules
// (Service.Send does, under the template's policy).
//
// When the event does not fit the rule, the error is a bad_request *Error
// whose Field is the event path at fault ("data.assignee.userId") and which
// wraps ErrNoRecipient, ErrMissingValue or ErrInvalidValue, all of them
// ErrEventMalformed: sending it again cannot succeed.
func (r *Rule) Build(ev Event) (SendRequest, error) {
	if ev.ID == "" {
		return SendRequest{}, malformedEvent(ErrMissingValue, "id", "rule %s: the event has no id", r.name)
	}
	to, err := r.recipient(ev)
	if err != nil {
		return SendRequest{}, err
	}
	data := make(map[string]string, len(r.fields))
	for i := range r.fields {
		f := &r.fields[i]
		v, err := f.build(ev)
		if err != nil {
			err.Message = fmt.Sprintf("rule %s: keyword %s: %s", r.name, f.kw.Name, err.Message)
			return SendRequest{}, err
		}
		data[f.kw.Name] = v
	}
	page, err := r.buildPage(ev)
	if err != nil {
		return SendRequest{}, err
	}
	return SendRequest{
		To:             to,
		Template:       r.tmpl.Alias,
		Data:           data,
		Page:           page,
		Source:         FromEvent,
		IdempotencyKey: EventKey(ev.ID, to, r.tmpl.ID),
	}, nil
}

func (r *Rule) recipient(ev Event) (Recipient, error) {
	v := ev.lookup(r.to)
	s, ok := evText(v)
	if _, isBool := v.(bool); evAbsent(v) || !ok || isBool {
		return Recipient{}, malformedEvent(ErrNoRecipient, r.to.text, "rule %s: the event has no recipient", r.name)
	}
	if r.toOpenID {
		if err := checkOpenID(r.to.text, s); err != nil {
			return Recipient{}, malformedEvent(ErrNoRecipient, r.to.text, "rule %s: the recipient is not an openid", r.name)
		}
		return Recipient{OpenID: s}, nil
	}
	if err := CheckUserID(r.to.text, s); err != nil {
		return Recipient{}, malformedEvent(ErrNoRecipient, r.to.text, "rule %s: the recipient is not a valid userId", r.name)
	}
	return Recipient{UserID: s}, nil
}

// evPath is a compiled event path.
type evPath struct {
	text string
	root string   // id, type, occurredAt or data
	keys []string // after data
}

// parseEvPath compiles a path such as data.assignee.userId.
func parseEvPath(s string) (evPath, error) {
	if s == "" {
		return evPath{}, errors.New("required")
	}
	parts := strings.Split(s, ".")
	if slices.Contains(parts, "") || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return evPath{}, fmt.Errorf("%q is not a path: use dot-separated keys without spaces, like data.assignee.userId", s)
	}
	p := evPath{text: s, root: parts[0], keys: parts[1:]}
	switch p.root {
	case "id", "type", "occurredAt":
		if len(p.keys) > 0 {
			return evPath{}, fmt.Errorf("%q is not a path: %s has no fields", s, p.root)
		}
	case "data":
		if len(p.keys) == 0 {
			return evPath{}, fmt.Errorf("%q is not a path: name a value inside data, like data.lead.id", s)
		}
	default:
		return evPath{}, fmt.Errorf("%q is not a path: it must start with id, type, occurredAt or data", s)
	}
	return p, nil
}

// lookup returns the value at p, or nil when the event has none there.
func (ev Event) lookup(p evPath) any {
	switch p.root {
	case "id":
		return ev.ID
	case "type":
		return ev.Type
	case "occurredAt":
		if ev.OccurredAt.IsZero() {
			return nil
		}
		return ev.OccurredAt.Format(time.RFC3339Nano)
	}
	var cur any = ev.Data
	for _, k := range p.keys {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			i, ok := evIndex(k)
			if !ok || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// evIndex parses an array index written canonically: "0", "12", not "01" or "+1".
func evIndex(k string) (int, bool) {
	if k == "" || len(k) > 9 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(k)
	return i, err == nil
}

// evAbsent reports whether v counts as missing: absent, null, or blank text.
func evAbsent(v any) bool {
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s) == ""
	}
	return v == nil
}

// evText writes a scalar as text; ok is false for objects and arrays.
func evText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	}
	return "", false
}

// evKind names the JSON kind of a value that cannot be used, for errors.
func evKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return "a boolean"
	case string:
		return "text"
	}
	if _, ok := evText(v); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// pagePart is a literal piece of a page template or a placeholder path.
type pagePart struct {
	lit  string
	path evPath
}

// parsePage compiles a page template; placeholders are allowed only in the
// query, so that event values never choose the page itself.
func parsePage(page string) ([]pagePart, error) {
	if page == "" {
		return nil, nil
	}
	var parts []pagePart
	var skeleton strings.Builder
	rest := page
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			parts = append(parts, pagePart{lit: rest})
			skeleton.WriteString(rest)
			break
		}
		if rest[open] == '}' {
			return nil, errors.New("a } without its {")
		}
		if open > 0 {
			parts = append(parts, pagePart{lit: rest[:open]})
			skeleton.WriteString(rest[:open])
		}
		if !strings.Contains(skeleton.String(), "?") {
			return nil, errors.New("placeholders are allowed only in the query, after ?")
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, errors.New("a { without its }")
		}
		p, err := parseEvPath(rest[open+1 : open+1+end])
		if err != nil {
			return nil, fmt.Errorf("placeholder: %w", err)
		}
		parts = append(parts, pagePart{path: p})
		skeleton.WriteString("x")
		rest = rest[open+1+end+1:]
	}
	if err := CheckPage(skeleton.String()); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, errors.New(e.Message)
		}
		return nil, err
	}
	return parts, nil
}

func (r *Rule) buildPage(ev Event) (string, error) {
	var b strings.Builder
	for _, part := range r.page {
		if part.path.text == "" {
			b.WriteString(part.lit)
			continue
		}
		v := ev.lookup(part.path)
		if evAbsent(v) {
			return "", malformedEvent(ErrMissingValue, part.path.text, "rule %s: page: the event has no value", r.name)
		}
		s, ok := evText(v)
		if !ok {
			return "", malformedEvent(ErrInvalidValue, part.path.text, "rule %s: page: the value is %s, not text", r.name, evKind(v))
		}
		// encodeURIComponent's form: QueryEscape writes a space as "+" and
		// a literal "+" as "%2B", so every remaining "+" is a space.
		b.WriteString(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"))
	}
	return b.String(), nil
}

// ruleField is one compiled keyword field.
type ruleField struct {
	kw       Keyword
	from     evPath // zero for a constant
	konst    string // the formatted constant
	def      string // the default text, "" for none
	format   Format
	layout   string
	loc      *time.Location
	decimals int // -1 keeps the number's own decimals
	suffix   string
	truncate bool
}

// sampleTimes are the instants layouts are tried on at compile time: the
// longest month and weekday names and two-digit parts, then short names and
// one-digit parts.
func sampleTimes() []time.Time {
	return []time.Time{time.Date(2026, 9, 30, 23, 59, 59, 0, time.UTC), time.Date(2026, 5, 3, 4, 5, 6, 0, time.UTC)}
}

// sampleNumbers are the numbers number formats are tried on at compile time.
func sampleNumbers() []string { return []string{"12345.678", "7"} }

func compileField(where string, t Template, kw Keyword, spec FieldSpec) (ruleField, error) {
	f := ruleField{kw: kw, format: spec.Format, decimals: -1, suffix: spec.Suffix, truncate: spec.Truncate}
	if f.format == "" {
		f.format = FormatText
	}
	switch {
	case spec.From != "" && spec.Value != "":
		return f, fmt.Errorf("%s: give from or value, not both", where)
	case spec.From == "" && spec.Value == "":
		return f, fmt.Errorf("%s: give from (an event path) or value (a constant)", where)
	case spec.Value != "" && spec.Default != "":
		return f, fmt.Errorf("%s.default: applies only with from", where)
	}
	isTime := f.format == FormatDate || f.format == FormatTime || f.format == FormatDateTime
	switch {
	case f.format != FormatText && f.format != FormatNumber && !isTime:
		return f, fmt.Errorf("%s.format: %q is not text, number, date, time or datetime", where, f.format)
	case spec.Layout != "" && !isTime:
		return f, fmt.Errorf("%s.layout: applies only to formats date, time and datetime", where)
	case spec.TZ != "" && !isTime:
		return f, fmt.Errorf("%s.tz: applies only to formats date, time and datetime", where)
	case spec.Decimals != nil && f.format != FormatNumber:
		return f, fmt.Errorf("%s.decimals: applies only to format number", where)
	case spec.Suffix != "" && f.format != FormatNumber:
		return f, fmt.Errorf("%s.suffix: applies only to format number", where)
	case spec.Truncate && !canTruncate(kw.Type):
		return f, fmt.Errorf("%s.truncate: %s keywords cannot be shortened (only thing, short_thing and name)", where, kw.Type)
	}
	if spec.Decimals != nil {
		if *spec.Decimals < 0 || *spec.Decimals > maxDecimals {
			return f, fmt.Errorf("%s.decimals: must be 0 to %d", where, maxDecimals)
		}
		f.decimals = *spec.Decimals
	}
	if isTime {
		if err := f.compileTime(where, spec); err != nil {
			return f, err
		}
		for _, at := range sampleTimes() {
			s := at.In(f.loc).Format(f.layout)
			if _, err := fitKeyword(t, kw, f.truncate, s); err != nil {
				return f, fmt.Errorf("%s.layout: %q gives values like %q, which a %s keyword refuses: %w", where, f.layout, s, kw.Type, err)
			}
		}
	}
	if f.format == FormatNumber {
		for _, n := range sampleNumbers() {
			s, _ := f.formatNumber(n)
			if _, err := fitKeyword(t, kw, f.truncate, s); err != nil {
				return f, fmt.Errorf("%s.format: number gives values like %q, which a %s keyword refuses: %w", where, s, kw.Type, err)
			}
		}
	}
	if spec.Value != "" {
		s, rerr := f.render(spec.Value)
		if rerr != nil {
			return f, fmt.Errorf("%s.value: %s", where, rerr.Message)
		}
		var err error
		if f.konst, err = fitKeyword(t, kw, f.truncate, s); err != nil {
			return f, fmt.Errorf("%s.value: %w", where, err)
		}
		return f, nil
	}
	var err error
	if f.from, err = parseEvPath(spec.From); err != nil {
		return f, fmt.Errorf("%s.from: %w", where, err)
	}
	if spec.Default != "" {
		if f.def, err = fitKeyword(t, kw, f.truncate, spec.Default); err != nil {
			return f, fmt.Errorf("%s.default: %w", where, err)
		}
	}
	return f, nil
}

func (f *ruleField) compileTime(where string, spec FieldSpec) error {
	zone := spec.TZ
	if zone == "" {
		zone = DefaultTimeZone
	}
	if zone == "Local" {
		return fmt.Errorf("%s.tz: name a zone such as Asia/Shanghai; Local depends on the machine", where)
	}
	var err error
	if f.loc, err = loadZone(zone, time.LoadLocation); err != nil {
		return fmt.Errorf("%s.tz: %q is not a time zone (an IANA name such as Asia/Shanghai or UTC)", where, zone)
	}
	f.layout = spec.Layout
	if f.layout == "" {
		f.layout = string(f.format)
	}
	if named, ok := layoutByName(f.layout); ok {
		f.layout = named
	}
	if sampleTimes()[0].Format(f.layout) == f.layout {
		return fmt.Errorf("%s.layout: %q has no date or time element (write Go's reference time, e.g. 2006-01-02 15:04)", where, f.layout)
	}
	return nil
}

// loadZone loads a time zone, taking DefaultTimeZone as +08:00 when the
// time zone database is missing.
func loadZone(name string, load func(string) (*time.Location, error)) (*time.Location, error) {
	loc, err := load(name)
	if err != nil && name == DefaultTimeZone {
		return time.FixedZone("CST", 8*60*60), nil
	}
	return loc, err
}

func layoutByName(name string) (string, bool) {
	switch name {
	case "date":
		return time.DateOnly, true
	case "time":
		return "15:04", true
	case "datetime":
		return "2006-01-02 15:04", true
	case "date-zh":
		return "2006年1月2日", true
	case "datetime-zh":
		return "2006年1月2日 15:04", true
	case "rfc3339":
		return time.RFC3339, true
	}
	return "", false
}

// canTruncate reports whether wechat.Truncate can shorten values of the type.
func canTruncate(typ string) bool { return wechat.CanTruncate(typ) }

// fitKeyword checks a value known at compile time (a constant, a default, a sample)
// against the keyword's rule, as Template.Check will: shortened when the
// field or the template's policy truncates. It returns the text to use.
func fitKeyword(t Template, kw Keyword, truncate bool, s string) (string, error) {
	err := wechat.Validate(kw.Type, s, kw.Enum...)
	if err == nil {
		return s, nil
	}
	if truncate || t.Policy == PolicyTruncate {
		if cut, ok := wechat.Truncate(kw.Type, s); ok {
			if truncate {
				return cut, nil
			}
			return s, nil
		}
	}
	return "", err
}

// build computes the field's text for the event.
func (f *ruleField) build(ev Event) (string, *Error) {
	if f.from.text == "" {
		return f.konst, nil
	}
	v := ev.lookup(f.from)
	if evAbsent(v) {
		if f.def != "" {
			return f.def, nil
		}
		return "", malformedEvent(ErrMissingValue, f.from.text, "the event has no value and the field no default")
	}
	s, err := f.render(v)
	if err != nil {
		err.Field = f.from.text
		return "", err
	}
	if f.truncate {
		if cut, ok := wechat.Truncate(f.kw.Type, s); ok {
			s = cut
		}
	}
	return s, nil
}

// render formats a present value; errors are ErrInvalidValue without a Field.
func (f *ruleField) render(v any) (string, *Error) {
	switch f.format {
	case FormatNumber:
		text, ok := evText(v)
		if _, isBool := v.(bool); !ok || isBool {
			return "", malformedEvent(ErrInvalidValue, "", "the value is %s, not a number", evKind(v))
		}
		s, ok := f.formatNumber(text)
		if !ok {
			return "", malformedEvent(ErrInvalidValue, "", "the value is not a number (or its exponent is out of range)")
		}
		return s, nil
	case FormatDate, FormatTime, FormatDateTime:
		at, ok := evInstant(v, f.loc)
		if !ok {
			return "", malformedEvent(ErrInvalidValue, "", "the value is not an RFC 3339 time, a date or a Unix time in range")
		}
		return at.In(f.loc).Format(f.layout), nil
	}
	s, ok := evText(v)
	if !ok {
		return "", malformedEvent(ErrInvalidValue, "", "the value is %s, not text", evKind(v))
	}
	return s, nil
}

// maxUnixSeconds is 9999-12-31T23:59:59Z: instants past it have no RFC 3339 form.
const maxUnixSeconds = 253402300799

// unixMillisFrom is where numbers stop being seconds and start being
// milliseconds: 1e11 s is in the year 5138, 1e11 ms in 1973.
const unixMillisFrom = 1e11

// evInstant reads a time value: an RFC 3339 string, a date (midnight in loc),
// or a Unix time in seconds or milliseconds (number, or string of digits).
func evInstant(v any, loc *time.Location) (time.Time, bool) {
	text, ok := evText(v)
	if _, isBool := v.(bool); !ok || isBool {
		return time.Time{}, false
	}
	if _, isString := v.(string); isString {
		if t, err := time.Parse(time.RFC3339, text); err == nil {
			return t, true
		}
		if t, err := time.ParseInLocation(time.DateOnly, text, loc); err == nil {
			return t, true
		}
		if strings.TrimLeft(text, "0123456789") != "" {
			return time.Time{}, false
		}
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n >= unixMillisFrom || n <= -unixMillisFrom {
			if n > maxUnixSeconds*1000 || n < -maxUnixSeconds*1000 {
				return time.Time{}, false
			}
			return time.UnixMilli(n), true
		}
		return time.Unix(n, 0), true
	}
	x, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return time.Time{}, false
	}
	if math.Abs(x) >= unixMillisFrom {
		x /= 1000
	}
	if math.Abs(x) > maxUnixSeconds {
		return time.Time{}, false
	}
	sec := math.Floor(x)
	return time.Unix(int64(sec), int64((x-sec)*1e9)), true
}

// maxExponent bounds the exponent of numbers a field formats, so that
// "1e999999999" cannot make it write a billion digits.
const maxExponent = 400

// formatNumber writes a JSON number in plain decimal notation, rounded to
// f.decimals (half away from zero) when set, followed by the suffix. It
// works on the digits, so every digit of a large number is kept exactly.
func (f *ruleField) formatNumber(s string) (string, bool) {
	neg, digits, point, ok := parseDecimal(s)
	if !ok {
		return "", false
	}
	frac := f.decimals
	if frac < 0 {
		frac = max(0, len(digits)-point)
	}
	if point < 1 { // 0.00ddd: give the integer part a digit
		digits = strings.Repeat("0", 1-point) + digits
		point = 1
	}
	if short := point + frac - len(digits); short > 0 {
		digits += strings.Repeat("0", short)
	}
	b := []byte(digits[:point+frac])
	if len(digits) > point+frac && digits[point+frac] >= '5' {
		i := len(b) - 1
		for ; i >= 0 && b[i] == '9'; i-- {
			b[i] = '0'
		}
		if i < 0 {
			b = append([]byte{'1'}, b...)
			point++
		} else {
			b[i]++
		}
	}
	intPart := strings.TrimLeft(string(b[:point]), "0")
	if intPart == "" {
		intPart = "0"
	}
	var out strings.Builder
	if neg && strings.Trim(string(b), "0") != "" {
		out.WriteByte('-')
	}
	out.WriteString(intPart)
	if frac > 0 {
		out.WriteByte('.')
		out.Write(b[point:])
	}
	out.WriteString(f.suffix)
	return out.String(), true
}

// parseDecimal reads a number of JSON's grammar
// (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) as a sign, its significant
// digits, and the position of the decimal point among them (which may lie
// before the first digit or after the last).
func parseDecimal(s string) (neg bool, digits string, point int, ok bool) {
	if neg = strings.HasPrefix(s, "-"); neg {
		s = s[1:]
	}
	intEnd := countDigits(s)
	if intEnd == 0 || (intEnd > 1 && s[0] == '0') {
		return false, "", 0, false
	}
	intPart, rest := s[:intEnd], s[intEnd:]
	var fracPart string
	if strings.HasPrefix(rest, ".") {
		n := countDigits(rest[1:])
		if n == 0 {
			return false, "", 0, false
		}
		fracPart, rest = rest[1:1+n], rest[1+n:]
	}
	exp := 0
	if rest != "" {
		if rest[0] != 'e' && rest[0] != 'E' {
			return false, "", 0, false
		}
		rest = rest[1:]
		expNeg := false
		if rest != "" && (rest[0] == '+' || rest[0] == '-') {
			expNeg, rest = rest[0] == '-', rest[1:]
		}
		if n := countDigits(rest); n == 0 || n != len(rest) {
			return false, "", 0, false
		}
		rest = strings.TrimLeft(rest, "0")
		if len(rest) > 4 {
			return false, "", 0, false
		}
		exp, _ = strconv.Atoi(rest) // "" (all zeros) reads as 0
		if exp > maxExponent {
			return false, "", 0, false
		}
		if expNeg {
			exp = -exp
		}
	}
	return neg, intPart + fracPart, len(intPart) + exp, true
}

func countDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
