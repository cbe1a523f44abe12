package secretstest

import (
	"net/http"
	"testing"
)

// TestSigV4Vector checks the fake's Signature Version 4 verifier against
// the "get-vanilla" case of AWS's published Signature Version 4 test
// suite.
func TestSigV4Vector(t *testing.T) {
	r, err := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	canonical := CanonicalRequest(r, []string{"host", "x-amz-date"}, nil)
	got := SigV4("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service", "20150830T123600Z", canonical)
	if want := "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
