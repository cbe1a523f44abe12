package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxAnswer bounds the answers read from wxnotify.
const maxAnswer = 8 << 20

// apiClient calls wxnotify's HTTP API (docs/api.md) with an API key.
type apiClient struct {
	base string // scheme://host[/prefix], no trailing slash
	key  string
	// keyFrom says where key came from: "--key", "$WXN_API_KEY" or the
	// file of wxnotify dev.
	keyFrom string
	// app is the app the /v1/ requests are for (--app or $WXN_APP):
	// they go to /v1/apps/<app>/...; "" keeps the short routes of the
	// default app. appFrom says where it came from.
	app, appFrom string
	http         *http.Client
}

// route is the path of the request for path: a /v1/ path of the API moves
// under /v1/apps/<app>/ when the client is for an app; anything else (the
// sandbox's routes) is left alone.
func (c *apiClient) route(path string) string {
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok && c.app != "" {
		return "/v1/apps/" + url.PathEscape(c.app) + "/" + rest
	}
	return path
}

// apiError is an error answer of the API: its status and error body.
type apiError struct {
	Status        int
	Code          string
	Message       string
	Field         string
	WeChatErrcode int
	RequestID     string
	// KeyFrom is where the rejected API key came from, for a 401 when it was
	// not --key or $WXN_API_KEY.
	KeyFrom string
	// App and AppFrom are the app the request was for and where it came
	// from ("" for the default app), for app_not_found and app_forbidden.
	App, AppFrom string
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	if e.WeChatErrcode != 0 {
		fmt.Fprintf(&b, " (WeChat errcode %d)", e.WeChatErrcode)
	}
	if e.Status == http.StatusUnauthorized {
		if e.KeyFrom != "" {
			b.WriteString(" (the API key came from " + e.KeyFrom + "; pass --key or set WXN_API_KEY)")
		} else {
			b.WriteString(" (check --key or WXN_API_KEY)")
		}
	}
	b.WriteString(e.appHint())
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// appHint explains the answers about apps: an app the server does not
// have, an API key or session of another app.
func (e *apiError) appHint() string {
	switch {
	case e.Code == "app_not_found" && e.App != "":
		return fmt.Sprintf(" (app %q from %s: the server has no such app; check --app or WXN_APP)", e.App, e.AppFrom)
	case e.Code == "app_not_found":
		return " (check --app or WXN_APP)"
	case e.Code == "app_forbidden" && e.App != "":
		return fmt.Sprintf(" (the API key does not act for app %q from %s: use a key of WXN_API_KEYS or of that app's own keys)", e.App, e.AppFrom)
	case e.Code == "app_forbidden":
		return " (the API key does not act for the default app: pass --app with the app it is for)"
	}
	return ""
}

// do sends method path with body encoded as JSON (none when nil) and
// returns the answer's body. An answer other than 2xx is an *apiError, and
// its body is returned too; a request that got no answer returns no body.
func (c *apiClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	path = c.route(path)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", "wxnotify-cli")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach wxnotify at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(raw) > maxAnswer {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxAnswer)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := answerError(resp.StatusCode, raw)
		if ae.Status == http.StatusUnauthorized && c.keyFrom != "--key" && c.keyFrom != "$WXN_API_KEY" {
			ae.KeyFrom = c.keyFrom
		}
		ae.App, ae.AppFrom = c.app, c.appFrom
		return raw, ae
	}
	return raw, nil
}

// answerError reads the error body of docs/api.md, or makes do with the status when
// something else (a proxy, a gateway) answered.
func answerError(status int, raw []byte) *apiError {
	var body struct {
		Error struct {
			Code          string `json:"code"`
			Message       string `json:"message"`
			Field         string `json:"field"`
			WeChatErrcode int    `json:"wechatErrcode"`
			RequestID     string `json:"requestId"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e := body.Error
		return &apiError{Status: status, Code: e.Code, Message: e.Message, Field: e.Field,
			WeChatErrcode: e.WeChatErrcode, RequestID: e.RequestID}
	}
	msg := http.StatusText(status)
	if text := strings.TrimSpace(string(raw)); text != "" && utf8.ValidString(text) {
		if len(text) > 200 {
			text = strings.ToValidUTF8(text[:200], "") + "..."
		}
		msg = text
	}
	return &apiError{Status: status, Message: msg}
}

// call is do that decodes a 2xx answer into out; it returns the raw
// answer too.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	raw, err := c.do(ctx, method, path, body)
	if err != nil {
		return raw, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return raw, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return raw, nil
}
