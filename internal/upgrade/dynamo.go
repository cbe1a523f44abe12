package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The attributes of shared/store/dynamostore that hold absolute times:
// expms (expiry, Unix ms), ttl (the same in Unix seconds, rounded up) and
// opu (a counter's operation id -> until when, Unix ms).
const (
	dynamoExpiresMS = "expms"
	dynamoTTL       = "ttl"
	dynamoOpUntil   = "opu"
)

// DynamoDump is every item of a table.
type DynamoDump struct {
	Header
	// Items are in DynamoDB's attribute-value JSON ({"S": ...}, {"N": ...},
	// {"B": base64}, {"M": {...}}, ...), sorted by pk then sk.
	Items []map[string]AttrValue `json:"items"`
}

// AttrValue is one attribute value in DynamoDB's JSON form.
type AttrValue struct {
	S    *string              `json:"S,omitempty"`
	N    *string              `json:"N,omitempty"`
	B    []byte               `json:"B,omitempty"`
	BOOL *bool                `json:"BOOL,omitempty"`
	NULL *bool                `json:"NULL,omitempty"`
	M    map[string]AttrValue `json:"M,omitempty"`
	L    []AttrValue          `json:"L,omitempty"`
	SS   []string             `json:"SS,omitempty"`
	NS   []string             `json:"NS,omitempty"`
	BS   [][]byte             `json:"BS,omitempty"`
}

// MarshalJSON writes an empty map as {"M": {}} (omitempty would drop it).
func (a AttrValue) MarshalJSON() ([]byte, error) {
	if a.M != nil && len(a.M) == 0 {
		return []byte(`{"M":{}}`), nil
	}
	type plain AttrValue
	return json.Marshal(plain(a))
}

