package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// A batch is sent in shards, so that many runners send one batch at once:
//
//   - The layout is fixed when the batch is created and kept in its record,
//     which is written once, conditionally (so two creations racing on one
//     idempotency key can never mix two layouts): explicit recipients are
//     cut into runs of ShardPages stored pages, an audience into ranges of
//     openids found while counting it (Bounds: shard i holds the users after
//     Bounds[i-1] up to Bounds[i], the last one everybody after).
//   - Each shard has its own small record (sort key s|<index>) with its
//     cursor, its counters and its lease. The tick (RunBatches) creates the
//     records that are missing, marks the batch running and hands the shards
//     that nobody holds to a ShardDispatcher: the cloud's queue (SQS on AWS,
//     an asynchronous invocation on SCF), or, without one, runners of its own
//     (Runners goroutines of this process).
//   - A runner (RunShard) takes the shard's lease with a write conditional on
//     the version it read, sends page after page and checkpoints each page on
//     the shard (counters, cursor, lease renewed), conditional on its
//     version: a runner whose lease was taken over stops at its next
//     checkpoint, and the page it sent is checkpointed once, by whoever got
//     there first. A duplicated delivery of a shard finds it leased or done
//     and does nothing; a crashed runner's shard is taken over when its lease
//     ends, from its last checkpoint. Sends carry the batch's idempotency
//     keys (<batch>:<recipient>), so a page sent again after a crash sends
//     nothing twice.
//   - Pause, cancel and WeChat's daily quota are on the batch's record: a
//     runner reads it before each page and stops there.
//   - The runner that checkpoints a shard's last page finishes the batch if
//     every shard is done (the counters of the shards summed into the record,
//     in the write that ends it); the tick does it too if that runner died.
//
// Until a batch is done its counters are its record's plus its shards';
// once done, the record's alone. A batch recorded before shards (Shards 0)
// is turned into one shard from its cursor when the tick meets it.

// MaxBatchShards bounds the shards of one batch: a larger audience gets
// larger shards.
const MaxBatchShards = 4096

// ShardRef names one shard of a batch, as it travels through a queue.
type ShardRef struct {
	// App is the AppID of the batch's app.
	App   string `json:"app"`
	Batch string `json:"batch"`
	Shard int    `json:"shard"`
}

// ShardDispatcher hands shards to runners: each ShardRef must reach
// Service.RunShard at least once (twice is harmless).
type ShardDispatcher interface {
	DispatchShards(ctx context.Context, refs []ShardRef) error
}

// batchShard is the record of one shard.
type batchShard struct {
	Index int `json:"index"`
	// Cursor is where the shard resumes: the next page for explicit
	// recipients, the last index entry done (or the openid the shard starts
	// after) for an audience.
	Cursor       string    `json:"cursor"`
	Sent         int       `json:"sent"`
	Skipped      int       `json:"skipped"`
	Failed       int       `json:"failed"`
	Unknown      int       `json:"unknown"`
	Done         bool      `json:"done,omitempty"`
	LeaseOwner   string    `json:"leaseOwner,omitempty"`
	LeaseUntil   time.Time `json:"leaseUntil,omitzero"`
	DispatchedAt time.Time `json:"dispatchedAt,omitzero"`
}

func (s *Service) shardKey(id string, i int) store.Key {
	return store.Key{Partition: s.batchPartition(id), Sort: fmt.Sprintf("s|%05d", i)}
}

// shardLayout sets a new batch's shards: ShardPages pages each for
// explicit recipients; for an audience, Bounds from countAudience.
func (s *Service) shardLayout(b *Batch, bounds []string) {
	if b.Audience != "" {
		b.Bounds = bounds
		b.Shards = len(bounds) + 1
		return
	}
	per := max(1, s.batchOpts.ShardSize/s.batchOpts.PageSize)
	if b.Pages > per*MaxBatchShards {
		per = (b.Pages + MaxBatchShards - 1) / MaxBatchShards
	}
	b.ShardPages = per
	b.Shards = max(1, (b.Pages+per-1)/per)
}

// shardStart is the cursor a shard starts at.
func (b Batch) shardStart(i int) string {
	if b.Audience != "" {
		if i == 0 {
			return ""
		}
		return b.Bounds[i-1]
	}
	return strconv.Itoa(i * b.ShardPages)
}

