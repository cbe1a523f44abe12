package notify

import (
	"context"
	"errors"
	"strings"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Pausing a batch keeps its place: the record keeps its cursor and
// counters, and only its status changes, so that a resumed batch goes on
// from the page after the last one checkpointed, and the idempotency keys
// of its recipients make a page sent again exact.
//
// The writes, each conditional on the version read:
//
//   - PauseBatch reads the record and its due entry, writes the record
//     paused, then deletes the due entry conditionally on the version it
//     read. A runner in the middle of a page finds the record changed at
//     its checkpoint: it counts the page on the paused record, moves the
//     cursor past it, gives up its lease and stops.
//   - ResumeBatch writes the due entry first (a Put moves its version, so
//     a pause's conditional delete of the older one fails), then the record
//     back to scheduled (running if it had started). A crash in between
//     leaves a paused batch with a due entry, which the runner passes over,
//     and a retried resume completes.
//   - The runner never deletes the due entry of a paused batch: it could be
//     the one a resume has just written.

func (s *Service) dueKey(b Batch) store.Key {
	return store.Key{Partition: s.duePartition(), Sort: dueSort(b.dueAt(), b.ID)}
}

// batchForUpdate reads a batch and its version, for a conditional write.
func (s *Service) batchForUpdate(ctx context.Context, id string) (Batch, int64, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "|\x00") {
		return Batch{}, 0, Errorf(CodeNotFound, "no such batch")
	}
	b, ver, err := s.getBatch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Batch{}, 0, Errorf(CodeNotFound, "no such batch")
	}
	if err != nil {
		return Batch{}, 0, storeErr("get batch", err)
	}
	return b, ver, nil
}

func batchFinished(b Batch) error {
	return Errorf(CodeBatchFinished, "the batch is %s", b.Status)
}

// PauseBatch stops a scheduled or running batch without losing its place:
// a running one stops at its next page boundary (the page under way is
// sent and counted), and ResumeBatch puts it back. Pausing a paused batch
// changes nothing; a done or cancelled one is batch_finished.
func (s *Service) PauseBatch(ctx context.Context, id string) (Batch, error) {
	for range 16 {
		b, ver, err := s.batchForUpdate(ctx, id)
		if err != nil {
			return Batch{}, err
		}
		switch b.Status {
		case BatchDone, BatchCancelled:
			return Batch{}, batchFinished(b)
		case BatchPaused:
			return s.withShards(ctx, b)
		}
		var dueVer int64
		if it, err := s.st.Get(ctx, s.dueKey(b)); err == nil {
			dueVer = it.Version
		} else if !errors.Is(err, store.ErrNotFound) {
			return Batch{}, storeErr("get batch due", err)
		}
		b.Status, b.UpdatedAt = BatchPaused, s.now().UTC()
		if err := s.putBatch(ctx, b, ver); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return Batch{}, storeErr("pause batch", err)
		}
		if dueVer > 0 {
			// A conflict: a resume wrote the entry again meanwhile, and it
			// stays. Another failure leaves an entry the runner passes over.
			err := s.st.Delete(ctx, s.dueKey(b), store.DeleteOptions{IfVersion: dueVer})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				s.log.Warn("drop paused batch due entry", "batch", b.ID, "err", err)
			}
		}
		return s.withShards(ctx, b)
	}
	return Batch{}, storeErr("pause batch", errors.New("too many concurrent updates"))
}

// ResumeBatch puts a paused batch back to be run by the next tick, from
// where it stopped. Resuming a batch that is not paused (scheduled or
// running) changes nothing; a done or cancelled one is batch_finished.
func (s *Service) ResumeBatch(ctx context.Context, id string) (Batch, error) {
	for range 16 {
		b, ver, err := s.batchForUpdate(ctx, id)
		if err != nil {
			return Batch{}, err
		}
		switch b.Status {
		case BatchDone, BatchCancelled:
			return Batch{}, batchFinished(b)
		case BatchScheduled, BatchRunning:
			return s.withShards(ctx, b)
		}
		// The due entry first: see above.
		if err := s.retryWrite(ctx, "put batch due", func() error {
			_, err := s.st.Put(ctx, s.dueKey(b), []byte(b.ID), store.PutOptions{})
			return err
		}); err != nil {
			return Batch{}, err
		}
		b.Status, b.UpdatedAt = BatchScheduled, s.now().UTC()
		if batchStarted(b) {
			b.Status = BatchRunning
		}
		if err := s.putBatch(ctx, b, ver); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return Batch{}, storeErr("resume batch", err)
		}
		return s.withShards(ctx, b)
	}
	return Batch{}, storeErr("resume batch", errors.New("too many concurrent updates"))
}

// batchStarted reports whether a batch has started: the tick started it,
// or (recorded before shards) it checkpointed a page.
func batchStarted(b Batch) bool {
	if !b.StartedAt.IsZero() {
		return true
	}
	if b.Shards > 0 {
		return false
	}
	if b.Sent+b.Skipped+b.Failed+b.Unknown > 0 {
		return true
	}
	if b.Audience != "" {
		return b.Cursor != ""
	}
	return b.Cursor != "0"
}