// UnmarshalJSON keeps {"M": {}} an empty map, not a missing one.
func (a *AttrValue) UnmarshalJSON(b []byte) error {
	type plain AttrValue
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var probe struct {
		M *map[string]json.RawMessage `json:"M"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if probe.M != nil && p.M == nil {
		p.M = map[string]AttrValue{}
	}
	*a = AttrValue(p)
	return nil
}

func fromSDK(v types.AttributeValue) (AttrValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return AttrValue{S: aws.String(v.Value)}, nil
	case *types.AttributeValueMemberN:
		return AttrValue{N: aws.String(v.Value)}, nil
	case *types.AttributeValueMemberB:
		return AttrValue{B: append([]byte{}, v.Value...)}, nil
	case *types.AttributeValueMemberBOOL:
		return AttrValue{BOOL: aws.Bool(v.Value)}, nil
	case *types.AttributeValueMemberNULL:
		return AttrValue{NULL: aws.Bool(v.Value)}, nil
	case *types.AttributeValueMemberSS:
		return AttrValue{SS: v.Value}, nil
	case *types.AttributeValueMemberNS:
		return AttrValue{NS: v.Value}, nil
	case *types.AttributeValueMemberBS:
		return AttrValue{BS: v.Value}, nil
	case *types.AttributeValueMemberL:
		l := make([]AttrValue, len(v.Value))
		for i, e := range v.Value {
			var err error
			if l[i], err = fromSDK(e); err != nil {
				return AttrValue{}, err
			}
		}
		return AttrValue{L: l}, nil
	case *types.AttributeValueMemberM:
		m, err := itemFromSDK(v.Value)
		return AttrValue{M: m}, err
	}
	return AttrValue{}, fmt.Errorf("attribute value of type %T", v)
}

func itemFromSDK(it map[string]types.AttributeValue) (map[string]AttrValue, error) {
	m := make(map[string]AttrValue, len(it))
	for k, v := range it {
		a, err := fromSDK(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = a
	}
	return m, nil
}

func (a AttrValue) toSDK() (types.AttributeValue, error) {
	switch {
	case a.S != nil:
		return &types.AttributeValueMemberS{Value: *a.S}, nil
	case a.N != nil:
		return &types.AttributeValueMemberN{Value: *a.N}, nil
	case a.B != nil:
		return &types.AttributeValueMemberB{Value: a.B}, nil
	case a.BOOL != nil:
		return &types.AttributeValueMemberBOOL{Value: *a.BOOL}, nil
	case a.NULL != nil:
		return &types.AttributeValueMemberNULL{Value: *a.NULL}, nil
	case a.SS != nil:
		return &types.AttributeValueMemberSS{Value: a.SS}, nil
	case a.NS != nil:
		return &types.AttributeValueMemberNS{Value: a.NS}, nil
	case a.BS != nil:
		return &types.AttributeValueMemberBS{Value: a.BS}, nil
	case a.L != nil:
		l := make([]types.AttributeValue, len(a.L))
		for i, e := range a.L {
			var err error
			if l[i], err = e.toSDK(); err != nil {
				return nil, err
			}
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case a.M != nil:
		m, err := itemToSDK(a.M)
		return &types.AttributeValueMemberM{Value: m}, err
	}
	return nil, errors.New("attribute value without a type")
}

func itemToSDK(it map[string]AttrValue) (map[string]types.AttributeValue, error) {
	m := make(map[string]types.AttributeValue, len(it))
	for k, v := range it {
		a, err := v.toSDK()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = a
	}
	return m, nil
}

// DumpDynamo scans every item of table.
func DumpDynamo(ctx context.Context, c *dynamodb.Client, table string) (DynamoDump, error) {
	d := DynamoDump{Header: Header{Layout: "v1", Backend: "dynamodb", DumpedAtMS: time.Now().UnixMilli()}}
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return d, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range out.Items {
			m, err := itemFromSDK(it)
			if err != nil {
				return d, err
			}
			d.Items = append(d.Items, m)
		}
	}
	key := func(m map[string]AttrValue, a string) string {
		if v := m[a].S; v != nil {
			return *v
		}
		return ""
	}
	sort.Slice(d.Items, func(i, j int) bool {
		pi, pj := key(d.Items[i], "pk"), key(d.Items[j], "pk")
		if pi != pj {
			return pi < pj
		}
		return key(d.Items[i], "sk") < key(d.Items[j], "sk")
	})
	return d, nil
}

// LoadDynamo puts every item of d into table as dumped, except the
// absolute times (expms, ttl, opu), which move by d.Shift(now).
func LoadDynamo(ctx context.Context, c *dynamodb.Client, table string, d DynamoDump, now time.Time) error {
	shift := d.Shift(now)
	for i, it := range d.Items {
		it, err := rebaseDynamo(it, shift)
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		av, err := itemToSDK(it)
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: av}); err != nil {
			return fmt.Errorf("put item %d: %w", i, err)
		}
	}
	return nil
}

// rebaseDynamo returns a copy of it with its absolute times moved by shift
// ms: ttl is recomputed from the moved expms as the store writes it.
func rebaseDynamo(it map[string]AttrValue, shift int64) (map[string]AttrValue, error) {
	out := make(map[string]AttrValue, len(it))
	for k, v := range it {
		out[k] = v
	}
	if v, ok := it[dynamoExpiresMS]; ok {
		ms, err := shiftNumber(v, shift)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dynamoExpiresMS, err)
		}
		out[dynamoExpiresMS] = AttrValue{N: aws.String(strconv.FormatInt(ms, 10))}
		if _, ok := it[dynamoTTL]; ok {
			out[dynamoTTL] = AttrValue{N: aws.String(strconv.FormatInt((ms+999)/1000, 10))}
		}
	}
	if v, ok := it[dynamoOpUntil]; ok && v.M != nil {
		m := make(map[string]AttrValue, len(v.M))
		for id, u := range v.M {
			ms, err := shiftNumber(u, shift)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", dynamoOpUntil, id, err)
			}
			m[id] = AttrValue{N: aws.String(strconv.FormatInt(ms, 10))}
		}
		out[dynamoOpUntil] = AttrValue{M: m}
	}
	return out, nil
}

func shiftNumber(v AttrValue, shift int64) (int64, error) {
	if v.N == nil {
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseInt(*v.N, 10, 64)
	if err != nil {
		return 0, err
	}
	return n + shift, nil
}
