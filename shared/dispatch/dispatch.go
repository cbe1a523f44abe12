// Package dispatch hands the shards of batch sends to the cloud's own
// queue, so that many invocations of the batch function send one batch at
// once (notify.ShardDispatcher; the shards' layout, leases and checkpoints
// are in the store, see package notify):
//
//   - AWS: an Amazon SQS standard queue (SQS). Each shard is one message,
//     sent with SendMessageBatch (AWS JSON protocol, Signature Version 4
//     over net/http, as the other AWS calls of wxnotify: no SDK service
//     client in the binary). An event source mapping hands the messages to
//     the batch function one at a time, at most MaximumConcurrency at
//     once; a failed shard is reported failed and comes back after the
//     visibility timeout, then goes to the dead-letter queue.
//   - Tencent Cloud SCF: an asynchronous invocation of the batch function
//     itself (SCF). Each shard is one Invoke call (API 3.0, version
//     2018-04-16, InvocationType Event, TC3-HMAC-SHA256) whose
//     ClientContext is the message; SCF queues it and retries a failed
//     invocation by the function's asynchronous retry setting.
//
// Step Functions' Distributed Map and CKafka were passed over: the store
// already keeps each shard's lease and checkpoint and the tick hands a
// lost shard over again, so all a queue must do is deliver a shard at
// least once and bound the runners. A state machine would repeat that
// retry logic at a price per transition; a Kafka cluster is one more thing
// to buy and run, and its client would weigh on the function binary.
//
// The message, on both clouds, is
//
//	{"wxnotifyShard":{"app":"<AppID>","batch":"<batch id>","shard":<index>}}
package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// Member is the top-level member that makes a payload a shard message.
const Member = "wxnotifyShard"

// maxMessage bounds a shard message: its ids are short.
const maxMessage = 4 << 10

// maxAnswer bounds an API's answer.
const maxAnswer = 1 << 20

// Encode is the message of ref.
func Encode(ref notify.ShardRef) []byte {
	b, _ := json.Marshal(map[string]notify.ShardRef{Member: ref}) // cannot fail: strings and an int
	return b
}

// Decode reads a shard message. isShard is false when payload is not one
// (no top-level wxnotifyShard); err is set when it is one but malformed:
// other members, unknown fields, an empty app or batch, a negative shard.
func Decode(payload []byte) (ref notify.ShardRef, isShard bool, err error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil || top == nil {
		return ref, false, nil
	}
	raw, ok := top[Member]
	if !ok {
		return ref, false, nil
	}
	switch {
	case len(payload) > maxMessage:
		return ref, true, fmt.Errorf("shard message: larger than %d bytes", maxMessage)
	case len(top) != 1:
		return ref, true, errors.New("shard message: members beside " + Member)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in struct {
		App   *string `json:"app"`
		Batch *string `json:"batch"`
		Shard *int    `json:"shard"`
	}
	if err := dec.Decode(&in); err != nil {
		return ref, true, fmt.Errorf("shard message: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	switch {
	case in.App == nil || *in.App == "":
		return ref, true, errors.New("shard message: no app")
	case in.Batch == nil || *in.Batch == "":
		return ref, true, errors.New("shard message: no batch")
	case in.Shard == nil || *in.Shard < 0 || *in.Shard >= notify.MaxBatchShards:
		return ref, true, fmt.Errorf("shard message: shard is not an index between 0 and %d", notify.MaxBatchShards-1)
	}
	return notify.ShardRef{App: *in.App, Batch: *in.Batch, Shard: *in.Shard}, true, nil
}

// APIError is an error answer of a cloud API, or an entry it refused.
type APIError struct {
	// Op is the call ("sqs SendMessageBatch", "scf Invoke").
	Op     string
	Status int
	Code   string
	// Message is the API's own; RequestID its id when it gave one.
	Message, RequestID string
	// Retryable: the same call may succeed later (a server error,
	// throttling).
	Retryable bool
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Op, e.Code)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (http %d)", e.Status)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// transportError is a call that got no answer: retried.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

// retryable reports whether err may pass on a later attempt.
func retryable(err error) bool {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Retryable
	}
	_, ok := errors.AsType[transportError](err)
	return ok
}

// do sends req and returns the answer's status and body (at most
// maxAnswer bytes).
func do(client *http.Client, req *http.Request, op string) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, transportError{fmt.Errorf("%s: %w", op, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, nil, transportError{fmt.Errorf("%s: reading the answer: %w", op, err)}
	}
	if len(body) > maxAnswer {
		return 0, nil, fmt.Errorf("%s: answer larger than %d bytes", op, maxAnswer)
	}
	return resp.StatusCode, body, nil
}
