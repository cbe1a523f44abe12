package boot

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/platform"
)

// FuzzParseQueuedEvent: any queue message (an SQS or CKafka body, an
// EventBridge detail with its envelope's id and type) gives a canonical
// event or a malformed-event error, which the queue core logs and either
// dead-letters or drops; none panics or passes without an id and a type,
// or with bytes that are not UTF-8.
func FuzzParseQueuedEvent(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt-1","type":"lead.assigned","occurredAt":"2026-11-21T09:30:00Z","data":{"lead":{"id":"L-1"}}}`,
		`{"lead":{"id":"L-1"},"assignee":{"userId":"u"}}`,
		`{"id":"x","data":null}`, `[]`, `null`, `{"type":1}`, `{"data":{"a":1e999}}`,
		`{"id":"x","type":"t","data":{"a":"\ud800"}}`, "{\"id\":\"x\",\"type\":\"t\",\"data\":{\"a\":\"\xff\"}}",
	} {
		for _, src := range []string{platform.SourceSQS, platform.SourceEventBridge, platform.SourceCKafka} {
			f.Add(src, "msg-1", "lead.assigned", []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, source, id, typ string, body []byte) {
		e := platform.Event{ID: id, Source: source, Type: typ, Body: body, Time: time.Unix(1700000000, 0)}
		ev, err := parseQueuedEvent(e)
		if err != nil {
			if !errors.Is(err, notify.ErrEventMalformed) && notify.CodeOf(err) != notify.CodeBadRequest {
				t.Fatalf("parseQueuedEvent(%q): got %v, want a malformed-event error", body, err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("parseQueuedEvent(%q): event without id or type: %+v", body, ev)
		}
		if !utf8.Valid(body) || !utf8.ValidString(id) && source == platform.SourceEventBridge {
			t.Fatalf("parseQueuedEvent(%q, id %q): accepted what is not UTF-8: %+v", body, id, ev)
		}
	})
}
