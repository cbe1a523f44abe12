package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
	"github.com/wxnotify/wxnotify/shared/webhook/webhooktest"
)

const testBus = "arn:aws:events:eu-west-1:123456789012:event-bus/crm-events"

// fakeEventBridge is a PutEvents endpoint that checks every request's
// signature and body and answers with answer(n).
type fakeEventBridge struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	fails  []string
	tokens []string
}

func newFakeEventBridge(t *testing.T, secretKey string, answer func(n int, w http.ResponseWriter)) *fakeEventBridge {
	t.Helper()
	f := &fakeEventBridge{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		problem := webhooktest.VerifySigV4(r, body, "AKIDTEST", secretKey, "eu-west-1")
		if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" ||
			r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			problem += fmt.Sprintf(" request %s target %q type %q", r.Method, r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.fails = append(f.fails, problem)
		f.tokens = append(f.tokens, r.Header.Get("X-Amz-Security-Token"))
		n := len(f.bodies)
		f.mu.Unlock()
		if problem != "" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"__type":"InvalidSignatureException","message":"`+strings.ReplaceAll(problem, `"`, `'`)+`"}`)
			return
		}
		answer(n, w)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func accepted(_ int, w http.ResponseWriter) {
	_, _ = io.WriteString(w, `{"Entries":[{"EventId":"11710aed-b79e-4468-a20b-bb3c0c3b4860"}],"FailedEntryCount":0}`)
}

func testMessage(t *testing.T) webhook.Message {
	t.Helper()
	m, err := webhook.NewMessage(webhook.Event{Type: webhook.EventBatchFinished, ID: "bat_1:done", Timestamp: time.Unix(1_800_000_000, 0),
		Data: webhook.BatchData{BatchID: "bat_1", App: "shop", Status: "done", Total: 2, Sent: 2}}, "bus")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPutEventSigned(t *testing.T) {
	fake := newFakeEventBridge(t, "secret/KEY+test", accepted)
	bus, err := webhook.ParseEventBus(testBus)
	if err != nil {
		t.Fatal(err)
	}
	if bus.Region != "eu-west-1" || bus.Endpoint() != "https://events.eu-west-1.amazonaws.com/" {
		t.Fatalf("bus %+v endpoint %s", bus, bus.Endpoint())
	}
	client := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	creds := webhook.AWSCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret/KEY+test", SessionToken: "token-1"}
	msg := testMessage(t)
	status, err := webhook.PutEvent(context.Background(), client, bus, fake.srv.URL, creds, msg, time.Now())
	if err != nil || status != 200 {
		t.Fatalf("PutEvent: %d, %v", status, err)
	}
	if fake.fails[0] != "" || fake.tokens[0] != "token-1" {
		t.Fatalf("request: %q, token %q", fake.fails[0], fake.tokens[0])
	}
	var in struct {
		Entries []map[string]string
	}
	dec := json.NewDecoder(strings.NewReader(string(fake.bodies[0])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || len(in.Entries) != 1 {
		t.Fatalf("body %s: %v", fake.bodies[0], err)
	}
	e := in.Entries[0]
	wantDetail := `{"webhookId":"` + msg.ID + `",` + string(msg.Body[1:])
	if e["Source"] != "wxnotify" || e["DetailType"] != "batch.finished" || e["EventBusName"] != testBus || e["Detail"] != wantDetail || len(e) != 4 {
		t.Fatalf("entry %v, want detail %s", e, wantDetail)
	}
	var detail map[string]any
	if err := json.Unmarshal([]byte(e["Detail"]), &detail); err != nil || detail["webhookId"] != msg.ID || detail["type"] != "batch.finished" {
		t.Fatalf("detail %v: %v", detail, err)
	}

	// Signed with another key: the fake refuses it, and so would AWS.
	creds.SecretAccessKey = "another"
	status, err = webhook.PutEvent(context.Background(), client, bus, fake.srv.URL, creds, msg, time.Now())
	var be *webhook.EventBusError
	if status != 403 || !errors.As(err, &be) || be.Code != "InvalidSignatureException" || !webhook.Retryable(err) {
		t.Fatalf("wrong key: %d, %v", status, err)
	}
	if !strings.HasPrefix(fake.fails[1], "Signature ") {
		t.Fatalf("wrong key: the fake saw %q, want a signature mismatch", fake.fails[1])
	}
}

// Every failure is retried like an HTTP delivery's, but an invalid ARN.
func TestPutEventFailures(t *testing.T) {
	fake := newFakeEventBridge(t, "s", func(n int, w http.ResponseWriter) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"not allowed"}`)
		case 2:
			_, _ = io.WriteString(w, `{"Entries":[{"ErrorCode":"ThrottlingException","ErrorMessage":"slow down"}],"FailedEntryCount":1}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	bus, _ := webhook.ParseEventBus(testBus)
	client := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	creds := webhook.AWSCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "s"}
	for i, want := range []struct {
		status int
		code   string
	}{{400, "AccessDeniedException"}, {200, "ThrottlingException"}, {500, "Internal Server Error"}} {
		status, err := webhook.PutEvent(context.Background(), client, bus, fake.srv.URL, creds, testMessage(t), time.Now())
		var be *webhook.EventBusError
		if status != want.status || !errors.As(err, &be) || be.Code != want.code || !webhook.Retryable(err) || webhook.Disable(err) {
			t.Errorf("attempt %d: %d, %v; want %d %s, retryable", i+1, status, err, want.status, want.code)
		}
	}
	if fake.tokens[0] != "" {
		t.Errorf("security token %q sent without one", fake.tokens[0])
	}
	for _, bad := range []string{"", "arn:aws:sns:eu-west-1:123456789012:topic", "arn:aws:events:eu-west-1:123456789012:event-bus/*", "arn:aws:events:eu-west-1:1234:event-bus/x"} {
		if _, err := webhook.ParseEventBus(bad); !errors.Is(err, webhook.ErrInvalidURL) || webhook.Retryable(err) {
			t.Errorf("ParseEventBus(%q): %v, want a permanent ErrInvalidURL", bad, err)
		}
	}
	if b, _ := webhook.ParseEventBus("arn:aws-cn:events:cn-north-1:123456789012:event-bus/default"); b.Endpoint() != "https://events.cn-north-1.amazonaws.com.cn/" {
		t.Errorf("China endpoint %s", b.Endpoint())
	}
}

func TestEnvAWSCredentials(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_SESSION_TOKEN": "tok"}
	c, err := webhook.EnvAWSCredentials(func(k string) string { return env[k] })
	if err != nil || c != (webhook.AWSCredentials{AccessKeyID: "AKID", SecretAccessKey: "sk", SessionToken: "tok"}) {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := webhook.EnvAWSCredentials(func(string) string { return "" }); err == nil {
		t.Fatal("no credentials accepted")
	}
}
