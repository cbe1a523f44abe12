package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/trace"
)

// LeadsCore is the leads function: lead events from queues and buses (SQS,
// EventBridge, CKafka) and from POST /v1/events.
func LeadsCore(p *Parts) (platform.Handlers, error) {
	h := Handlers(p, "leads", httpapi.Events)
	h.Events = LeadEvents(p, p.Logger)
	return h, nil
}

// BatchCore is the batch function: the batch routes, the scheduled tick,
// and the shards of the batches the tick hands to the cloud's queue: SQS
// messages (Events) on AWS, asynchronous invocations (Invoke) on SCF.
func BatchCore(p *Parts) (platform.Handlers, error) {
	h := Handlers(p, "batch", httpapi.Batches)
	h.Tick = Tick(p)
	h.Events = ShardEvents(p)
	invoke := ShardInvoke(p)
	h.Invoke = func(ctx context.Context, payload json.RawMessage) (any, error) { return invoke(ctx, payload) }
	return h, nil
}

// Tick is the batch function's scheduled work, for every app at once: due
// batches, then the sweeps (with push enabled) that withdraw
// client-reported accepts WeChat never confirmed and settle ambiguous sends
// with WeChat's sent events, then the due outcome webhooks (a page of
// them per app and tick). All run on every tick; one failing does not
// stop the others. The apps tick concurrently, each under its own rate
// limit, so that one app's long batch does not use up another's tick.
//
// On bbolt, which has no expiry of its own, the tick also deletes the
// expired items (retention, WXN_RETENTION) at most once per sweepEvery.
func Tick(p *Parts) func(ctx context.Context, deadline time.Time) error {
	sweep := newSweeper(p)
	return func(ctx context.Context, deadline time.Time) error {
		errs := make([]error, len(p.Apps)+1)
		var wg sync.WaitGroup
		for i, a := range p.Apps {
			wg.Go(func() { errs[i] = tickApp(ctx, a, p.Logger, deadline) })
		}
		wg.Wait()
		errs[len(p.Apps)] = sweep(ctx)
		return errors.Join(errs...)
	}
}

// sweepEvery is how often the tick sweeps a bbolt store's expired items.
const sweepEvery = time.Hour

// sweepable is a store that deletes its expired items on demand (bbolt).
type sweepable interface {
	Sweep(ctx context.Context) (int, error)
}

// newSweeper returns the tick's sweep of expired items: a no-op but on a
// store that needs it (found under the metrics wrapper, storeobs).
func newSweeper(p *Parts) func(ctx context.Context) error {
	st := p.Store
	for {
		if sw, ok := st.(sweepable); ok {
			var (
				mu   sync.Mutex
				last time.Time
			)
			return func(ctx context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				now := time.Now()
				if p.clock != nil {
					now = p.clock()
				}
				if !last.IsZero() && now.Sub(last) < sweepEvery {
					return nil
				}
				n, err := sw.Sweep(ctx)
				if err != nil {
					return fmt.Errorf("sweep expired items: %w", err)
				}
				last = now
				if n > 0 {
					p.Logger.Info("swept expired items", "count", n)
				}
				return nil
			}
		}
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			return func(context.Context) error { return nil }
		}
		st = u.Unwrap()
	}
}

func tickApp(ctx context.Context, a *App, log *slog.Logger, deadline time.Time) error {
	batchErr := a.Service.RunBatches(ctx, deadline)
	n, sweepErr := a.Service.SweepReports(ctx)
	if n > 0 {
		log.Info("withdrew unconfirmed consent reports", "app", a.ID, "count", n)
	}
	settled, unknownErr := a.Service.SweepUnknown(ctx)
	if settled > 0 {
		log.Info("settled unknown sends", "app", a.ID, "count", settled)
	}
	delivered, failed, hookErr := a.Service.DeliverWebhooks(ctx, deadline)
	if delivered > 0 || failed > 0 {
		log.Info("delivered webhooks", "app", a.ID, "delivered", delivered, "failed", failed)
	}
	if err := errors.Join(batchErr, sweepErr, unknownErr, hookErr); err != nil {
		return fmt.Errorf("app %s: %w", a.ID, err)
	}
	return nil
}

// eventWorkers bounds the events of one delivery handled at once.
const eventWorkers = 8

