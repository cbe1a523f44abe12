package openapitest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// example is one example value of the document and the schema it must
// satisfy.
type example struct {
	ptr    string // where the example is
	schema string // pointer of its schema
	value  any
}

// examples collects every example of the document: the "example" and
// "examples" of media types, parameters and headers (named examples
// resolved through components.examples), schema "examples" arrays, and
// schema "default" values. used receives the components.examples entries
// that are referenced.
func (s *spec) examples(tb testing.TB, used map[string]bool) []example {
	tb.Helper()
	var out []example
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case []any:
			for i, x := range v {
				walk(pointer(ptr, strconv.Itoa(i)), x)
			}
		case map[string]any:
			if _, isSchemaHolder := v["schema"].(map[string]any); isSchemaHolder {
				schema := pointer(ptr, "schema")
				if x, ok := v["example"]; ok {
					out = append(out, example{ptr: pointer(ptr, "example"), schema: schema, value: x})
				}
				named, _ := v["examples"].(map[string]any)
				for _, name := range slices.Sorted(maps.Keys(named)) {
					obj, ok := named[name].(map[string]any)
					if !ok {
						tb.Fatalf("%s: not an object", pointer(ptr, "examples", name))
					}
					at, obj := s.resolve(tb, pointer(ptr, "examples", name), obj)
					used[at] = true
					x, ok := obj["value"]
					if !ok {
						tb.Fatalf("%s: got no value, want an inline value (externalValue is not checked)", at)
					}
					out = append(out, example{ptr: pointer(ptr, "examples", name), schema: schema, value: x})
				}
			}
			if list, ok := v["examples"].([]any); ok && inSchema(ptr) {
				for i, x := range list {
					out = append(out, example{ptr: pointer(ptr, "examples", strconv.Itoa(i)), schema: ptr, value: x})
				}
			}
			if x, ok := v["default"]; ok && inSchema(ptr) {
				out = append(out, example{ptr: pointer(ptr, "default"), schema: ptr, value: x})
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if k == "example" || k == "examples" || k == "default" {
					continue // values, not document structure
				}
				walk(pointer(ptr, k), v[k])
			}
		}
	}
	walk("", s.doc)
	return out
}

// inSchema reports whether the object at ptr is a schema (or in one).
func inSchema(ptr string) bool {
	return strings.HasPrefix(ptr, "/components/schemas/") || strings.HasSuffix(ptr, "/schema") || strings.Contains(ptr, "/schema/")
}

// TestExamplesValidate validates every example of the document against its
// schema with a JSON Schema 2020-12 validator (formats asserted).
func TestExamplesValidate(t *testing.T) {
	sp := loadSpec(t)
	used := map[string]bool{}
	exs := sp.examples(t, used)
	if len(exs) < 50 {
		t.Fatalf("got %d examples, want the document's (at least 50): is the walk broken?", len(exs))
	}
	for _, ex := range exs {
		t.Run(ex.ptr, func(t *testing.T) {
			if err := sp.schema(t, ex.schema).Validate(ex.value); err != nil {
				t.Errorf("got an example its schema %s refuses: %v", ex.schema, err)
			}
		})
	}
	t.Run("ComponentExamplesAreUsed", func(t *testing.T) {
		v, _ := sp.lookup("/components/examples")
		named, _ := v.(map[string]any)
		for name := range named {
			if ptr := pointer("/components/examples", name); !used[ptr] {
				t.Errorf("got %s referenced nowhere, want it used (or removed)", ptr)
			}
		}
	})
}

// TestSchemasCompile compiles every schema of components.schemas, those
// without examples too.
func TestSchemasCompile(t *testing.T) {
	sp := loadSpec(t)
	v, _ := sp.lookup("/components/schemas")
	schemas, _ := v.(map[string]any)
	if len(schemas) == 0 {
		t.Fatal("got no components.schemas")
	}
	for _, name := range slices.Sorted(maps.Keys(schemas)) {
		t.Run(name, func(t *testing.T) {
			sp.schema(t, pointer("/components/schemas", name))
		})
	}
}

// TestErrorResponses checks every documented error answer: its body is the
// API's error schema (the sandbox's own for sandbox routes), and each
// example's code is answered with the status it is documented under
// (ErrorCode's x-httpStatus).
func TestErrorResponses(t *testing.T) {
	sp := loadSpec(t)
	statuses := sp.errorStatuses(t)
	for _, op := range sp.operations(t) {
		responses, _ := op.obj["responses"].(map[string]any)
		for _, code := range slices.Sorted(maps.Keys(responses)) {
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: got response key %q, want a status", op.pattern(), code)
				continue
			}
			if status < 400 {
				continue
			}
			t.Run(op.pattern()+" "+code, func(t *testing.T) {
				ptr, resp := sp.resolve(t, pointer(op.ptr, "responses", code), responses[code].(map[string]any))
				content, _ := resp["content"].(map[string]any)
				media, _ := content["application/json"].(map[string]any)
				if len(content) != 1 || media == nil {
					t.Fatalf("%s: got content %v, want application/json only", ptr, slices.Collect(maps.Keys(content)))
				}
				wantSchema := "#/components/schemas/Error"
				if strings.HasPrefix(op.path, "/sandbox/") {
					wantSchema = "#/components/schemas/SandboxError"
				}
				if schema, _ := media["schema"].(map[string]any); schema["$ref"] != wantSchema {
					t.Errorf("%s: got schema %v, want %s", ptr, schema, wantSchema)
				}
				var values []any
				if x, ok := media["example"]; ok {
					values = append(values, x)
				}
				named, _ := media["examples"].(map[string]any)
				for name, raw := range named {
					obj, ok := raw.(map[string]any)
					if !ok {
						t.Fatalf("%s: example %s is not an object", ptr, name)
					}
					_, obj = sp.resolve(t, pointer(ptr, "content", "application/json", "examples", name), obj)
					values = append(values, obj["value"])
				}
				if len(values) == 0 {
					t.Fatalf("%s: got no example", ptr)
				}
				for _, v := range values {
					body, _ := v.(map[string]any)
					detail, _ := body["error"].(map[string]any)
					errCode, _ := detail["code"].(string)
					if want, ok := statuses[errCode]; ok && want != status {
						t.Errorf("%s: got code %q under status %d, want it under %d", ptr, errCode, status, want)
					}
				}
			})
		}
	}
}
