package tencentssm

import (
	"testing"
)

// TestSignatureVector checks the signer against the worked example of
// Tencent Cloud's signature v3 document (CVM DescribeInstances at
// 1551113065): the payload's hash, the canonical request's hash and the
// signature it publishes.
func TestSignatureVector(t *testing.T) {
	payload := []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`)
	if got, want := sha256Hex(payload), "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"; got != want {
		t.Fatalf("payload hash: got %s, want %s", got, want)
	}
	cred := Credentials{SecretID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", SecretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"}
	got := Authorization(cred, "cvm", "cvm.tencentcloudapi.com", 1551113065, payload)
	want := "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, " +
		"SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	canonical := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" + sha256Hex(payload)
	if got, want := sha256Hex([]byte(canonical)), "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"; got != want {
		t.Errorf("canonical request hash: got %s, want %s", got, want)
	}
}
