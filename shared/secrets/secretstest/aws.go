package secretstest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"
)

// AWS is a fake AWS Secrets Manager endpoint for one account.
type AWS struct {
	*httptest.Server
	store
	// AccessKeyID, SecretAccessKey and SessionToken are the only
	// credentials it accepts; Region is its region.
	AccessKeyID, SecretAccessKey, SessionToken, Region string
	// Now is the clock requests are checked against (5 minutes skew).
	Now func() time.Time
}

// NewAWS starts a fake Secrets Manager in region us-east-1 with fixed
// test credentials.
func NewAWS() *AWS {
	f := &AWS{store: newStore(), AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		SessionToken: "session-token-example", Region: "us-east-1", Now: time.Now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Env is the environment of a function reading secret id from f, as
// Lambda and the template give it.
func (f *AWS) Env(id string) []string {
	return []string{"WXN_SECRETS_SOURCE=aws-secretsmanager", "WXN_SECRETS_ID=" + id, "WXN_SECRETS_ENDPOINT=" + f.URL,
		"AWS_ACCESS_KEY_ID=" + f.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + f.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + f.SessionToken, "AWS_REGION=" + f.Region}
}

func (f *AWS) fail(w http.ResponseWriter, status int, typ, msgKey, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, msgKey: msg})
}

func (f *AWS) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/" {
		f.fail(w, http.StatusBadRequest, "UnknownOperationException", "message", "")
		return
	}
	if err := f.verify(r, body); err != nil {
		f.fail(w, http.StatusBadRequest, "InvalidSignatureException", "message", err.Error())
		return
	}
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		f.fail(w, http.StatusBadRequest, "UnknownOperationException", "message", "")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		f.fail(w, http.StatusBadRequest, "SerializationException", "message", "content type "+ct)
		return
	}
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionStage string `json:"VersionStage"`
		VersionID    string `json:"VersionId"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.SecretID == "" {
		f.fail(w, http.StatusBadRequest, "ValidationException", "message", "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
		return
	}
	value, found, denied := f.lookup(in.SecretID)
	switch {
	case denied:
		f.fail(w, http.StatusBadRequest, "AccessDeniedException", "Message",
			"User: arn:aws:sts::123456789012:assumed-role/wxnotify-LoginFunctionRole/login is not authorized to perform: secretsmanager:GetSecretValue on resource: "+in.SecretID+" because no identity-based policy allows the secretsmanager:GetSecretValue action")
		return
	case !found || (in.VersionStage != "" && in.VersionStage != "AWSCURRENT"):
		f.fail(w, http.StatusBadRequest, "ResourceNotFoundException", "message", "Secrets Manager can't find the specified secret.")
		return
	}
	name := in.SecretID
	if strings.HasPrefix(name, "arn:") {
		name = name[strings.LastIndexByte(name, ':')+1:]
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN":           "arn:aws:secretsmanager:" + f.Region + ":123456789012:secret:" + name + "-AbCdEf",
		"Name":          name,
		"VersionId":     "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
		"SecretString":  value,
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   1.523477145713e9,
	})
}

// verify checks a Signature Version 4 header signature of r.
func (f *AWS) verify(r *http.Request, body []byte) error {
	return VerifySigV4(r, body, SigV4Key{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey,
		SessionToken: f.SessionToken, Region: f.Region, Service: "secretsmanager"}, f.Now())
}

// SigV4Key is what a fake AWS service checks signatures with.
type SigV4Key struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Region, Service                            string
}

// VerifySigV4 checks the Signature Version 4 header signature of a JSON
// protocol call r with body, for any service: the credential scope, the
// session token, the date (5 minutes of skew from now), the signed headers
// (host, x-amz-date, x-amz-target, content-type, x-amz-security-token,
// sorted) and the signature, computed here independently of the AWS SDK.
func VerifySigV4(r *http.Request, body []byte, k SigV4Key, now time.Time) error {
	p, ok := authParams(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256")
	if !ok {
		return fmt.Errorf("no AWS4-HMAC-SHA256 authorization")
	}
	cred := strings.Split(p["Credential"], "/")
	if len(cred) != 5 || cred[0] != k.AccessKeyID || cred[2] != k.Region || cred[3] != k.Service || cred[4] != "aws4_request" {
		return fmt.Errorf("credential %q is not %s/<date>/%s/%s/aws4_request", p["Credential"], k.AccessKeyID, k.Region, k.Service)
	}
	if r.Header.Get("X-Amz-Security-Token") != k.SessionToken {
		return fmt.Errorf("the security token included in the request is invalid")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || t.Format("20060102") != cred[1] {
		return fmt.Errorf("X-Amz-Date %q does not match the credential date %s", amzDate, cred[1])
	}
	if d := now.Sub(t); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature expired: %s is now earlier or later than 5 minutes", amzDate)
	}
	signed := strings.Split(p["SignedHeaders"], ";")
	for _, need := range []string{"host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"} {
		if !slices.Contains(signed, need) {
			return fmt.Errorf("header %s is not signed", need)
		}
	}
	if !slices.IsSorted(signed) {
		return fmt.Errorf("signed headers %q are not sorted", p["SignedHeaders"])
	}
	want := SigV4(k.SecretAccessKey, cred[1], k.Region, k.Service, amzDate,
		CanonicalRequest(r, signed, body))
	if p["Signature"] != want {
		return fmt.Errorf("the request signature we calculated does not match the signature you provided")
	}
	return nil
}

// CanonicalRequest is Signature Version 4's canonical form of r (path
// and query as sent) for the given signed headers.
func CanonicalRequest(r *http.Request, signed []string, body []byte) string {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return r.Method + "\n" + path + "\n" + r.URL.RawQuery + "\n" + canonicalHeaders(r, signed, false) + "\n" +
		strings.Join(signed, ";") + "\n" + sha256Hex(body)
}

// SigV4 is the Signature Version 4 signature of a canonical request.
func SigV4(secretKey, date, region, service, amzDate, canonical string) string {
	scope := date + "/" + region + "/" + service + "/aws4_request"
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	k := hmacSHA256([]byte("AWS4"+secretKey), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}
