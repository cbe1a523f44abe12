package platform

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// fuzzHandlers are cores that accept anything: what the fuzz targets check
// is the adapters' decoding of the platform's envelopes around them.
func fuzzHandlers() Handlers {
	return Handlers{
		HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		}),
		Events: func(_ context.Context, events []Event) ([]string, error) {
			var failed []string
			for _, e := range events {
				if string(e.Body) == "fail" {
					failed = append(failed, e.ID)
				}
			}
			return failed, nil
		},
		Tick:   func(context.Context, time.Time) error { return nil },
		Invoke: func(_ context.Context, p json.RawMessage) (any, error) { return p, nil },
	}
}

// envelopeInvoker is Lambda.Invoke or SCF.Invoke.
type envelopeInvoker func(ctx context.Context, payload []byte) ([]byte, error)

// fuzzEnvelope checks one adapter: it never panics, and what it answers
// without error is JSON (the platforms refuse anything else).
func fuzzEnvelope(f *testing.F, invoke envelopeInvoker, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"wxnotify":"tick"}`, `{"Records":[]}`, `{"Records":[{"eventSource":"aws:sqs","body":"fail","messageId":"m1"}]}`,
		`{"version":"2.0","requestContext":{"http":{"method":"POST"}},"body":"eA==","isBase64Encoded":true,"rawPath":"//x/../%zz"}`,
		`{"httpMethod":"GET","path":"/a b","headers":{"host":"h"},"queryString":{"a":["1","2"],"b":[]},"body":"!","isBase64Encoded":true}`,
		`{"Type":"Timer"}`, `{"Records":[{"Ckafka":{"topic":"t","partition":1,"offset":2,"msgBody":"fail"}}]}`,
		`{"detail-type":"x","source":"y","detail":{"a":1},"id":"e1"}`, `{"detail-type":"Scheduled Event","source":"aws.events"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := invoke(context.Background(), payload)
		if err == nil && !json.Valid(out) {
			t.Fatalf("Invoke(%q) = %q, not JSON", payload, out)
		}
	})
}

// FuzzLambdaInvoke feeds the AWS adapter any payload: HTTP API 2.0,
// Function URL, SQS, EventBridge, Scheduler and direct invocations.
func FuzzLambdaInvoke(f *testing.F) {
	var seeds [][]byte
	for _, name := range []string{"apigw-v2-request-no-authorizer.json", "apigw-v2-request-iam.json", "lambda-urls-request.json",
		"sqs-event.json", "apigw-request.json"} {
		seeds = append(seeds, awsSample(f, name))
	}
	fuzzEnvelope(f, NewLambda(fuzzHandlers(), Options{}).Invoke, seeds)
}

// FuzzSCFInvoke feeds the Tencent Cloud adapter any payload: API Gateway
// and Function URL requests, timers, CKafka batches and direct invocations.
func FuzzSCFInvoke(f *testing.F) {
	var seeds [][]byte
	for _, name := range []string{"scf-apigw-request.json", "scf-function-url-request.json", "scf-timer-event.json", "scf-ckafka-event.json"} {
		seeds = append(seeds, testdata(f, name))
	}
	fuzzEnvelope(f, NewSCF(fuzzHandlers(), Options{}).Invoke, seeds)
}
