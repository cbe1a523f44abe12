// Command send is wxnotify's send notification: POST /v1/notifications, GET /v1/notifications/{id},
// the ledger and history of a user for backends (GET /v1/users/{userId}, GET /v1/users/{userId}/consents,
// GET /v1/users/{userId}/timeline, GET /v1/openids/{openid}/consents), and the outcome webhooks' deliveries
// (GET /v1/webhooks/{id}/deliveries, POST .../replay, POST .../enable).
package main

import (
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/httpapi"
)

func main() { boot.Main("send", httpapi.Send, httpapi.Admin) }
