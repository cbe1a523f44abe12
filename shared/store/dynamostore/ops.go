package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxnotify/wxnotify/shared/store"
)

// opEntry is one operation a counter remembers.
type opEntry struct {
	untilMS, delta, result int64
}

// decodeOps reads the op maps of a counter item; hasOps is false for a
// counter written before they existed.
func decodeOps(av map[string]types.AttributeValue) (ops map[string]opEntry, hasOps bool, err error) {
	until, ok1 := av[attrOpUntil].(*types.AttributeValueMemberM)
	delta, ok2 := av[attrOpDelta].(*types.AttributeValueMemberM)
	result, ok3 := av[attrOpResult].(*types.AttributeValueMemberM)
	if !ok1 || !ok2 || !ok3 {
		return nil, false, nil
	}
	ops = make(map[string]opEntry, len(until.Value))
	for id := range until.Value {
		var e opEntry
		if e.untilMS, err = numberAttr(until.Value, id); err != nil {
			return nil, false, fmt.Errorf("%s: %w", attrOpUntil, err)
		}
		if e.delta, err = numberAttr(delta.Value, id); err != nil {
			return nil, false, fmt.Errorf("%s: %w", attrOpDelta, err)
		}
		if e.result, err = numberAttr(result.Value, id); err != nil {
			return nil, false, fmt.Errorf("%s: %w", attrOpResult, err)
		}
		ops[id] = e
	}
	return ops, true, nil
}

// remembered returns the live operation id of r.
func (r record) remembered(id string, nowMS int64) (opEntry, bool) {
	e, ok := r.ops[id]
	return e, ok && e.untilMS > nowMS
}

// opTrimEvery is how many operations are added between two trims of a
// counter's op maps (forgotten entries removed, and past store.MaxOps the
// ones closest to being forgotten).
const opTrimEvery = 32

// AddOnce is Add for the operation op names (see store.Store).
//
// It is one UpdateItem that applies the delta and records the operation in
// the counter's op maps, on condition that the counter does not remember
// it; the answer of a remembered operation is read from the item the
// failed condition returns (a GetItem on emulators). A missing or expired
// counter is created with a conditional PutItem; a counter without op maps
// (written before them) gets them with a second, versioned UpdateItem.
// Every opTrimEvery operations, the maps are read and trimmed.
func (s *Store) AddOnce(ctx context.Context, key store.Key, delta, min, max int64, op store.CounterOp) (int64, error) {
	keepMS, err := store.CheckAddOnce(key, min, max, op)
	if err != nil {
		return 0, err
	}
	_, fromZero := store.AddInBounds(0, delta, min, max)
	for range maxAttempts {
		nowMS := s.nowMS()
		n, count, err := s.addOnce(ctx, key, delta, min, max, op, nowMS+keepMS)
		if err == nil {
			if count >= opTrimEvery {
				s.trimOps(ctx, key)
			}
			return n, nil
		}
		if !isConditionFailed(err) {
			return 0, fmt.Errorf("dynamostore: add once: %w", err)
		}
		old, exists, err := s.failedItem(ctx, key, err)
		if err != nil {
			return 0, fmt.Errorf("dynamostore: add once: %w", err)
		}
		switch {
		case !exists || !old.live(nowMS):
			if fromZero != nil {
				return 0, fmt.Errorf("dynamostore: add once: %w", fromZero)
			}
			err := s.createCounter(ctx, key, delta, op, nowMS+keepMS)
			if err == nil {
				return delta, nil
			}
			if !isConditionFailed(err) {
				return 0, fmt.Errorf("dynamostore: add once: %w", err)
			}
		case !old.isCounter:
			return 0, fmt.Errorf("dynamostore: add once: %w", store.ErrNotCounter)
		default:
			if e, ok := old.remembered(op.ID, nowMS); ok {
				return e.result, nil
			}
			next, err := store.AddInBounds(old.counter, delta, min, max)
			if err != nil {
				return 0, fmt.Errorf("dynamostore: add once: %w", err)
			}
			if !old.hasOps {
				err := s.addFirstOp(ctx, key, old, delta, next, op, nowMS+keepMS)
				if err == nil {
					return next, nil
				}
				if !isConditionFailed(err) {
					return 0, fmt.Errorf("dynamostore: add once: %w", err)
				}
			}
			// Otherwise the counter changed since the update failed: again.
		}
	}
	return 0, fmt.Errorf("dynamostore: add once: item changed on each of %d attempts", maxAttempts)
}

