// Command send is wxnotify's send notification: POST /v1/notifications, GET /v1/notifications/{id}.
package main

import (
	"wxnotify/shared/boot"
	"wxnotify/shared/httpapi"
)

func main() { boot.Main("send", httpapi.Send) }
