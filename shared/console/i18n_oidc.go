package console

// The words of the OIDC sign-in (oidc.go), merged into messages.
var oidcMessages = map[string][2]string{
	"oidc_signin":    {"使用 %s 登录", "Sign in with %s"},
	"oidc_signed_in": {"已登录", "Signed in"},
	"oidc_continue":  {"进入控制台", "Continue to the console"},
}

func init() { addMessages(oidcMessages) }