// failedItem returns the item a failed condition was evaluated on: the one
// DynamoDB returns with the failure, or a consistent read of it.
func (s *Store) failedItem(ctx context.Context, key store.Key, err error) (record, bool, error) {
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) && failed.Item != nil {
		r, err := decode(failed.Item)
		return r, err == nil, err
	}
	return s.get(ctx, key)
}

// addOnce is AddOnce's UpdateItem; it returns the new value and how many
// operations were added since the last trim.
func (s *Store) addOnce(ctx context.Context, key store.Key, delta, min, max int64, op store.CounterOp, untilMS int64) (int64, int64, error) {
	names := map[string]string{"#n": attrCounter, "#ver": attrVersion, "#exp": attrExpiresMS,
		"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult, "#opn": attrOpCount, "#id": op.ID}
	values := map[string]types.AttributeValue{
		":zero":  number(0),
		":one":   number(1),
		":delta": number(delta),
		":until": number(untilMS),
		":lo":    bigNumber(new(big.Int).Sub(big.NewInt(min), big.NewInt(delta))),
		":hi":    bigNumber(new(big.Int).Sub(big.NewInt(max), big.NewInt(delta))),
		":now":   number(s.nowMS()),
	}
	update := "SET #n = #n + :delta, #ver = #ver + :one, #opu.#id = :until, #opd.#id = :delta, #opr.#id = #n + :delta, " +
		"#opn = if_not_exists(#opn, :zero) + :one"
	if !op.ExpiresAt.IsZero() {
		expMS := store.ToMillis(op.ExpiresAt)
		update += ", #exp = :exp, #ttl = :ttl"
		names["#ttl"] = attrTTL
		values[":exp"], values[":ttl"] = number(expMS), number(ttlSeconds(expMS))
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        s.table,
		Key:              keyAttrs(key),
		UpdateExpression: aws.String(update),
		ConditionExpression: aws.String("attribute_exists(#opu) AND (attribute_not_exists(#opu.#id) OR #opu.#id <= :now) AND " +
			"#n BETWEEN :lo AND :hi AND " + condLive),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return 0, 0, err
	}
	n, err := numberAttr(out.Attributes, attrCounter)
	if err != nil {
		return 0, 0, err
	}
	count, _ := numberAttr(out.Attributes, attrOpCount)
	return n, count, nil
}

// createCounter writes a new counter at version 1 holding delta and the
// operation, if no live item has the key.
func (s *Store) createCounter(ctx context.Context, key store.Key, delta int64, op store.CounterOp, untilMS int64) error {
	it := newItem(key, store.FormatCounter(delta), 1, store.ToMillis(op.ExpiresAt))
	it[attrOpUntil], it[attrOpDelta], it[attrOpResult] = opMaps(op.ID, opEntry{untilMS: untilMS, delta: delta, result: delta})
	it[attrOpCount] = number(1)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table,
		Item:                      it,
		ConditionExpression:       aws.String(condAbsent),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPartition, "#exp": attrExpiresMS},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": number(s.nowMS())},
	})
	return err
}

