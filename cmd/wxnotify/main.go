// Command wxnotify is the local tool: `wxnotify dev` runs every function in
// one process on an embedded store with a sandbox WeChat; `templates sync`
// fills wxnotify.yaml from WeChat; send, batch, consents and stats call a running
// wxnotify's API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/wxnotify/wxnotify/shared/version"
)

const usage = `usage: wxnotify <command> [flags]

commands:
  dev        run every function on one local server (bbolt store, sandbox WeChat)
  templates  sync wxnotify.yaml's templates from WeChat (templates sync [--app ID] [--dry-run])
  send       send one notification through the API and print its outcome
  batch      create, watch or cancel a batch send
  consents   show a user's consent ledger
  stats      print the consent funnel per day and template (shown, accepted, sent, ...)
  version    print the module version and VCS revision this binary was built from
             (also --version)
  help       show this help

Run 'wxnotify <command> --help' for a command's flags.

send, batch, consents and stats call a running wxnotify: --url (default $WXN_URL,
else http://127.0.0.1:8080, wxnotify dev's address) with an API key, --key
(default $WXN_API_KEY, else, for a server on this machine, the key wxnotify
dev generated in $WXN_DATA_DIR or .wxnotify); -v says which were used.
With several mini programs on one deployment, --app ID (default $WXN_APP)
picks the app: requests go to /v1/apps/ID/...; without it they take the
short routes /v1/..., the deployment's default app.
Older variable names (WECHAT_*, WXNOTIFY_*) still work, with a warning.

Exit status: 0 success, 1 failure (including an error answered by the API
or WeChat), 2 usage error.
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
	case "version", "--version", "-version":
		return runVersion(args[1:], stdout, stderr)
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "templates", "send", "batch", "consents", "stats":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return newCLI(stdout, stderr, os.Getenv).run(ctx, args)
	default:
		fmt.Fprintf(stderr, "wxnotify: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

const versionUsage = `usage: wxnotify version   (or wxnotify --version)

Prints the module version and the VCS revision this binary was built from,
e.g. "wxnotify v1.2.0 (revision 0123456789ab, 2026-12-06T18:00:00Z) go1.26.0":
the version is a tag or pseudo-version when built as a module dependency
(go install ...@v1.2.0), "(devel)" when built from a checkout; the revision
is missing when the build had no VCS information (-buildvcs=false).
`

// runVersion is `wxnotify version`.
func runVersion(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprint(stdout, versionUsage)
		return 0
	case len(args) > 0:
		fmt.Fprintf(stderr, "wxnotify version: unexpected argument %q\n\n%s", args[0], versionUsage)
		return 2
	}
	fmt.Fprintln(stdout, version.Get().String())
	return 0
}
