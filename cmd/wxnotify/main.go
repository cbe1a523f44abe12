// Command wxnotify is the local tool: `wxnotify dev` runs every function in
// one process on an embedded store with a sandbox WeChat.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: wxnotify <command> [flags]

commands:
  dev     run every function on one local server (bbolt store, sandbox WeChat)
  help    show this help
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code:
// 0 success, 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "dev":
		return runDev(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "wxnotify: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