// shardEnd is where a shard ends: the page after its last (explicit), the
// last openid it holds ("" for the last shard of an audience).
func (b Batch) shardEnd(i int) string {
	if b.Audience != "" {
		if i >= len(b.Bounds) {
			return ""
		}
		return b.Bounds[i]
	}
	return strconv.Itoa(min(b.Pages, (i+1)*b.ShardPages))
}

func (s *Service) getShard(ctx context.Context, id string, i int) (batchShard, int64, error) {
	it, err := s.st.Get(ctx, s.shardKey(id, i))
	if err != nil {
		return batchShard{}, 0, err
	}
	var sh batchShard
	if err := json.Unmarshal(it.Value, &sh); err != nil {
		return batchShard{}, 0, err
	}
	return sh, it.Version, nil
}

// putShard writes a shard's record conditionally on the version read (0:
// none yet) and returns its new version.
func (s *Service) putShard(ctx context.Context, b Batch, sh batchShard, ver int64) (int64, error) {
	raw, _ := json.Marshal(sh)
	opts := store.PutOptions{IfVersion: ver, ExpiresAt: s.batchExpiry(b)}
	if ver == 0 {
		opts = store.PutOptions{IfAbsent: true, ExpiresAt: s.batchExpiry(b)}
	}
	return s.st.Put(ctx, s.shardKey(b.ID, sh.Index), raw, opts)
}

// shardState is one shard's record with its version (0: not written).
type shardState struct {
	batchShard
	ver int64
}

// shards returns the records of a batch's shards, in order; a shard whose
// record is not written yet is in its starting state with version 0.
func (s *Service) shards(ctx context.Context, b Batch) ([]shardState, error) {
	out := make([]shardState, b.Shards)
	for i := range out {
		out[i] = shardState{batchShard: batchShard{Index: i, Cursor: b.shardStart(i)}}
	}
	q := store.Query{Partition: s.batchPartition(b.ID), Prefix: "s|", Limit: store.MaxQueryLimit}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return nil, storeErr("query batch shards", err)
		}
		for _, it := range page.Items {
			var sh batchShard
			if err := json.Unmarshal(it.Value, &sh); err != nil || sh.Index < 0 || sh.Index >= b.Shards {
				continue
			}
			out[sh.Index] = shardState{batchShard: sh, ver: it.Version}
		}
		if page.Next == "" {
			return out, nil
		}
		q.After = page.Next
	}
}

// withShards adds the shards' counters to a batch that is not done (one
// query; none for a batch that has not started, whose shards have not).
func (s *Service) withShards(ctx context.Context, b Batch) (Batch, error) {
	if b.Shards == 0 || b.Status == BatchDone || b.StartedAt.IsZero() {
		return b, nil
	}
	shards, err := s.shards(ctx, b)
	if err != nil {
		return Batch{}, err
	}
	now := s.now()
	for _, sh := range shards {
		if !sh.Done && sh.LeaseOwner != "" && now.Before(sh.LeaseUntil) {
			b.ShardsRunning++
		}
		b.Sent += sh.Sent
		b.Skipped += sh.Skipped
		b.Failed += sh.Failed
		b.Unknown += sh.Unknown
		if sh.Done {
			b.ShardsDone++
		}
	}
	return b, nil
}

