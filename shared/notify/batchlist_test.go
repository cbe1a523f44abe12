package notify_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storetest"
)

func listRig(t *testing.T) (*notify.Service, *storetest.Counting, []string) {
	t.Helper()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	counting := storetest.NewCounting(bolt)
	r := newRig(t, counting)
	svc := r.service(t, counting, notify.BatchOptions{})
	return svc, counting, r.users(t, svc, 3, 0)
}

func createBatches(t *testing.T, svc *notify.Service, users []string, n int, key func(i int) string) []notify.Batch {
	t.Helper()
	var out []notify.Batch
	for i := range n {
		b, err := svc.CreateBatch(context.Background(), notify.BatchRequest{Template: "lead_digest", IdempotencyKey: key(i),
			Data:       map[string]string{"thing1": "Daily leads", "number2": "3"},
			Recipients: []notify.BatchRecipient{{OpenID: users[i%len(users)]}}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// ListBatches pages through the app's batches newest first, each once,
// and a batch created again with its idempotency key is listed once.
func TestListBatches(t *testing.T) {
	svc, _, users := listRig(t)
	ctx := context.Background()
	made := createBatches(t, svc, users, 5, func(i int) string { return fmt.Sprintf("daily-%d", i) })
	// The retry of batch 2's creation: the same batch, a second list entry.
	if again := createBatches(t, svc, users[2:], 1, func(int) string { return "daily-2" }); again[0].ID != made[2].ID {
		t.Fatalf("a retried creation made batch %s, want %s", again[0].ID, made[2].ID)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the list does not end")
		}
		p, err := svc.ListBatches(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Batches) > 2 {
			t.Fatalf("a page of %d, limit 2", len(p.Batches))
		}
		for _, b := range p.Batches {
			got = append(got, b.ID)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(got) != len(made) {
		t.Fatalf("listed %v, want the %d batches once each", got, len(made))
	}
	created := map[string]notify.Batch{}
	for _, b := range made {
		created[b.ID] = b
	}
	for i := 1; i < len(got); i++ {
		if created[got[i]].CreatedAt.After(created[got[i-1]].CreatedAt) {
			t.Errorf("position %d: %s was created after %s, listed before it: want newest first", i, got[i], got[i-1])
		}
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("batch %s listed twice", id)
		}
		seen[id] = true
	}
	for _, bad := range []struct {
		cursor string
		limit  int
	}{{"", 0}, {"", notify.MaxBatchListLimit + 1}, {"nonsense", 10}, {"12|x", 10}} {
		if _, err := svc.ListBatches(ctx, bad.cursor, bad.limit); notify.CodeOf(err) != notify.CodeBadRequest {
			t.Errorf("cursor %q limit %d: %v, want bad_request", bad.cursor, bad.limit, err)
		}
	}
}

// A page costs one query and one read per batch on it, whatever the
// number of batches.
func TestListBatchesCostsThePage(t *testing.T) {
	for _, total := range []int{5, 60} {
		svc, counting, users := listRig(t)
		createBatches(t, svc, users, total, func(i int) string { return "" })
		before := counting.Total()
		p, err := svc.ListBatches(context.Background(), "", 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Batches) != 4 || p.Next == "" {
			t.Fatalf("%d batches: a first page of %d, next %q", total, len(p.Batches), p.Next)
		}
		if ops := counting.Total() - before; ops != 1+4 {
			t.Errorf("%d batches: the page cost %d store round trips, want 5 (one query, four reads)", total, ops)
		}
	}
}
