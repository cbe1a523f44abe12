// Command login is wxnotify's login exchange: POST /v1/session, POST /v1/bindings, DELETE /v1/bindings/{userId}.
package main

import (
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/httpapi"
)

func main() { boot.Main("login", httpapi.Login) }
