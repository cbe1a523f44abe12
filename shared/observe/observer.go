package observe

import (
	"errors"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/storeobs"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Label is a label's (a dimension's) name and value.
type Label struct{ Name, Value string }

// Field is a log-only field of an event's line (not a metric dimension).
type Field struct {
	Key   string
	Value any
}

// Sample is one value of a metric of Specs: a counter's increment or a
// histogram's observation.
type Sample struct {
	Metric string
	Value  float64
}

// Event is one fact as the sinks see it: its samples, the labels they are
// broken down by, and the fields of its log line.
type Event struct {
	Time    time.Time
	Msg     string  // what happened: "notification", "credits", "wechat_call", ...
	Labels  []Label // the value of every label its samples' specs name
	Samples []Sample
	Fields  []Field
	// Aggregate: a log sink may fold the event with others of the same
	// labels into one line (store operations, several per request).
	Aggregate bool
}

// Label returns the event's value of the named label, or "".
func (e Event) Label(name string) string {
	for _, l := range e.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Sink exports events. Record must be safe for concurrent use and must
// not block for long: it is called on the request path.
type Sink interface {
	Record(Event)
}

// Flusher is a Sink that buffers: Flush writes what it holds.
type Flusher interface {
	Flush()
}

// none is the label value of an empty one (CloudWatch refuses empty
// dimension values).
const none = "none"

func label(name, value string) Label {
	if value == "" {
		value = none
	}
	return Label{name, value}
}

// Options configure an Observer.
type Options struct {
	// App is the app label: the app's id (or its AppID in the single-app
	// shape without one).
	App string
	// TemplateAlias maps a template id to its catalog alias, for the
	// template label of credit changes (which carry the id); nil or ""
	// keeps the id.
	TemplateAlias func(templateID string) string
	// Now is the clock of event times; default time.Now.
	Now func() time.Time
}

// Observer turns one app's facts into events for a Sink. It implements
// notify.Observer; WeChatCall is the app's wechat.Config.OnCall.
type Observer struct {
	sink Sink
	o    Options
}

var _ notify.Observer = (*Observer)(nil)

// New returns an Observer of one app recording to sink.
func New(sink Sink, o Options) *Observer {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Observer{sink: sink, o: o}
}

func (ob *Observer) app() Label { return label("app", ob.o.App) }

func (ob *Observer) template(id string) string {
	if ob.o.TemplateAlias != nil {
		if a := ob.o.TemplateAlias(id); a != "" {
			return a
		}
	}
	return id
}

// NotificationDone implements notify.Observer: one event, and one log
// line, per outcome, its people's identifiers hashed.
func (ob *Observer) NotificationDone(out notify.Outcome) {
	tpl := out.Template
	if tpl == "" {
		tpl = ob.template(out.TemplateID)
	}
	e := Event{Time: ob.o.Now(), Msg: "notification",
		Labels: []Label{ob.app(), label("template", tpl), label("status", string(out.Status)),
			label("errcode", strconv.Itoa(out.Errcode))},
		Samples: []Sample{{Notifications, 1}},
		Fields: []Field{{"id", out.NotificationID}, {"templateId", out.TemplateID}, {"reason", out.Reason},
			{"source", string(out.Source)}, {"durationMs", out.Duration.Milliseconds()},
			{"openidHash", out.OpenIDHash}, {"userIdHash", out.UserIDHash}, {"wasted", out.Wasted}}}
	if out.Wasted {
		e.Samples = append(e.Samples, Sample{WastedSends, 1})
	}
	ob.sink.Record(e)
}

// CreditsChanged implements notify.Observer.
func (ob *Observer) CreditsChanged(c notify.CreditChange) {
	if c.N <= 0 {
		return
	}
	ob.sink.Record(Event{Time: ob.o.Now(), Msg: "credits",
		Labels:  []Label{ob.app(), label("template", ob.template(c.TemplateID)), label("kind", string(c.Kind))},
		Samples: []Sample{{Credits, float64(c.N)}}})
}

// PushApplied implements notify.Observer.
func (ob *Observer) PushApplied(p notify.PushEvent) {
	ob.sink.Record(Event{Time: ob.o.Now(), Msg: "push",
		Labels:  []Label{ob.app(), label("event", p.Event), label("changed", strconv.FormatBool(p.Changed))},
		Samples: []Sample{{PushEvents, 1}}})
}

// BatchProgress implements notify.Observer: one event per checkpoint, a
// recipients sample per status it counted.
func (ob *Observer) BatchProgress(b notify.BatchStep) {
	for _, s := range []struct {
		status string
		n      int
	}{{"sent", b.Sent}, {"skipped", b.Skipped}, {"failed", b.Failed}, {"unknown", b.Unknown}} {
		if s.n > 0 {
			ob.sink.Record(Event{Time: ob.o.Now(), Msg: "batch", Labels: []Label{ob.app(), label("status", s.status)},
				Samples: []Sample{{BatchRecipients, float64(s.n)}}, Fields: []Field{{"batchId", b.BatchID}}})
		}
	}
	if b.Done {
		ob.sink.Record(Event{Time: ob.o.Now(), Msg: "batch_done", Labels: []Label{ob.app()},
			Samples: []Sample{{BatchesFinished, 1}}, Fields: []Field{{"batchId", b.BatchID}}})
	}
}

// WeChatCall is wechat.Config.OnCall: the call's latency by API and
// errcode ("transport" for a call that got no WeChat answer), and a token
// fetch for stable_token (wechat.APIStableToken).
func (ob *Observer) WeChatCall(api string, errcode int, err error, d time.Duration) {
	code := strconv.Itoa(errcode)
	if err != nil && errcode == 0 {
		code = "transport"
	}
	e := Event{Time: ob.o.Now(), Msg: "wechat_call",
		Labels:  []Label{label("api", api), label("errcode", code), ob.app()},
		Samples: []Sample{{WeChatCallSeconds, d.Seconds()}}, Aggregate: true}
	if api == wechat.APIStableToken {
		e.Samples = append(e.Samples, Sample{TokenFetches, 1})
		e.Aggregate = false
	}
	ob.sink.Record(e)
}

// StoreFunc returns the storeobs.Func recording a deployment's store
// operations to sink, backend its backend label (bolt, redis, dynamodb).
func StoreFunc(sink Sink, backend string, now func() time.Time) storeobs.Func {
	if now == nil {
		now = time.Now
	}
	return func(op storeobs.Op, d time.Duration, err error) {
		sink.Record(Event{Time: now(), Msg: "store_op",
			Labels:  []Label{label("backend", backend), label("op", string(op)), label("result", StoreResult(err))},
			Samples: []Sample{{StoreOpSeconds, d.Seconds()}}, Aggregate: true})
	}
}

// StoreResult is the result label of a store operation's error: ok,
// not_found, conflict (a condition that did not hold) or error.
func StoreResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	}
	return "error"
}
