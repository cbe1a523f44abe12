// Command login is wxnotify's login exchange: POST /v1/session, POST /v1/bindings, DELETE /v1/bindings/{userId}.
package main

import (
	"wxnotify/shared/boot"
	"wxnotify/shared/httpapi"
)

func main() { boot.Main("login", httpapi.Login) }
