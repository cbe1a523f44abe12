package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

func newBolt(t *testing.T) store.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	ka = store.Key{Partition: "p", Sort: "a"}
	kb = store.Key{Partition: "q", Sort: "b"}
)

func threeOps() []store.WriteOp {
	return []store.WriteOp{
		store.WritePut(ka, []byte("a"), store.PutOptions{}),
		store.WritePut(kb, []byte("b"), store.PutOptions{}),
		store.WriteCheck(store.Key{Partition: "p", Sort: "c"}, 0),
	}
}

// present reports which of ka and kb a Get finds.
func present(t *testing.T, s store.Store) string {
	t.Helper()
	out := ""
	for _, k := range []store.Key{ka, kb} {
		_, err := s.Get(context.Background(), k)
		switch {
		case err == nil:
			out += "+"
		case errors.Is(err, store.ErrNotFound):
			out += "-"
		default:
			t.Fatal(err)
		}
	}
	return out
}

func TestCountingCountsWriteOnce(t *testing.T) {
	c := storetest.NewCounting(newBolt(t))
	if _, err := c.Write(context.Background(), threeOps()); err != nil {
		t.Fatal(err)
	}
	if got := c.Counts(); got["write"] != 1 || c.Total() != 1 {
		t.Fatalf("counts after one Write of 3 ops: got %v (total %d), want write 1, total 1", got, c.Total())
	}
}

func TestFaultyWrite(t *testing.T) {
	for _, tc := range []struct {
		afterWrite float64
		want       string // what the failed Write left
	}{{0, "--"}, {1, "++"}} {
		t.Run(fmt.Sprint("afterWrite=", tc.afterWrite), func(t *testing.T) {
			s := newBolt(t)
			f := storetest.NewFaulty(s, 1)
			var seen []string
			f.Only(func(op string, k store.Key) bool { seen = append(seen, op+" "+k.String()); return true })
			f.SetRate(1, tc.afterWrite, 0)
			if _, err := f.Write(context.Background(), threeOps()); !errors.Is(err, storetest.ErrInjected) {
				t.Fatalf("Write: got %v, want ErrInjected", err)
			}
			if got := present(t, s); got != tc.want {
				t.Fatalf("items after the fault: got %s, want %s", got, tc.want)
			}
			if fmt.Sprint(seen) != "[write p/a]" || f.Faults() != 1 {
				t.Fatalf("matched %v, %d faults; want [write p/a], 1", seen, f.Faults())
			}
		})
	}
}

func TestLostRepliesWrite(t *testing.T) {
	s := newBolt(t)
	l := storetest.NewLostReplies(s)
	l.Reset(1, nil)
	ctx := context.Background()
	if _, err := l.Write(ctx, threeOps()); !errors.Is(err, storetest.ErrLostReply) {
		t.Fatalf("Write: got %v, want ErrLostReply", err)
	}
	if got := present(t, s); got != "++" {
		t.Fatalf("items after the lost reply: got %s, want ++ (applied)", got)
	}
	if fmt.Sprint(l.Lost()) != "[write p/a]" {
		t.Fatalf("lost: got %v, want [write p/a]", l.Lost())
	}
	// A refused Write applied nothing: it is not counted, and loses nothing.
	l.Reset(1, nil)
	ops := []store.WriteOp{store.WritePut(ka, []byte("x"), store.PutOptions{IfAbsent: true})}
	if _, err := l.Write(ctx, ops); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("refused Write: got %v, want ErrConflict", err)
	}
	if l.Writes() != 0 {
		t.Fatalf("writes counted after a refused Write: %d, want 0", l.Writes())
	}
}
