package httpapi

// Routes returns the route patterns ("METHOD /path", path parameters in
// braces) that a mux of these groups serves, in registration order, for
// deployment templates and their tests: each route of the default app
// followed by the same route of a named app (/v1/apps/{app}/...; the console's routes have none). GET /healthz, which every mux
// serves, is not included.
func Routes(groups ...Group) []string {
	var a API // the patterns do not depend on the API's state
	var patterns []string
	for _, g := range groups {
		for _, rt := range a.routes(g) {
			patterns = append(patterns, rt.pattern)
			if app := appRoute(rt.pattern); app != "" {
				patterns = append(patterns, app)
			}
		}
	}
	return patterns
}
