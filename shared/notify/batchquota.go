package notify

import (
	"context"
	"errors"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// WeChat's daily quota of subscribe messages (45009) starts again at
// midnight in Beijing. A batch whose page meets 45009 stops sending at
// once and waits for the reset without losing its place:
//
//   - The page is not checkpointed: its cursor stays where the page
//     began. Its recipients that WeChat accepted are sent, its recipients
//     refused with 45009 are failed and retryable with their credit given
//     back, and both keep their idempotency keys, so the page sent again
//     after the reset sends each of the refused once and the accepted
//     never again.
//   - The record gets QuotaResetAt, the reset plus a minute, and its due
//     entry moves there (dueKey): the new entry is written first, then the
//     record (conditional on the version read), then the old entry is
//     deleted. A crash in between leaves a second due entry, which the tick
//     drops when it meets it early (runDue). The runners of the batch's
//     other shards stop at their next page, which they read the record
//     before, and the tick hands the shards out again after the reset.

// errQuotaReached: WeChat answered 45009 in the page.
var errQuotaReached = errors.New("WeChat's daily quota of subscribe messages is reached")

// beijing is the time zone of WeChat's daily quota.
var beijing = time.FixedZone("Asia/Shanghai", 8*3600)

// quotaResetMargin is how long after WeChat's midnight a waiting batch
// resumes: the two clocks need not agree to the second.
const quotaResetMargin = time.Minute

// QuotaReset is when WeChat's daily quota starts again after t: the next
// midnight in Beijing (16:00 UTC).
func QuotaReset(t time.Time) time.Time {
	y, m, d := t.In(beijing).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, beijing).UTC()
}

// quotaReached reports whether a batch send met WeChat's daily quota.
func quotaReached(n Notification, err error) bool {
	if CodeOf(err) != CodeWeChatUnavailable {
		return false
	}
	var e *Error
	if errors.As(err, &e) && e.WeChatErrcode == wechat.CodeQuotaReached {
		return true
	}
	return n.WeChat.Errcode == wechat.CodeQuotaReached
}

// dueAt is when the batch is due: its NotBefore, or the quota's reset it
// waits for.
func (b Batch) dueAt() time.Time {
	if b.QuotaResetAt.After(b.NotBefore) {
		return b.QuotaResetAt
	}
	return b.NotBefore
}

// waitForQuota moves a running batch, a page of which met 45009, to the
// quota's reset (see above). The runner that met it has given its shard's
// lease up; the other shards' runners stop at their next page.
func (s *Service) waitForQuota(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	for range 16 {
		b, ver, err := s.getBatch(ctx, id)
		if err != nil {
			return storeErr("get batch", err)
		}
		now := s.now().UTC()
		reset := QuotaReset(now).Add(quotaResetMargin)
		if b.Status != BatchRunning || !b.QuotaResetAt.Before(reset) {
			return nil // paused or cancelled meanwhile, or another runner moved it
		}
		old := s.dueKey(b)
		b.QuotaResetAt, b.UpdatedAt = reset, now
		if err := s.retryWrite(ctx, "move batch due", func() error {
			_, err := s.st.Put(ctx, s.dueKey(b), []byte(b.ID), store.PutOptions{})
			return err
		}); err != nil {
			return err
		}
		if err := s.putBatch(ctx, b, ver); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return storeErr("batch waits for the quota", err)
		}
		s.log.Warn("batch waits for WeChat's daily quota", "batch", b.ID, "until", b.QuotaResetAt)
		if old != s.dueKey(b) {
			if err := s.st.Delete(ctx, old, store.DeleteOptions{}); err != nil {
				s.log.Warn("old due entry of a batch waiting for the quota left", "batch", b.ID, "err", err)
			}
		}
		return nil
	}
	return storeErr("batch waits for the quota", errors.New("too many concurrent updates"))
}
