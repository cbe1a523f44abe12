package upgrade

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
	"unicode/utf8"
)

// Blob is a byte string in a dump: a JSON string when it is valid UTF-8,
// else {"base64": "..."}, so that text stays reviewable and binary stays
// exact.
type Blob []byte

// MarshalJSON implements json.Marshaler.
func (b Blob) MarshalJSON() ([]byte, error) {
	if utf8.Valid(b) {
		return json.Marshal(string(b))
	}
	return json.Marshal(struct {
		Base64 string `json:"base64"`
	}{base64.StdEncoding.EncodeToString(b)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Blob) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = Blob(s)
		return nil
	}
	var v struct {
		Base64 *string `json:"base64"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	if v.Base64 == nil {
		return errors.New(`blob: neither a string nor {"base64": ...}`)
	}
	raw, err := base64.StdEncoding.DecodeString(*v.Base64)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	*b = raw
	return nil
}

// Header is the start of every dump file.
type Header struct {
	// Layout names the store layout the dump was written with ("v1").
	Layout string `json:"layout"`
	// Backend is bolt, redis or dynamodb.
	Backend string `json:"backend"`
	// DumpedAtMS is when the dump was read, in Unix milliseconds: loaders
	// shift absolute expiry times by the time elapsed since.
	DumpedAtMS int64 `json:"dumpedAtMs"`
}

// Shift returns how far a loader moves the dump's absolute times so that
// they lie as far ahead of now as they lay ahead of the dump.
func (h Header) Shift(now time.Time) int64 { return now.UnixMilli() - h.DumpedAtMS }

// writeJSON writes v indented to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readJSON decodes the JSON file at path into v, refusing unknown fields.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path) // #nosec G304 -- a fixture of testdata, named by the tests
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
