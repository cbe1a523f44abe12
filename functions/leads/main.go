// Command leads is wxnotify's lead-events function: SQS, EventBridge and
// CKafka triggers, and POST /v1/events.
package main

import "github.com/wxnotify/wxnotify/shared/boot"

func main() { boot.MainCore("leads", boot.LeadsCore) }
