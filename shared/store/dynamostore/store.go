package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Attribute names of the table; see the package documentation.
const (
	attrPartition = "pk"
	attrSort      = "sk"
	attrValue     = "v"
	attrCounter   = "n"
	attrVersion   = "ver"
	attrExpiresMS = "expms"
	attrTTL       = "ttl"
	// The operations a counter remembers (AddOnce), three maps keyed by
	// operation id: until when (Unix ms), the delta, and the value the
	// operation answered. opn counts the entries added since the last
	// trim, to tell when to trim.
	attrOpUntil  = "opu"
	attrOpDelta  = "opd"
	attrOpResult = "opr"
	attrOpCount  = "opn"
)

// emptyMap is the value of an op map that holds nothing yet.
var emptyMap = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}

// Expression fragments. Every attribute is referred to through an
// ExpressionAttributeNames placeholder (ttl is a reserved word).
const (
	// live holds for an item that does not exist or has not expired.
	condLive = "(attribute_not_exists(#exp) OR #exp > :now)"
	// absent holds for an item that does not exist or has expired.
	condAbsent = "(attribute_not_exists(#pk) OR #exp <= :now)"
)

// maxAttempts bounds the loops of Put and Add that retry when the item
// changed between a failed condition and the follow-up request.
const maxAttempts = 10

// Options tune New.
type Options struct {
	// Now is the clock that decides expiry; default time.Now.
	Now func() time.Time
}

// Store is a store.Store on one DynamoDB table. It is safe for concurrent
// use.
type Store struct {
	client *dynamodb.Client
	table  *string
	now    func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns a Store on the table, which must exist with the definition in
// the package documentation (CreateTable makes one).
func New(client *dynamodb.Client, table string, opts ...Options) *Store {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{client: client, table: aws.String(table), now: o.Now}
}

// Close does nothing: the client holds no resources of the Store's own.
func (s *Store) Close() error { return nil }

// Get returns the live item with the key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key store.Key) (store.Item, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, err
	}
	it, ok, err := s.get(ctx, key)
	if err != nil {
		return store.Item{}, err
	}
	if !ok || !it.live(s.nowMS()) {
		return store.Item{}, fmt.Errorf("dynamostore: get: %w", store.ErrNotFound)
	}
	return it.item(key), nil
}

// get reads the item, expired or not, with a consistent read.
func (s *Store) get(ctx context.Context, key store.Key) (record, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            keyAttrs(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return record{}, false, fmt.Errorf("dynamostore: get: %w", err)
	}
	if out.Item == nil {
		return record{}, false, nil
	}
	r, err := decode(out.Item)
	if err != nil {
		return record{}, false, fmt.Errorf("dynamostore: get: %w", err)
	}
	return r, true, nil
}

// Put stores value under key subject to opts and returns the new version.
//
// IfAbsent and IfVersion are one conditional PutItem each. Without a
// condition it is one UpdateItem that increments the version; when the
// item it meets has expired, a second request replaces it at version 1.
func (s *Store) Put(ctx context.Context, key store.Key, value []byte, opts store.PutOptions) (int64, error) {
	if err := store.CheckKey(key); err != nil {
		return 0, err
	}
	if err := store.CheckValue(value); err != nil {
		return 0, err
	}
	expMS := store.ToMillis(opts.ExpiresAt)
	switch {
	case opts.IfAbsent && opts.IfVersion > 0:
		return 0, fmt.Errorf("dynamostore: put: IfAbsent and IfVersion %d cannot both hold: %w", opts.IfVersion, store.ErrConflict)
	case opts.IfAbsent:
		if err := s.create(ctx, key, value, expMS); err != nil {
			return 0, fmt.Errorf("dynamostore: put: %w", err)
		}
		return 1, nil
	case opts.IfVersion > 0:
		ver := opts.IfVersion + 1
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 s.table,
			Item:                      newItem(key, value, ver, expMS),
			ConditionExpression:       aws.String("#ver = :ver AND " + condLive),
			ExpressionAttributeNames:  map[string]string{"#ver": attrVersion, "#exp": attrExpiresMS},
			ExpressionAttributeValues: map[string]types.AttributeValue{":ver": number(opts.IfVersion), ":now": number(s.nowMS())},
		})
		if err != nil {
			return 0, fmt.Errorf("dynamostore: put: %w", conflict(err))
		}
		return ver, nil
	}
	for range maxAttempts {
		ver, err := s.replace(ctx, key, value, expMS)
		if !isConditionFailed(err) {
			if err != nil {
				return 0, fmt.Errorf("dynamostore: put: %w", err)
			}
			return ver, nil
		}
		// The item has expired: it restarts at version 1. If another
		// writer brought it back to life meanwhile, replace that one.
		err = s.create(ctx, key, value, expMS)
		if !errors.Is(err, store.ErrConflict) {
			if err != nil {
				return 0, fmt.Errorf("dynamostore: put: %w", err)
			}
			return 1, nil
		}
	}
	return 0, fmt.Errorf("dynamostore: put: item changed on each of %d attempts", maxAttempts)
}

