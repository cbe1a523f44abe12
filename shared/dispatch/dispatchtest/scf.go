package dispatchtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/secrets/secretstest"
)

// SCF is a fake Tencent Cloud SCF API taking asynchronous invocations of
// one function.
type SCF struct {
	*httptest.Server
	// SecretID, SecretKey and Token are the only credentials it accepts;
	// Region, Namespace and Function name the function it has.
	SecretID, SecretKey, Token, Region, Namespace, Function string
	// Now is the clock requests are checked against (5 minutes skew).
	Now func() time.Time

	mu        sync.Mutex
	contexts  []string
	calls     int
	failCalls int
	rejected  []string
}

// NewSCF starts a fake SCF in ap-guangzhou with fixed test credentials
// and the function wxnotify-batch in the namespace default.
func NewSCF() *SCF {
	f := &SCF{SecretID: "AKIDSCFz8krbsJ5yKBZQpn74WFkmEXAMPLE", SecretKey: "scfGu5t9xGARNpq86cd98joQYCNEXAMPLE",
		Token: "scf-role-session-token", Region: "ap-guangzhou", Namespace: "default", Function: "wxnotify-batch", Now: time.Now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Env is the environment of a batch function dispatching to f, as SCF
// (with a role) and serverless.yml give it.
func (f *SCF) Env() []string {
	return []string{"WXN_BATCH_DISPATCH=scf", "WXN_BATCH_DISPATCH_ENDPOINT=" + f.URL, "SCF_FUNCTIONNAME=" + f.Function,
		"SCF_NAMESPACE=" + f.Namespace, "TENCENTCLOUD_REGION=" + f.Region, "TENCENTCLOUD_SECRETID=" + f.SecretID,
		"TENCENTCLOUD_SECRETKEY=" + f.SecretKey, "TENCENTCLOUD_SESSIONTOKEN=" + f.Token}
}

// FailCalls makes the next n calls answer InternalError.
func (f *SCF) FailCalls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCalls = n
}

// Invocations are the ClientContexts of the invocations queued, in order.
func (f *SCF) Invocations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.contexts...)
}

// Calls is the number of requests received, valid or not.
func (f *SCF) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Rejected are the reasons of the requests it refused, in order.
func (f *SCF) Rejected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rejected...)
}

// answer writes API 3.0's envelope: always HTTP 200, {"Response": ...}.
func answer(w http.ResponseWriter, resp map[string]any) {
	resp["RequestId"] = randomID()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Response": resp})
}

func (f *SCF) fail(w http.ResponseWriter, code, msg string) {
	if code != "InternalError" {
		f.mu.Lock()
		f.rejected = append(f.rejected, code+": "+msg)
		f.mu.Unlock()
	}
	answer(w, map[string]any{"Error": map[string]string{"Code": code, "Message": msg}})
}

func (f *SCF) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	failing := f.failCalls > 0
	if failing {
		f.failCalls--
	}
	f.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		f.fail(w, "InvalidParameter", "POST with a JSON body")
		return
	}
	if code, err := secretstest.VerifyTC3(r, body, secretstest.TC3Key{SecretID: f.SecretID, SecretKey: f.SecretKey,
		Token: f.Token, Service: "scf"}, f.Now()); err != nil {
		f.fail(w, code, err.Error())
		return
	}
	switch {
	case r.Header.Get("X-TC-Action") != "Invoke":
		f.fail(w, "InvalidAction", "the action "+r.Header.Get("X-TC-Action")+" is not found")
		return
	case r.Header.Get("X-TC-Version") != "2018-04-16":
		f.fail(w, "NoSuchVersion", "the version "+r.Header.Get("X-TC-Version")+" of scf is not found")
		return
	case r.Header.Get("X-TC-Region") != f.Region:
		f.fail(w, "InvalidParameterValue.RegionError", "region "+r.Header.Get("X-TC-Region")+" is not supported")
		return
	}
	if failing {
		f.fail(w, "InternalError", "an internal error occurred")
		return
	}
	var in struct {
		FunctionName, InvocationType, ClientContext, Namespace, Qualifier string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.fail(w, "InvalidParameter", err.Error())
		return
	}
	switch {
	case in.FunctionName != f.Function || (in.Namespace != "" && in.Namespace != f.Namespace):
		f.fail(w, "ResourceNotFound.Function", "the function "+in.Namespace+"/"+in.FunctionName+" does not exist")
		return
	case in.InvocationType != "Event":
		f.fail(w, "InvalidParameterValue.InvocationType", "this fake takes asynchronous invocations (Event) only, not "+in.InvocationType)
		return
	case in.Qualifier != "" && in.Qualifier != "$LATEST":
		f.fail(w, "ResourceNotFound.Version", "the version "+in.Qualifier+" does not exist")
		return
	case !json.Valid([]byte(in.ClientContext)):
		f.fail(w, "InvalidParameterValue.ClientContext", "ClientContext is not JSON")
		return
	}
	f.mu.Lock()
	f.contexts = append(f.contexts, in.ClientContext)
	f.mu.Unlock()
	answer(w, map[string]any{"Result": map[string]any{"FunctionRequestId": randomID(), "RetMsg": "async invoke success"}})
}
