package upgrade

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func boltItem(version, expMS int64, value string) []byte {
	b := make([]byte, boltHeaderSize, boltHeaderSize+len(value))
	binary.BigEndian.PutUint64(b[0:8], uint64(version))
	binary.BigEndian.PutUint64(b[8:16], uint64(expMS))
	return append(b, value...)
}

func boltOpsLog(untils ...int64) []byte {
	b := binary.AppendUvarint(nil, uint64(len(untils)))
	for i, u := range untils {
		b = binary.AppendUvarint(b, 2)
		b = append(b, 'o', byte('a'+i))
		b = binary.AppendVarint(b, -1)
		b = binary.AppendVarint(b, int64(i))
		b = binary.AppendVarint(b, u)
	}
	return b
}

func TestRebaseBolt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      BoltEntry
		want    []byte
		wantErr bool
	}{
		{"ExpiringItem", BoltEntry{Bucket: boltItems, Raw: boltItem(3, 1000, "v")}, boltItem(3, 1500, "v"), false},
		{"PermanentItem", BoltEntry{Bucket: boltItems, Raw: boltItem(1, 0, "v")}, boltItem(1, 0, "v"), false},
		{"ShortItem", BoltEntry{Bucket: boltItems, Raw: []byte{1, 2}}, nil, true},
		{"Ops", BoltEntry{Bucket: boltOps, Raw: boltOpsLog(1000, 2000)}, boltOpsLog(1500, 2500), false},
		{"TruncatedOps", BoltEntry{Bucket: boltOps, Raw: boltOpsLog(1000)[:4]}, nil, true},
		{"TrailingOps", BoltEntry{Bucket: boltOps, Raw: append(boltOpsLog(1000), 0)}, nil, true},
		{"OtherBucket", BoltEntry{Bucket: "other", Raw: []byte("x")}, []byte("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rebaseBolt(tc.in, 500)
			if (err != nil) != tc.wantErr || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRebaseRedisHash(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     string
		hash    map[string]Blob
		want    map[string]any
		wantErr bool
	}{
		{"ExpiringItem", "{p}:i:s", map[string]Blob{"v": Blob("x"), "n": Blob("2"), "x": Blob("1000")},
			map[string]any{"v": []byte("x"), "n": []byte("2"), "x": "1500"}, false},
		{"PermanentItem", "{p}:i:s", map[string]Blob{"x": Blob("0")}, map[string]any{"x": []byte("0")}, false},
		// A sort key that looks like an infix does not make an item an op log.
		{"ItemWithInfixInSort", "{p}:i:a:o:b", map[string]Blob{"x": Blob("1000")}, map[string]any{"x": "1500"}, false},
		{"Ops", "{p}:o:s", map[string]Blob{"op1": Blob("-1 4 1000")}, map[string]any{"op1": "-1 4 1500"}, false},
		{"BadExpiry", "{p}:i:s", map[string]Blob{"x": Blob("soon")}, nil, true},
		{"BadOp", "{p}:o:s", map[string]Blob{"op1": Blob("-1 4")}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rebaseRedisHash(RedisKey{Key: tc.key, Type: "hash", Hash: tc.hash}, 500)
			if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRebaseDynamo(t *testing.T) {
	n := func(s string) AttrValue { return AttrValue{N: aws.String(s)} }
	in := map[string]AttrValue{"pk": {S: aws.String("p")}, "expms": n("1000"), "ttl": n("1"),
		"opu": {M: map[string]AttrValue{"op1": n("2000")}}}
	got, err := rebaseDynamo(in, 1500)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]AttrValue{"pk": {S: aws.String("p")}, "expms": n("2500"), "ttl": n("3"),
		"opu": {M: map[string]AttrValue{"op1": n("3500")}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if *in["expms"].N != "1000" {
		t.Fatal("rebaseDynamo changed its input")
	}
	if _, err := rebaseDynamo(map[string]AttrValue{"expms": {S: aws.String("soon")}}, 1); err == nil {
		t.Fatal("a non-number expms was accepted")
	}
}

func TestBlobRoundTrip(t *testing.T) {
	for _, b := range []Blob{Blob("text 文字"), Blob("a\x00b"), {0xff, 0x00, 0x10}, {}} {
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var back Blob
		if err := json.Unmarshal(raw, &back); err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%q -> %s -> %q, %v", b, raw, back, err)
		}
	}
	if raw, _ := json.Marshal(Blob{0xff}); string(raw) != `{"base64":"/w=="}` {
		t.Fatalf("binary blob written %s", raw)
	}
	var b Blob
	if err := json.Unmarshal([]byte(`{"hex":"00"}`), &b); err == nil {
		t.Fatal("a blob without base64 was accepted")
	}
}

func TestAttrValueEmptyMap(t *testing.T) {
	raw, err := json.Marshal(AttrValue{M: map[string]AttrValue{}})
	if err != nil || string(raw) != `{"M":{}}` {
		t.Fatalf("empty map written %s, %v", raw, err)
	}
	var a AttrValue
	if err := json.Unmarshal(raw, &a); err != nil || a.M == nil {
		t.Fatalf("empty map read back as %+v, %v", a, err)
	}
	if _, err := a.toSDK(); err != nil {
		t.Fatal(err)
	}
}