// addFirstOp applies an operation to a counter that has no op maps yet,
// creating them, on condition that the counter is still at old's version.
func (s *Store) addFirstOp(ctx context.Context, key store.Key, old record, delta, next int64, op store.CounterOp, untilMS int64) error {
	u, d, r := opMaps(op.ID, opEntry{untilMS: untilMS, delta: delta, result: next})
	names := map[string]string{"#n": attrCounter, "#ver": attrVersion, "#exp": attrExpiresMS,
		"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult, "#opn": attrOpCount}
	values := map[string]types.AttributeValue{
		":next": number(next), ":ver": number(old.version), ":one": number(1), ":now": number(s.nowMS()),
		":u": u, ":d": d, ":r": r,
	}
	update := "SET #n = :next, #ver = #ver + :one, #opu = :u, #opd = :d, #opr = :r, #opn = :one"
	if !op.ExpiresAt.IsZero() {
		expMS := store.ToMillis(op.ExpiresAt)
		update += ", #exp = :exp, #ttl = :ttl"
		names["#ttl"] = attrTTL
		values[":exp"], values[":ttl"] = number(expMS), number(ttlSeconds(expMS))
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       keyAttrs(key),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_not_exists(#opu) AND #ver = :ver AND " + condLive),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	return err
}

func opMaps(id string, e opEntry) (until, delta, result *types.AttributeValueMemberM) {
	one := func(n int64) *types.AttributeValueMemberM {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{id: number(n)}}
	}
	return one(e.untilMS), one(e.delta), one(e.result)
}

// Undo reverts a remembered operation (see store.Store): a consistent read
// of the counter, then an UpdateItem conditional on its version.
func (s *Store) Undo(ctx context.Context, key store.Key, id string) (bool, error) {
	if err := store.CheckKey(key); err != nil {
		return false, err
	}
	if err := store.CheckOpID(id); err != nil {
		return false, err
	}
	for range maxAttempts {
		nowMS := s.nowMS()
		old, exists, err := s.get(ctx, key)
		if err != nil {
			return false, fmt.Errorf("dynamostore: undo: %w", err)
		}
		if !exists || !old.live(nowMS) || !old.isCounter {
			return false, nil
		}
		e, ok := old.remembered(id, nowMS)
		if !ok {
			return false, nil
		}
		next, err := store.AddInBounds(old.counter, -e.delta, math.MinInt64, math.MaxInt64)
		if err != nil || e.delta == math.MinInt64 {
			return false, fmt.Errorf("dynamostore: undo: %w", store.ErrOutOfRange)
		}
		_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           s.table,
			Key:                 keyAttrs(key),
			UpdateExpression:    aws.String("SET #n = :next, #ver = #ver + :one REMOVE #opu.#id, #opd.#id, #opr.#id"),
			ConditionExpression: aws.String("#ver = :ver AND " + condLive),
			ExpressionAttributeNames: map[string]string{"#n": attrCounter, "#ver": attrVersion, "#exp": attrExpiresMS,
				"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult, "#id": id},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":next": number(next), ":ver": number(old.version), ":one": number(1), ":now": number(nowMS),
			},
		})
		if err == nil {
			return true, nil
		}
		if !isConditionFailed(err) {
			return false, fmt.Errorf("dynamostore: undo: %w", err)
		}
	}
	return false, fmt.Errorf("dynamostore: undo: item changed on each of %d attempts", maxAttempts)
}

// trimOps removes the forgotten operations of a counter and, past
// store.MaxOps, those closest to being forgotten, in one UpdateItem
// conditional on each removed entry being unchanged (else it is left for
// the next trim). A trim that fails changes nothing that matters: a
// forgotten entry is ignored by every read.
func (s *Store) trimOps(ctx context.Context, key store.Key) {
	old, exists, err := s.get(ctx, key)
	if err != nil || !exists || !old.hasOps {
		return
	}
	nowMS := s.nowMS()
	type kv struct {
		id string
		e  opEntry
	}
	var all []kv
	for id, e := range old.ops {
		all = append(all, kv{id, e})
	}
	slices.SortFunc(all, func(a, b kv) int { return int(max(-1, min(1, a.e.untilMS-b.e.untilMS))) })
	drop := 0
	for drop < len(all) && all[drop].e.untilMS <= nowMS {
		drop++
	}
	drop = max(drop, len(all)-store.MaxOps)
	drop = min(drop, 64) // bounded expression; the rest waits for the next trim
	names := map[string]string{"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult, "#opn": attrOpCount}
	values := map[string]types.AttributeValue{":zero": number(0)}
	var remove, conds []string
	for i, x := range all[:drop] {
		n, v := "#i"+strconv.Itoa(i), ":u"+strconv.Itoa(i)
		names[n], values[v] = x.id, number(x.e.untilMS)
		remove = append(remove, "#opu."+n, "#opd."+n, "#opr."+n)
		conds = append(conds, "#opu."+n+" = "+v)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       keyAttrs(key),
		UpdateExpression:          aws.String("SET #opn = :zero"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if len(remove) > 0 {
		*in.UpdateExpression += " REMOVE " + strings.Join(remove, ", ")
		in.ConditionExpression = aws.String(strings.Join(conds, " AND "))
	}
	_, _ = s.client.UpdateItem(ctx, in)
}
