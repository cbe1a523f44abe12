package dynamostore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxnotify/wxnotify/internal/storeenv"
)

// The package's tests share one dynalite (npm package, in memory), started
// by the first test that needs it and stopped by TestMain.
func TestMain(m *testing.M) { storeenv.Main(m) }

// dynamoClient returns a client of the shared dynalite and its endpoint.
// Without dynalite the test fails under CI=true and is skipped otherwise.
func dynamoClient(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	return storeenv.DynamoClient(tb)
}

// newTable creates a table with a name unique in the run and drops it when
// the test ends.
func newTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	client, _ := dynamoClient(tb)
	return client, storeenv.DynamoTable(tb, client)
}

// proxiedClient returns a client of the shared dynalite whose requests go
// through p.
func proxiedClient(tb testing.TB, p *proxy) *dynamodb.Client {
	tb.Helper()
	_, endpoint := dynamoClient(tb)
	// Not NewClient: the SDK refuses a custom HTTP client when AWS_CA_BUNDLE
	// is set.
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDYNALITE", "dynalite", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Transport: p, Timeout: time.Minute},
	})
}

// proxy is an http.RoundTripper in front of dynalite. It counts requests
// and, with returnItemOnFailure, answers like DynamoDB to requests with
// ReturnValuesOnConditionCheckFailure ALL_OLD: a ConditionalCheckFailed
// answer carries the item. It reads the item after the failure, so under
// concurrent writes the item may be newer than the one that failed the
// condition; the Store copes with that as it does with its own reads.
// dynaliteRT is how the proxy reaches dynalite: with TransactWriteItems,
// under the lock that keeps other requests out of a transaction.
var dynaliteRT = storeenv.DynaliteTransport(http.DefaultTransport)

type proxy struct {
	returnItemOnFailure bool
	requests            atomic.Int64
	// collide is how many TransactWriteItems to cancel, as DynamoDB does
	// when another transaction holds an item (TransactionConflict), before
	// letting them through.
	collide atomic.Int64
	// beforeTransact, when set, runs before a TransactWriteItems is sent on
	// (by one request at a time).
	beforeTransact func()
}

func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	p.requests.Add(1)
	if req.Header.Get("X-Amz-Target") == "DynamoDB_20120810.TransactWriteItems" && p.collide.Add(-1) >= 0 {
		return transactionConflict(req)
	}
	if req.Header.Get("X-Amz-Target") == "DynamoDB_20120810.TransactWriteItems" && p.beforeTransact != nil {
		p.beforeTransact()
	}
	if !p.returnItemOnFailure || req.Body == nil {
		return dynaliteRT.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := dynaliteRT.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	var in struct {
		TableName                           string
		Key                                 json.RawMessage
		ReturnValuesOnConditionCheckFailure string
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ReturnValuesOnConditionCheckFailure != "ALL_OLD" {
		return resp, nil
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var failure map[string]any
	if err := json.Unmarshal(answer, &failure); err == nil {
		if typ, _ := failure["__type"].(string); strings.HasSuffix(typ, "#ConditionalCheckFailedException") {
			item, err := p.getItem(req, in.TableName, in.Key)
			if err != nil {
				return nil, err
			}
			if item != nil {
				failure["Item"] = item
				if answer, err = json.Marshal(failure); err != nil {
					return nil, err
				}
				resp.Header.Del("X-Amz-Crc32") // the checksum was of the original answer
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.ContentLength = int64(len(answer))
	resp.Header.Set("Content-Length", strconv.Itoa(len(answer)))
	return resp, nil
}

// getItem reads an item with the headers of req (dynalite checks that a
// signature is present, not that it matches the body).
func (p *proxy) getItem(req *http.Request, table string, key json.RawMessage) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"TableName": table, "Key": key, "ConsistentRead": true})
	if err != nil {
		return nil, err
	}
	get := req.Clone(req.Context())
	get.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	get.Body, get.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	get.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := dynaliteRT.RoundTrip(get)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Item json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GetItem: status %s", resp.Status)
	}
	return out.Item, nil
}

// transactionConflict answers req with a TransactionCanceledException
// whose first item collided with another transaction.
func transactionConflict(req *http.Request) (*http.Response, error) {
	var in struct{ TransactItems []json.RawMessage }
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
		return nil, err
	}
	reasons := make([]map[string]string, len(in.TransactItems))
	for i := range reasons {
		reasons[i] = map[string]string{"Code": "None"}
	}
	reasons[0] = map[string]string{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
	body, err := json.Marshal(map[string]any{
		"__type":              "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"message":             "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
		"CancellationReasons": reasons,
	})
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status: "400 Bad Request", StatusCode: http.StatusBadRequest, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "Content-Length": {strconv.Itoa(len(body))}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}
