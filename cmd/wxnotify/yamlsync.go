package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// syncReport says what syncTemplates changed, by alias.
type syncReport struct {
	Added    []string // templates new in the file
	Updated  []string // templates whose title, kind or keywords changed
	Removed  []string // templates newly flagged removed: WeChat no longer has them
	Restored []string // templates flagged removed that WeChat has again
}

func (r syncReport) changed() bool {
	return len(r.Added)+len(r.Updated)+len(r.Removed)+len(r.Restored) > 0
}

// The key orders of what sync writes: keys it adds go before the first
// later key of these lists; keys the lists do not name keep their place.
var (
	templateKeys = []string{"alias", "id", "title", "kind", "policy", "keywords", "removed"}
	keywordKeys  = []string{"name", "type", "label", "enum"}
)

// syncTemplates returns wxnotify.yaml (raw, possibly empty) with its
// templates section brought in line with the app's templates on WeChat:
//   - a template of the file whose id WeChat lists keeps its alias, policy
//     and comments; its title, kind (type 2 one-time, 3 long-term) and
//     keywords (names in WeChat's order, types, labels, enum values) are
//     WeChat's, and a removed flag is cleared;
//   - a template WeChat lists that the file lacks is appended with an alias
//     derived from its title or id (see deriveAlias) and policy reject;
//   - a template of the file WeChat does not list gets removed: true; it is
//     never deleted.
//
// Everything else (rules, other keys, comments, blank lines) is kept. The
// result is checked with config.ParseFile: a file wxnotify would refuse
// (such as one with a rule using a removed template) comes with an error,
// for a diff to show what went wrong; it must not be written.
func syncTemplates(raw []byte, remote []wechat.Template) ([]byte, syncReport, error) {
	return syncAppTemplates(raw, "", remote)
}

// syncAppTemplates is syncTemplates for the templates of one app: with a
// file of apps (apps: non-empty), those of the app whose id is app,
// apps[i].templates, every other part of the file (the other apps, their
// templates and comments) kept; app is then required. With a file of the
// single-app shape app must be "" or "default" (its one app), and the
// top-level templates are synced.
func syncAppTemplates(raw []byte, app string, remote []wechat.Template) ([]byte, syncReport, error) {
	var rep syncReport
	doc, blank, err := parseDocument(raw)
	if err != nil {
		return nil, rep, err
	}
	// yaml.v3 drops the comments of a file without content: they are
	// kept as written, above what sync writes.
	var preamble string
	if text := strings.TrimRight(string(raw), " \t\r\n"); blank && text != "" {
		preamble = text + "\n"
		if strings.Count(string(raw[len(text):]), "\n") > 1 {
			preamble += "\n" // a blank line after them stays
		}
	}
	root := doc.Content[0]
	if len(root.Content) == 0 {
		root.Style &^= yaml.FlowStyle // "{}" becomes a block mapping
	}
	holder, where, err := templatesHolder(root, app)
	if err != nil {
		return nil, rep, err
	}
	seq := mapValue(holder, "templates")
	switch {
	case seq == nil:
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		holder.Content = append(holder.Content, keyNode("templates"), seq)
	case seq.Kind == yaml.ScalarNode && seq.Tag == "!!null":
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", HeadComment: seq.HeadComment, LineComment: seq.LineComment}
	case seq.Kind != yaml.SequenceNode:
		return nil, rep, fmt.Errorf("%s: line %d: must be a list", where, seq.Line)
	}

	separated := blankBetween(splitLines(string(raw)), seq)
	byID := make(map[string]wechat.Template, len(remote))
	for _, t := range remote {
		byID[t.PriTmplID] = t
	}
	aliases := map[string]bool{}
	inFile := map[string]bool{}
	for i, item := range seq.Content {
		if item.Kind != yaml.MappingNode {
			return nil, rep, fmt.Errorf("%s[%d]: line %d: must be a mapping", where, i, item.Line)
		}
		aliases[scalarValue(item, "alias")] = true
	}
	for _, item := range seq.Content {
		id, alias := scalarValue(item, "id"), scalarValue(item, "alias")
		if id == "" {
			continue // ParseFile reports it
		}
		inFile[id] = true
		t, ok := byID[id]
		if !ok {
			if scalarValue(item, "removed") != "true" {
				setKey(item, templateKeys, "removed", boolNode(true))
				rep.Removed = append(rep.Removed, alias)
			}
			continue
		}
		before, err := yaml.Marshal(item)
		if err != nil {
			return nil, rep, err
		}
		wasRemoved := scalarValue(item, "removed") == "true"
		if err := fillTemplate(item, t); err != nil {
			return nil, rep, err
		}
		deleteKey(item, "removed")
		after, err := yaml.Marshal(item)
		if err != nil {
			return nil, rep, err
		}
		switch {
		case wasRemoved:
			rep.Restored = append(rep.Restored, alias)
		case !bytes.Equal(before, after):
			rep.Updated = append(rep.Updated, alias)
		}
	}
	for _, t := range remote {
		if inFile[t.PriTmplID] {
			continue
		}
		inFile[t.PriTmplID] = true
		alias := deriveAlias(t.Title, t.PriTmplID, aliases)
		aliases[alias] = true
		item := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if separated {
			item.HeadComment = blankLineMark
		}
		setKey(item, templateKeys, "alias", strNode(alias))
		setKey(item, templateKeys, "id", strNode(t.PriTmplID))
		setKey(item, templateKeys, "policy", strNode(string(notify.PolicyReject)))
		if err := fillTemplate(item, t); err != nil {
			return nil, rep, err
		}
		seq.Content = append(seq.Content, item)
		rep.Added = append(rep.Added, alias)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, rep, err
	}
	if err := enc.Close(); err != nil {
		return nil, rep, err
	}
	out := []byte(preamble + unmarkBlankLines(restoreBlankLines(string(raw), buf.String())))
	if _, err := config.ParseFile(out); err != nil {
		return out, rep, fmt.Errorf("the synced file would not load: %w", err)
	}
	return out, rep, nil
}

