package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/notify"
)

// MaxBatchEntries is the most messages of one SendMessageBatch call.
const MaxBatchEntries = 10

// SQSConfig configures an SQS dispatcher.
type SQSConfig struct {
	// QueueURL is the shard queue's URL
	// (https://sqs.<region>.amazonaws.com/<account>/<name>).
	QueueURL string
	// Endpoint replaces the queue URL's https://<host>/ as the API's
	// endpoint (a VPC endpoint, tests).
	Endpoint string
	// Region signs the calls when the queue URL does not tell it
	// (AWS_REGION).
	Region string
	// Credentials are read at each dispatch: on Lambda, the role's from the
	// environment (cloudauth.AWSFromEnv).
	Credentials func() (aws.Credentials, error)
	// HTTPClient makes the calls; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock of the signatures; default time.Now.
	Now func() time.Time
	// Attempts, Backoff and Concurrency: see the defaults.
	Attempts    int
	Backoff     time.Duration
	Concurrency int
}

// SQS sends each shard as one message of an SQS queue.
type SQS struct {
	cfg      SQSConfig
	endpoint string
	region   string
}

// sqsHost is sqs.<region>.amazonaws.com[.cn], or the legacy
// <region>.queue.amazonaws.com[.cn].
var sqsHost = regexp.MustCompile(`^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(\.cn)?$`)

