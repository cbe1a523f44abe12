package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Write applies ops atomically with one TransactWriteItems (see
// store.Store): a Put becomes a conditional Put, a Delete a Delete, a Check
// a ConditionCheck. A transaction returns no values, so the version of an
// unconditional Put (neither IfAbsent nor IfVersion) is learnt from a
// consistent BatchGetItem first, and the transaction is conditioned on the
// version read; when another writer changed such an item in between, or a
// concurrent transaction collided with this one (TransactionConflict), the
// Write is tried again. A Write whose Puts are all conditional is one
// request. A failed condition is reported as a *store.WriteConflict naming
// the operation, from the transaction's cancellation reasons.
func (s *Store) Write(ctx context.Context, ops []store.WriteOp) ([]int64, error) {
	if err := store.CheckWrite(ops); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return []int64{}, nil
	}
	for i, op := range ops {
		if op.Kind == store.PutKind && op.Put.IfAbsent && op.Put.IfVersion > 0 {
			return nil, store.Conflict(ops, i) // cannot both hold
		}
	}
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return nil, fmt.Errorf("dynamostore: write: %w", err)
			}
		}
		versions, retry, err := s.writeOnce(ctx, ops)
		if !retry {
			return versions, err
		}
	}
	return nil, fmt.Errorf("dynamostore: write: items changed or transactions collided on each of %d attempts", maxAttempts)
}

// pause waits a little longer at every attempt, so that colliding
// transactions spread out.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt*attempt) * 5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// writeOnce is one attempt of Write; retry tells that it changed nothing
// and may be repeated.
func (s *Store) writeOnce(ctx context.Context, ops []store.WriteOp) (versions []int64, retry bool, err error) {
	current, err := s.readUnconditional(ctx, ops)
	if err != nil {
		return nil, false, fmt.Errorf("dynamostore: write: %w", err)
	}
	nowMS := s.nowMS()
	items := make([]types.TransactWriteItem, len(ops))
	versions = make([]int64, len(ops))
	for i, op := range ops {
		items[i], versions[i] = s.transactItem(op, current[i], nowMS)
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return versions, false, nil
	}
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return nil, false, fmt.Errorf("dynamostore: write: %w", err)
	}
	if err := s.canceled(ops, canceled); !errors.Is(err, errRetry) {
		return nil, false, err
	}
	return nil, true, nil
}

// canceled turns the reasons of a cancelled transaction into the Write's
// error: a *store.WriteConflict for the first operation whose own condition
// failed, else nil (the Write may be repeated) for failures of the
// conditions Write added itself and for collisions, else an error.
func (s *Store) canceled(ops []store.WriteOp, c *types.TransactionCanceledException) error {
	retry := false
	for i, r := range c.CancellationReasons {
		switch code := aws.ToString(r.Code); code {
		case "", "None":
		case "ConditionalCheckFailed":
			if i < len(ops) && !unconditionalPut(ops[i]) {
				return store.Conflict(ops, i)
			}
			retry = true
		case "TransactionConflict":
			retry = true
		default:
			return fmt.Errorf("dynamostore: write: op %d: %s: %s", i, code, aws.ToString(r.Message))
		}
	}
	if retry {
		return errRetry
	}
	return fmt.Errorf("dynamostore: write: transaction cancelled: %w", c)
}

// errRetry tells Write that a cancelled transaction may be repeated.
var errRetry = errors.New("dynamostore: write: retry")

// unconditionalPut reports whether op is a Put whose version Write must
// read first.
func unconditionalPut(op store.WriteOp) bool {
	return op.Kind == store.PutKind && !op.Put.IfAbsent && op.Put.IfVersion == 0
}

// state is what a consistent read found under a key; live is false for a
// missing or expired item.
type state struct {
	live    bool
	version int64
}

