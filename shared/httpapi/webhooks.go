package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// defaultDeliveryListLimit is the page size of GET
// /v1/webhooks/{id}/deliveries without limit.
const defaultDeliveryListLimit = 20

// deliveryJSON is a webhook delivery as the API answers it.
type deliveryJSON struct {
	ID          string        `json:"id"`
	Webhook     string        `json:"webhook"`
	EventType   string        `json:"eventType"`
	EventID     string        `json:"eventId"`
	Status      string        `json:"status"`
	Reason      string        `json:"reason,omitempty"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	NextAttempt time.Time     `json:"nextAttemptAt,omitzero"`
	Replays     int           `json:"replays"`
	Attempts    []attemptJSON `json:"attempts"`
}

type attemptJSON struct {
	Attempt     int       `json:"attempt"`
	At          time.Time `json:"at"`
	DurationMS  int64     `json:"durationMs"`
	HTTPStatus  int       `json:"httpStatus,omitempty"`
	Error       string    `json:"error,omitempty"`
	NextAttempt time.Time `json:"nextAttemptAt,omitzero"`
}

func toDeliveryJSON(d notify.WebhookDelivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, Webhook: d.Subscription, EventType: d.EventType, EventID: d.EventID, Status: string(d.Status),
		Reason: d.Reason, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, NextAttempt: d.NextAttempt, Replays: d.Replays,
		Attempts: make([]attemptJSON, 0, len(d.Attempts))}
	for _, a := range d.Attempts {
		out.Attempts = append(out.Attempts, attemptJSON{Attempt: a.Number, At: a.At, DurationMS: a.Duration.Milliseconds(),
			HTTPStatus: a.HTTPStatus, Error: a.Error, NextAttempt: a.NextAttempt})
	}
	return out
}

// GET /v1/webhooks/{id}/deliveries?status=&limit=&cursor=: the webhook's
// deliveries, newest first.
func (a *API) handleListDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultDeliveryListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || len(v) > 4 {
			writeError(w, r, notify.FieldError("limit", "must be a number from 1 to %d", notify.MaxDeliveryListLimit))
			return
		}
		limit = n
	}
	page, err := svc(r).ListWebhookDeliveries(r.Context(), r.PathValue("id"), notify.DeliveryStatus(q.Get("status")), q.Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		Next       string         `json:"next,omitempty"`
	}{Deliveries: make([]deliveryJSON, 0, len(page.Deliveries)), Next: page.Next}
	for _, d := range page.Deliveries {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay: queue the
// delivery again (same webhook-id), 202.
func (a *API) handleReplayDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := svc(r).ReplayWebhookDelivery(r.Context(), r.PathValue("id"), r.PathValue("deliveryId"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Delivery deliveryJSON `json:"delivery"`
	}{toDeliveryJSON(d)})
}

// POST /v1/webhooks/{id}/enable: enable a webhook a 410 Gone disabled.
func (a *API) handleEnableWebhook(w http.ResponseWriter, r *http.Request) {
	st, err := svc(r).EnableWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Webhook webhookStateJSON `json:"webhook"`
	}{webhookStateJSON{ID: st.ID, Enabled: !st.Disabled}})
}

type webhookStateJSON struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
}
