package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/internal/jsonstr"
	"github.com/wxnotify/wxnotify/shared/notify"
)

// readBody reads the whole (size-limited) body: 413 past MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, notify.Errorf(notify.CodePayloadTooLarge, "the body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, notify.Errorf(notify.CodeBadRequest, "could not read the body")
	}
	return b, nil
}

// requestBody reads a JSON request body: the content-type check, then the
// size-limited read.
func requestBody(r *http.Request) ([]byte, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	return readBody(r)
}

// decodeJSON decodes a JSON object body strictly: one value, no unknown
// fields, a JSON content type if one is given.
func decodeJSON(r *http.Request, v any) error {
	body, err := requestBody(r)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, v)
}

// checkContentType refuses bodies declared as multipart: every body is JSON,
// whatever else a client declares (curl -d says form-urlencoded), and a
// body that is not JSON is refused by the decoder with a clearer message.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(mt, "multipart/") {
		return notify.Errorf(notify.CodeBadRequest, "the body must be JSON, not %s", mt)
	}
	return nil
}

func unmarshalStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return notify.Errorf(notify.CodeBadRequest, "the body is empty, a JSON object is expected")
	}
	if err := CheckJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return notify.Errorf(notify.CodeBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a bad_request naming the field.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var synErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return &notify.Error{Code: notify.CodeBadRequest, Field: field, Message: fmt.Sprintf("must be %s", jsonKind(typeErr.Type.Kind().String()))}
	case errors.As(err, &synErr):
		return notify.Errorf(notify.CodeBadRequest, "malformed JSON at byte %d", synErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &notify.Error{Code: notify.CodeBadRequest, Field: name, Message: "unknown field"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return notify.Errorf(notify.CodeBadRequest, "truncated JSON")
	}
	var e *notify.Error
	if errors.As(err, &e) {
		return e
	}
	return notify.Errorf(notify.CodeBadRequest, "malformed JSON body")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// Limits on the shape of JSON bodies: bodies are small, so anything deeper
// or with absurd numbers is an attack or a bug, refused before decoding.
const (
	maxJSONDepth     = 32
	maxJSONNumberLen = 64
)

// CheckJSON is the check every JSON body of the API gets before it is
// decoded, exported for the other edges that read the same JSON (queued
// lead events). It walks the tokens once: nesting depth, number length,
// duplicate object keys (which encoding/json would silently resolve to the
// last one, so two parsers could disagree on what was sent) and strings
// that are not valid UTF-8 (which it would silently replace with U+FFFD).
// Errors name the field by its path: data.thing1, recipients[3].userId,
// [1].data for the second element of a top-level array. Its errors are
// bad_request *notify.Error values.
func CheckJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool   // in an object: the next string token is a key
		path   string // where this object or array is
		key    string // in an object: the key of the member being read
		index  int    // in an array: the index of the next element
	}
	var stack []*frame
	// next is the path of the value about to be read, which it consumes:
	// an object expects a key again, an array moves to its next index.
	next := func(top *frame) string {
		switch {
		case top == nil:
			return ""
		case top.object:
			top.expect = true
			return joinField(top.path, top.key)
		}
		top.index++
		return fmt.Sprintf("%s[%d]", top.path, top.index-1)
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return jsonError(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if str, ok := tok.(string); ok && !validJSONString(body[start:dec.InputOffset()]) {
			if top != nil && top.object && top.expect {
				return &notify.Error{Code: notify.CodeBadRequest, Field: joinField(top.path, str), Message: "the key is not valid UTF-8" + utf8Hint}
			}
			return &notify.Error{Code: notify.CodeBadRequest, Field: next(top), Message: "must be valid UTF-8" + utf8Hint}
		}
		if top != nil && top.object && top.expect {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return &notify.Error{Code: notify.CodeBadRequest, Field: joinField(top.path, key), Message: "duplicate key in JSON object"}
				}
				top.keys[key] = true
				top.key, top.expect = key, false
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return notify.Errorf(notify.CodeBadRequest, "JSON nested deeper than %d levels", maxJSONDepth)
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, expect: t == '{', path: next(top)})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
				continue
			}
		case json.Number:
			if len(t) > maxJSONNumberLen {
				return notify.Errorf(notify.CodeBadRequest, "a JSON number is longer than %d characters", maxJSONNumberLen)
			}
		}
		next(top)
	}
}

const utf8Hint = " (no invalid bytes, no \\u escape of an unpaired surrogate)"

// joinField is the path of member key of the object at path (path itself
// for an empty key).
func joinField(path, key string) string {
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "." + key
}

// validJSONString reports whether the string literal that ends raw (what
// the decoder read for one string token: separators, then the literal)
// holds valid UTF-8 and no \u escape of an unpaired surrogate. The
// decoder has checked its syntax.
func validJSONString(raw []byte) bool {
	lit := raw[bytes.IndexByte(raw, '"')+1 : len(raw)-1]
	if !utf8.Valid(lit) {
		return false
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		if lit[i+1] != 'u' {
			i++
			continue
		}
		r := jsonstr.Hex4(lit[i+2 : i+6])
		i += 5
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			if i+6 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' {
				return false
			}
			if low := jsonstr.Hex4(lit[i+3 : i+7]); low < 0xdc00 || low > 0xdfff {
				return false
			}
			i += 6
		case utf16.IsSurrogate(r): // a low one alone
			return false
		}
	}
	return true
}