// templatesHolder returns the mapping whose templates key sync rewrites
// and its name for errors: the top level ("templates") for a file of the
// single-app shape, the mapping of app in apps ("apps[i].templates") for a
// file of apps. It refuses an app the file does not have, and a file of
// apps without app, listing the app ids.
func templatesHolder(root *yaml.Node, app string) (*yaml.Node, string, error) {
	apps := mapValue(root, "apps")
	if apps == nil || (apps.Kind == yaml.SequenceNode && len(apps.Content) == 0) ||
		(apps.Kind == yaml.ScalarNode && apps.Tag == "!!null") {
		if app != "" && app != config.DefaultAppID {
			return nil, "", fmt.Errorf("app %q: the file has no apps: (its one app is %q; drop --app)", app, config.DefaultAppID)
		}
		return root, "templates", nil
	}
	if apps.Kind != yaml.SequenceNode {
		return nil, "", fmt.Errorf("apps: line %d: must be a list", apps.Line)
	}
	var ids []string
	for i, item := range apps.Content {
		if item.Kind != yaml.MappingNode {
			return nil, "", fmt.Errorf("apps[%d]: line %d: must be a mapping", i, item.Line)
		}
		id := scalarValue(item, "id")
		if app != "" && id == app {
			return item, fmt.Sprintf("apps[%d].templates", i), nil
		}
		ids = append(ids, id)
	}
	list := strings.Join(ids, ", ")
	if app == "" {
		return nil, "", fmt.Errorf("the file has several apps: say which one's templates to sync with --app (one of %s)", list)
	}
	return nil, "", fmt.Errorf("app %q is not in the file's apps (%s)", app, list)
}

// blankLineMark is the head comment of a node that is to follow a blank
// line, which yaml.v3 cannot write: unmarkBlankLines makes it one.
const blankLineMark = "#wxnotify-sync:blank-line"

// blankBetween reports whether the templates of the file are separated by
// blank lines (before their head comments), as in the bundled example.
func blankBetween(lines []string, seq *yaml.Node) bool {
	for _, item := range seq.Content[min(1, len(seq.Content)):] {
		for k := item.Line - 2; k >= 0 && k < len(lines); k-- {
			s := strings.TrimSpace(lines[k])
			if s == "" {
				return true
			}
			if !strings.HasPrefix(s, "#") {
				break
			}
		}
	}
	return false
}

