package storeenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// dynaliteTx serialises emulated transactions (exclusive) against every
// other request to dynalite (shared), so that no request sees a part of a
// transaction.
var dynaliteTx sync.RWMutex

// DynaliteTransport returns an http.RoundTripper to dynalite over next that
// adds what dynalite 4 lacks: TransactWriteItems. A transaction runs under
// an exclusive lock that every other request through any DynaliteTransport
// of the process waits for: each key of the transaction is read, each item
// is applied as its own PutItem, UpdateItem or DeleteItem (a ConditionCheck
// as a conditional DeleteItem), and when a condition failed every key is put
// back as it was, and the answer is a TransactionCanceledException with a
// cancellation reason per item, as DynamoDB gives. Keys are taken from the
// pk and sk attributes of dynamostore's tables.
//
// It is test scaffolding, not DynamoDB: requests that bypass the lock (from
// another process, or another transport) may see a transaction half done.
func DynaliteTransport(next http.RoundTripper) http.RoundTripper {
	return &transactor{next: next}
}

type transactor struct{ next http.RoundTripper }

const targetPrefix = "DynamoDB_20120810."

func (t *transactor) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != targetPrefix+"TransactWriteItems" {
		dynaliteTx.RLock()
		defer dynaliteTx.RUnlock()
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	var in struct {
		TransactItems []map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("storeenv: TransactWriteItems: %w", err)
	}
	dynaliteTx.Lock()
	defer dynaliteTx.Unlock()
	return t.transact(req, in.TransactItems)
}

// txItem is one item of a transaction: its action and request.
type txItem struct {
	action string // Put, Update, Delete or ConditionCheck
	body   json.RawMessage
	table  string
	key    json.RawMessage
	before json.RawMessage // the item before the transaction, nil if none
}

func (t *transactor) transact(req *http.Request, raw []map[string]json.RawMessage) (*http.Response, error) {
	items := make([]txItem, 0, len(raw))
	for _, m := range raw {
		it, err := parseTxItem(m)
		if err != nil {
			return nil, err
		}
		if it.before, err = t.getItem(req, it.table, it.key); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	reasons := make([]map[string]string, len(items))
	failed := false
	for i, it := range items {
		reason, err := t.apply(req, it)
		if err != nil {
			_ = t.restore(req, items[:i+1]) // best effort: err says what went wrong
			return nil, err
		}
		reasons[i] = reason
		failed = failed || reason["Code"] != "None"
	}
	if failed {
		if err := t.restore(req, items); err != nil {
			return nil, err
		}
		return canceledResponse(req, reasons)
	}
	var checks []txItem
	for _, it := range items {
		if it.action == "ConditionCheck" {
			checks = append(checks, it)
		}
	}
	if err := t.restore(req, checks); err != nil {
		return nil, err
	}
	return jsonResponse(req, http.StatusOK, []byte("{}")), nil
}

func parseTxItem(m map[string]json.RawMessage) (txItem, error) {
	for action, body := range m {
		var r struct {
			TableName string
			Key, Item map[string]json.RawMessage
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return txItem{}, fmt.Errorf("storeenv: TransactWriteItems %s: %w", action, err)
		}
		k := r.Key
		if action == "Put" {
			k = map[string]json.RawMessage{"pk": r.Item["pk"], "sk": r.Item["sk"]}
		}
		key, err := json.Marshal(k)
		if err != nil {
			return txItem{}, err
		}
		return txItem{action: action, body: body, table: r.TableName, key: key}, nil
	}
	return txItem{}, fmt.Errorf("storeenv: TransactWriteItems: empty item")
}

// apply runs one item as its own request and returns its cancellation
// reason ("None" when it succeeded).
func (t *transactor) apply(req *http.Request, it txItem) (map[string]string, error) {
	action, body := it.action, []byte(it.body)
	switch action {
	case "Put", "Update", "Delete":
		action += "Item"
	case "ConditionCheck":
		action = "DeleteItem" // put back by restore
	default:
		return nil, fmt.Errorf("storeenv: TransactWriteItems: unknown action %q", it.action)
	}
	status, answer, err := t.call(req, action, body)
	if err != nil {
		return nil, err
	}
	if status == http.StatusOK {
		return map[string]string{"Code": "None"}, nil
	}
	if bytes.Contains(answer, []byte("ConditionalCheckFailedException")) {
		return map[string]string{"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}, nil
	}
	return nil, fmt.Errorf("storeenv: TransactWriteItems %s: status %d: %s", action, status, answer)
}

// restore puts the keys of items back as they were before the transaction.
func (t *transactor) restore(req *http.Request, items []txItem) error {
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		action, body := "PutItem", map[string]any{"TableName": it.table, "Item": it.before}
		if it.before == nil {
			action, body = "DeleteItem", map[string]any{"TableName": it.table, "Key": it.key}
		}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		status, answer, err := t.call(req, action, b)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("storeenv: TransactWriteItems: restore %s: status %d: %s", action, status, answer)
		}
	}
	return nil
}

func (t *transactor) getItem(req *http.Request, table string, key json.RawMessage) (json.RawMessage, error) {
	b, err := json.Marshal(map[string]any{"TableName": table, "Key": key, "ConsistentRead": true})
	if err != nil {
		return nil, err
	}
	status, answer, err := t.call(req, "GetItem", b)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("storeenv: TransactWriteItems: GetItem: status %d: %s", status, answer)
	}
	var out struct{ Item json.RawMessage }
	if err := json.Unmarshal(answer, &out); err != nil {
		return nil, err
	}
	if len(out.Item) == 0 || string(out.Item) == "null" {
		return nil, nil
	}
	return out.Item, nil
}

// call sends one request to dynalite with the headers of req (dynalite
// checks that a signature is present, not that it matches the body).
func (t *transactor) call(req *http.Request, action string, body []byte) (int, []byte, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Amz-Target", targetPrefix+action)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

func canceledResponse(req *http.Request, reasons []map[string]string) (*http.Response, error) {
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = r["Code"]
	}
	b, err := json.Marshal(map[string]any{
		"__type":              "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"message":             "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]",
		"CancellationReasons": reasons,
	})
	if err != nil {
		return nil, err
	}
	return jsonResponse(req, http.StatusBadRequest, b), nil
}

func jsonResponse(req *http.Request, status int, body []byte) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}
