package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event types delivered to a customer's endpoint.
const (
	EventNotificationSent      = "notification.sent"
	EventNotificationFailed    = "notification.failed"
	EventNotificationSkipped   = "notification.skipped"
	EventNotificationDelivered = "notification.delivered"
	EventNotificationUnknown   = "notification.unknown"
	EventConsentChanged        = "consent.changed"
	EventBatchFinished         = "batch.finished"
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{
	EventNotificationSent, EventNotificationFailed, EventNotificationSkipped,
	EventNotificationDelivered, EventNotificationUnknown,
	EventConsentChanged, EventBatchFinished,
}

// KnownType reports whether t is one of EventTypes.
func KnownType(t string) bool {
	for _, k := range EventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Event is one outcome to report. ID identifies the event itself (one
// per outcome, whatever the number of subscriptions); it is not part of
// the JSON payload: receivers deduplicate on the webhook-id header, which
// DeliveryID derives from it.
type Event struct {
	Type      string
	ID        string
	Timestamp time.Time
	Data      any
}

// envelope is the JSON shape Standard Webhooks recommends.
type envelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// MarshalJSON renders {"type", "timestamp" (RFC 3339, UTC), "data"}; Data
// must encode to a JSON object (nil gives {}).
func (e Event) MarshalJSON() ([]byte, error) {
	if !KnownType(e.Type) {
		return nil, fmt.Errorf("webhook: unknown event type %q", e.Type)
	}
	if e.Timestamp.IsZero() {
		return nil, errors.New("webhook: event has no timestamp")
	}
	data := []byte("{}")
	if e.Data != nil {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return nil, fmt.Errorf("webhook: encode %s data: %w", e.Type, err)
		}
		if t := bytes.TrimSpace(data); string(t) == "null" {
			data = []byte("{}")
		} else if len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("webhook: %s data is not a JSON object", e.Type)
		}
	}
	return json.Marshal(envelope{
		Type:      e.Type,
		Timestamp: e.Timestamp.UTC().Format(time.RFC3339Nano),
		Data:      data,
	})
}

// NotificationData is the data of the notification.* events. The raw
// openid is never sent: a recipient is named by the userId it was
// addressed by, if any.
type NotificationData struct {
	NotificationID string `json:"notificationId"`
	App            string `json:"app"`
	UserID         string `json:"userId,omitempty"`
	Template       string `json:"template"`
	TemplateID     string `json:"templateId,omitempty"`
	Status         string `json:"status"`
	Reason         string `json:"reason,omitempty"`
	Source         string `json:"source,omitempty"`
	BatchID        string `json:"batchId,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// ConsentData is the data of consent.changed: a user's consent for one
// template changed (its status, a long-term acceptance, or a credit
// granted). The raw openid is never sent: UserID is the account id bound
// to the user, if any.
type ConsentData struct {
	App        string `json:"app"`
	UserID     string `json:"userId,omitempty"`
	Template   string `json:"template"`
	TemplateID string `json:"templateId"`
	Kind       string `json:"kind"` // one-time | long-term
	// Status and PreviousStatus are accept | reject | ban | filter, ""
	// for a user never asked.
	Status         string `json:"status"`
	PreviousStatus string `json:"previousStatus"`
	// Credits are the one-time messages that may still be sent (0 for
	// long-term templates); Sendable whether one may be sent now.
	Credits  int64     `json:"credits"`
	Sendable bool      `json:"sendable"`
	Source   string    `json:"source,omitempty"`
	At       time.Time `json:"at"`
}

// BatchData is the data of batch.finished.
type BatchData struct {
	BatchID    string `json:"batchId"`
	App        string `json:"app"`
	Status     string `json:"status"` // done | cancelled
	Template   string `json:"template,omitempty"`
	TemplateID string `json:"templateId,omitempty"`
	Total      int    `json:"total"`
	Sent       int    `json:"sent"`
	Skipped    int    `json:"skipped"`
	Failed     int    `json:"failed"`
	Unknown    int    `json:"unknown"`
	// Pending are the recipients a cancelled batch did not send to.
	Pending int `json:"pending"`
}

// idEncoding is lower-case unpadded base32: URL- and header-safe.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DeliveryID is the webhook-id of one event delivered to one
// subscription: "msg_" and 26 base32 characters of a SHA-256 over both
// ids (length-prefixed, so no two pairs collide by concatenation). The
// same pair always gives the same id, so every retry and every redelivery
// carries the same webhook-id and receivers can deduplicate on it.
func DeliveryID(eventID, subscriptionID string) string {
	h := sha256.New()
	for _, part := range []string{"wxnotify-webhook-v1", eventID, subscriptionID} {
		h.Write(strconv.AppendInt(nil, int64(len(part)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	return "msg_" + idEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Message is one event ready to deliver to one subscription: its
// webhook-id and the exact JSON body that is signed and sent. The outbox
// stores it as is, so a retry sends the very same bytes.
type Message struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Body []byte `json:"body"`
}

// NewMessage encodes ev for the subscription subscriptionID.
func NewMessage(ev Event, subscriptionID string) (Message, error) {
	if ev.ID == "" {
		return Message{}, errors.New("webhook: event has no id")
	}
	if subscriptionID == "" {
		return Message{}, errors.New("webhook: empty subscription id")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Message{}, err
	}
	return Message{ID: DeliveryID(ev.ID, subscriptionID), Type: ev.Type, Body: body}, nil
}
