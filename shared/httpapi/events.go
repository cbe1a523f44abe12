package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// maxEventsPerRequest bounds the events of one POST /v1/events.
const maxEventsPerRequest = 100

type eventNotificationJSON struct {
	ID     string        `json:"id"`
	Status notify.Status `json:"status"`
	Reason string        `json:"reason,omitempty"`
}

// ParseEvents decodes a POST /v1/events body: one event or an array.
func ParseEvents(body []byte) ([]notify.Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, notify.Errorf(notify.CodeBadRequest, "the body is empty, an event or an array of events is expected")
	}
	if err := CheckJSON(trimmed); err != nil {
		return nil, err
	}
	if trimmed[0] != '[' {
		ev, err := notify.ParseEvent(trimmed)
		if err != nil {
			return nil, err
		}
		return []notify.Event{ev}, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, jsonError(err)
	}
	if len(raws) == 0 || len(raws) > maxEventsPerRequest {
		return nil, notify.Errorf(notify.CodeBadRequest, "give 1 to %d events", maxEventsPerRequest)
	}
	evs := make([]notify.Event, len(raws))
	for i, raw := range raws {
		ev, err := notify.ParseEvent(raw)
		if err != nil {
			if e, ok := err.(*notify.Error); ok {
				return nil, &notify.Error{Code: e.Code, Field: joinField(fmt.Sprintf("[%d]", i), e.Field), Message: e.Message, Err: e.Err}
			}
			return nil, err
		}
		evs[i] = ev
	}
	return evs, nil
}

// POST /v1/events: lead events by webhook. Malformed events are refused
// (400) before any is handled; when one could not be handled for a reason a
// retry may cure, the answer is 503 and the caller sends the same request
// again (each event sends at most once whatever the retries).
func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) {
	body, err := requestBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	evs, err := ParseEvents(body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Accepted      int                     `json:"accepted"`
		Notifications []eventNotificationJSON `json:"notifications"`
	}{Notifications: []eventNotificationJSON{}}
	ap := appOf(r)
	for i, ev := range evs {
		if ev.App != "" && ev.App != ap.id && ev.App != ap.svc.AppID() {
			field := "app"
			if len(evs) > 1 || bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
				field = fmt.Sprintf("[%d].app", i)
			}
			writeError(w, r, notify.FieldError(field, "names app %q, but this route serves app %q (post it to /v1/apps/%s/events)",
				truncateParam(ev.App), ap.id, truncateParam(ev.App)))
			return
		}
	}
	for i, ev := range evs {
		res, err := ap.svc.HandleEvent(r.Context(), ev)
		if err != nil {
			if e, ok := err.(*notify.Error); ok && !notify.IsRetryable(err) {
				writeError(w, r, &notify.Error{Code: e.Code, Field: joinField(fmt.Sprintf("[%d]", i), e.Field), Message: e.Message, Err: e.Err})
				return
			}
			writeError(w, r, err)
			return
		}
		out.Accepted++
		for _, n := range res.Notifications {
			out.Notifications = append(out.Notifications, eventNotificationJSON{ID: n.ID, Status: n.Status, Reason: n.Reason})
		}
	}
	writeJSON(w, http.StatusAccepted, out)
}