// startBatch is the tick's work on one due batch: it leases nothing, but
// turns a batch recorded before shards into one, marks the batch running,
// finishes it if all its shards are done, and dispatches the shards that
// no runner holds.
func (s *Service) startBatch(ctx context.Context, b Batch, ver int64, deadline time.Time) error {
	now := s.now().UTC()
	if b.Shards == 0 {
		if b.LeaseOwner != "" && now.Before(b.LeaseUntil) {
			return nil // a runner of the earlier layout has it
		}
		var err error
		if b, ver, err = s.shardLegacy(ctx, b, ver); err != nil || b.Shards == 0 {
			return err
		}
	}
	if b.Status == BatchScheduled {
		b.Status, b.StartedAt, b.UpdatedAt = BatchRunning, now, now
		if err := s.putBatch(ctx, b, ver); errors.Is(err, store.ErrConflict) {
			return nil // paused, cancelled or started meanwhile: the next tick sees it
		} else if err != nil {
			return storeErr("start batch", err)
		}
	}
	shards, err := s.shards(ctx, b)
	if err != nil {
		return err
	}
	var refs []ShardRef
	var idle []shardState
	for _, sh := range shards {
		switch {
		case sh.Done:
		case sh.LeaseOwner != "" && now.Before(sh.LeaseUntil):
		case s.batchOpts.Dispatcher != nil && now.Sub(sh.DispatchedAt) < s.batchOpts.Redispatch && sh.LeaseUntil.Before(sh.DispatchedAt):
			// Handed to the queue and not taken yet: waiting its turn.
		default:
			refs = append(refs, ShardRef{App: s.appID, Batch: b.ID, Shard: sh.Index})
			idle = append(idle, sh)
		}
	}
	if len(refs) == 0 {
		if len(shards) > 0 && allDone(shards) {
			return s.finishAfter(ctx, b.ID, BatchStep{})
		}
		return nil
	}
	if s.batchOpts.Dispatcher == nil {
		return s.runShards(ctx, refs, deadline)
	}
	if err := s.batchOpts.Dispatcher.DispatchShards(ctx, refs); err != nil {
		return fmt.Errorf("dispatch %d shards: %w", len(refs), err)
	}
	// Marked after the queue took them: a crash in between hands them over
	// again at the next tick, which a runner passes over.
	for _, sh := range idle {
		sh.DispatchedAt = now
		if _, err := s.putShard(ctx, b, sh.batchShard, sh.ver); err != nil && !errors.Is(err, store.ErrConflict) {
			s.log.Warn("mark shard dispatched", "batch", b.ID, "shard", sh.Index, "err", err)
		}
	}
	return nil
}

func allDone(shards []shardState) bool {
	for _, sh := range shards {
		if !sh.Done {
			return false
		}
	}
	return true
}