// create writes the item at version 1 if no live item has the key, and
// fails with store.ErrConflict otherwise.
func (s *Store) create(ctx context.Context, key store.Key, value []byte, expMS int64) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table,
		Item:                      newItem(key, value, 1, expMS),
		ConditionExpression:       aws.String(condAbsent),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPartition, "#exp": attrExpiresMS},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": number(s.nowMS())},
	})
	return conflict(err)
}

// replace overwrites a live item or creates a missing one, incrementing the
// version, and returns the new version. It fails with a
// ConditionalCheckFailedException on an expired item.
func (s *Store) replace(ctx context.Context, key store.Key, value []byte, expMS int64) (int64, error) {
	names := map[string]string{"#ver": attrVersion, "#exp": attrExpiresMS, "#v": attrValue, "#n": attrCounter}
	values := map[string]types.AttributeValue{":zero": number(0), ":one": number(1), ":now": number(s.nowMS())}
	var set, remove []string
	names["#opu"], names["#opd"], names["#opr"], names["#opn"] = attrOpUntil, attrOpDelta, attrOpResult, attrOpCount
	if n, ok := counter(value); ok {
		set = append(set, "#n = :val", "#opu = :empty", "#opd = :empty", "#opr = :empty", "#opn = :zero")
		remove = append(remove, "#v")
		values[":val"] = number(n)
		values[":empty"] = emptyMap
	} else {
		set = append(set, "#v = :val")
		remove = append(remove, "#n", "#opu", "#opd", "#opr", "#opn")
		values[":val"] = binary(value)
	}
	set = append(set, "#ver = if_not_exists(#ver, :zero) + :one")
	names["#ttl"] = attrTTL
	if expMS != 0 {
		set = append(set, "#exp = :exp", "#ttl = :ttl")
		values[":exp"], values[":ttl"] = number(expMS), number(ttlSeconds(expMS))
	} else {
		remove = append(remove, "#exp", "#ttl")
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       keyAttrs(key),
		UpdateExpression:          aws.String("SET " + strings.Join(set, ", ") + " REMOVE " + strings.Join(remove, ", ")),
		ConditionExpression:       aws.String(condLive),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, err
	}
	return numberAttr(out.Attributes, attrVersion)
}

// Delete removes the item with the key; with IfVersion only if it is live
// and has that version, failing with store.ErrConflict otherwise.
func (s *Store) Delete(ctx context.Context, key store.Key, opts store.DeleteOptions) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	in := &dynamodb.DeleteItemInput{TableName: s.table, Key: keyAttrs(key)}
	if opts.IfVersion > 0 {
		in.ConditionExpression = aws.String("#ver = :ver AND " + condLive)
		in.ExpressionAttributeNames = map[string]string{"#ver": attrVersion, "#exp": attrExpiresMS}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": number(opts.IfVersion), ":now": number(s.nowMS())}
	}
	if _, err := s.client.DeleteItem(ctx, in); err != nil {
		return fmt.Errorf("dynamostore: delete: %w", conflict(err))
	}
	return nil
}

