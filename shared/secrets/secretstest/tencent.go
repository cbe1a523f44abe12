package secretstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Tencent is a fake Tencent Cloud SSM endpoint for one account.
type Tencent struct {
	*httptest.Server
	store
	// SecretID, SecretKey and Token are the only credentials it accepts;
	// Region is its region.
	SecretID, SecretKey, Token, Region string
	// Now is the clock requests are checked against (5 minutes skew).
	Now func() time.Time
}

// NewTencent starts a fake SSM in region ap-guangzhou with fixed test
// credentials.
func NewTencent() *Tencent {
	f := &Tencent{store: newStore(), SecretID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
		SecretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", Token: "scf-session-token-example", Region: "ap-guangzhou", Now: time.Now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Env is the environment of a function reading secret name from f, as
// SCF (with a role) and serverless.yml give it.
func (f *Tencent) Env(name string) []string {
	return []string{"WXN_SECRETS_SOURCE=tencent-ssm", "WXN_SECRETS_ID=" + name, "WXN_SECRETS_ENDPOINT=" + f.URL,
		"TENCENTCLOUD_SECRETID=" + f.SecretID, "TENCENTCLOUD_SECRETKEY=" + f.SecretKey,
		"TENCENTCLOUD_SESSIONTOKEN=" + f.Token, "TENCENTCLOUD_REGION=" + f.Region}
}

// answer writes API 3.0's envelope: always HTTP 200, {"Response": ...}.
func answer(w http.ResponseWriter, resp map[string]any) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	resp["RequestId"] = hex.EncodeToString(id[:])
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Response": resp})
}

func fail(w http.ResponseWriter, code, msg string) {
	answer(w, map[string]any{"Error": map[string]string{"Code": code, "Message": msg}})
}

func (f *Tencent) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		fail(w, "InvalidParameter", "POST with a JSON body")
		return
	}
	if code, err := f.verify(r, body); err != nil {
		fail(w, code, err.Error())
		return
	}
	switch {
	case r.Header.Get("X-TC-Action") != "GetSecretValue":
		fail(w, "InvalidAction", "the action "+r.Header.Get("X-TC-Action")+" is not found")
		return
	case r.Header.Get("X-TC-Version") != "2019-09-23":
		fail(w, "NoSuchVersion", "the version "+r.Header.Get("X-TC-Version")+" of ssm is not found")
		return
	case r.Header.Get("X-TC-Region") != f.Region:
		fail(w, "InvalidParameterValue.RegionError", "region "+r.Header.Get("X-TC-Region")+" is not supported")
		return
	}
	var in struct{ SecretName, VersionId string }
	if err := json.Unmarshal(body, &in); err != nil || in.SecretName == "" || in.VersionId == "" {
		fail(w, "MissingParameter", "the parameters SecretName and VersionId are required")
		return
	}
	value, found, denied := f.lookup(in.SecretName)
	switch {
	case denied:
		fail(w, "UnauthorizedOperation", "you are not authorized to perform operation (ssm:GetSecretValue) on resource (qcs::ssm:"+f.Region+":uin/100000000001:secret/"+in.SecretName+")")
		return
	case !found:
		fail(w, "ResourceNotFound", "the secret "+in.SecretName+" does not exist")
		return
	case in.VersionId != "SSM_Current":
		fail(w, "ResourceNotFound", "the version "+in.VersionId+" of secret "+in.SecretName+" does not exist")
		return
	}
	answer(w, map[string]any{"SecretName": in.SecretName, "VersionId": in.VersionId, "SecretString": value, "SecretBinary": ""})
}

// verify checks a TC3-HMAC-SHA256 signature of r, returning the error
// code SSM would answer.
func (f *Tencent) verify(r *http.Request, body []byte) (string, error) {
	return VerifyTC3(r, body, TC3Key{SecretID: f.SecretID, SecretKey: f.SecretKey, Token: f.Token, Service: "ssm"}, f.Now())
}

// TC3Key is what a fake Tencent Cloud service checks signatures with.
type TC3Key struct {
	SecretID, SecretKey, Token, Service string
}

// VerifyTC3 checks the TC3-HMAC-SHA256 signature of an API 3.0 call r
// with body, for any service, computed here independently of the signer
// (5 minutes of skew from now). It returns the error code the API answers
// (AuthFailure.SignatureFailure...) with the error.
func VerifyTC3(r *http.Request, body []byte, k TC3Key, now time.Time) (string, error) {
	p, ok := authParams(r.Header.Get("Authorization"), "TC3-HMAC-SHA256")
	if !ok {
		return "AuthFailure.InvalidAuthorization", fmt.Errorf("authorization is not TC3-HMAC-SHA256")
	}
	cred := strings.Split(p["Credential"], "/")
	if len(cred) != 4 || cred[2] != k.Service || cred[3] != "tc3_request" {
		return "AuthFailure.InvalidAuthorization", fmt.Errorf("credential %q is not <id>/<date>/%s/tc3_request", p["Credential"], k.Service)
	}
	if cred[0] != k.SecretID {
		return "AuthFailure.SecretIdNotFound", fmt.Errorf("the SecretId is not found")
	}
	if r.Header.Get("X-TC-Token") != k.Token {
		return "AuthFailure.TokenFailure", fmt.Errorf("token verification failed")
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return "MissingParameter", fmt.Errorf("X-TC-Timestamp is missing")
	}
	t := time.Unix(ts, 0).UTC()
	if d := now.Sub(t); d > 5*time.Minute || d < -5*time.Minute {
		return "AuthFailure.SignatureExpire", fmt.Errorf("the signature expired")
	}
	if t.Format("2006-01-02") != cred[1] {
		return "AuthFailure.InvalidAuthorization", fmt.Errorf("the credential date %s is not the timestamp's UTC date", cred[1])
	}
	signed := strings.Split(p["SignedHeaders"], ";")
	canonical := "POST\n" + r.URL.EscapedPath() + "\n" + r.URL.RawQuery + "\n" + canonicalHeaders(r, signed, true) + "\n" +
		p["SignedHeaders"] + "\n" + sha256Hex(body)
	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + cred[1] + "/" + k.Service + "/tc3_request\n" + sha256Hex([]byte(canonical))
	key := hmacSHA256([]byte("TC3"+k.SecretKey), cred[1])
	key = hmacSHA256(key, k.Service)
	key = hmacSHA256(key, "tc3_request")
	if hex.EncodeToString(hmacSHA256(key, stringToSign)) != p["Signature"] {
		return "AuthFailure.SignatureFailure", fmt.Errorf("the provided credentials could not be validated, please check your signature is correct")
	}
	if !strings.Contains(p["SignedHeaders"], "content-type") || !strings.Contains(p["SignedHeaders"], "host") {
		return "AuthFailure.SignatureFailure", fmt.Errorf("content-type and host must be signed")
	}
	return "", nil
}
