package console

import "fmt"

// statsMessages are the words of the overview's funnel counts and the
// stats page (stats.go), merged into messages.
var statsMessages = map[string][2]string{
	"stats":              {"统计", "Stats"},
	"credits_week":       {"一次性授权额度（最近 7 天）", "One-time credits (last 7 days)"},
	"wasted_week":        {"浪费的发送（最近 7 天）", "Wasted sends (last 7 days)"},
	"wasted_of":          {"%d 次 43101，共 %d 次消耗额度的发送", "%d answered 43101 of %d sends that spent a credit"},
	"outcomes_note":      {"按 UTC 日统计发送结果（来自统计计数器，与 GET /v1/stats 相同）：结果未知的发送确定后再计为已发送或失败，重试的失败每次都计。", "Outcomes counted on the UTC day they were recorded (the funnel's counters, as GET /v1/stats): an unknown send settled later counts again as sent or failed, and a retried failure counts once per attempt."},
	"errors_week":        {"微信错误（按 errcode，最近 7 天）", "WeChat errors by errcode (last 7 days)"},
	"errors_none":        {"没有失败的发送。", "No failed sends."},
	"meaning":            {"含义", "Meaning"},
	"count":              {"次数", "Count"},
	"funnel_title":       {"授权漏斗（按模板）", "Consent funnel per template"},
	"stats_more":         {"按日期查看统计", "Stats by day"},
	"stats_note":         {"每个模板每个 UTC 日的授权漏斗，与 GET /v1/stats 相同；最多 %d 天。", "The consent funnel of each template per UTC day, as GET /v1/stats answers it; at most %d days."},
	"from":               {"开始日期", "From"},
	"to":                 {"结束日期", "To"},
	"show":               {"查看", "Show"},
	"day":                {"日期", "Day"},
	"stats_totals":       {"合计（按模板）", "Totals per template"},
	"stats_daily":        {"每日（按模板）", "Per day and template"},
	"stats_none":         {"这段时间没有计数。", "No counts in this range."},
	"stats_bad_date":     {"%s 须为 YYYY-MM-DD 格式的日期，而不是 %q。", "%s must be a date YYYY-MM-DD, not %q."},
	"stats_bad_order":    {"开始日期不能晚于结束日期。", "from must not be after to."},
	"stats_bad_range":    {"日期范围为 %d 天，最多 %d 天。", "The range is %d days, at most %d."},
	"stats_bad_template": {"模板 %q 不在 wxnotify.yaml 中。", "The template %q is not in wxnotify.yaml."},
	"fn_shown":           {"弹窗展示", "shown"},
	"fn_accepted":        {"接受", "accepted"},
	"fn_rejected":        {"拒绝", "rejected"},
	"fn_granted":         {"获得额度", "granted"},
	"fn_taken":           {"消耗额度", "taken"},
	"fn_given_back":      {"退回额度", "given back"},
	"fn_sent":            {"已发送", "sent"},
	"fn_delivered":       {"已送达", "delivered"},
	"fn_failed":          {"失败", "failed"},
	"fn_held":            {"未发送（无授权）", "held"},
	"fn_wasted":          {"浪费（43101）", "wasted (43101)"},
	"fn_wasted_rate":     {"浪费率", "wasted rate"},
	"fn_unknown":         {"未知", "unknown"},
	"fn_outstanding":     {"剩余额度", "outstanding"},
	// WeChat's errcodes of a failed send (docs/wechat.md).
	"errcode_0":     {"没有微信的应答，或在调用微信之前失败", "no answer from WeChat, or a failure before it was called"},
	"errcode_40001": {"access_token 无效或不是最新的", "access token invalid or not the latest"},
	"errcode_40003": {"touser 不是本小程序的 openid", "touser is not an openid of this app"},
	"errcode_40037": {"模板 id 无效", "template id invalid"},
	"errcode_41030": {"page 不是小程序的页面", "page is not a page of the mini program"},
	"errcode_42001": {"access_token 过期", "access token expired"},
	"errcode_43101": {"用户没有订阅该模板", "the user holds no subscription for the template"},
	"errcode_43107": {"订阅消息能力被封禁", "the app's subscribe messages are banned"},
	"errcode_43108": {"并发下发给同一用户", "concurrent sends to the same user"},
	"errcode_45009": {"接口调用超过每日限额", "daily API quota reached"},
	"errcode_45011": {"调用太频繁", "rate limited"},
	"errcode_45168": {"内容含有敏感词", "the data contains sensitive words"},
	"errcode_47003": {"模板参数不正确", "a data value is invalid"},
}

func init() {
	for k, v := range statsMessages {
		if _, dup := messages[k]; dup {
			panic(fmt.Sprintf("console: message %q defined twice", k))
		}
		messages[k] = v
	}
}
