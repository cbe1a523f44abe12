// Command leads is wxnotify's lead-events function: SQS, EventBridge and
// CKafka triggers, and POST /v1/events.
package main

import "wxnotify/shared/boot"

func main() { boot.MainCore("leads", boot.LeadsCore) }
