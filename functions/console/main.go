// Command console is wxnotify's ops console (docs/console.md): GET /console
// and GET|POST /console/..., server-rendered pages for the operators who
// hold an admin key (WXN_ADMIN_KEYS) or an account of the OIDC allow-list
// (WXN_CONSOLE_OIDC_ALLOWED). Its code lives in shared/console,
// which no other function imports.
package main

import (
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/console"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/platform"
)

func main() {
	boot.MainCore("console", func(p *boot.Parts) (platform.Handlers, error) {
		c, err := console.FromParts(p, nil)
		if err != nil {
			return platform.Handlers{}, err
		}
		p.API.SetConsole(c)
		return boot.Handlers(p, "console", httpapi.Console), nil
	})
}
