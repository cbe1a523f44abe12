package notify

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code, shared with API clients.
type Code string

// The codes of docs/api.md#errors.
const (
	CodeBadRequest        Code = "bad_request"
	CodeUnauthorized      Code = "unauthorized"
	CodeForbidden         Code = "forbidden"
	CodeNotFound          Code = "not_found"
	CodeConflict          Code = "conflict"
	CodePayloadTooLarge   Code = "payload_too_large"
	CodeRateLimited       Code = "rate_limited"
	CodeInvalidCode       Code = "invalid_code"
	CodeBlockedUser       Code = "blocked_user"
	CodeWeChatUnavailable Code = "wechat_unavailable"
	// CodeStoreUnavailable: the state store did not answer (a timeout, an
	// outage). Nothing is lost: retry, with the same idempotency key.
	CodeStoreUnavailable Code = "store_unavailable"
	CodeInternal         Code = "internal"
	// CodeAppNotFound: the {app} of the route names no app of the
	// deployment (404).
	CodeAppNotFound Code = "app_not_found"
	// CodeAppForbidden: the API key or session token is valid, but for
	// other apps than the route's (403).
	CodeAppForbidden Code = "app_forbidden"
	// CodeUserNotFound: nothing is known of the userId of GET
	// /v1/users/{userId} (no WeChat user of the app is bound to it) (404).
	CodeUserNotFound Code = "user_not_found"
	// CodeWebhookNotFound: the {id} of a /v1/webhooks route names no
	// webhook of the app (404).
	CodeWebhookNotFound Code = "webhook_not_found"
	// CodeDeliveryNotFound: no delivery of the webhook has the id (404).
	CodeDeliveryNotFound Code = "delivery_not_found"
	// CodeWebhookDisabled: the webhook is disabled (its endpoint answered
	// 410 Gone); enable it first (409).
	CodeWebhookDisabled Code = "webhook_disabled"
	// CodeBatchFinished: the batch is done or cancelled, so it can no
	// longer be paused or resumed (409).
	CodeBatchFinished Code = "batch_finished"
)

// Error is the domain's one error type. Message is safe to show to callers;
// Err (the cause) is for logs only.
type Error struct {
	Code          Code
	Message       string
	Field         string // the offending input field, e.g. "data.thing4"
	WeChatErrcode int
	// Notification is the id of the notification the request was given,
	// when it was accepted as one: look it up or retry with the same key.
	Notification string
	Err          error
}

func (e *Error) Error() string {
	msg := string(e.Code) + ": " + e.Message
	if e.Field != "" {
		msg += " (" + e.Field + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError is a bad_request naming the offending field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// withNotification returns err naming the notification id, when err is an
// *Error (a copy: shared errors stay untouched).
func withNotification(err error, id string) error {
	var e *Error
	if id == "" || !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Notification = id
	return &c
}

// IsUnavailable reports whether err says that WeChat or the store could
// not be reached: the same request may succeed later.
func IsUnavailable(err error) bool {
	switch CodeOf(err) {
	case CodeWeChatUnavailable, CodeStoreUnavailable:
		return true
	}
	return false
}

// CodeOf returns the domain code of err: the *Error's code, or internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
