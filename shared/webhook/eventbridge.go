package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
)

// An Amazon EventBridge event bus can take a subscription's events instead
// of an HTTPS endpoint: each message is one PutEvents entry, made over
// net/http and signed with Signature Version 4 by the AWS SDK's signer
// (the SDK's EventBridge client would add its weight to every function
// binary for one call; package cloudauth). No webhook signature is made: IAM authenticates
// the call. The entry is
//
//	Source        "wxnotify"
//	DetailType    the event type ("notification.failed")
//	Detail        the webhook body with the webhook-id first:
//	              {"webhookId":"msg_...","type":...,"timestamp":...,"data":{...}}
//	EventBusName  the bus ARN
//
// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html

// EventSource is the Source of the entries put on an event bus.
const EventSource = "wxnotify"

// AWSCredentials sign the PutEvents calls: on Lambda, the function role's
// temporary credentials, from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// EnvAWSCredentials reads the credentials Lambda provides from getenv.
func EnvAWSCredentials(getenv func(string) string) (AWSCredentials, error) {
	c, err := cloudauth.AWSFromEnv(getenv)
	if err != nil {
		return AWSCredentials{}, fmt.Errorf("webhook: %w", err)
	}
	return AWSCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
}

// eventBusARN is arn:<partition>:events:<region>:<account>:event-bus/<name>.
var eventBusARN = regexp.MustCompile(`^arn:(aws[a-z-]*):events:([a-z0-9-]+):([0-9]{12}):event-bus/([A-Za-z0-9._/-]{1,256})$`)

// EventBus is a parsed event bus ARN.
type EventBus struct {
	ARN       string
	Partition string
	Region    string
}

// ParseEventBus checks an event bus ARN
// (arn:aws:events:<region>:<account>:event-bus/<name>); an error wraps
// ErrInvalidURL.
func ParseEventBus(arn string) (EventBus, error) {
	m := eventBusARN.FindStringSubmatch(arn)
	if m == nil {
		return EventBus{}, fmt.Errorf("%w: %q is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)", ErrInvalidURL, arn)
	}
	return EventBus{ARN: arn, Partition: m[1], Region: m[2]}, nil
}

// Endpoint is the bus's regional EventBridge endpoint.
func (b EventBus) Endpoint() string {
	return "https://events." + b.Region + "." + cloudauth.AWSDomain(b.Partition, b.Region) + "/"
}

// EventBusError is an error answer of PutEvents, or an entry it refused
// (Status 200): retried like a non-2xx answer.
type EventBusError struct {
	Status  int
	Code    string
	Message string
}

func (e *EventBusError) Error() string {
	msg := fmt.Sprintf("webhook: eventbridge PutEvents: %s (http %d)", e.Code, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

type putEventsEntry struct {
	Source       string `json:"Source"`
	DetailType   string `json:"DetailType"`
	Detail       string `json:"Detail"`
	EventBusName string `json:"EventBusName"`
}

type putEventsInput struct {
	Entries []putEventsEntry `json:"Entries"`
}

type putEventsOutput struct {
	FailedEntryCount int `json:"FailedEntryCount"`
	Entries          []struct {
		EventID      string `json:"EventId"`
		ErrorCode    string `json:"ErrorCode"`
		ErrorMessage string `json:"ErrorMessage"`
	} `json:"Entries"`
}

// EventDetail is the Detail of msg's entry: its body with "webhookId"
// first, so that consumers deduplicate on it as webhook receivers do.
func EventDetail(msg Message) (string, error) {
	body := bytes.TrimSpace(msg.Body)
	if len(body) < 2 || body[0] != '{' {
		return "", errors.New("webhook: message body is not a JSON object")
	}
	id, _ := json.Marshal(msg.ID)
	rest := bytes.TrimSpace(body[1:])
	sep := ","
	if len(rest) > 0 && rest[0] == '}' {
		sep = ""
	}
	return `{"webhookId":` + string(id) + sep + string(rest), nil
}

// PutEvent makes one attempt to put msg on bus, signed with creds at now,
// through client, at endpoint ("" for the bus's regional one). It returns
// the HTTP status (0 if none came) and nil when EventBridge took the entry.
// Every failure is retried (Retryable), but an invalid ARN or endpoint.
func PutEvent(ctx context.Context, client *http.Client, bus EventBus, endpoint string, creds AWSCredentials, msg Message, now time.Time) (int, error) {
	if endpoint == "" {
		endpoint = bus.Endpoint()
	}
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return 0, err
	}
	detail, err := EventDetail(msg)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(putEventsInput{Entries: []putEventsEntry{{Source: EventSource, DetailType: msg.Type, Detail: detail, EventBusName: bus.ARN}}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook: request to %s: %w", redact(u), err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSEvents.PutEvents")
	req.Header.Set("User-Agent", UserAgent)
	cred := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := cloudauth.SignAWS(ctx, req, body, cred, "events", bus.Region, now); err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook: eventbridge PutEvents at %s: %w", redact(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("webhook: eventbridge PutEvents: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			MessageU string `json:"Message"`
		}
		_ = json.Unmarshal(data, &e)
		code := e.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "" {
			code = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, &EventBusError{Status: resp.StatusCode, Code: code, Message: e.Message + e.MessageU}
	}
	var out putEventsOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return resp.StatusCode, &EventBusError{Status: resp.StatusCode, Code: "MalformedAnswer", Message: err.Error()}
	}
	if out.FailedEntryCount > 0 || len(out.Entries) != 1 || out.Entries[0].ErrorCode != "" {
		e := &EventBusError{Status: resp.StatusCode, Code: "FailedEntry"}
		if len(out.Entries) == 1 && out.Entries[0].ErrorCode != "" {
			e.Code, e.Message = out.Entries[0].ErrorCode, out.Entries[0].ErrorMessage
		}
		return resp.StatusCode, e
	}
	return resp.StatusCode, nil
}
