package console

// usersMessages are the words of the Users pages (users.go), merged into
// messages.
var usersMessages = map[string][2]string{
	"users":                {"用户", "Users"},
	"act_user_unbind":      {"解除绑定", "user unbind"},
	"users_note":           {"按 userId 或 openid 查找用户：绑定、每个模板的额度和时间线。", "Find a user by userId or openid: bindings, credits per template and timeline."},
	"users_search":         {"查找用户", "Find a user"},
	"users_find":           {"查找", "Find"},
	"users_search_hint":    {"只填一项。openid 有绑定的 userId 时，打开该 userId 的页面。", "Fill in one. An openid with a bound userId leads to that userId's page."},
	"users_empty":          {"请输入 userId 或 openid。", "Enter a userId or an openid."},
	"users_both":           {"只输入 userId 或 openid 之一。", "Enter a userId or an openid, not both."},
	"users_bad_user_id":    {"userId 是 1 到 128 字节的 UTF-8，不含空格、控制字符和 |。", "A userId is 1 to 128 bytes of UTF-8 without spaces, control characters or '|'."},
	"users_bad_openid":     {"openid 最多 64 个字符，只含字母、数字、- 和 _。", "An openid is at most 64 ASCII letters, digits, '-' or '_'."},
	"users_not_found":      {"本应用中没有微信用户绑定到这个 userId。", "No WeChat user of this app is bound to this userId."},
	"users_notice_unbound": {"已解除绑定：这个 userId 不再对应本应用的任何微信用户。", "Unbound: this userId no longer names a WeChat user of this app."},
	"users_searched":       {"查找的", "Searched"},
	"users_bindings":       {"绑定", "Bindings"},
	"users_bound_since":    {"绑定时间", "Bound since"},
	"users_this_app":       {"（本应用）", "(this app)"},
	"users_profile":        {"登录", "Logins"},
	"users_first_login":    {"首次登录", "First login"},
	"users_last_login":     {"最近登录", "Last login"},
	"users_never_logged":   {"从未登录（只有微信推送的记录）。", "Never logged in (only WeChat's pushes are recorded)."},
	"users_last_prompt":    {"最近一次弹窗", "Last prompt"},
	"users_last_accept":    {"最近一次接受", "Last accept"},
	"users_ledger":         {"每个模板的额度", "Credits per template"},
	"users_credits":        {"额度", "Credits"},
	"users_accepted":       {"已接受（长期）", "accepted (long-term)"},
	"users_not_accepted":   {"未接受（长期）", "not accepted (long-term)"},
	"users_always_keep":    {"总是保持", "Always keep"},
	"users_prompt":         {"值得再次请求", "Worth asking"},
	"users_never_asked":    {"从未请求", "never asked"},
	"users_timeline":       {"时间线", "Timeline"},
	"users_timeline_note":  {"授权变化、发送结果和微信的下发事件，最新的在前。", "Consent changes, send outcomes and WeChat's sent events, newest first."},
	"users_event":          {"事件", "Event"},
	"users_sends":          {"这个用户的通知", "This user's notifications"},
	"users_bad_limit":      {"limit 须为 1 到 100。", "limit must be 1 to 100."},
	"users_bad_cursor":     {"这个游标不是本列表给出的：请从第一页开始。", "That cursor is not one this list answered: start from the first page."},
	"users_openid_title":   {"openid 的授权记录", "Ledger of an openid"},
	"users_openid_unbound": {"没有 userId 绑定到这个 openid。", "No userId is bound to this openid."},
	"users_unbind":         {"解除绑定", "Unbind"},
	"users_unbind_title":   {"确认解除绑定", "Confirm the unbind"},
	"users_unbind_what":    {"解除后，这个 userId 不再对应上面的 openid：发给它的通知会被跳过（unbound_user），直到客户的后端再次绑定（POST /v1/bindings）。这个 openid 的授权额度和时间线保留。这个操作会写入审计日志。", "After this, the userId no longer names the openid above: notifications to it are skipped (unbound_user) until the customer's backend binds it again (POST /v1/bindings). The openid's credits and timeline stay. The audit log records the action."},
	"users_unbind_confirm": {"确认解除绑定", "Unbind this userId"},
	"users_keep":           {"取消", "Cancel"},
	"ev_consent":           {"授权变化", "consent"},
	"ev_notification":      {"发送结果", "send outcome"},
	"ev_sent_event":        {"微信下发事件", "sent event"},
	"cs_accept":            {"接受", "accept"},
	"cs_reject":            {"拒绝", "reject"},
	"cs_ban":               {"被封禁", "ban"},
	"cs_filter":            {"被过滤", "filter"},
	"src_report":           {"小程序上报", "report"},
	"src_settings":         {"订阅设置", "settings"},
	"src_popup":            {"弹窗事件", "popup event"},
	"src_change":           {"变更事件", "change event"},
	"src_send":             {"发送应答 43101", "43101 answer"},
}

func init() {
	for k, v := range usersMessages {
		if _, dup := messages[k]; dup {
			panic("console: message " + k + " defined twice")
		}
		messages[k] = v
	}
}
