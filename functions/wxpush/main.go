// Command wxpush is wxnotify's WeChat push callback: GET and POST /wechat/push.
package main

import (
	"wxnotify/shared/boot"
	"wxnotify/shared/httpapi"
)

func main() { boot.Main("wxpush", httpapi.Push) }
