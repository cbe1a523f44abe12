package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/webhook"
)

type seen struct {
	id        string
	verifyErr error
}

// TestRedeliveryKeepsIDAndVerifies: a receiver on loopback drops the
// connection, then times out, then answers 500, then 200. Every attempt
// carries the same webhook-id and a signature that verifies.
func TestRedeliveryKeepsIDAndVerifies(t *testing.T) {
	secret := webhook.NewSecret()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Get("webhook-id"), webhook.Verify(secret, r.Header, body, time.Now(), 0)})
		n := len(got)
		mu.Unlock()
		switch n {
		case 1: // fails: the connection is dropped without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
		case 2: // times out
			<-r.Context().Done()
		case 3:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	client := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true, Timeout: 300 * time.Millisecond})
	ev := webhook.Event{Type: webhook.EventNotificationFailed, ID: "ev-42", Timestamp: time.Now(),
		Data: webhook.NotificationData{NotificationID: "n42", App: "shop", Status: "failed", Reason: "wechat_rejected"}}
	msg, err := webhook.NewMessage(ev, "sub-7")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := []int{0, 0, 500, 200}
	for i, want := range wantStatus {
		st, err := webhook.Deliver(context.Background(), client, srv.URL+"/crm/hook", []string{secret}, msg)
		if st != want {
			t.Fatalf("attempt %d: status %d (%v), want %d", i+1, st, err, want)
		}
		if want == 200 {
			if err != nil {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		} else if err == nil || !webhook.Retryable(err) || webhook.Disable(err) {
			t.Fatalf("attempt %d: %v is not a retryable failure", i+1, err)
		}
	}
	if len(got) != len(wantStatus) {
		t.Fatalf("receiver saw %d requests, want %d", len(got), len(wantStatus))
	}
	for i, s := range got {
		if s.id != msg.ID || s.id != webhook.DeliveryID("ev-42", "sub-7") {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, s.id, msg.ID)
		}
		if s.verifyErr != nil {
			t.Errorf("attempt %d: signature does not verify: %v", i+1, s.verifyErr)
		}
	}
}

func TestDeliverClassifiesAnswers(t *testing.T) {
	secret := webhook.NewSecret()
	for _, c := range []struct {
		status             int
		ok, retry, disable bool
	}{
		{200, true, false, false},
		{204, true, false, false},
		{301, false, true, false},
		{400, false, true, false},
		{401, false, true, false},
		{404, false, true, false},
		{408, false, true, false},
		{410, false, false, true},
		{429, false, true, false},
		{503, false, true, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(c.status)
		}))
		msg, _ := webhook.NewMessage(webhook.Event{Type: webhook.EventConsentChanged, ID: "e", Timestamp: time.Now()}, "s")
		st, err := webhook.Deliver(context.Background(), webhook.NewClient(webhook.ClientOptions{AllowPrivate: true}), srv.URL, []string{secret}, msg)
		srv.Close()
		if st != c.status || (err == nil) != c.ok || webhook.Retryable(err) != c.retry || webhook.Disable(err) != c.disable {
			t.Errorf("%d: status %d, err %v, retry %v, disable %v", c.status, st, err, webhook.Retryable(err), webhook.Disable(err))
		}
		var se *webhook.StatusError
		if !c.ok && !c.disable && (!errors.As(err, &se) || se.Status != c.status) {
			t.Errorf("%d: error %v is not a StatusError", c.status, err)
		}
	}
}

func TestDeliverRotationAndBadInput(t *testing.T) {
	oldS, newS := webhook.NewSecret(), webhook.NewSecret()
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr = webhook.Verify(newS, r.Header, body, time.Now(), 0)
	}))
	defer srv.Close()
	c := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true})
	msg, _ := webhook.NewMessage(webhook.Event{Type: webhook.EventBatchFinished, ID: "b", Timestamp: time.Now()}, "s")
	if _, err := webhook.Deliver(context.Background(), c, srv.URL, []string{oldS, newS}, msg); err != nil || verr != nil {
		t.Fatalf("rotation: %v, receiver: %v", err, verr)
	}
	if _, err := webhook.Deliver(context.Background(), c, srv.URL, nil, msg); !errors.Is(err, webhook.ErrInvalidSecret) || webhook.Retryable(err) {
		t.Fatalf("no secret: %v", err)
	}
	if _, err := webhook.Deliver(context.Background(), c, srv.URL, []string{"whsec_nope"}, msg); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("bad secret: %v", err)
	}
	if _, err := webhook.Deliver(context.Background(), c, srv.URL, []string{newS}, webhook.Message{Body: []byte("{}")}); err == nil {
		t.Fatal("message without id delivered")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := webhook.Deliver(ctx, c, srv.URL, []string{newS}, msg); !errors.Is(err, context.Canceled) || !webhook.Retryable(err) {
		t.Fatalf("cancelled context: %v", err)
	}
}
