package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Delivery outcomes besides success.
var (
	// ErrEndpointGone is a 410 Gone answer: the receiver asks to stop;
	// the subscription is to be disabled and the message not retried.
	ErrEndpointGone = errors.New("webhook: endpoint answered 410 Gone")
	// ErrInvalidURL is an endpoint URL that is not absolute http(s).
	ErrInvalidURL = errors.New("webhook: invalid endpoint URL")
)

// StatusError is a non-2xx answer other than 410; it is retried.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string {
	if e.Status >= 300 && e.Status < 400 {
		return fmt.Sprintf("webhook: endpoint answered %d (redirects are not followed)", e.Status)
	}
	return fmt.Sprintf("webhook: endpoint answered %d", e.Status)
}

// maxResponseBody is how much of an answer is read (then discarded) so
// the connection can be reused; the rest is not read.
const maxResponseBody = 64 << 10

// UserAgent is sent with every delivery.
const UserAgent = "wxnotify-webhooks/1"

// Deliver makes one signed attempt to POST msg to endpoint and returns the
// HTTP status (0 if none came) and nil if the endpoint answered 2xx. The
// webhook-id is msg.ID on every attempt; the timestamp and signatures are
// fresh. secrets lists the subscription's signing secrets, two during a
// rotation. Use a client from NewClient.
//
// An error is classified by Retryable and Disable: 410 Gone disables the
// endpoint; a forbidden address, an invalid URL or secret fail the message
// at once; every other failure (a non-2xx answer, 4xx included, a
// timeout, a refused connection) is retried on the schedule. Errors name
// the endpoint by scheme and host only, never its path, query or
// credentials.
func Deliver(ctx context.Context, client *http.Client, endpoint string, secrets []string, msg Message) (int, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return 0, err
	}
	if msg.ID == "" {
		return 0, errors.New("webhook: message has no id")
	}
	h, err := Headers(msg.ID, time.Now(), msg.Body, secrets...)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(msg.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook: request to %s: %w", redact(u), err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook: post to %s: %w", redact(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusGone:
		return resp.StatusCode, ErrEndpointGone
	default:
		return resp.StatusCode, &StatusError{Status: resp.StatusCode}
	}
}

// Retryable reports whether a failed attempt is to be tried again.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	return !errors.Is(err, ErrEndpointGone) && !errors.Is(err, ErrForbiddenAddress) &&
		!errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrInvalidSecret)
}

// Disable reports whether the subscription is to be disabled.
func Disable(err error) bool {
	return errors.Is(err, ErrEndpointGone)
}

// parseEndpoint accepts only absolute http and https URLs with a host.
func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: does not parse", ErrInvalidURL)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("%w: scheme %q, want http or https", ErrInvalidURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	return u, nil
}

// redact names an endpoint by scheme and host only.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// unwrapURLError drops net/http's *url.Error, whose text repeats the
// URL (query and user name included).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}
