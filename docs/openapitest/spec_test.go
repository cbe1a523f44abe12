package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
)

// docFile is the document under test, relative to this package.
const docFile = "../openapi.yaml"

// docURL is the base URL the document is registered under in the schema
// compiler; its "$ref"s are fragments of it.
const docURL = "https://wxnotify.invalid/openapi.json"

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// spec is the parsed document and a JSON Schema 2020-12 compiler holding it.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema // compiled, by JSON pointer
}

// operation is one method of one path of the document.
type operation struct {
	method string // upper case
	path   string
	ptr    string // JSON pointer of the operation object
	obj    map[string]any
	item   map[string]any // the path item (path-level parameters)
}

func (o operation) pattern() string { return o.method + " " + o.path }

// loadSpec reads the document: YAML decoded, re-encoded as JSON and decoded
// as the schema library decodes JSON (numbers as json.Number), so that
// examples are the JSON values a client would send or receive.
func loadSpec(tb testing.TB) *spec {
	tb.Helper()
	raw, err := os.ReadFile(docFile)
	if err != nil {
		tb.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		tb.Fatalf("%s: %v", docFile, err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		tb.Fatalf("%s is not representable as JSON (a non-string mapping key?): %v", docFile, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		tb.Fatal(err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		tb.Fatalf("%s: got a %T, want an object", docFile, v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		tb.Fatal(err)
	}
	return &spec{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// pointer joins JSON pointer tokens.
func pointer(base string, tokens ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// lookup returns the value at a JSON pointer of the document.
func (s *spec) lookup(ptr string) (any, bool) {
	var cur any = s.doc
	if ptr == "" {
		return cur, true
	}
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// resolve follows the "$ref" of an object at ptr (OpenAPI references, not
// schemas) to the object it names and that object's pointer.
func (s *spec) resolve(tb testing.TB, ptr string, obj map[string]any) (string, map[string]any) {
	tb.Helper()
	for range 8 {
		ref, ok := obj["$ref"].(string)
		if !ok {
			return ptr, obj
		}
		if !strings.HasPrefix(ref, "#/") {
			tb.Fatalf("%s: $ref %q: only local references are used", ptr, ref)
		}
		v, found := s.lookup(ref[1:])
		target, isObj := v.(map[string]any)
		if !found || !isObj {
			tb.Fatalf("%s: $ref %q names no object", ptr, ref)
		}
		ptr, obj = ref[1:], target
	}
	tb.Fatalf("%s: $ref chain too long", ptr)
	return "", nil
}

// schema compiles the schema at a JSON pointer of the document.
func (s *spec) schema(tb testing.TB, ptr string) *jsonschema.Schema {
	tb.Helper()
	if sch, ok := s.schemas[ptr]; ok {
		return sch
	}
	var frag strings.Builder
	for _, tok := range strings.Split(ptr, "/")[1:] {
		frag.WriteByte('/')
		frag.WriteString(url.PathEscape(tok))
	}
	sch, err := s.compiler.Compile(docURL + "#" + frag.String())
	if err != nil {
		tb.Fatalf("schema %s: %v", ptr, err)
	}
	s.schemas[ptr] = sch
	return sch
}

// operations lists the document's operations in a stable order.
func (s *spec) operations(tb testing.TB) []operation {
	tb.Helper()
	paths, ok := s.doc["paths"].(map[string]any)
	if !ok {
		tb.Fatal("the document has no paths")
	}
	var ops []operation
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, ok := paths[p].(map[string]any)
		if !ok {
			tb.Fatalf("paths.%s: not an object", p)
		}
		for _, m := range methods {
			if obj, ok := item[m].(map[string]any); ok {
				ops = append(ops, operation{method: strings.ToUpper(m), path: p, ptr: pointer("", "paths", p, m), obj: obj, item: item})
			}
		}
	}
	return ops
}

// operation returns the operation of a route pattern ("GET /v1/batches/{id}").
func (s *spec) operation(tb testing.TB, pattern string) (operation, bool) {
	tb.Helper()
	for _, op := range s.operations(tb) {
		if op.pattern() == pattern {
			return op, true
		}
	}
	return operation{}, false
}

// param is a resolved parameter.
type param struct {
	name, in string
	ptr      string // where the parameter object is
	obj      map[string]any
}

// parameters returns the resolved parameters of an operation by "in:name";
// operation-level ones override path-level ones.
func (s *spec) parameters(tb testing.TB, op operation) map[string]param {
	tb.Helper()
	out := map[string]param{}
	for _, src := range []struct {
		obj map[string]any
		ptr string
	}{{op.item, pointer("", "paths", op.path)}, {op.obj, op.ptr}} {
		list, _ := src.obj["parameters"].([]any)
		for i, raw := range list {
			obj, ok := raw.(map[string]any)
			if !ok {
				tb.Fatalf("%s/parameters/%d: not an object", src.ptr, i)
			}
			ptr, obj := s.resolve(tb, pointer(src.ptr, "parameters", strconv.Itoa(i)), obj)
			p := param{ptr: ptr, obj: obj}
			p.name, _ = obj["name"].(string)
			p.in, _ = obj["in"].(string)
			out[p.in+":"+p.name] = p
		}
	}
	return out
}

// errorStatuses maps each error code of the ErrorCode schema to its
// documented HTTP status (x-httpStatus).
func (s *spec) errorStatuses(tb testing.TB) map[string]int {
	tb.Helper()
	v, ok := s.lookup("/components/schemas/ErrorCode/oneOf")
	list, isList := v.([]any)
	if !ok || !isList {
		tb.Fatal("components.schemas.ErrorCode has no oneOf list")
	}
	out := map[string]int{}
	for i, raw := range list {
		m, _ := raw.(map[string]any)
		code, ok1 := m["const"].(string)
		status, err := jsonInt(m["x-httpStatus"])
		if !ok1 || err != nil {
			tb.Fatalf("components.schemas.ErrorCode.oneOf[%d]: want const and x-httpStatus, got %v", i, m)
		}
		out[code] = status
	}
	return out
}

// pathParams are the {name} segments of a path template.
var pathParams = regexp.MustCompile(`\{([^{}]+)\}`)

func jsonInt(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, err := strconv.Atoi(n.String())
	return i, err
}