// readUnconditional reads, in one BatchGetItem, the items of the
// unconditional Puts of ops, by index.
func (s *Store) readUnconditional(ctx context.Context, ops []store.WriteOp) ([]state, error) {
	current := make([]state, len(ops))
	byKey := map[store.Key]int{}
	var keys []map[string]types.AttributeValue
	for i, op := range ops {
		if unconditionalPut(op) {
			byKey[op.Key] = i
			keys = append(keys, keyAttrs(op.Key))
		}
	}
	nowMS := s.nowMS()
	for len(keys) > 0 {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{*s.table: {
				Keys:                     keys,
				ConsistentRead:           aws.Bool(true),
				ProjectionExpression:     aws.String("#pk, #sk, #ver, #exp"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPartition, "#sk": attrSort, "#ver": attrVersion, "#exp": attrExpiresMS},
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("read versions: %w", err)
		}
		for _, av := range out.Responses[*s.table] {
			k, st, err := readState(av, nowMS)
			if err != nil {
				return nil, fmt.Errorf("read versions: %w", err)
			}
			if i, ok := byKey[k]; ok {
				current[i] = st
			}
		}
		keys = out.UnprocessedKeys[*s.table].Keys
		if len(keys) > 0 {
			if err := pause(ctx, 1); err != nil {
				return nil, err
			}
		}
	}
	return current, nil
}

// readState decodes the key, version and liveness of a projected item.
func readState(av map[string]types.AttributeValue, nowMS int64) (store.Key, state, error) {
	var (
		k   store.Key
		st  state
		err error
	)
	if k.Partition, err = stringAttr(av, attrPartition); err != nil {
		return k, st, err
	}
	if k.Sort, err = stringAttr(av, attrSort); err != nil {
		return k, st, err
	}
	if st.version, err = numberAttr(av, attrVersion); err != nil {
		return k, st, err
	}
	var expMS int64
	if _, ok := av[attrExpiresMS]; ok {
		if expMS, err = numberAttr(av, attrExpiresMS); err != nil {
			return k, st, err
		}
	}
	st.live = expMS == 0 || expMS > nowMS
	return k, st, nil
}

// transactItem is the transaction item of op and the version a Put
// writes; cur is what Write read of an unconditional Put's item.
func (s *Store) transactItem(op store.WriteOp, cur state, nowMS int64) (types.TransactWriteItem, int64) {
	now := number(nowMS)
	absent := func() (*string, map[string]string, map[string]types.AttributeValue) {
		return aws.String(condAbsent), map[string]string{"#pk": attrPartition, "#exp": attrExpiresMS},
			map[string]types.AttributeValue{":now": now}
	}
	atVersion := func(v int64) (*string, map[string]string, map[string]types.AttributeValue) {
		return aws.String("#ver = :ver AND " + condLive), map[string]string{"#ver": attrVersion, "#exp": attrExpiresMS},
			map[string]types.AttributeValue{":ver": number(v), ":now": now}
	}
	switch op.Kind {
	case store.PutKind:
		var ver int64 = 1
		cond, names, values := absent()
		switch {
		case op.Put.IfVersion > 0:
			ver = op.Put.IfVersion + 1
			cond, names, values = atVersion(op.Put.IfVersion)
		case !op.Put.IfAbsent && cur.live:
			ver = cur.version + 1
			cond, names, values = atVersion(cur.version)
		}
		return types.TransactWriteItem{Put: &types.Put{
			TableName: s.table, Item: newItem(op.Key, op.Value, ver, store.ToMillis(op.Put.ExpiresAt)),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}}, ver
	case store.DeleteKind:
		d := &types.Delete{TableName: s.table, Key: keyAttrs(op.Key)}
		if op.Delete.IfVersion > 0 {
			d.ConditionExpression, d.ExpressionAttributeNames, d.ExpressionAttributeValues = atVersion(op.Delete.IfVersion)
		}
		return types.TransactWriteItem{Delete: d}, 0
	default:
		c := &types.ConditionCheck{TableName: s.table, Key: keyAttrs(op.Key)}
		if op.Version > 0 {
			c.ConditionExpression, c.ExpressionAttributeNames, c.ExpressionAttributeValues = atVersion(op.Version)
		} else {
			c.ConditionExpression, c.ExpressionAttributeNames, c.ExpressionAttributeValues = absent()
		}
		return types.TransactWriteItem{ConditionCheck: c}, 0
	}
}