// Query returns one page of the partition's live items in sort-key order.
//
// It is one Query request for Limit+1 items, so that a page that ends the
// partition says so (an empty Next) whenever no item was skipped. Expired
// items are dropped by a filter expression.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		FilterExpression:         aws.String(condLive),
		ExpressionAttributeNames: map[string]string{"#pk": attrPartition, "#exp": attrExpiresMS},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  &types.AttributeValueMemberS{Value: q.Partition},
			":now": number(s.nowMS()),
		},
		Limit: aws.Int32(int32(q.Limit) + 1),
	}
	// A key condition takes one sort-key predicate. The prefix is the
	// predicate when there is one; After then becomes the start key, which
	// DynamoDB accepts only inside the prefix's range.
	keyCond := "#pk = :pk"
	switch {
	case q.Prefix == "" && q.After == "":
	case q.Prefix == "":
		keyCond += " AND #sk > :after"
		in.ExpressionAttributeValues[":after"] = &types.AttributeValueMemberS{Value: q.After}
	case q.After < q.Prefix:
		keyCond += " AND begins_with(#sk, :prefix)"
	case strings.HasPrefix(q.After, q.Prefix):
		keyCond += " AND begins_with(#sk, :prefix)"
		in.ExclusiveStartKey = keyAttrs(store.Key{Partition: q.Partition, Sort: q.After})
	default:
		// After sorts past every key with the prefix.
		return store.Page{}, nil
	}
	if q.Prefix != "" {
		in.ExpressionAttributeValues[":prefix"] = &types.AttributeValueMemberS{Value: q.Prefix}
	}
	if strings.Contains(keyCond, "#sk") {
		in.ExpressionAttributeNames["#sk"] = attrSort
	}
	in.KeyConditionExpression = aws.String(keyCond)

	out, err := s.client.Query(ctx, in)
	if err != nil {
		return store.Page{}, fmt.Errorf("dynamostore: query: %w", err)
	}
	var page store.Page
	for _, av := range out.Items {
		sort, err := stringAttr(av, attrSort)
		if err != nil {
			return store.Page{}, fmt.Errorf("dynamostore: query: %w", err)
		}
		if len(page.Items) == q.Limit {
			// The extra item exists: there is more after the last one kept.
			page.Next = page.Items[len(page.Items)-1].Key.Sort
			return page, nil
		}
		r, err := decode(av)
		if err != nil {
			return store.Page{}, fmt.Errorf("dynamostore: query: item: %w", err)
		}
		page.Items = append(page.Items, r.item(store.Key{Partition: q.Partition, Sort: sort}))
	}
	if out.LastEvaluatedKey != nil {
		// DynamoDB stopped early (Limit+1 items evaluated with some
		// filtered, or 1 MB read): resume after what it evaluated.
		next, err := stringAttr(out.LastEvaluatedKey, attrSort)
		if err != nil {
			return store.Page{}, fmt.Errorf("dynamostore: query: last evaluated key: %w", err)
		}
		page.Next = next
	}
	return page, nil
}

// Add adds delta to the counter at key within [min, max] and returns the
// new value.
//
// It is one UpdateItem whose condition enforces the bounds, liveness and the
// type of the value. When the condition fails, the item that made it fail
// tells why; an expired item is then replaced by a new counter at version 1
// with a second request.
func (s *Store) Add(ctx context.Context, key store.Key, delta, min, max int64) (int64, error) {
	if err := store.CheckKey(key); err != nil {
		return 0, err
	}
	if err := store.CheckBounds(min, max); err != nil {
		return 0, err
	}
	// A missing or expired item counts as 0: may it be created?
	_, fromZero := store.AddInBounds(0, delta, min, max)
	for range maxAttempts {
		n, err := s.add(ctx, key, delta, min, max, fromZero == nil)
		if err == nil {
			return n, nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return 0, fmt.Errorf("dynamostore: add: %w", err)
		}
		var (
			old    record
			exists bool
		)
		if failed.Item != nil {
			if old, err = decode(failed.Item); err != nil {
				return 0, fmt.Errorf("dynamostore: add: %w", err)
			}
			exists = true
		} else if old, exists, err = s.get(ctx, key); err != nil {
			// DynamoDB returns no item when there is none, and
			// emulators never do: read it.
			return 0, err
		}
		switch {
		case !exists || !old.live(s.nowMS()):
			if fromZero != nil {
				return 0, fmt.Errorf("dynamostore: add: %w", fromZero)
			}
			if !exists {
				continue // deleted since the update failed
			}
			err := s.create(ctx, key, store.FormatCounter(delta), 0)
			if err == nil {
				return delta, nil
			}
			if !errors.Is(err, store.ErrConflict) {
				return 0, fmt.Errorf("dynamostore: add: %w", err)
			}
		case !old.isCounter:
			return 0, fmt.Errorf("dynamostore: add: %w", store.ErrNotCounter)
		default:
			if _, err := store.AddInBounds(old.counter, delta, min, max); err != nil {
				return 0, fmt.Errorf("dynamostore: add: %w", err)
			}
			// The counter moved back into range since the update failed.
		}
	}
	return 0, fmt.Errorf("dynamostore: add: item changed on each of %d attempts", maxAttempts)
}

