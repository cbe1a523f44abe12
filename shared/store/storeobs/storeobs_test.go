package storeobs_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storeobs"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

// The wrapper is a store like any other: the conformance suite passes
// through it.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(tb *testing.T) store.Store {
		b, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), boltstore.Options{NoSync: true})
		if err != nil {
			tb.Fatal(err)
		}
		return storeobs.New(b, func(storeobs.Op, time.Duration, error) {})
	})
}

// Every operation is reported once, with its name and its error.
func TestReportsEachOperation(t *testing.T) {
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		op  storeobs.Op
		err error
	}
	var got []call
	st := storeobs.New(b, func(op storeobs.Op, d time.Duration, err error) {
		if d < 0 {
			t.Errorf("%s: negative latency %s", op, d)
		}
		got = append(got, call{op, err})
	})
	defer st.Close()
	ctx := context.Background()
	k := store.Key{Partition: "p", Sort: "s"}
	c := store.Key{Partition: "p", Sort: "c"}
	_, _ = st.Put(ctx, k, []byte("v"), store.PutOptions{})
	_, _ = st.Put(ctx, k, []byte("v"), store.PutOptions{IfAbsent: true})
	_, _ = st.Get(ctx, k)
	_, _ = st.Query(ctx, store.Query{Partition: "p", Limit: 10})
	_, _ = st.Add(ctx, c, 1, 0, 10)
	_, _ = st.AddOnce(ctx, c, 1, 0, 10, store.CounterOp{ID: "op", Keep: time.Minute})
	_, _ = st.Undo(ctx, c, "op")
	_ = st.Delete(ctx, k, store.DeleteOptions{})
	_, _ = st.Get(ctx, k)
	_, _ = st.Write(ctx, []store.WriteOp{store.WritePut(k, []byte("w"), store.PutOptions{}), store.WriteCheck(c, 0)})
	want := []call{{storeobs.OpPut, nil}, {storeobs.OpPut, store.ErrConflict}, {storeobs.OpGet, nil}, {storeobs.OpQuery, nil},
		{storeobs.OpAdd, nil}, {storeobs.OpAddOnce, nil}, {storeobs.OpUndo, nil}, {storeobs.OpDelete, nil}, {storeobs.OpGet, store.ErrNotFound},
		{storeobs.OpWrite, store.ErrConflict}}
	if len(got) != len(want) {
		t.Fatalf("got %d reports %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].op != want[i].op || !errors.Is(got[i].err, want[i].err) || (want[i].err == nil) != (got[i].err == nil) {
			t.Errorf("report %d: got %s %v, want %s %v", i, got[i].op, got[i].err, want[i].op, want[i].err)
		}
	}
}
