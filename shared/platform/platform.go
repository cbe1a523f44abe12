package platform

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Handlers are the cores of one function. A nil core means the function
// does not take that kind of invocation: such a payload is answered with a
// platform error naming the kind.
type Handlers struct {
	// HTTP serves the function's routes.
	HTTP http.Handler

	// Events handles one batch of queue or bus messages and returns the IDs
	// of the events that must be delivered again; the others are done. An
	// error means the whole batch failed and is retried by the platform, so
	// Events must be idempotent per Event.ID.
	Events func(ctx context.Context, events []Event) (failed []string, err error)

	// Tick runs scheduled work. deadline is when the platform stops the
	// invocation; a tick should take no new work close to it. An error is
	// reported to the platform; the next tick comes anyway.
	Tick func(ctx context.Context, deadline time.Time) error

	// Invoke answers a direct invocation (Lambda Invoke, SCF Invoke) whose
	// payload is none of the platform events above. The result is encoded
	// as JSON; an error is reported to the caller as a function error.
	Invoke func(ctx context.Context, payload json.RawMessage) (any, error)
}

// Event is one message of a queue or an event bus, as the platform
// delivered it.
type Event struct {
	// ID identifies the message within its batch and across redeliveries:
	// the SQS messageId, the EventBridge event id, or
	// "topic/partition/offset" for CKafka.
	ID string
	// Source is the transport: SourceSQS, SourceEventBridge or SourceCKafka.
	Source string
	// Type is the EventBridge detail-type; empty for other sources.
	Type string
	// Body is the message: the SQS body, the EventBridge detail (JSON), the
	// CKafka msgBody.
	Body []byte
	// Attempt is the delivery attempt when the platform tells (SQS
	// ApproximateReceiveCount), else 0.
	Attempt int
	// Time is when the platform received the message, zero when unknown.
	Time time.Time
}

// Event sources.
const (
	SourceSQS         = "aws:sqs"
	SourceEventBridge = "aws:events"
	SourceCKafka      = "tencent:ckafka"
)

// ScheduleInput is the payload an AWS EventBridge Scheduler schedule sends
// to a function with a Tick core: template.yaml's ScheduleV2 events set it
// as their Input. The Scheduler delivers its input raw, with no envelope.
const ScheduleInput = `{"wxnotify":"tick"}`

// Platform is where a function runs.
type Platform string

// Platforms.
const (
	Local   Platform = "local"
	AWS     Platform = "aws"     // AWS Lambda, Runtime API
	Tencent Platform = "tencent" // Tencent Cloud SCF, Go1 runtime
)

// Detect tells the platform from the environment: AWS_LAMBDA_RUNTIME_API
// set means AWS Lambda, else _LAMBDA_SERVER_PORT set means Tencent Cloud
// SCF, else local. The order matters: aws-lambda-go's legacy RPC mode also
// uses _LAMBDA_SERVER_PORT, which Lambda's provided runtimes never set.
func Detect(getenv func(string) string) Platform {
	switch {
	case strings.TrimSpace(getenv("AWS_LAMBDA_RUNTIME_API")) != "":
		return AWS
	case strings.TrimSpace(getenv("_LAMBDA_SERVER_PORT")) != "":
		return Tencent
	}
	return Local
}

// Options configure Run and the adapters.
type Options struct {
	// Function names the function in log lines.
	Function string
	// Logger receives one line per non-HTTP invocation and per failure to
	// decode a payload; default: discard.
	Logger *slog.Logger
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
	// Addr is the local listen address; default Addr(Getenv).
	Addr string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Addr == "" {
		o.Addr = Addr(o.Getenv)
	}
	if o.Function == "" {
		o.Function = "wxnotify"
	}
	return o
}

// Addr is the local listen address: WXN_ADDR, else :$PORT, else :8080.
func Addr(getenv func(string) string) string {
	if a := strings.TrimSpace(getenv("WXN_ADDR")); a != "" {
		return a
	}
	if p := strings.TrimSpace(getenv("PORT")); p != "" {
		return ":" + p
	}
	return ":8080"
}