// add is Add's UpdateItem. Its condition never does arithmetic:
// min <= n+delta <= max is evaluated as min-delta <= n <= max-delta with
// exact bounds, which DynamoDB's 38-digit numbers hold.
func (s *Store) add(ctx context.Context, key store.Key, delta, min, max int64, create bool) (int64, error) {
	cond := "#n BETWEEN :lo AND :hi AND " + condLive
	names := map[string]string{"#n": attrCounter, "#ver": attrVersion, "#exp": attrExpiresMS,
		"#opu": attrOpUntil, "#opd": attrOpDelta, "#opr": attrOpResult}
	if create {
		cond = "attribute_not_exists(#pk) OR (" + cond + ")"
		names["#pk"] = attrPartition
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table,
		Key:       keyAttrs(key),
		UpdateExpression: aws.String("SET #n = if_not_exists(#n, :zero) + :delta, #ver = if_not_exists(#ver, :zero) + :one, " +
			"#opu = if_not_exists(#opu, :empty), #opd = if_not_exists(#opd, :empty), #opr = if_not_exists(#opr, :empty)"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":empty": emptyMap,
			":zero":  number(0),
			":one":   number(1),
			":delta": number(delta),
			":lo":    bigNumber(new(big.Int).Sub(big.NewInt(min), big.NewInt(delta))),
			":hi":    bigNumber(new(big.Int).Sub(big.NewInt(max), big.NewInt(delta))),
			":now":   number(s.nowMS()),
		},
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return 0, err
	}
	return numberAttr(out.Attributes, attrCounter)
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// record is a decoded item.
type record struct {
	value     []byte
	counter   int64
	isCounter bool
	version   int64
	expMS     int64
	// ops are the operations a counter remembers; hasOps tells whether the
	// item has the op maps at all (counters written before them do not).
	ops    map[string]opEntry
	hasOps bool
}

func (r record) live(nowMS int64) bool { return r.expMS == 0 || r.expMS > nowMS }

func (r record) item(k store.Key) store.Item {
	v := r.value
	if r.isCounter {
		v = store.FormatCounter(r.counter)
	}
	return store.Item{Key: k, Value: v, Version: r.version, ExpiresAt: store.FromMillis(r.expMS)}
}

func decode(av map[string]types.AttributeValue) (record, error) {
	var (
		r   record
		err error
	)
	if r.version, err = numberAttr(av, attrVersion); err != nil {
		return record{}, err
	}
	if _, ok := av[attrExpiresMS]; ok {
		if r.expMS, err = numberAttr(av, attrExpiresMS); err != nil {
			return record{}, err
		}
	}
	if _, ok := av[attrCounter]; ok {
		if r.counter, err = numberAttr(av, attrCounter); err != nil {
			return record{}, err
		}
		r.isCounter = true
		if r.ops, r.hasOps, err = decodeOps(av); err != nil {
			return record{}, err
		}
		return r, nil
	}
	// The Store always writes v or n; an item with neither reads as empty.
	if v, ok := av[attrValue]; ok {
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return record{}, fmt.Errorf("attribute %s is %T, want binary", attrValue, v)
		}
		r.value = b.Value
	}
	return r, nil
}

// newItem is the complete item of a PutItem.
func newItem(key store.Key, value []byte, version, expMS int64) map[string]types.AttributeValue {
	it := keyAttrs(key)
	if n, ok := counter(value); ok {
		it[attrCounter] = number(n)
		it[attrOpUntil], it[attrOpDelta], it[attrOpResult] = emptyMap, emptyMap, emptyMap
	} else {
		it[attrValue] = binary(value)
	}
	it[attrVersion] = number(version)
	if expMS != 0 {
		it[attrExpiresMS] = number(expMS)
		it[attrTTL] = number(ttlSeconds(expMS))
	}
	return it
}

func keyAttrs(k store.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPartition: &types.AttributeValueMemberS{Value: k.Partition},
		attrSort:      &types.AttributeValueMemberS{Value: k.Sort},
	}
}

// counter reports whether value is stored as a number: the canonical decimal
// text of an int64, which Get gives back byte for byte.
func counter(value []byte) (int64, bool) {
	if len(value) == 0 || len(value) > len("-9223372036854775808") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(value) {
		return 0, false
	}
	return n, true
}

// ttlSeconds rounds an expiry in Unix milliseconds up to whole seconds, so
// that DynamoDB never deletes an item before it has expired.
func ttlSeconds(ms int64) int64 { return (ms + 999) / 1000 }

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// binary encodes a value; the SDK would drop a nil slice, which DynamoDB
// rejects as an empty attribute value.
func binary(value []byte) *types.AttributeValueMemberB {
	if value == nil {
		value = []byte{}
	}
	return &types.AttributeValueMemberB{Value: value}
}

func bigNumber(n *big.Int) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: n.String()}
}

func numberAttr(av map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := av[name]
	if !ok {
		return 0, fmt.Errorf("attribute %s missing", name)
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s is %T, want number", name, v)
	}
	x, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %q is not an int64", name, n.Value)
	}
	return x, nil
}

func stringAttr(av map[string]types.AttributeValue, name string) (string, error) {
	v, ok := av[name]
	if !ok {
		return "", fmt.Errorf("attribute %s missing", name)
	}
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("attribute %s is %T, want string", name, v)
	}
	return s.Value, nil
}

func isConditionFailed(err error) bool {
	var failed *types.ConditionalCheckFailedException
	return errors.As(err, &failed)
}

// conflict turns a failed condition into store.ErrConflict.
func conflict(err error) error {
	if isConditionFailed(err) {
		return store.ErrConflict
	}
	return err
}