// LeadEvents is the queue core of the leads function: it handles a
// delivery's events concurrently and returns the ids of those to deliver
// again - the ones that failed for a reason a retry may cure, and on AWS the
// malformed ones, which the queue's redrive policy moves to the dead-letter
// queue after a few receipts instead of retrying them forever. Malformed
// events from CKafka, which has no dead-letter queue, are acknowledged.
// Every rejection is logged with the event id and the reason.
//
// An event names its app with a top-level "app" (an app id or an AppID);
// one without goes to the default app.
func LeadEvents(p *Parts, log *slog.Logger) func(ctx context.Context, events []platform.Event) ([]string, error) {
	return func(ctx context.Context, events []platform.Event) ([]string, error) {
		var (
			mu     sync.Mutex
			failed []string
			wg     sync.WaitGroup
			sem    = make(chan struct{}, eventWorkers)
		)
		for _, e := range events {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if again := handleLeadEvent(ctx, p, log, e); again {
					mu.Lock()
					failed = append(failed, e.ID)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return failed, nil
	}
}

func handleLeadEvent(ctx context.Context, p *Parts, log *slog.Logger, e platform.Event) (again bool) {
	ctx, span := startLeadSpan(ctx, p.Tracer, e)
	defer span.End()
	ev, err := parseQueuedEvent(e)
	var svc *notify.Service
	if err == nil {
		svc, err = eventService(p, ev)
	}
	if err == nil {
		if span.Recording() {
			span.SetAttrs(trace.String("wxnotify.event.id", ev.ID), trace.String("wxnotify.event.type", ev.Type))
			if ev.App != "" {
				span.SetAttrs(trace.String("wxnotify.app", ev.App))
			}
		}
		var out notify.EventOutcome
		out, err = svc.HandleEvent(ctx, ev)
		if err == nil {
			for _, n := range out.Notifications {
				log.Info("lead event handled", "message", e.ID, "event", ev.ID, "notification", n.ID, "status", n.Status, "reason", n.Reason)
			}
			return false
		}
	}
	span.SetError(string(notify.CodeOf(err))) // a code, never the event's data
	if notify.IsRetryable(err) {
		log.Warn("lead event failed, to be delivered again", "message", e.ID, "source", e.Source, "attempt", e.Attempt, "err", err)
		return true
	}
	log.Error("lead event rejected", "message", e.ID, "source", e.Source, "err", err)
	return e.Source == platform.SourceSQS || e.Source == platform.SourceEventBridge
}

// eventService returns the service of the app an event names with its
// top-level "app", or the default app's. An app that the deployment does
// not have is a bad request (the event is not retried).
func eventService(p *Parts, ev notify.Event) (*notify.Service, error) {
	if ev.App == "" {
		return p.Service, nil
	}
	if a := p.App(ev.App); a != nil {
		return a.Service, nil
	}
	return nil, &notify.Error{Code: notify.CodeAppNotFound, Field: "app", Message: "the event names an app this deployment does not have",
		Err: notify.ErrEventMalformed}
}

// parseQueuedEvent reads the canonical event from a message body. An
// EventBridge detail may leave out id and type: the envelope's id and
// detail-type stand in.
func parseQueuedEvent(e platform.Event) (notify.Event, error) {
	body := e.Body
	if e.Source == platform.SourceEventBridge {
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil && top != nil {
			if _, ok := top["id"]; !ok && e.ID != "" {
				top["id"], _ = json.Marshal(e.ID)
			}
			if _, ok := top["type"]; !ok && e.Type != "" {
				top["type"], _ = json.Marshal(e.Type)
			}
			if _, ok := top["data"]; !ok {
				// The detail is the data itself.
				top = map[string]json.RawMessage{"id": top["id"], "type": top["type"], "data": e.Body}
			}
			if !e.Time.IsZero() {
				if _, ok := top["occurredAt"]; !ok {
					top["occurredAt"], _ = json.Marshal(e.Time.UTC().Format(time.RFC3339))
				}
			}
			body, _ = json.Marshal(top)
		}
	}
	ev, err := notify.ParseEvent(body)
	if err != nil && !errors.Is(err, notify.ErrEventMalformed) {
		return ev, &notify.Error{Code: notify.CodeBadRequest, Message: "malformed event", Err: err}
	}
	if err != nil {
		return ev, err
	}
	// What POST /v1/events refuses is refused here too: among others a
	// string that encoding/json would have changed (an escaped unpaired
	// surrogate), and an envelope id or type that is not UTF-8.
	if !utf8.ValidString(e.ID) || !utf8.ValidString(e.Type) {
		return notify.Event{}, &notify.Error{Code: notify.CodeBadRequest, Message: "the message id or type is not UTF-8", Err: notify.ErrEventMalformed}
	}
	if err := httpapi.CheckJSON(body); err != nil {
		var e *notify.Error
		if errors.As(err, &e) {
			return notify.Event{}, &notify.Error{Code: e.Code, Field: e.Field, Message: e.Message, Err: notify.ErrEventMalformed}
		}
		return notify.Event{}, err
	}
	return ev, nil
}