// runShards runs shards on this process, Runners at a time, each with its
// share of the workers.
func (s *Service) runShards(ctx context.Context, refs []ShardRef, deadline time.Time) error {
	work := make(chan ShardRef)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(s.batchOpts.Runners, len(refs)) {
		wg.Go(func() {
			for ref := range work {
				if err := s.RunShard(ctx, ref, deadline); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("shard %d: %w", ref.Shard, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, ref := range refs {
		if ctx.Err() != nil || s.now().Add(s.batchOpts.Margin).After(deadline) {
			break
		}
		work <- ref
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// shardLegacy turns a batch recorded before shards into one shard that
// starts at its cursor, its counters staying on the record. The shard is
// written first: a crash before the record leaves a shard the next tick
// finds written.
func (s *Service) shardLegacy(ctx context.Context, b Batch, ver int64) (Batch, int64, error) {
	sh := batchShard{Index: 0, Cursor: b.Cursor}
	if _, err := s.putShard(ctx, b, sh, 0); err != nil && !errors.Is(err, store.ErrConflict) {
		return b, ver, storeErr("shard batch", err)
	}
	// One shard from the start to the end (page 0 to the last for explicit
	// recipients), resuming at the cursor.
	b.Shards, b.ShardPages, b.LeaseOwner, b.LeaseUntil = 1, max(1, b.Pages), "", time.Time{}
	if b.StartedAt.IsZero() && batchStarted(b) {
		b.StartedAt = b.UpdatedAt
	}
	if err := s.putBatch(ctx, b, ver); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Batch{}, 0, nil
		}
		return b, ver, storeErr("shard batch", err)
	}
	return b, ver + 1, nil
}

// batchRunnable reports whether a shard of b may be sent now.
func (s *Service) batchRunnable(b Batch) bool {
	switch {
	case b.Status != BatchRunning && b.Status != BatchScheduled:
		return false
	case s.now().Before(b.QuotaResetAt), s.now().Before(b.NotBefore):
		return false
	}
	return b.Shards > 0
}

// RunShard sends one shard of a batch (see above): the runner's entry,
// from a queue or from runShards. A shard that is done, held by another
// runner, or of a batch that is not running is passed over without an
// error, as a duplicated delivery is.
func (s *Service) RunShard(ctx context.Context, ref ShardRef, deadline time.Time) error {
	if ref.App != s.appID {
		return fmt.Errorf("shard of app %s handed to app %s", ref.App, s.appID)
	}
	b, _, err := s.getBatch(ctx, ref.Batch)
	if errors.Is(err, store.ErrNotFound) {
		return nil // expired
	}
	if err != nil {
		return storeErr("get batch", err)
	}
	if !s.batchRunnable(b) || ref.Shard < 0 || ref.Shard >= b.Shards {
		return nil
	}
	sh, ver, err := s.getShard(ctx, b.ID, ref.Shard)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sh, ver = batchShard{Index: ref.Shard, Cursor: b.shardStart(ref.Shard)}, 0
	case err != nil:
		return storeErr("get batch shard", err)
	}
	now := s.now()
	if sh.Done {
		return s.finishAfter(ctx, b.ID, BatchStep{}) // in case the runner that ended it died before
	}
	if sh.LeaseOwner != "" && now.Before(sh.LeaseUntil) {
		return nil // another runner has it
	}
	owner := s.newID("run_")
	sh.LeaseOwner, sh.LeaseUntil = owner, now.Add(s.batchOpts.Lease).UTC()
	ver, err = s.leaseShard(ctx, b, sh, ver)
	if err != nil || ver == 0 {
		return err
	}
	t, ok := s.catalog.Lookup(b.TemplateID)
	if !ok {
		return fmt.Errorf("template %s left the catalog", b.TemplateID)
	}
	r := &shardRun{s: s, b: b, t: t, index: sh.Index, start: sh.Cursor, sh: sh, ver: ver, owner: owner, deadline: deadline}
	return r.run(ctx)
}

// leaseShard writes sh, leased by this runner, on version ver, and
// returns its new version, 0 if another runner took it first. A reply lost
// after the write is recognised by the lease's owner on the record.
func (s *Service) leaseShard(ctx context.Context, b Batch, sh batchShard, ver int64) (int64, error) {
	v, err := s.putShard(ctx, b, sh, ver)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, store.ErrConflict):
		return 0, nil // another runner took it first
	}
	var cur batchShard
	var curVer int64
	if rerr := s.retryWrite(ctx, "get batch shard", func() error {
		var gerr error
		cur, curVer, gerr = s.getShard(ctx, b.ID, sh.Index)
		return gerr
	}); rerr == nil && cur.LeaseOwner == sh.LeaseOwner {
		return curVer, nil // this write, its reply lost
	}
	return 0, storeErr("lease batch shard", err)
}

// finishBatch ends a batch whose shards are all done, with their counters
// summed into its record, in the write that ends it (batch.finished with
// it). A pause that came during the last page leaves nothing to resume:
// the batch is done.
func (s *Service) finishBatch(ctx context.Context, id string) (finished bool, err error) {
	for range 16 {
		b, ver, err := s.getBatch(ctx, id)
		if err != nil {
			return false, storeErr("get batch", err)
		}
		if b.Status == BatchDone || b.Status == BatchCancelled || b.Shards == 0 {
			return false, nil
		}
		shards, err := s.shards(ctx, b)
		if err != nil {
			return false, err
		}
		if !allDone(shards) {
			return false, nil
		}
		for _, sh := range shards {
			b.Sent += sh.Sent
			b.Skipped += sh.Skipped
			b.Failed += sh.Failed
			b.Unknown += sh.Unknown
		}
		if b.Audience != "" {
			b.Total = b.Sent + b.Skipped + b.Failed + b.Unknown // the audience as it was when sent
		}
		b.Status, b.LeaseOwner, b.LeaseUntil, b.UpdatedAt = BatchDone, "", time.Time{}, s.now().UTC()
		err = s.putBatchEnding(ctx, b, ver)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return false, storeErr("finish batch", err)
		}
		s.dropDue(ctx, b)
		return true, nil
	}
	return false, storeErr("finish batch", errors.New("too many concurrent updates"))
}

// finishAfter is finishBatch with its report: the last step of the
// runner that ended the batch is Done (a tick that ended it reports a
// step of its own).
func (s *Service) finishAfter(ctx context.Context, id string, last BatchStep) error {
	finished, err := s.finishBatch(ctx, id)
	if finished || last != (BatchStep{}) {
		last.AppID, last.BatchID, last.Done = s.appID, id, finished
		s.observe.BatchProgress(last)
	}
	return err
}
