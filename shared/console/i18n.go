package console

import (
	"net/http"
	"strings"
	"time"
)

// The console speaks Chinese (zh) and English (en): ?lang= switches (and
// is kept in a cookie), else the cookie, else Accept-Language, else zh.

// addMessages adds the words of a page's own file to messages (from its
// init); a key defined twice is a programming error.
func addMessages(more map[string][2]string) {
	for k, v := range more {
		if _, dup := messages[k]; dup {
			panic("console: message " + k + " defined twice")
		}
		messages[k] = v
	}
}

// messages are the console's words by key, zh and en.
var messages = map[string][2]string{
	"title":              {"wxnotify 控制台", "wxnotify console"},
	"signin":             {"登录", "Sign in"},
	"signout":            {"退出", "Sign out"},
	"admin_key":          {"管理员密钥", "Admin key"},
	"signin_hint":        {"使用 WXN_ADMIN_KEYS 中的一个密钥登录。", "Sign in with one of the keys of WXN_ADMIN_KEYS."},
	"wrong_key":          {"密钥不正确。", "That key is not an admin key."},
	"app":                {"应用", "App"},
	"overview":           {"概览", "Overview"},
	"notifications":      {"通知", "Notifications"},
	"batches":            {"批量发送", "Batches"},
	"templates":          {"模板", "Templates"},
	"audit":              {"审计日志", "Audit log"},
	"today":              {"今天", "Today"},
	"week":               {"最近 7 天", "Last 7 days"},
	"total":              {"合计", "Total"},
	"sends_by_day":       {"每日发送（按状态）", "Sends per day, by status"},
	"status":             {"状态", "Status"},
	"sent":               {"已发送", "sent"},
	"skipped":            {"已跳过", "skipped"},
	"failed":             {"失败", "failed"},
	"unknown":            {"未知", "unknown"},
	"pending":            {"待发送", "pending"},
	"created":            {"创建时间", "Created"},
	"updated":            {"更新时间", "Updated"},
	"id":                 {"ID", "ID"},
	"recipient":          {"接收者", "Recipient"},
	"template":           {"模板", "Template"},
	"reason":             {"原因", "Reason"},
	"source":             {"来源", "Source"},
	"filter":             {"筛选", "Filter"},
	"all":                {"全部", "all"},
	"next_page":          {"下一页", "Next page"},
	"first_page":         {"第一页", "First page"},
	"none":               {"没有记录。", "Nothing here."},
	"request":            {"请求", "Request"},
	"wechat_answer":      {"微信的应答", "WeChat's answer"},
	"settlement":         {"结果", "Settlement"},
	"data":               {"数据", "Data"},
	"page":               {"页面", "Page"},
	"state":              {"小程序版本", "Mini program state"},
	"lang":               {"语言", "Language"},
	"idempotency":        {"幂等键", "Idempotency key"},
	"attempts":           {"尝试次数", "Attempts"},
	"retryable":          {"可重试", "Retryable"},
	"field":              {"字段", "Field"},
	"errcode":            {"errcode", "errcode"},
	"errmsg":             {"errmsg", "errmsg"},
	"msgid":              {"msgid", "msgid"},
	"progress":           {"进度", "Progress"},
	"cancel_batch":       {"取消批量发送", "Cancel batch"},
	"audience":           {"受众", "Audience"},
	"not_before":         {"开始时间", "Not before"},
	"batch_notes":        {"这个批量发送的通知", "This batch's notifications"},
	"live":               {"每 2 秒自动刷新", "Refreshes every 2 s"},
	"alias":              {"别名", "Alias"},
	"title_col":          {"标题", "Title"},
	"kind":               {"类型", "Kind"},
	"policy":             {"校验策略", "Policy"},
	"keyword":            {"关键词", "Keyword"},
	"type":               {"类型", "Type"},
	"label":              {"标签", "Label"},
	"rule":               {"规则（微信）", "Rule (WeChat's words)"},
	"example":            {"示例", "Example"},
	"enum":               {"可选值", "Values"},
	"at":                 {"时间", "At"},
	"action":             {"操作", "Action"},
	"actor":              {"管理员密钥", "Admin key"},
	"ip":                 {"地址", "Address"},
	"target":             {"对象", "Target"},
	"result":             {"结果", "Result"},
	"error":              {"出错了", "Something went wrong"},
	"back":               {"返回", "Back"},
	"user_id":            {"userId", "userId"},
	"openid":             {"openid", "openid"},
	"batch":              {"批量发送", "Batch"},
	"yes":                {"是", "yes"},
	"no":                 {"否", "no"},
	"utc_note":           {"时间为 UTC。", "Times are UTC."},
	"language_switch":    {"English", "中文"},
	"audit_note":         {"本应用的控制台操作，保留期与通知相同。", "The console's actions on this app, kept as long as the notifications."},
	"act_signin_failed":  {"登录失败", "sign-in failed"},
	"act_signin":         {"登录", "sign-in"},
	"act_signout":        {"退出", "sign-out"},
	"act_batch_cancel":   {"取消批量发送", "batch cancel"},
	"cancel_confirm":     {"取消后，尚未发送的接收者不会再收到。", "Recipients not yet done will not get it."},
	"templates_note":     {"wxnotify.yaml 中的模板，以及微信对每种关键词的限制。", "The templates of wxnotify.yaml, with WeChat's rule of each keyword type."},
	"notifications_note": {"按筛选条件列出，最新的在前。", "Filtered, newest first."},
}

// langIndex is the column of messages for lang.
func langIndex(lang string) int {
	if lang == "en" {
		return 1
	}
	return 0
}

// tr returns the word of key in lang (the key itself when there is none).
func tr(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	return m[langIndex(lang)]
}

// requestLang picks the request's language, and keeps a ?lang= choice in
// a cookie.
func requestLang(w http.ResponseWriter, r *http.Request) string {
	if q := r.URL.Query().Get("lang"); q == "zh" || q == "en" {
		setCookie(w, langCookie, q, "/console", 365*24*time.Hour)
		return q
	}
	if ck, err := r.Cookie(langCookie); err == nil && (ck.Value == "zh" || ck.Value == "en") {
		return ck.Value
	}
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

// acceptLanguage returns the first of zh and en that the header prefers
// (by q value, then order); zh when it names neither.
func acceptLanguage(h string) string {
	best, bestQ := "", -1.0
	for part := range strings.SplitSeq(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q = parseQ(v)
		}
		var lang string
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			lang = "zh"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			lang = "en"
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = lang, q
		}
	}
	if best == "" || bestQ <= 0 {
		return "zh"
	}
	return best
}

// parseQ reads a q value (0 to 1, three decimals at most); -1 for none.
func parseQ(v string) float64 {
	switch {
	case v == "1" || strings.HasPrefix(v, "1."):
		return 1
	case v == "0":
		return 0
	case strings.HasPrefix(v, "0.") && len(v) <= 5:
		f := 0.0
		scale := 0.1
		for _, ch := range v[2:] {
			if ch < '0' || ch > '9' {
				return -1
			}
			f += float64(ch-'0') * scale
			scale /= 10
		}
		return f
	}
	return -1
}
