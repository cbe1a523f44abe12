package console

// The words of the test send page (tsend.go), merged into messages.
var tsendMessages = map[string][2]string{
	"tsend":           {"测试发送", "Test send"},
	"tsend_note":      {"先校验：每个字段按微信的规则和模板的校验策略检查，不发送、不消耗额度。校验通过后确认，才经正常的发送路径发出，消耗该用户的一次额度（一次性模板）。", "Check first: every field is judged by WeChat's rule and the template's policy, nothing is sent and no credit is spent. Once the check passes, confirm to send it the normal way, which spends one of the user's credits (one-time templates)."},
	"tsend_check":     {"校验", "Check"},
	"tsend_send":      {"确认发送", "Send it"},
	"tsend_result":    {"校验结果", "Check result"},
	"tsend_value":     {"值", "Value"},
	"tsend_ok":        {"通过", "OK"},
	"tsend_truncated": {"将截断为", "truncated to"},
	"tsend_failed":    {"不通过", "refused"},
	"tsend_not_given": {"（未填写）", "(not given)"},
	"tsend_all_ok":    {"全部字段通过校验，尚未发送。", "Every field passes. Nothing is sent yet."},
	"tsend_refused":   {"有字段未通过校验，不会发送。", "A field breaks its rule: nothing is sent."},
	"tsend_confirm":   {"发送使用幂等键", "The send uses the idempotency key"},
	"tsend_outcome":   {"发送结果", "Outcome"},
	"tsend_view":      {"查看这条通知", "View the notification"},
	"tsend_request":   {"请求", "Request"},
	"tsend_extra":     {"模板没有的字段", "Keys the template does not have"},
	"act_test_send":   {"测试发送", "test send"},
}

func init() { addMessages(tsendMessages) }
