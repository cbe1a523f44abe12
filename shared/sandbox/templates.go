package sandbox

import (
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// Templates gives the sandbox WeChat the configuration's templates, so that
// what wxnotify may send is what the fake WeChat knows.
func Templates(f config.File) []wechattest.Template {
	var out []wechattest.Template
	for _, t := range f.Templates {
		ft := wechattest.Template{PriTmplID: t.ID, Title: t.Title, Type: wechattest.OneTime}
		if notify.Kind(t.Kind) == notify.LongTerm {
			ft.Type = wechattest.LongTerm
		}
		for _, kw := range t.Keywords {
			ft.Keywords = append(ft.Keywords, wechattest.Keyword{Name: kw.Name, Label: kw.Label, Enum: kw.Enum})
		}
		out = append(out, ft)
	}
	return out
}
