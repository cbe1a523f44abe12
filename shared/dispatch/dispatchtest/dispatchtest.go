// Package dispatchtest runs local HTTP servers that speak the two APIs the
// batch shards are dispatched with, as package dispatch uses them: Amazon
// SQS's SendMessageBatch (AWS JSON protocol 1.0, Signature Version 4) and
// Tencent Cloud SCF's Invoke (API 3.0, TC3-HMAC-SHA256). Each checks every
// request's signature with the independent implementation of package
// secretstest and the request's shape, records the messages it took, and
// can fail calls or entries as the services do.
package dispatchtest

import (
	"crypto/md5" // #nosec G501 -- SQS's MD5OfMessageBody
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/secrets/secretstest"
)

// SQS is a fake Amazon SQS holding one standard queue.
type SQS struct {
	*httptest.Server
	// AccessKeyID, SecretAccessKey and SessionToken are the only
	// credentials it accepts; Region is its region.
	AccessKeyID, SecretAccessKey, SessionToken, Region string
	// Now is the clock requests are checked against (5 minutes skew).
	Now func() time.Time

	mu          sync.Mutex
	messages    []string
	calls       int
	failCalls   int
	failEntries int
	rejected    []string
}

// NewSQS starts a fake SQS in us-east-1 with fixed test credentials.
func NewSQS() *SQS {
	f := &SQS{AccessKeyID: "AKIDSQSEXAMPLE", SecretAccessKey: "sqs/K7MDENG+bPxRfiCYEXAMPLEKEY",
		SessionToken: "sqs-session-token", Region: "us-east-1", Now: time.Now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// QueueURL is the URL of its queue.
func (f *SQS) QueueURL() string { return f.URL + "/123456789012/wxnotify-shards" }

// Env is the environment of a batch function dispatching to f, as Lambda
// and the template give it.
func (f *SQS) Env() []string {
	return []string{"WXN_BATCH_QUEUE_URL=" + f.QueueURL(), "AWS_ACCESS_KEY_ID=" + f.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + f.SecretAccessKey, "AWS_SESSION_TOKEN=" + f.SessionToken, "AWS_REGION=" + f.Region}
}

// FailCalls makes the next n calls answer 500 InternalFailure.
func (f *SQS) FailCalls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCalls = n
}

// FailEntries makes the next n entries fail on the service's side
// (SenderFault false) in answers that otherwise succeed.
func (f *SQS) FailEntries(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failEntries = n
}

// Messages are the bodies the queue took, in order.
func (f *SQS) Messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.messages...)
}

// Calls is the number of requests received, valid or not.
func (f *SQS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Rejected are the reasons of the requests it refused (a bad signature, a
// wrong shape), in order.
func (f *SQS) Rejected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rejected...)
}

func (f *SQS) fail(w http.ResponseWriter, status int, typ, msg string) {
	f.mu.Lock()
	if status < 500 {
		f.rejected = append(f.rejected, typ+": "+msg)
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", typ+";Sender")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + typ, "message": msg})
}

// entryID is what SQS allows as an entry id.
var entryID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func (f *SQS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	fail := f.failCalls > 0
	if fail {
		f.failCalls--
	}
	f.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/" {
		f.fail(w, http.StatusBadRequest, "InvalidAction", "POST / with a JSON body")
		return
	}
	if err := secretstest.VerifySigV4(r, body, secretstest.SigV4Key{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey,
		SessionToken: f.SessionToken, Region: f.Region, Service: "sqs"}, f.Now()); err != nil {
		f.fail(w, http.StatusBadRequest, "InvalidSignatureException", err.Error())
		return
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessageBatch":
		f.fail(w, http.StatusBadRequest, "InvalidAction", "target "+r.Header.Get("X-Amz-Target"))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.0":
		f.fail(w, http.StatusBadRequest, "InvalidParameterValue", "content type "+r.Header.Get("Content-Type"))
		return
	}
	if fail {
		f.fail(w, http.StatusInternalServerError, "InternalFailure", "the request processing has failed because of an unknown error")
		return
	}
	var in struct {
		QueueURL string `json:"QueueUrl"`
		Entries  []struct {
			ID          string `json:"Id"`
			MessageBody string `json:"MessageBody"`
		} `json:"Entries"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.fail(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	switch {
	case in.QueueURL != f.QueueURL():
		f.fail(w, http.StatusBadRequest, "QueueDoesNotExist", "the specified queue does not exist")
		return
	case len(in.Entries) == 0:
		f.fail(w, http.StatusBadRequest, "EmptyBatchRequest", "there should be at least one SendMessageBatchRequestEntry in the request")
		return
	case len(in.Entries) > 10:
		f.fail(w, http.StatusBadRequest, "TooManyEntriesInBatchRequest", "maximum number of entries per request are 10")
		return
	}
	seen := map[string]bool{}
	for _, e := range in.Entries {
		if !entryID.MatchString(e.ID) {
			f.fail(w, http.StatusBadRequest, "InvalidBatchEntryId", "a batch entry id can only contain alphanumeric characters, hyphens and underscores")
			return
		}
		if seen[e.ID] {
			f.fail(w, http.StatusBadRequest, "BatchEntryIdsNotDistinct", "id "+e.ID+" repeated")
			return
		}
		seen[e.ID] = true
	}
	successful, failed := []map[string]any{}, []map[string]any{}
	f.mu.Lock()
	for _, e := range in.Entries {
		if f.failEntries > 0 {
			f.failEntries--
			failed = append(failed, map[string]any{"Id": e.ID, "Code": "InternalError", "Message": "internal error", "SenderFault": false})
			continue
		}
		f.messages = append(f.messages, e.MessageBody)
		sum := md5.Sum([]byte(e.MessageBody)) // #nosec G401 -- the API's checksum of the body, not a security use
		successful = append(successful, map[string]any{"Id": e.ID, "MessageId": randomID(), "MD5OfMessageBody": hex.EncodeToString(sum[:])})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(map[string]any{"Successful": successful, "Failed": failed})
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
