// Package observe turns what wxnotify did into metrics and log lines,
// without any vendor package: an Observer (notify.Observer, plus the hooks
// of wechat.Config.OnCall and storeobs) describes each fact as an Event of
// named metrics, and a Sink exports it - CloudWatch Embedded Metric Format
// lines on AWS Lambda (EMF), plain JSON lines on Tencent Cloud SCF
// (Lines), Prometheus in `wxnotify dev` (an adapter in cmd/wxnotify, so
// that the function binaries do not link the client library).
//
// docs/observability.md documents every metric.
package observe

// Kind is how a metric accumulates.
type Kind int

// Metric kinds.
const (
	// Counter: each event adds its value; read the sum.
	Counter Kind = iota
	// Histogram: each event is one observation (a latency in seconds).
	Histogram
)

// Spec describes one metric of the set.
type Spec struct {
	Name   string
	Help   string
	Kind   Kind
	Unit   string   // CloudWatch's unit: Count or Seconds
	Labels []string // its labels, in order (CloudWatch: its dimensions)
}

// The metric names.
const (
	Notifications     = "wxnotify_notifications_total"
	Credits           = "wxnotify_credits_total"
	WastedSends       = "wxnotify_wasted_sends_total"
	WeChatCallSeconds = "wxnotify_wechat_call_seconds"
	TokenFetches      = "wxnotify_token_fetches_total" // #nosec G101 -- a metric name, not a credential
	PushEvents        = "wxnotify_push_events_total"
	BatchRecipients   = "wxnotify_batch_recipients_total"
	BatchesFinished   = "wxnotify_batches_finished_total"
	StoreOpSeconds    = "wxnotify_store_op_seconds"
)

// Specs is the metric set, in the order docs/observability.md lists it.
var Specs = []Spec{
	{Notifications, "Notifications that reached an outcome (or a settled unknown one its final outcome).", Counter, "Count",
		[]string{"app", "template", "status", "errcode"}},
	{Credits, "Credits of the consent ledger moved, by kind of change.", Counter, "Count",
		[]string{"app", "template", "kind"}},
	{WastedSends, "Sends WeChat refused with 43101 where the ledger held a credit.", Counter, "Count",
		[]string{"app", "template"}},
	{WeChatCallSeconds, "Latency of HTTP calls to WeChat, by API and errcode.", Histogram, "Seconds",
		[]string{"api", "errcode"}},
	{TokenFetches, "stable_token calls (access token fetches).", Counter, "Count",
		[]string{"app"}},
	{PushEvents, "Push events applied, and whether they changed anything.", Counter, "Count",
		[]string{"app", "event", "changed"}},
	{BatchRecipients, "Batch recipients checkpointed, by outcome.", Counter, "Count",
		[]string{"app", "status"}},
	{BatchesFinished, "Batches that finished.", Counter, "Count",
		[]string{"app"}},
	{StoreOpSeconds, "Latency of state store operations, by backend, operation and result.", Histogram, "Seconds",
		[]string{"backend", "op", "result"}},
}

// SpecOf returns the spec of the named metric.
func SpecOf(name string) (Spec, bool) {
	for _, s := range Specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}
