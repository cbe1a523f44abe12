// Command wxpush is wxnotify's WeChat push callback: GET and POST /wechat/push.
package main

import (
	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/httpapi"
)

func main() { boot.Main("wxpush", httpapi.Push) }
