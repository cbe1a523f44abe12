// Command batch is wxnotify's batch-send function: POST /v1/batches, GET and
// DELETE /v1/batches/{id}, POST /v1/batches/{id}/pause and /resume, and the
// scheduled tick that runs due batches.
package main

import "github.com/wxnotify/wxnotify/shared/boot"

func main() { boot.MainCore("batch", boot.BatchCore) }
