package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// defaultNotificationListLimit is the page size of GET /v1/notifications
// without limit.
const defaultNotificationListLimit = 20

// GET /v1/notifications?userId=&openid=&template=&status=&batch=&since=&until=&limit=&cursor=:
// the app's notifications that match the filters, newest first.
func (a *API) handleListNotifications(w http.ResponseWriter, r *http.Request) {
	f, limit, err := notificationFilter(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := svc(r).ListNotifications(r.Context(), f, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Notifications []any  `json:"notifications"`
		Next          string `json:"next,omitempty"`
	}{Notifications: make([]any, 0, len(page.Notifications)), Next: page.Next}
	for _, n := range page.Notifications {
		out.Notifications = append(out.Notifications, NotificationJSON(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// notificationFilter reads the filters and page size of a list request;
// ListNotifications checks their values.
func notificationFilter(r *http.Request) (notify.NotificationFilter, int, error) {
	q := r.URL.Query()
	f := notify.NotificationFilter{UserID: q.Get("userId"), OpenID: q.Get("openid"), Template: q.Get("template"),
		Status: notify.Status(q.Get("status")), Batch: q.Get("batch")}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, 0, notify.FieldError(t.name, "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		*t.to = at
	}
	limit := defaultNotificationListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || len(v) > 4 {
			return f, 0, notify.FieldError("limit", "must be a number from 1 to %d", notify.MaxNotificationListLimit)
		}
		limit = n
	}
	return f, limit, nil
}
