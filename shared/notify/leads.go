package notify

import (
	"context"
	"errors"
)

// EventOutcome is what handling one lead event did.
type EventOutcome struct {
	// Notifications are the sends the event's rules made (each recorded:
	// sent, skipped for no consent or an unbound user, failed, unknown).
	Notifications []Notification
	// NoRule: no rule matches the event's type; it is acknowledged.
	NoRule bool
}

// HandleEvent applies the rules to one lead event. Each matching rule sends
// one notification whose idempotency key derives from the event id, the
// recipient and the template, so a redelivered event sends nothing again.
//
// Errors: a malformed event (or one whose data breaks its rule or the
// template) is permanent - errors.Is(err, ErrEventMalformed) or code
// bad_request - and retrying it cannot help; IsRetryable tells the errors a
// redelivery may cure (WeChat unavailable, the store unreachable).
func (s *Service) HandleEvent(ctx context.Context, ev Event) (EventOutcome, error) {
	var out EventOutcome
	rules := s.rules.Match(ev)
	if len(rules) == 0 {
		out.NoRule = true
		s.log.Info("lead event without a rule, acknowledged", "event", ev.ID, "type", ev.Type)
		return out, nil
	}
	for _, rule := range rules {
		req, err := rule.Build(ev)
		if err != nil {
			return out, err
		}
		n, err := s.Send(ctx, req)
		switch {
		case err == nil:
			out.Notifications = append(out.Notifications, n)
		case CodeOf(err) == CodeConflict:
			// The rule changed between two deliveries of the event: the
			// first delivery's notification stands.
			s.log.Warn("lead event redelivered with other data, first result kept", "event", ev.ID, "rule", rule.Name())
		default:
			if n.ID != "" {
				out.Notifications = append(out.Notifications, n)
			}
			return out, err
		}
	}
	return out, nil
}

// IsRetryable reports whether an operation that failed with err may succeed
// when tried again: WeChat was unavailable, or the store was.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	switch CodeOf(err) {
	case CodeWeChatUnavailable, CodeStoreUnavailable, CodeInternal, CodeRateLimited:
		return true
	}
	return false
}
