package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Lambda adapts a function's Handlers to AWS Lambda invocation payloads. Its
// Invoke method is an aws-lambda-go lambda.Handler.
type Lambda struct {
	iv invoker
}

var _ lambda.Handler = (*Lambda)(nil)

// NewLambda returns the AWS Lambda adapter of h.
func NewLambda(h Handlers, o Options) *Lambda {
	o = o.withDefaults()
	return &Lambda{iv: invoker{h: h, log: o.Logger, fn: o.Function}}
}

// Invoke decodes one Lambda payload, runs the matching core and encodes its
// answer:
//
//   - API Gateway HTTP API (payload 2.0) and Function URL requests: HTTP,
//     answered with statusCode, headers (repeated fields joined with
//     commas), cookies (every Set-Cookie) and the body, base64-encoded
//     unless it is UTF-8 text.
//   - SQS batches: Events, answered with the partial batch response
//     (batchItemFailures; the event source needs ReportBatchItemFailures).
//   - EventBridge events: Events with one event; a failure is an error, so
//     EventBridge retries it and then sends it to the rule's DLQ.
//   - ScheduleInput (EventBridge Scheduler) and "Scheduled Event"s: Tick.
//   - anything else: Invoke.
//
// Errors become Lambda function errors; so does a payload whose core is
// nil.
func (a *Lambda) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		ctx = withRequestID(ctx, lc.AwsRequestID)
	}
	top, isObject, err := decodeObject(payload)
	if err != nil {
		return nil, err
	}
	if !isObject {
		return a.iv.invoke(ctx, payload)
	}
	switch {
	case isHTTPv2(top):
		return a.serveHTTP(ctx, payload)
	case member(top, "httpMethod") != "" && top["resource"] != nil && top["requestContext"] != nil:
		return nil, errors.New("runtime: API Gateway REST API events (payload format 1.0) are not supported: " +
			"use an HTTP API with payload format 2.0 or a Function URL")
	case isSQS(top):
		return a.sqs(ctx, payload)
	case top["detail-type"] != nil && top["source"] != nil:
		if member(top, "source") == "aws.events" && member(top, "detail-type") == "Scheduled Event" {
			return jsonNull, a.iv.tick(ctx, "eventbridge")
		}
		return a.eventBridge(ctx, payload)
	case len(top) == 1 && member(top, "wxnotify") == "tick":
		return jsonNull, a.iv.tick(ctx, "scheduler")
	}
	return a.iv.invoke(ctx, payload)
}

var jsonNull = []byte("null")

func isHTTPv2(top map[string]json.RawMessage) bool {
	if member(top, "version") != "2.0" {
		return false
	}
	var rc struct {
		HTTP struct {
			Method string `json:"method"`
		} `json:"http"`
	}
	return json.Unmarshal(top["requestContext"], &rc) == nil && rc.HTTP.Method != ""
}

func isSQS(top map[string]json.RawMessage) bool {
	var records []struct {
		EventSource string `json:"eventSource"`
	}
	if json.Unmarshal(top["Records"], &records) != nil || len(records) == 0 {
		return false
	}
	for _, r := range records {
		if r.EventSource != "aws:sqs" {
			return false
		}
	}
	return true
}

// serveHTTP answers an HTTP API 2.0 or Function URL request. The two share
// one request shape; the response type follows the request's (Function URL
// requests have no routeKey).
func (a *Lambda) serveHTTP(ctx context.Context, payload []byte) ([]byte, error) {
	if a.iv.h.HTTP == nil {
		return nil, errNoCore(kindHTTP)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("runtime: decode the HTTP event: %w", err)
	}
	r, err := awsRequest(ctx, ev, payload)
	if err != nil {
		return nil, err
	}
	rec := serve(a.iv.h.HTTP, r)
	header, cookies := rec.joinedHeader()
	body, isBase64 := rec.encodedBody()
	if ev.RouteKey == "" {
		return json.Marshal(events.LambdaFunctionURLResponse{StatusCode: rec.status, Headers: header,
			Body: body, IsBase64Encoded: isBase64, Cookies: cookies})
	}
	return json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: rec.status, Headers: header,
		Body: body, IsBase64Encoded: isBase64, Cookies: cookies})
}

// awsRequest rebuilds the request API Gateway or the Function URL received.
func awsRequest(ctx context.Context, ev events.APIGatewayV2HTTPRequest, payload []byte) (*http.Request, error) {
	body, err := requestBody(payload, ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	header := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		header.Add("Cookie", strings.Join(ev.Cookies, "; "))
	}
	rawPath := ev.RawPath
	if rawPath == "" {
		rawPath = ev.RequestContext.HTTP.Path
	}
	rawQuery := ev.RawQueryString
	if rawQuery == "" && len(ev.QueryStringParameters) > 0 {
		rawQuery = encodeQuery(ev.QueryStringParameters)
	}
	return httpRequest{
		method:    ev.RequestContext.HTTP.Method,
		rawPath:   stripStage(escapePath(rawPath), ev.RequestContext.Stage),
		rawQuery:  rawQuery,
		header:    header,
		body:      body,
		proto:     ev.RequestContext.HTTP.Protocol,
		sourceIP:  ev.RequestContext.HTTP.SourceIP,
		requestID: ev.RequestContext.RequestID,
	}.newRequest(ctx)
}

// encodeQuery encodes single-valued parameters in name order.
func encodeQuery(params map[string]string) string {
	v := make(url.Values, len(params))
	for k, s := range params {
		v.Set(k, s)
	}
	return v.Encode()
}

func (a *Lambda) sqs(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("runtime: decode the SQS event: %w", err)
	}
	raw := records(payload)
	batch := make([]Event, 0, len(ev.Records))
	for i, m := range ev.Records {
		e := Event{ID: m.MessageId, Source: SourceSQS, Body: []byte(m.Body)}
		if i < len(raw) {
			if b, ok := verbatim(raw[i], "body"); ok {
				e.Body = b
			}
		}
		e.Attempt, _ = strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		if ms, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64); err == nil {
			e.Time = time.UnixMilli(ms).UTC()
		}
		batch = append(batch, e)
	}
	failed, err := a.iv.events(ctx, batch)
	if err != nil {
		return nil, err
	}
	sort.Strings(failed)
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, id := range failed {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	return json.Marshal(resp)
}

func (a *Lambda) eventBridge(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("runtime: decode the EventBridge event: %w", err)
	}
	e := Event{ID: ev.ID, Source: SourceEventBridge, Type: ev.DetailType, Body: ev.Detail, Time: ev.Time}
	failed, err := a.iv.events(ctx, []Event{e})
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("runtime: event %s failed and will be retried", ev.ID)
	}
	return jsonNull, nil
}