// unmarkBlankLines turns the lines of blankLineMark into blank lines.
func unmarkBlankLines(text string) string {
	if !strings.Contains(text, blankLineMark) {
		return text
	}
	lines := splitLines(text)
	for i, l := range lines {
		if strings.TrimSpace(l) == blankLineMark {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// parseDocument parses raw into a document whose content is one mapping.
// A file without content (empty, or comments only) gives an empty mapping
// and blank true.
func parseDocument(raw []byte) (doc *yaml.Node, blank bool, err error) {
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(raw, doc); err != nil {
		return nil, false, fmt.Errorf("invalid yaml: %w", err)
	}
	if len(doc.Content) == 0 {
		doc = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
		blank = true
	}
	if doc.Content[0].Kind != yaml.MappingNode {
		return nil, false, errors.New("the top level must be a mapping (templates:, rules:)")
	}
	return doc, blank, nil
}

// fillTemplate writes WeChat's view of t into item: title, kind and
// keywords. Keyword entries already there are updated in place, so that
// their comments stay.
func fillTemplate(item *yaml.Node, t wechat.Template) error {
	var kind notify.Kind
	switch t.Type {
	case wechat.TemplateOneTime:
		kind = notify.OneTime
	case wechat.TemplateLongTerm:
		kind = notify.LongTerm
	default:
		return fmt.Errorf("WeChat template %s (%s) has type %d, which wxnotify does not know (2 one-time, 3 long-term)",
			t.PriTmplID, t.Title, t.Type)
	}
	if len(t.Keywords) == 0 {
		return fmt.Errorf("WeChat template %s (%s) lists no keywords", t.PriTmplID, t.Title)
	}
	setKey(item, templateKeys, "title", strNode(t.Title))
	setKey(item, templateKeys, "kind", strNode(string(kind)))

	list := mapValue(item, "keywords")
	if list == nil || list.Kind != yaml.SequenceNode {
		fresh := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if list != nil {
			fresh.HeadComment, fresh.LineComment = list.HeadComment, list.LineComment
		}
		setKey(item, templateKeys, "keywords", fresh)
		list = fresh
	}
	old := map[string]*yaml.Node{}
	for _, kw := range list.Content {
		if kw.Kind == yaml.MappingNode {
			old[scalarValue(kw, "name")] = kw
		}
	}
	content := make([]*yaml.Node, 0, len(t.Keywords))
	for _, kw := range t.Keywords {
		node := old[kw.Name]
		if node == nil {
			node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			setKey(node, keywordKeys, "name", strNode(kw.Name))
		}
		if kw.Type != "" {
			setKey(node, keywordKeys, "type", strNode(kw.Type))
		}
		if kw.Label != "" {
			setKey(node, keywordKeys, "label", strNode(kw.Label))
		}
		if len(kw.Enum) > 0 {
			enum := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
			for _, v := range kw.Enum {
				enum.Content = append(enum.Content, strNode(v))
			}
			setKey(node, keywordKeys, "enum", enum)
		} else {
			deleteKey(node, "enum")
		}
		content = append(content, node)
	}
	list.Content = content
	list.Style &^= yaml.FlowStyle // one keyword a line, whatever "[]" it replaces
	return nil
}

// deriveAlias makes an alias for a template new to the file: the ASCII
// letters and digits of its title, lowercased and joined by '_' ("Order
// Shipped" gives order_shipped), or, for a title without ASCII letters
// (most are Chinese), "tmpl_" and the first 8 letters and digits of its id,
// lowercased. A suffix _2, _3, ... makes it unique among used. The same
// inputs always give the same alias.
func deriveAlias(title, id string, used map[string]bool) string {
	var b strings.Builder
	gap, letters := false, false
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			gap = false
			letters = letters || r >= 'a'
			b.WriteRune(r)
		default:
			gap = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	base := b.String()
	if !letters {
		var idPart strings.Builder
		for _, r := range strings.ToLower(id) {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				idPart.WriteRune(r)
				if idPart.Len() == 8 {
					break
				}
			}
		}
		base = "tmpl"
		if idPart.Len() > 0 {
			base += "_" + idPart.String()
		}
	}
	alias := base
	for n := 2; used[alias]; n++ {
		alias = base + "_" + strconv.Itoa(n)
	}
	return alias
}

// mapValue is the value node of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// scalarValue is the value of key in mapping m when it is a scalar, or "".
func scalarValue(m *yaml.Node, key string) string {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// setKey sets key of mapping m to value. An existing scalar keeps its
// comments and quoting; another existing value is replaced, keeping its
// comments. A new key goes before the first key that follows it in order.
func setKey(m *yaml.Node, order []string, key string, value *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		old := m.Content[i+1]
		if old.Kind == yaml.ScalarNode && value.Kind == yaml.ScalarNode {
			if old.Value != value.Value || old.Tag != value.Tag {
				old.Value, old.Tag = value.Value, value.Tag
				if old.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
					old.Style = value.Style
				}
			}
			return
		}
		value.HeadComment, value.LineComment, value.FootComment = old.HeadComment, old.LineComment, old.FootComment
		m.Content[i+1] = value
		return
	}
	rank := func(k string) int {
		if r := slices.Index(order, k); r >= 0 {
			return r
		}
		return -1
	}
	at := len(m.Content)
	if mine := rank(key); mine >= 0 {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if rank(m.Content[i].Value) > mine {
				at = i
				break
			}
		}
	}
	m.Content = slices.Insert(m.Content, at, keyNode(key), value)
}

// deleteKey removes key from mapping m.
func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = slices.Delete(m.Content, i, i+2)
			return
		}
	}
}

func keyNode(key string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}
