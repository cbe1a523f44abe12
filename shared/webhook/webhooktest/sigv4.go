// Package webhooktest helps tests of webhook deliveries.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// VerifySigV4 recomputes the Signature Version 4 of r (its body given) for
// the service events in region with the secret key, independently of the
// SDK's signer, and says what does not match ("" when all does).
func VerifySigV4(r *http.Request, body []byte, accessKey, secretKey, region string) string {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "Authorization is not AWS4-HMAC-SHA256: " + auth
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if len(amzDate) != 16 {
		return "X-Amz-Date " + amzDate
	}
	scope := amzDate[:8] + "/" + region + "/events/aws4_request"
	if fields["Credential"] != accessKey+"/"+scope {
		return "Credential " + fields["Credential"] + ", want " + accessKey + "/" + scope
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, h := range []string{"content-type", "host", "x-amz-date", "x-amz-target"} {
		if !slices.Contains(signed, h) {
			return "SignedHeaders " + fields["SignedHeaders"] + " lacks " + h
		}
	}
	if !slices.IsSorted(signed) {
		return "SignedHeaders not sorted"
	}
	var canon strings.Builder
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			v = strings.Join(r.Header.Values(h), ",")
		}
		canon.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	payload := sha256.Sum256(body)
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	creq := strings.Join([]string{r.Method, uri, r.URL.RawQuery, canon.String(), fields["SignedHeaders"], hex.EncodeToString(payload[:])}, "\n")
	creqSum := sha256.Sum256([]byte(creq))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creqSum[:])
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secretKey), amzDate[:8])
	k = mac(k, region)
	k = mac(k, "events")
	k = mac(k, "aws4_request")
	if want := hex.EncodeToString(mac(k, sts)); !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "Signature " + fields["Signature"] + ", want " + want
	}
	return ""
}
