package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
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
// request. An Add is an UpdateItem conditioned on a live counter (or no
// item) that stays in range; when that fails (the counter expired, or the
// item is not a counter, or would overflow) the items of the Adds are read
// too and the Write is tried again: an expired counter is then replaced by
// a new one at version 1, and the others fail with store.ErrNotCounter or
// store.ErrOutOfRange. A failed condition is reported as a
// *store.WriteConflict naming the operation, from the transaction's
// cancellation reasons.
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
		versions, retry, err := s.writeOnce(ctx, ops, attempt > 0)
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
// and may be repeated. readAdds reads the items of the Adds first.
func (s *Store) writeOnce(ctx context.Context, ops []store.WriteOp, readAdds bool) (versions []int64, retry bool, err error) {
	current, err := s.readUnconditional(ctx, ops, readAdds)
	if err != nil {
		return nil, false, fmt.Errorf("dynamostore: write: %w", err)
	}
	nowMS := s.nowMS()
	items := make([]types.TransactWriteItem, len(ops))
	versions = make([]int64, len(ops))
	for i, op := range ops {
		if op.Kind == store.AddKind && readAdds {
			if err := addable(op, current[i]); err != nil {
				return nil, false, fmt.Errorf("dynamostore: write: op %d: %w", i, err)
			}
		}
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
			if i < len(ops) && !unconditionalPut(ops[i]) && ops[i].Kind != store.AddKind {
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
// missing or expired item. read tells that the key was read at all,
// isCounter and counter what a live item holds.
type state struct {
	read      bool
	live      bool
	version   int64
	isCounter bool
	counter   int64
}

// addable checks that an Add can apply to an item in state cur.
func addable(op store.WriteOp, cur state) error {
	if !cur.live {
		return nil
	}
	if !cur.isCounter {
		return store.ErrNotCounter
	}
	_, err := store.AddInBounds(cur.counter, op.Delta, math.MinInt64, math.MaxInt64)
	return err
}

// readUnconditional reads, in one BatchGetItem, the items of the
// unconditional Puts of ops, by index, and with readAdds those of the Adds.
func (s *Store) readUnconditional(ctx context.Context, ops []store.WriteOp, readAdds bool) ([]state, error) {
	current := make([]state, len(ops))
	byKey := map[store.Key]int{}
	var keys []map[string]types.AttributeValue
	for i, op := range ops {
		if unconditionalPut(op) || (readAdds && op.Kind == store.AddKind) {
			current[i].read = true
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
				ProjectionExpression:     aws.String("#pk, #sk, #ver, #exp, #n"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPartition, "#sk": attrSort, "#ver": attrVersion, "#exp": attrExpiresMS, "#n": attrCounter},
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
				st.read = true
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
	if _, ok := av[attrCounter]; ok {
		if st.counter, err = numberAttr(av, attrCounter); err != nil {
			return k, st, err
		}
		st.isCounter = true
	}
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
	case store.AddKind:
		return s.addItem(op, cur, now), 0
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

// addItem is the transaction item of an Add. Unless Write read the item and
// found it missing or expired, it is an UpdateItem conditioned on a live
// counter that stays in range, or no item; else a new counter replaces
// what Write found (nothing, or the expired item).
func (s *Store) addItem(op store.WriteOp, cur state, now types.AttributeValue) types.TransactWriteItem {
	expMS := store.ToMillis(op.ExpiresAt)
	if cur.read && !cur.live {
		return types.TransactWriteItem{Put: &types.Put{
			TableName: s.table, Item: newItem(op.Key, store.FormatCounter(op.Delta), 1, expMS),
			ConditionExpression:       aws.String(condAbsent),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPartition, "#exp": attrExpiresMS},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": now},
		}}
	}
	names := map[string]string{"#pk": attrPartition, "#n": attrCounter, "#ver": attrVersion, "#exp": attrExpiresMS,
		"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult}
	values := map[string]types.AttributeValue{
		":empty": emptyMap,
		":zero":  number(0),
		":one":   number(1),
		":delta": number(op.Delta),
		":lo":    bigNumber(new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(op.Delta))),
		":hi":    bigNumber(new(big.Int).Sub(big.NewInt(math.MaxInt64), big.NewInt(op.Delta))),
		":now":   now,
	}
	update := "SET #n = if_not_exists(#n, :zero) + :delta, #ver = if_not_exists(#ver, :zero) + :one, " +
		"#opu = if_not_exists(#opu, :empty), #opd = if_not_exists(#opd, :empty), #opr = if_not_exists(#opr, :empty)"
	if expMS != 0 {
		update += ", #exp = :exp, #ttl = :ttl"
		names["#ttl"] = attrTTL
		values[":exp"], values[":ttl"] = number(expMS), number(ttlSeconds(expMS))
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: s.table, Key: keyAttrs(op.Key),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR (#n BETWEEN :lo AND :hi AND " + condLive + ")"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}
}
