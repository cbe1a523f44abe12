package httpapi

import (
	"net/http"

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
	if err := parseTimes(q.Get, &f.Since, &f.Until); err != nil {
		return f, 0, err
	}
	limit, err := parseLimit(q.Get("limit"), notify.MaxNotificationListLimit)
	if err != nil {
		return f, 0, err
	}
	return f, limit, nil
}
