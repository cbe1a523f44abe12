// Package wire holds what the secret stores' clients share on the wire: the
// endpoint check and the bounded exchange of one signed request.
package wire

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxAnswer bounds an answer: a secret holds at most 64 KB on either cloud.
const MaxAnswer = 1 << 20

// Endpoint checks that raw is an http(s) URL and returns it ending in "/",
// with its host.
func Endpoint(raw string) (base, host string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("endpoint %q is not an http(s) URL", raw)
	}
	return strings.TrimRight(raw, "/") + "/", u.Host, nil
}

// Do sends req with client and returns the answer's status and body, at
// most MaxAnswer bytes; errors start with what (e.g. "aws secretsmanager
// GetSecretValue").
func Do(client *http.Client, req *http.Request, what string) (status int, body []byte, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: reading the answer: %w", what, err)
	}
	if len(body) > MaxAnswer {
		return 0, nil, fmt.Errorf("%s: answer larger than %d bytes", what, MaxAnswer)
	}
	return resp.StatusCode, body, nil
}
