// Command consent is wxnotify's consent record: GET /v1/templates, GET and POST /v1/consents, POST /v1/consents/shown, GET /v1/consents/advice.
package main

import (
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/httpapi"
)

func main() { boot.Main("consent", httpapi.Consent) }
