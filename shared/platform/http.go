package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// httpRequest is a platform's HTTP event, decoded into the parts an
// *http.Request is made of.
type httpRequest struct {
	method    string
	rawPath   string // as sent, percent-encoded
	rawQuery  string
	header    http.Header
	body      []byte
	proto     string // "HTTP/1.1"; empty means HTTP/1.1
	sourceIP  string
	requestID string // the platform's request id, sent on as X-Request-Id
}

// newRequest builds the server-side request a handler would get from
// net/http for r: Host moved out of the header, RequestURI and RemoteAddr
// set, the body readable once.
func (hr httpRequest) newRequest(ctx context.Context) (*http.Request, error) {
	if hr.method == "" {
		return nil, errors.New("runtime: the HTTP event has no method")
	}
	rawPath := hr.rawPath
	if rawPath == "" {
		rawPath = "/"
	}
	if !strings.HasPrefix(rawPath, "/") {
		rawPath = "/" + rawPath
	}
	u := &url.URL{Path: rawPath, RawQuery: hr.rawQuery}
	if p, err := url.PathUnescape(rawPath); err == nil && p != rawPath {
		u.Path, u.RawPath = p, rawPath
	}
	r, err := http.NewRequestWithContext(ctx, hr.method, "/", bytes.NewReader(hr.body))
	if err != nil {
		return nil, err
	}
	r.URL = u
	r.RequestURI = u.RequestURI()
	r.Header = hr.header
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Host = r.Header.Get("Host")
	r.Header.Del("Host")
	if hr.requestID != "" {
		r.Header.Set("X-Request-Id", hr.requestID)
	}
	r.ContentLength = int64(len(hr.body))
	if len(hr.body) == 0 {
		r.Body = http.NoBody
	}
	if hr.proto != "" {
		if major, minor, ok := http.ParseHTTPVersion(hr.proto); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = hr.proto, major, minor
		}
	}
	if hr.sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(hr.sourceIP, "0")
	}
	return r, nil
}

// escapePath percent-encodes what must not appear raw in a path (SCF
// passes the path decoded), keeping an already encoded path as it is.
func escapePath(p string) string {
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "?#") {
		if u, err := url.Parse(p); err == nil {
			return u.EscapedPath()
		}
	}
	return (&url.URL{Path: p}).EscapedPath()
}

// decodeBody returns the event's body bytes.
// requestBody is the body of an HTTP event: base64-decoded, or else the
// envelope's "body" member verbatim (see verbatim), falling back to the
// decoded body.
func requestBody(payload []byte, body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		if b, ok := verbatim(payload, "body"); ok {
			return b, nil
		}
	}
	return decodeBody(body, isBase64)
}

func decodeBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		return []byte(body), nil
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, errors.New("runtime: the event body is not valid base64")
	}
	return b, nil
}

// stripStage removes a named stage's prefix from a path: API gateways put
// "/{stage}" in front of the route when the stage is not the default one.
func stripStage(rawPath, stage string) string {
	if stage == "" || stage == "$default" || strings.ContainsAny(stage, "/?#") {
		return rawPath
	}
	prefix := "/" + stage
	switch {
	case rawPath == prefix:
		return "/"
	case strings.HasPrefix(rawPath, prefix+"/"):
		return rawPath[len(prefix):]
	}
	return rawPath
}

// serve runs h on r and returns the response as net/http would have sent it.
func serve(h http.Handler, r *http.Request) *recorder {
	rec := &recorder{header: http.Header{}, head: r.Method == http.MethodHead}
	h.ServeHTTP(rec, r)
	rec.finish()
	return rec
}

// recorder is the http.ResponseWriter of one platform invocation. It keeps
// net/http's semantics that handlers rely on: the header is fixed by the
// first WriteHeader or Write, informational statuses are not the answer,
// 204 and 304 take no body, an unset Content-Type is sniffed.
type recorder struct {
	header http.Header // what the handler edits
	sent   http.Header // the header as of WriteHeader
	status int
	body   bytes.Buffer
	head   bool
}

var _ http.Flusher = (*recorder)(nil)

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.sent != nil || code < 100 || code > 999 {
		return
	}
	if code < 200 {
		return // 1xx: not the final answer
	}
	r.status = code
	r.sent = r.header.Clone()
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.sent == nil {
		r.WriteHeader(http.StatusOK)
	}
	if r.status == http.StatusNoContent || r.status == http.StatusNotModified {
		return 0, http.ErrBodyNotAllowed
	}
	if r.head {
		return len(b), nil
	}
	return r.body.Write(b)
}

// Flush is a no-op: the platforms answer with the whole body at once.
func (r *recorder) Flush() {}

func (r *recorder) finish() {
	if r.sent == nil {
		r.WriteHeader(http.StatusOK)
	}
	if _, ok := r.sent["Content-Type"]; !ok && r.body.Len() > 0 {
		r.sent.Set("Content-Type", http.DetectContentType(r.body.Bytes()))
	}
}

// encodedBody returns the body as the platforms carry it: as is when it is
// text, base64 otherwise.
func (r *recorder) encodedBody() (body string, isBase64 bool) {
	b := r.body.Bytes()
	if len(b) == 0 {
		return "", false
	}
	if isText(r.sent.Get("Content-Type")) && utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// joinedHeader flattens the sent header into one value per name, joining
// repeated fields with commas as RFC 9110 allows; Set-Cookie, which cannot
// be joined, is returned apart.
func (r *recorder) joinedHeader() (header map[string]string, cookies []string) {
	header = make(map[string]string, len(r.sent))
	for k, vs := range r.sent {
		if len(vs) == 0 {
			continue
		}
		if k == "Set-Cookie" {
			cookies = append(cookies, vs...)
			continue
		}
		header[k] = strings.Join(vs, ",")
	}
	return header, cookies
}

// isText reports whether a body of this content type may travel as a JSON
// string.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript",
		"application/x-www-form-urlencoded", "application/x-ndjson":
		return true
	}
	return false
}