// Run serves h on the platform Detect finds.
//
// Locally it serves h.HTTP until ctx ends, then shuts down gracefully and
// returns nil; it fails at once when h has no HTTP core. On Tencent Cloud
// SCF it serves the Go1 runtime's invoke protocol on _LAMBDA_SERVER_PORT
// until ctx ends (net/rpc over gob, as scf-go-lib's cloudfunction.Start
// does, but without net/rpc's reflective server, which would keep every
// method of every type in the binary). On AWS Lambda it hands the adapter
// to aws-lambda-go and does not return: the library exits the process when
// the Runtime API fails, as Lambda expects.
func Run(ctx context.Context, h Handlers, o Options) error {
	o = o.withDefaults()
	switch Detect(o.Getenv) {
	case AWS:
		o.Logger.Debug("starting", "platform", AWS, "function", o.Function)
		lambda.StartWithOptions(NewLambda(h, o), lambda.WithContext(context.WithoutCancel(ctx)))
		return errors.New("runtime: aws-lambda-go returned")
	case Tencent:
		ln, err := net.Listen("tcp", "0.0.0.0:"+strings.TrimSpace(o.Getenv("_LAMBDA_SERVER_PORT")))
		if err != nil {
			return err
		}
		return serveSCF(ctx, ln, NewSCF(h, o), o)
	}
	return ServeLocal(ctx, h, o)
}

// requestIDKey carries the platform's invocation id.
type requestIDKey struct{}

// RequestID returns the platform's id of the invocation ctx belongs to (the
// Lambda request id, the SCF request id), or "" outside an invocation.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func withRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// kind is what an invocation payload is.
type kind string

const (
	kindHTTP   kind = "http"
	kindEvents kind = "events"
	kindTick   kind = "tick"
	kindInvoke kind = "invoke"
)

// errNoCore is returned when a payload reaches a function without the core
// that handles its kind.
type errNoCore kind

func (e errNoCore) Error() string {
	return "runtime: this function has no " + string(e) + " handler"
}

// deadlineOf is the invocation's deadline, or a minute from now when the
// platform gave none.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Minute)
}

// invoker runs the non-HTTP cores and logs one line per invocation.
type invoker struct {
	h   Handlers
	log *slog.Logger
	fn  string
}

func (iv invoker) tick(ctx context.Context, source string) error {
	if iv.h.Tick == nil {
		return errNoCore(kindTick)
	}
	start := time.Now()
	err := iv.h.Tick(ctx, deadlineOf(ctx))
	iv.logDone(ctx, kindTick, start, err, slog.String("source", source))
	return err
}

// events runs a batch and returns the failed IDs, all of which belong to
// the batch.
func (iv invoker) events(ctx context.Context, batch []Event) ([]string, error) {
	if iv.h.Events == nil {
		return nil, errNoCore(kindEvents)
	}
	start := time.Now()
	failed, err := iv.h.Events(ctx, batch)
	if err == nil {
		err = checkFailed(batch, failed)
	}
	var source string
	if len(batch) > 0 {
		source = batch[0].Source
	}
	iv.logDone(ctx, kindEvents, start, err, slog.String("source", source),
		slog.Int("events", len(batch)), slog.Int("failed", len(failed)))
	return failed, err
}

// checkFailed refuses IDs that are not in the batch: reporting them to the
// platform would fail the whole batch in a less obvious way.
func checkFailed(batch []Event, failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(batch))
	for _, e := range batch {
		ids[e.ID] = true
	}
	for _, id := range failed {
		if !ids[id] {
			return errors.New("runtime: Events reported a failed id that is not in the batch: " + id)
		}
	}
	return nil
}

func (iv invoker) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if iv.h.Invoke == nil {
		return nil, errNoCore(kindInvoke)
	}
	start := time.Now()
	out, err := iv.h.Invoke(ctx, json.RawMessage(payload))
	if err != nil {
		iv.logDone(ctx, kindInvoke, start, err)
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		err = errors.New("runtime: encode the Invoke result: " + err.Error())
		iv.logDone(ctx, kindInvoke, start, err)
		return nil, err
	}
	return b, nil
}

// logDone writes the invocation's line. Successful direct invocations are
// left to the Invoke core, which knows what to say about them.
func (iv invoker) logDone(ctx context.Context, k kind, start time.Time, err error, attrs ...slog.Attr) {
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	attrs = append([]slog.Attr{
		slog.String("requestId", RequestID(ctx)),
		slog.String("function", iv.fn),
		slog.String("kind", string(k)),
		slog.Float64("latencyMs", float64(time.Since(start).Microseconds())/1000),
	}, attrs...)
	iv.log.LogAttrs(ctx, level, "invocation", attrs...)
}

// decodeObject splits a JSON object into its top-level members, matched
// exactly (encoding/json's struct decoding matches names case-insensitively,
// which would mistake a direct payload's "type" for a timer's "Type").
// ok is false when the payload is valid JSON but not an object.
func decodeObject(payload []byte) (top map[string]json.RawMessage, ok bool, err error) {
	if !json.Valid(payload) {
		return nil, false, errors.New("runtime: the payload is not valid JSON")
	}
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return nil, false, nil
	}
	return top, true, nil
}

// member decodes top[name] as a string, "" when absent or not a string.
func member(top map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := top[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}
