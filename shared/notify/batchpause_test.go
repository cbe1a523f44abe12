package notify_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// waitDelivered waits until the fake WeChat delivered at least n messages.
func waitDelivered(tb testing.TB, r *rig, n int) {
	tb.Helper()
	for end := time.Now().Add(20 * time.Second); r.fake.Delivered() < n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			tb.Fatalf("waited for %d deliveries, got %d", n, r.fake.Delivered())
		}
	}
}

// TestBatchPauseResume pauses a running batch: it stops at its next page
// boundary with every page it sent counted and its place kept, a tick
// passes it over, and once resumed it goes on from there: every recipient
// got exactly one message.
func TestBatchPauseResume(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 200, Workers: 4, PageSize: 10})
	openIDs := r.users(t, svc, 150, 120)
	ctx := context.Background()
	b, err := svc.CreateBatch(ctx, batchOf(openIDs, "pause-1"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.RunBatches(ctx, time.Now().Add(time.Minute)) }()
	waitDelivered(t, r, 25)
	p, err := svc.PauseBatch(ctx, b.ID)
	if err != nil || p.Status != notify.BatchPaused {
		t.Fatalf("pause: got %v %v, want paused", p.Status, err)
	}
	atPause := r.fake.Delivered()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	paused, _ := svc.Batch(ctx, b.ID)
	delivered := r.fake.Delivered()
	if paused.Status != notify.BatchPaused || delivered > atPause+10 || paused.Sent != delivered || paused.ShardsRunning != 0 {
		t.Fatalf("after pause: %+v with %d delivered (%d at pause); want paused, at most one more page, all counted, no lease",
			paused, delivered, atPause)
	}
	atPage := paused.Sent + paused.Skipped
	if atPage%10 != 0 {
		t.Fatalf("paused with %d done, want a page boundary (10 a page)", atPage)
	}
	// Pausing again changes nothing; a tick passes a paused batch over.
	if again, err := svc.PauseBatch(ctx, b.ID); err != nil || again.Status != notify.BatchPaused || again.Sent+again.Skipped != atPage {
		t.Fatalf("pause again: got %+v %v", again, err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Batch(ctx, b.ID); got.Status != notify.BatchPaused || r.fake.Delivered() != delivered || got.Sent+got.Skipped != atPage {
		t.Fatalf("a tick while paused: got %s with %d done and %d delivered, want paused with %d and %d", got.Status,
			got.Sent+got.Skipped, r.fake.Delivered(), atPage, delivered)
	}
	res, err := svc.ResumeBatch(ctx, b.ID)
	if err != nil || res.Status != notify.BatchRunning || res.Sent+res.Skipped != atPage {
		t.Fatalf("resume: got %+v %v, want running with %d done", res, err, atPage)
	}
	if again, err := svc.ResumeBatch(ctx, b.ID); err != nil || again.Status != notify.BatchRunning {
		t.Fatalf("resume again: got %v %v, want running, unchanged", again.Status, err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	final, _ := svc.Batch(ctx, b.ID)
	checkExactlyOnce(t, r, final, openIDs, 120)
}

// TestBatchPauseScheduled pauses a batch before its time: the tick after
// its time sends nothing; resumed, it is scheduled again and runs.
func TestBatchPauseScheduled(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000, PageSize: 4})
	openIDs := r.users(t, svc, 9, 9)
	ctx := context.Background()
	req := batchOf(openIDs, "")
	req.NotBefore = time.Now().Add(300 * time.Millisecond)
	b, err := svc.CreateBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := svc.PauseBatch(ctx, b.ID); err != nil || p.Status != notify.BatchPaused {
		t.Fatalf("pause: got %v %v", p.Status, err)
	}
	time.Sleep(time.Until(req.NotBefore) + 50*time.Millisecond)
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Batch(ctx, b.ID); got.Status != notify.BatchPaused || r.fake.Delivered() != 0 {
		t.Fatalf("due but paused: got %s and %d delivered, want paused and none", got.Status, r.fake.Delivered())
	}
	res, err := svc.ResumeBatch(ctx, b.ID)
	if err != nil || res.Status != notify.BatchScheduled || !res.StartedAt.IsZero() || res.Sent+res.Skipped != 0 {
		t.Fatalf("resume: got %+v %v, want scheduled at the start", res, err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	final, _ := svc.Batch(ctx, b.ID)
	checkExactlyOnce(t, r, final, openIDs, 9)
}

// TestBatchPauseFinished: a done or cancelled batch is neither paused nor
// resumed (batch_finished); a paused batch can be cancelled, and then
// never runs.
func TestBatchPauseFinished(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 5000})
	openIDs := r.users(t, svc, 4, 4)
	ctx := context.Background()
	done, err := svc.CreateBatch(ctx, batchOf(openIDs[:2], ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	paused, err := svc.CreateBatch(ctx, batchOf(openIDs[2:], ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PauseBatch(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	c, err := svc.CancelBatch(ctx, paused.ID)
	if err != nil || c.Status != notify.BatchCancelled {
		t.Fatalf("cancel a paused batch: got %v %v, want cancelled", c.Status, err)
	}
	for _, id := range []string{done.ID, paused.ID} {
		if _, err := svc.PauseBatch(ctx, id); notify.CodeOf(err) != notify.CodeBatchFinished {
			t.Errorf("pause %s: got %v, want batch_finished", id, err)
		}
		if _, err := svc.ResumeBatch(ctx, id); notify.CodeOf(err) != notify.CodeBatchFinished {
			t.Errorf("resume %s: got %v, want batch_finished", id, err)
		}
	}
	for _, id := range []string{"bat_nope", "", "a|b"} {
		if _, err := svc.PauseBatch(ctx, id); notify.CodeOf(err) != notify.CodeNotFound {
			t.Errorf("pause %q: got %v, want not_found", id, err)
		}
		if _, err := svc.ResumeBatch(ctx, id); notify.CodeOf(err) != notify.CodeNotFound {
			t.Errorf("resume %q: got %v, want not_found", id, err)
		}
	}
	if err := svc.RunBatches(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Batch(ctx, paused.ID); got.Status != notify.BatchCancelled || r.fake.Delivered() != 2 {
		t.Fatalf("cancelled after a pause: got %s with %d delivered, want cancelled and only the first batch's 2", got.Status, r.fake.Delivered())
	}
}

// TestBatchPauseResumeMidPage pauses and at once resumes a batch while its
// runner is in the middle of a page: the runner still holds the lease, so
// it counts the page and goes on to the end in the same tick.
func TestBatchPauseResumeMidPage(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{Rate: 200, Workers: 4, PageSize: 20})
	openIDs := r.users(t, svc, 60, 60)
	ctx := context.Background()
	b, err := svc.CreateBatch(ctx, batchOf(openIDs, ""))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.RunBatches(ctx, time.Now().Add(time.Minute)) }()
	waitDelivered(t, r, 25) // in the second page, which takes 100 ms
	if _, err := svc.PauseBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ResumeBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final, _ := svc.Batch(ctx, b.ID)
	checkExactlyOnce(t, r, final, openIDs, 60)
}

// TestBatchPauseRaces pauses and resumes a batch at random moments while
// two runners tick it with short deadlines, so that pauses land before,
// during and right at the end of pages and checkpoints: every recipient
// got exactly one message and the counters equal WeChat's truth.
func TestBatchPauseRaces(t *testing.T) {
	r := newRig(t, nil)
	opts := notify.BatchOptions{Rate: 3000, Workers: 8, PageSize: 7, Lease: 300 * time.Millisecond, Margin: 5 * time.Millisecond}
	setup := r.service(t, r.st, opts)
	const n, withCredit = 400, 350
	openIDs := r.users(t, setup, n, withCredit)
	ctx := context.Background()
	b, err := setup.CreateBatch(ctx, batchOf(openIDs, "races"))
	if err != nil {
		t.Fatal(err)
	}
	runners := []*notify.Service{r.service(t, r.st, opts), r.service(t, r.st, opts)}
	var wg sync.WaitGroup
	var finished atomic.Bool
	deadline := time.Now().Add(60 * time.Second)
	for i, svc := range runners {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for !finished.Load() && time.Now().Before(deadline) {
				_ = svc.RunBatches(ctx, time.Now().Add(opts.Margin+time.Duration(rng.IntN(60))*time.Millisecond))
			}
		})
	}
	// The controller: pause, wait, resume, wait, at random, until done.
	rng := rand.New(rand.NewPCG(9, 9))
	var pauses, whileLeased int
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
		p, err := setup.PauseBatch(ctx, b.ID)
		if notify.CodeOf(err) == notify.CodeBatchFinished {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pauses++
		if p.ShardsRunning > 0 {
			whileLeased++
		}
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		if _, err := setup.ResumeBatch(ctx, b.ID); notify.CodeOf(err) == notify.CodeBatchFinished {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	finished.Store(true)
	wg.Wait()
	final, err := setup.Batch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pauses, %d of them while a runner held the batch; %d pages of 7", pauses, whileLeased, final.Pages)
	if whileLeased == 0 {
		t.Fatal("no pause landed while a runner held the batch: the test proves nothing")
	}
	checkExactlyOnce(t, r, final, openIDs, withCredit)
}
