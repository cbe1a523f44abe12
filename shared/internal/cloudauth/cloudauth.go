// Package cloudauth holds what the calls to the clouds' APIs share: the
// credentials the platforms put in a function's environment, and the
// request signatures - AWS Signature Version 4 (by the AWS SDK's signer)
// and Tencent Cloud's TC3-HMAC-SHA256 (signature v3). The callers (the
// secret stores, the webhooks' event bus, the batch shard queues) make
// plain net/http calls rather than carry the SDKs' service clients.
//
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
// https://cloud.tencent.com/document/api/213/30654 (signature v3)
package cloudauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrNoAWSCredentials is returned when the environment has no AWS
// credentials.
var ErrNoAWSCredentials = errors.New("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset (Lambda sets them from the function's role)")

// AWSFromEnv reads the credentials Lambda gives a function (its role's
// temporary ones): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
func AWSFromEnv(getenv func(string) string) (aws.Credentials, error) {
	c := aws.Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN")}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, ErrNoAWSCredentials
	}
	return c, nil
}

// AWSRegion is the function's region: AWS_REGION, else AWS_DEFAULT_REGION.
func AWSRegion(getenv func(string) string) string {
	if r := getenv("AWS_REGION"); r != "" {
		return r
	}
	return getenv("AWS_DEFAULT_REGION")
}

// AWSDomain is the DNS suffix of AWS endpoints in a partition or region.
func AWSDomain(partition, region string) string {
	if partition == "aws-cn" || len(region) > 3 && region[:3] == "cn-" {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// SignAWS signs req, whose body is body, with Signature Version 4 for
// service in region at now.
func SignAWS(ctx context.Context, req *http.Request, body []byte, cred aws.Credentials, service, region string, now time.Time) error {
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, cred, req, hex.EncodeToString(sum[:]), service, region, now); err != nil {
		return fmt.Errorf("signing the %s request: %w", service, err)
	}
	return nil
}

// TencentCredentials are Tencent Cloud API credentials: on SCF, the
// function role's temporary ones.
type TencentCredentials struct {
	SecretID, SecretKey, Token string
}

// ErrNoTencentCredentials is returned when the environment has no Tencent
// Cloud credentials.
var ErrNoTencentCredentials = errors.New("no credentials: TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY are unset (SCF sets them when the function has a role)")

// TencentFromEnv reads the credentials SCF gives a function with a role:
// TENCENTCLOUD_SECRETID, TENCENTCLOUD_SECRETKEY and
// TENCENTCLOUD_SESSIONTOKEN.
func TencentFromEnv(getenv func(string) string) (TencentCredentials, error) {
	c := TencentCredentials{SecretID: getenv("TENCENTCLOUD_SECRETID"), SecretKey: getenv("TENCENTCLOUD_SECRETKEY"),
		Token: getenv("TENCENTCLOUD_SESSIONTOKEN")}
	if c.SecretID == "" || c.SecretKey == "" {
		return TencentCredentials{}, ErrNoTencentCredentials
	}
	return c, nil
}

// TC3ContentType is the Content-Type of API 3.0 calls, sent and signed
// exactly so.
const TC3ContentType = "application/json; charset=utf-8"

// TC3Call is one call of Tencent Cloud API 3.0.
type TC3Call struct {
	// Service is the product (ssm, scf), Action and Version its API's.
	Service, Action, Version string
	// Region is the region header (TENCENTCLOUD_REGION).
	Region string
	// Endpoint is the URL posted to (https://<service>.tencentcloudapi.com/).
	Endpoint string
}

// NewTC3Request returns the POST of the JSON body for call, signed with
// cred at now.
func NewTC3Request(ctx context.Context, call TC3Call, cred TencentCredentials, body []byte, now time.Time) (*http.Request, error) {
	u, err := url.Parse(call.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not an http(s) URL", call.Endpoint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, call.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", TC3ContentType)
	req.Header.Set("X-TC-Action", call.Action)
	req.Header.Set("X-TC-Version", call.Version)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-TC-Region", call.Region)
	if cred.Token != "" {
		req.Header.Set("X-TC-Token", cred.Token)
	}
	req.Header.Set("Authorization", TC3Authorization(cred, call.Service, u.Host, ts, body))
	return req, nil
}

// TC3Authorization is the TC3-HMAC-SHA256 Authorization header of a POST
// to host, path /, with the JSON body payload at the Unix time ts, signing
// the headers content-type (as TC3ContentType) and host.
func TC3Authorization(cred TencentCredentials, service, host string, ts int64, payload []byte) string {
	const signedHeaders = "content-type;host"
	canonical := "POST\n/\n\n" +
		"content-type:" + TC3ContentType + "\nhost:" + host + "\n\n" +
		signedHeaders + "\n" + sha256Hex(payload)
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	scope := date + "/" + service + "/tc3_request"
	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	return "TC3-HMAC-SHA256 Credential=" + cred.SecretID + "/" + scope +
		", SignedHeaders=" + signedHeaders + ", Signature=" + TC3Signature(cred.SecretKey, date, service, stringToSign)
}

// TC3Signature is the hex TC3-HMAC-SHA256 signature of stringToSign with
// the key derived from secretKey, the UTC date (2006-01-02) and service.
func TC3Signature(secretKey, date, service, stringToSign string) string {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
