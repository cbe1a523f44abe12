package openapitest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/sandbox"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// serverRoutes is every route pattern `wxnotify dev` registers in sandbox
// mode: /healthz (which every mux serves), every route group but the
// console's, and the sandbox routes. The console (GET /console, GET and
// POST /console/...) serves HTML pages for people, not an API: docs/api.md
// names its routes and docs/console.md describes them
// (TestConsoleRoutesDocumented).
func serverRoutes(tb testing.TB) []string {
	tb.Helper()
	fake, err := wechattest.New(wechattest.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(fake.Close)
	var groups []httpapi.Group
	for _, g := range httpapi.AllGroups {
		if g != httpapi.Console {
			groups = append(groups, g)
		}
	}
	routes := append(slices.Clone(httpapi.HealthRoutes), httpapi.Routes(groups...)...)
	for _, rt := range sandbox.New(fake).Routes() {
		routes = append(routes, rt.Pattern)
	}
	return routes
}

// TestConsoleRoutesDocumented checks that docs/api.md names every route of
// the console, which the OpenAPI document leaves out, and links its page.
func TestConsoleRoutesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, r := range httpapi.Routes(httpapi.Console) {
		if !strings.Contains(doc, "`"+r+"`") {
			t.Errorf("docs/api.md does not name the console route `%s`", r)
		}
	}
	if !strings.Contains(doc, "(console.md)") {
		t.Error("docs/api.md does not link console.md")
	}
}

// TestDocumentedRoutesAreServed checks that the document and the server
// have the same routes (method, path and path parameter names).
func TestDocumentedRoutesAreServed(t *testing.T) {
	sp := loadSpec(t)
	served := serverRoutes(t)
	var documented []string
	for _, op := range sp.operations(t) {
		documented = append(documented, op.pattern())
	}
	t.Run("ServerRoutesAreDocumented", func(t *testing.T) {
		for _, r := range served {
			if !slices.Contains(documented, r) {
				t.Errorf("got %q served but not in %s", r, docFile)
			}
		}
	})
	t.Run("DocumentedRoutesAreServed", func(t *testing.T) {
		for _, r := range documented {
			if !slices.Contains(served, r) {
				t.Errorf("got %q in %s but not served", r, docFile)
			}
		}
	})
	t.Run("NoDuplicates", func(t *testing.T) {
		seen := map[string]bool{}
		for _, r := range served {
			if seen[r] {
				t.Errorf("got %q registered twice", r)
			}
			seen[r] = true
		}
	})
}

// TestOperations checks what every operation of the document must have.
func TestOperations(t *testing.T) {
	sp := loadSpec(t)
	tags := map[string]bool{}
	list, _ := sp.doc["tags"].([]any)
	for _, raw := range list {
		if m, ok := raw.(map[string]any); ok {
			name, _ := m["name"].(string)
			tags[name] = true
		}
	}
	v, _ := sp.lookup("/components/securitySchemes")
	schemes, _ := v.(map[string]any)
	for _, name := range []string{"apiKey", "sessionToken", "wechatSignature"} {
		if _, ok := schemes[name]; !ok {
			t.Errorf("components.securitySchemes: got no %s, want the scheme defined", name)
		}
	}
	ids := map[string]string{}
	for _, op := range sp.operations(t) {
		t.Run(op.pattern(), func(t *testing.T) {
			id, _ := op.obj["operationId"].(string)
			if id == "" {
				t.Error("got no operationId")
			} else if other, dup := ids[id]; dup {
				t.Errorf("operationId %q: got it on %s too, want it unique", id, other)
			}
			ids[id] = op.pattern()
			if s, _ := op.obj["summary"].(string); s == "" {
				t.Error("got no summary")
			}
			opTags, _ := op.obj["tags"].([]any)
			if len(opTags) != 1 {
				t.Fatalf("got tags %v, want exactly one", opTags)
			}
			tag, _ := opTags[0].(string)
			if !tags[tag] {
				t.Errorf("got tag %q, want one of the document's tags", tag)
			}
			sandboxRoute := strings.HasPrefix(op.path, "/sandbox/")
			if sandboxRoute != (tag == "sandbox") {
				t.Errorf("got tag %q, want \"sandbox\" exactly for /sandbox/ routes", tag)
			}
			if desc, _ := op.obj["description"].(string); sandboxRoute && !strings.Contains(desc, "only in `wxnotify dev` sandbox mode") {
				t.Errorf("got description %q, want it to say the route exists only in `wxnotify dev` sandbox mode", desc)
			}
			security, ok := op.obj["security"].([]any)
			if !ok {
				t.Fatal("got no security, want it explicit ([] for none)")
			}
			for _, raw := range security {
				req, _ := raw.(map[string]any)
				if len(req) != 1 {
					t.Errorf("security: got %v, want one scheme per requirement", raw)
				}
				for name := range req {
					if _, ok := schemes[name]; !ok {
						t.Errorf("security: got undefined scheme %q", name)
					}
				}
			}
			if responses, _ := op.obj["responses"].(map[string]any); len(responses) == 0 {
				t.Error("got no responses")
			}
		})
	}
}

// TestPathParameters checks that every {name} of a path is a required path
// parameter of its operations, and that no other path parameter is declared.
func TestPathParameters(t *testing.T) {
	sp := loadSpec(t)
	for _, op := range sp.operations(t) {
		t.Run(op.pattern(), func(t *testing.T) {
			var want []string
			for _, m := range pathParams.FindAllStringSubmatch(op.path, -1) {
				want = append(want, m[1])
			}
			var got []string
			for _, p := range sp.parameters(t, op) {
				if p.in != "path" {
					continue
				}
				got = append(got, p.name)
				if req, _ := p.obj["required"].(bool); !req {
					t.Errorf("path parameter %s: got required false, want true", p.name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("got path parameters %v, want %v (the {names} of the path)", got, want)
			}
		})
	}
}
