package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// statusOf is the one table from domain code to HTTP status.
var statusOf = map[notify.Code]int{
	notify.CodeBadRequest:        http.StatusBadRequest,
	notify.CodeUnauthorized:      http.StatusUnauthorized,
	notify.CodeForbidden:         http.StatusForbidden,
	notify.CodeNotFound:          http.StatusNotFound,
	notify.CodeAppNotFound:       http.StatusNotFound,
	notify.CodeUserNotFound:      http.StatusNotFound,
	notify.CodeAppForbidden:      http.StatusForbidden,
	notify.CodeWebhookNotFound:   http.StatusNotFound,
	notify.CodeDeliveryNotFound:  http.StatusNotFound,
	notify.CodeWebhookDisabled:   http.StatusConflict,
	notify.CodeBatchFinished:     http.StatusConflict,
	notify.CodeConflict:          http.StatusConflict,
	notify.CodePayloadTooLarge:   http.StatusRequestEntityTooLarge,
	notify.CodeRateLimited:       http.StatusTooManyRequests,
	notify.CodeInvalidCode:       http.StatusBadRequest,
	notify.CodeBlockedUser:       http.StatusForbidden,
	notify.CodeWeChatUnavailable: http.StatusServiceUnavailable,
	notify.CodeStoreUnavailable:  http.StatusServiceUnavailable,
	notify.CodeInternal:          http.StatusInternalServerError,
}

// retryAfter is the Retry-After of a 503: WeChat or the store did not
// answer; a retry a moment later, with the same idempotency key, is safe.
const retryAfter = "1"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code          notify.Code `json:"code"`
	Message       string      `json:"message"`
	Field         string      `json:"field,omitempty"`
	WeChatErrcode int         `json:"wechatErrcode,omitempty"`
	// NotificationID names the notification a send request was accepted
	// as, when it failed after that: GET it, or retry with the same key.
	NotificationID string `json:"notificationId,omitempty"`
	RequestID      string `json:"requestId"`
}

// writeError answers err with the error body. Internal details go to the
// request's log line, never to the caller.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *notify.Error
	if !errors.As(err, &e) {
		e = &notify.Error{Code: notify.CodeInternal, Message: "internal error", Err: err}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	msg := e.Message
	if e.Code == notify.CodeInternal {
		msg = "internal error"
	}
	info := infoFrom(r.Context())
	if info != nil {
		info.err = err
		if e.WeChatErrcode != 0 {
			info.wechatErrcode = e.WeChatErrcode
		}
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{
		Code: e.Code, Message: msg, Field: e.Field, WeChatErrcode: e.WeChatErrcode, NotificationID: e.Notification,
		RequestID: requestID(r),
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
