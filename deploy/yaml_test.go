package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// cfnTags are CloudFormation's short-form tags and the long forms they
// stand for.
var cfnTags = map[string]string{
	"!Ref": "Ref", "!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!If": "Fn::If", "!Equals": "Fn::Equals",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!Not": "Fn::Not", "!And": "Fn::And",
	"!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!ImportValue": "Fn::ImportValue", "!Base64": "Fn::Base64",
	"!GetAZs": "Fn::GetAZs", "!Cidr": "Fn::Cidr", "!Condition": "Condition",
}

// parseYAML decodes a YAML document into maps, slices and scalars,
// resolving aliases and turning CloudFormation's short-form tags into their
// long forms (!Ref X is {"Ref": "X"}). Unknown tags are errors.
func parseYAML(b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("not one YAML document")
	}
	v, err := nodeValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a mapping")
	}
	return m, nil
}

func nodeValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return nodeValue(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			val, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!!") || n.Tag == "" {
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return v, nil
		}
		v = n.Value
	}
	if n.Tag == "" || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	long, ok := cfnTags[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	if s, ok := v.(string); ok && long == "Fn::GetAtt" {
		if resource, attr, ok := strings.Cut(s, "."); ok {
			v = []any{resource, attr}
		}
	}
	return map[string]any{long: v}, nil
}

// readDeployFile parses a deployment file of the repository.
func readDeployFile(tb testing.TB, name string) map[string]any {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := parseYAML(src)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return doc
}

// path walks maps by keys; nil when a key is missing.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func TestParseYAML(t *testing.T) {
	src := []byte(`
a: !Ref Table
b: !GetAtt Table.Arn
c: !Sub "x-${AWS::Region}"
d: !If [Cond, !Ref A, !Ref AWS::NoValue]
e: &e {k: v}
f: *e
g: [1, "2", true]
`)
	got, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": map[string]any{"Ref": "Table"},
		"b": map[string]any{"Fn::GetAtt": []any{"Table", "Arn"}},
		"c": map[string]any{"Fn::Sub": "x-${AWS::Region}"},
		"d": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "A"}, map[string]any{"Ref": "AWS::NoValue"}}},
		"e": map[string]any{"k": "v"},
		"f": map[string]any{"k": "v"},
		"g": []any{1, "2", true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"a: !Bogus x", "a: 1\na: 2"} {
		if _, err := parseYAML([]byte(bad)); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}
