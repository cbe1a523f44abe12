package cloudauth

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTC3SignatureVector checks the signer against the worked example of
// Tencent Cloud's signature v3 document (CVM DescribeInstances at
// 1551113065): the payload's hash, the canonical request's hash and the
// signature it publishes.
func TestTC3SignatureVector(t *testing.T) {
	payload := []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`)
	if got, want := sha256Hex(payload), "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"; got != want {
		t.Fatalf("payload hash: got %s, want %s", got, want)
	}
	cred := TencentCredentials{SecretID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", SecretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"}
	got := TC3Authorization(cred, "cvm", "cvm.tencentcloudapi.com", 1551113065, payload)
	want := "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, " +
		"SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	canonical := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" + sha256Hex(payload)
	if got, want := sha256Hex([]byte(canonical)), "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"; got != want {
		t.Errorf("canonical request hash: got %s, want %s", got, want)
	}
	req, err := NewTC3Request(context.Background(), TC3Call{Service: "cvm", Action: "DescribeInstances", Version: "2017-03-12",
		Region: "ap-guangzhou", Endpoint: "https://cvm.tencentcloudapi.com/"}, cred, payload, time.Unix(1551113065, 0))
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != want || req.Header.Get("X-TC-Timestamp") != "1551113065" || req.Header.Get("X-TC-Token") != "" {
		t.Errorf("NewTC3Request headers: %v", req.Header)
	}
	if _, err := NewTC3Request(context.Background(), TC3Call{Endpoint: "cvm.tencentcloudapi.com"}, cred, payload, time.Now()); err == nil {
		t.Error("an endpoint that is not a URL: no error")
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_SESSION_TOKEN": "tok",
		"TENCENTCLOUD_SECRETID": "id", "TENCENTCLOUD_SECRETKEY": "key", "TENCENTCLOUD_SESSIONTOKEN": "st", "AWS_DEFAULT_REGION": "eu-west-1"}
	getenv := func(k string) string { return env[k] }
	a, err := AWSFromEnv(getenv)
	if err != nil || a.AccessKeyID != "AKID" || a.SecretAccessKey != "sk" || a.SessionToken != "tok" {
		t.Errorf("AWSFromEnv: %+v %v", a, err)
	}
	tc, err := TencentFromEnv(getenv)
	if err != nil || tc != (TencentCredentials{SecretID: "id", SecretKey: "key", Token: "st"}) {
		t.Errorf("TencentFromEnv: %+v %v", tc, err)
	}
	if r := AWSRegion(getenv); r != "eu-west-1" {
		t.Errorf("AWSRegion: %q", r)
	}
	none := func(string) string { return "" }
	if _, err := AWSFromEnv(none); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("AWSFromEnv without credentials: %v", err)
	}
	if _, err := TencentFromEnv(none); err == nil || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRETID") {
		t.Errorf("TencentFromEnv without credentials: %v", err)
	}
	if AWSDomain("aws", "cn-north-1") != "amazonaws.com.cn" || AWSDomain("aws-cn", "") != "amazonaws.com.cn" || AWSDomain("aws", "us-east-1") != "amazonaws.com" {
		t.Error("AWSDomain")
	}
}
