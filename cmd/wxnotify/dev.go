package main

import (
	"fmt"
	"io"
)

// runDev will serve every function on one local server. Until the core flow
// lands it says so, honestly, instead of pretending to serve.
func runDev(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wxnotify dev: not built yet. The state store (bbolt, Redis, DynamoDB) is in place;")
	fmt.Fprintln(stderr, "the local server with the sandbox WeChat arrives with the core-flow issue.")
	return 1
}
