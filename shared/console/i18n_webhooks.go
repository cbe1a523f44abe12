package console

// The words of the Webhooks pages and of the notification page's push and
// webhook sections, merged into messages (i18n.go).
var webhookMessages = map[string][2]string{
	"webhooks":           {"Webhook", "Webhooks"},
	"webhooks_note":      {"wxnotify.yaml 中本应用的 webhook 订阅，以及每个订阅最近的投递。签名密钥从不显示。", "This app's webhook subscriptions of wxnotify.yaml, with each one's latest deliveries. Signing secrets are never shown."},
	"webhook":            {"Webhook", "Webhook"},
	"url":                {"地址", "URL"},
	"event_bus":          {"EventBridge 事件总线", "EventBridge event bus"},
	"events":             {"事件类型", "Event types"},
	"hook_state":         {"状态", "State"},
	"enabled":            {"已启用", "enabled"},
	"disabled":           {"已停用", "disabled"},
	"disabled_since":     {"停用时间", "Disabled since"},
	"disabled_why":       {"接收方应答 410 Gone，订阅已停用：之后的事件进入死信，启用后可重放。", "The receiver answered 410 Gone, so the subscription is disabled: later events become dead letters, to replay once it is enabled."},
	"enable_webhook":     {"启用订阅", "Enable subscription"},
	"secrets":            {"签名密钥", "Signing secrets"},
	"secret_one":         {"1 个（未在轮换）", "1 (no rotation)"},
	"secret_rotating":    {"2 个：轮换中，每次投递同时用新旧密钥签名（_PREVIOUS）", "2: a rotation, every delivery is signed with the new and the previous (_PREVIOUS) secret"},
	"secret_none":        {"无：由 IAM 认证", "none: IAM authenticates the calls"},
	"deliveries":         {"投递", "Deliveries"},
	"recent_deliveries":  {"最近的投递", "Latest deliveries"},
	"all_deliveries":     {"全部投递", "All deliveries"},
	"delivery":           {"投递 ID", "Delivery id"},
	"event_type":         {"事件", "Event"},
	"event_id":           {"事件 ID", "Event id"},
	"last_error":         {"最近的错误", "Last error"},
	"next_attempt":       {"下次尝试", "Next attempt"},
	"http_status":        {"HTTP 状态", "HTTP status"},
	"duration":           {"耗时", "Duration"},
	"replays":            {"重放次数", "Replays"},
	"replay":             {"重放", "Replay"},
	"replay_note":        {"重放以相同的 webhook-id 和内容重新排队，由下一次批处理 tick 投递。", "A replay queues it again, same webhook-id and body, for the batch function's next tick."},
	"delivered":          {"已投递", "delivered"},
	"dead":               {"已放弃", "dead"},
	"no_webhooks":        {"本应用没有配置 webhook（wxnotify.yaml 的 webhooks:）。", "This app has no webhooks (webhooks: in wxnotify.yaml)."},
	"not_attempted_note": {"批处理 tick 尚未尝试的投递没有记录，不在此列。", "A delivery the batch tick has not attempted yet has no record and is not listed."},
	"push_event":         {"微信推送事件", "WeChat's push event"},
	"sent_event_note":    {"确认（或结算）这次发送的 subscribe_msg_sent_event，来自用户时间线。", "The subscribe_msg_sent_event that confirmed (or settled) this send, from the user's timeline."},
	"no_sent_event":      {"没有找到 subscribe_msg_sent_event（未配置推送、尚未收到，或这次发送没有到达微信）。", "No subscribe_msg_sent_event found (push not configured, not come yet, or the send never reached WeChat)."},
	"error_status":       {"微信状态", "WeChat's status"},
	"notification_hooks": {"这条通知事件的 webhook 投递", "Webhook deliveries of this notification's events"},
	"act_webhook_replay": {"重放 webhook 投递", "webhook replay"},
	"act_webhook_enable": {"启用 webhook", "webhook enable"},
	"store_unavailable":  {"存储没有应答。", "The store did not answer."},
	"attempts_detail":    {"每次尝试", "Every attempt"},
	"filter_status":      {"投递状态", "Delivery status"},
}

func init() {
	for k, v := range webhookMessages {
		if _, dup := messages[k]; dup {
			panic("console: message " + k + " defined twice")
		}
		messages[k] = v
	}
}