// NewSQS returns the dispatcher of cfg, or an error naming what is wrong.
func NewSQS(cfg SQSConfig) (*SQS, error) {
	u, err := url.Parse(cfg.QueueURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("queue URL %q is not https://sqs.<region>.amazonaws.com/<account>/<name>", cfg.QueueURL)
	}
	region, endpoint := cfg.Region, u.Scheme+"://"+u.Host+"/"
	if m := sqsHost.FindStringSubmatch(u.Hostname()); m != nil {
		region = m[1] + m[2]
		endpoint = "https://sqs." + region + "." + cloudauth.AWSDomain("", region) + "/"
	}
	if cfg.Endpoint != "" {
		e, err := url.Parse(cfg.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, fmt.Errorf("endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
		endpoint = strings.TrimRight(cfg.Endpoint, "/") + "/"
	}
	switch {
	case region == "":
		return nil, errors.New("no region: the queue URL does not tell it and AWS_REGION is unset")
	case cfg.Credentials == nil:
		return nil, errors.New("no credentials")
	case cfg.HTTPClient == nil:
		return nil, errors.New("no HTTP client")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return &SQS{cfg: cfg, endpoint: endpoint, region: region}, nil
}

// Endpoint is the API endpoint the dispatcher calls; Region the region it
// signs for.
func (q *SQS) Endpoint() string { return q.endpoint }

// Region is the region the calls are signed for.
func (q *SQS) Region() string { return q.region }

var _ notify.ShardDispatcher = (*SQS)(nil)

type sqsEntry struct {
	ID          string `json:"Id"`
	MessageBody string `json:"MessageBody"`
}

type sendMessageBatchInput struct {
	QueueURL string     `json:"QueueUrl"`
	Entries  []sqsEntry `json:"Entries"`
}

type sendMessageBatchOutput struct {
	Successful []struct {
		ID        string `json:"Id"`
		MessageID string `json:"MessageId"`
	} `json:"Successful"`
	Failed []struct {
		ID          string `json:"Id"`
		SenderFault bool   `json:"SenderFault"`
		Code        string `json:"Code"`
		Message     string `json:"Message"`
	} `json:"Failed"`
}

// DispatchShards sends refs in calls of up to ten messages, a few calls at
// once. An entry SQS reports failed through no fault of the sender is sent
// again, as is a call that failed on the server's side (5xx, throttling)
// or got no answer, up to Attempts times; the error names what did not
// reach the queue. Entries sent twice are harmless (a shard runs once).
func (q *SQS) DispatchShards(ctx context.Context, refs []notify.ShardRef) error {
	if len(refs) == 0 {
		return nil
	}
	creds, err := q.cfg.Credentials()
	if err != nil {
		return fmt.Errorf("sqs: %w", err)
	}
	chunks := (len(refs) + MaxBatchEntries - 1) / MaxBatchEntries
	errs := each(chunks, q.cfg.Concurrency, func(i int) error {
		part := refs[i*MaxBatchEntries : min(len(refs), (i+1)*MaxBatchEntries)]
		entries := make([]sqsEntry, len(part))
		for j, ref := range part {
			entries[j] = sqsEntry{ID: strconv.Itoa(j), MessageBody: string(Encode(ref))}
		}
		return q.sendChunk(ctx, creds, entries)
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return nil
}

// sendChunk sends entries, again for those that failed retryably.
func (q *SQS) sendChunk(ctx context.Context, creds aws.Credentials, entries []sqsEntry) error {
	var permanent []error
	var last error
	for attempt := range q.cfg.Attempts {
		if attempt > 0 {
			if err := sleep(ctx, q.cfg.Backoff<<(attempt-1)); err != nil {
				return errors.Join(append(permanent, last, err)...)
			}
		}
		retry, perm, err := q.send(ctx, creds, entries)
		permanent = append(permanent, perm...)
		switch {
		case err != nil && !retryable(err):
			return errors.Join(append(permanent, err)...)
		case err != nil:
			last = err // the whole call again
		case len(retry) == 0:
			return errors.Join(permanent...)
		default:
			entries, last = retry, fmt.Errorf("sqs SendMessageBatch: %d of the entries still failed after %d attempts", len(retry), q.cfg.Attempts)
		}
	}
	return errors.Join(append(permanent, last)...)
}

// send makes one SendMessageBatch call. It returns the entries to send
// again (failed on SQS's side), the errors of the entries refused for
// good, and the error of the call.
func (q *SQS) send(ctx context.Context, creds aws.Credentials, entries []sqsEntry) (retry []sqsEntry, permanent []error, err error) {
	const op = "sqs SendMessageBatch"
	body, err := json.Marshal(sendMessageBatchInput{QueueURL: q.cfg.QueueURL, Entries: entries})
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS.SendMessageBatch")
	if err := cloudauth.SignAWS(ctx, req, body, creds, "sqs", q.region, q.cfg.Now()); err != nil {
		return nil, nil, fmt.Errorf("sqs: %w", err)
	}
	status, data, err := do(q.cfg.HTTPClient, req, op)
	if err != nil {
		return nil, nil, err
	}
	if status != http.StatusOK {
		return nil, nil, awsError(op, status, data)
	}
	var out sendMessageBatchOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, nil, &APIError{Op: op, Status: status, Code: "MalformedAnswer", Message: err.Error(), Retryable: true}
	}
	byID := make(map[string]sqsEntry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	for _, f := range out.Failed {
		e, ok := byID[f.ID]
		if !ok {
			continue
		}
		delete(byID, f.ID)
		if f.SenderFault {
			permanent = append(permanent, &APIError{Op: op, Status: status, Code: f.Code, Message: "entry " + e.MessageBody + ": " + f.Message})
			continue
		}
		retry = append(retry, e)
	}
	for _, s := range out.Successful {
		delete(byID, s.ID)
	}
	// An entry the answer does not mention is sent again.
	for _, e := range entries {
		if _, ok := byID[e.ID]; ok {
			retry = append(retry, e)
		}
	}
	return retry, permanent, nil
}

// awsError reads the JSON protocol's error answer: __type may carry a
// namespace ("com.amazonaws.sqs#QueueDoesNotExist").
func awsError(op string, status int, data []byte) *APIError {
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
		code = http.StatusText(status)
	}
	throttled := strings.Contains(code, "Throttl") || code == "RequestThrottled" || code == "KmsThrottled"
	return &APIError{Op: op, Status: status, Code: code, Message: e.Message + e.MessageU,
		Retryable: status >= 500 || status == http.StatusTooManyRequests || throttled}
}
