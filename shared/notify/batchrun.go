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

// A shard is sent by one pool of Workers that runs across its pages: the
// runner feeds a page's recipients to the pool and reads the next page
// while the last sends of the one before are under way, and a checkpointer
// records the pages in order as each one's sends have all ended. A page
// is checkpointed only once all of it and all before it are; a failure
// stops the feeding, lets the sends under way end (cutting one short would
// make its outcome ambiguous) and leaves the failed page and those after it
// to the next run, whose idempotency keys make them exact.

// shardRun is one runner's work on one shard.
type shardRun struct {
	s        *Service
	b        Batch
	t        Template
	index    int        // the shard's
	start    string     // the cursor the run starts at
	sh       batchShard // the shard as last checkpointed: the checkpointer's
	ver      int64
	owner    string
	deadline time.Time

	mu      sync.Mutex
	err     error // the first failure
	stop    chan struct{}
	stopped sync.Once
	// lastStep is the report of the shard's last page, made once the
	// batch's end is known (finishAfter).
	lastStep BatchStep
}

// runPage is a page under way.
type runPage struct {
	recipients []BatchRecipient
	next       string // the shard's cursor after it
	last       bool
	counts     pageCounts // under shardRun.mu
	left       int        // sends not ended yet, under shardRun.mu
	failed     bool       // under shardRun.mu
	done       chan struct{}
}

type runItem struct {
	page *runPage
	to   BatchRecipient
}

// errStopped: the batch was paused or cancelled, or met the quota
// elsewhere, or the deadline came: the run stops without an error.
var errStopped = errors.New("batch stopped")

// halt records why the run stops after the pages fed so far, which end
// and are checkpointed as usual.
func (r *shardRun) halt(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

// fail records a failure and stops the sends not begun.
func (r *shardRun) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.stopped.Do(func() { close(r.stop) })
}

// end records that n sends of page p ended (failed: one of them or the
// feeding failed).
func (r *shardRun) end(p *runPage, n int, failed bool) {
	r.mu.Lock()
	p.left -= n
	p.failed = p.failed || failed
	last := p.left == 0
	r.mu.Unlock()
	if last {
		close(p.done)
	}
}

func (r *shardRun) run(ctx context.Context) error {
	s := r.s
	r.stop = make(chan struct{})
	work := make(chan runItem)
	var wg sync.WaitGroup
	for range max(1, s.batchOpts.Workers/max(1, s.batchOpts.Runners)) {
		wg.Go(func() {
			for it := range work {
				r.send(ctx, it)
			}
		})
	}
	pages := make(chan *runPage, 2)
	checked := make(chan bool, 1)
	go func() { checked <- r.checkpointer(ctx, pages) }()
	r.feed(ctx, work, pages)
	close(work)
	close(pages)
	wg.Wait()
	done := <-checked

	r.mu.Lock()
	err := r.err
	r.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	switch {
	case done:
		return s.finishAfter(ctx, r.b.ID, r.lastStep)
	case errors.Is(err, errQuotaReached):
		r.release(ctx)
		return s.waitForQuota(ctx, r.b.ID)
	case errors.Is(err, errLeaseLost):
		s.log.Warn("batch shard taken over", "batch", r.b.ID, "shard", r.index)
		return nil
	case err == nil, errors.Is(err, errStopped):
		r.release(ctx)
		return nil
	default:
		r.release(ctx)
		return err
	}
}

// feed loads the shard's pages one after the other and hands their
// recipients to the workers, until the last page, a failure or a stop.
func (r *shardRun) feed(ctx context.Context, work chan<- runItem, pages chan<- *runPage) {
	s := r.s
	cursor := r.start
	for {
		if s.now().Add(s.batchOpts.Margin).After(r.deadline) {
			r.halt(errStopped)
			return
		}
		select {
		case <-r.stop:
			return
		default:
		}
		if err := r.stillRunning(ctx); err != nil {
			if errors.Is(err, errStopped) {
				r.halt(err) // paused or cancelled: the pages fed finish and count
			} else {
				r.fail(err)
			}
			return
		}
		recipients, next, last, err := s.loadShardPage(ctx, r.b, r.index, cursor)
		if err != nil {
			r.fail(err)
			return
		}
		p := &runPage{recipients: recipients, next: next, last: last, left: len(recipients) + 1, done: make(chan struct{})}
		pages <- p
		fed := 0
	feed:
		for _, to := range recipients {
			if s.now().Add(s.batchOpts.Margin).After(r.deadline) {
				r.fail(errStopped) // mid-page: the page goes again next time
				break
			}
			select {
			case work <- runItem{page: p, to: to}:
				fed++
			case <-r.stop:
				break feed
			case <-ctx.Done():
				r.fail(ctx.Err())
				break feed
			}
		}
		// The one extra count is the feeding's: a page whose feeding was
		// cut short is failed.
		r.end(p, len(recipients)-fed+1, fed < len(recipients))
		if last || fed < len(recipients) {
			return
		}
		cursor = next
	}
}

// stillRunning reads the batch's record before a page: a pause, a cancel
// or a quota wait stops the run there.
func (r *shardRun) stillRunning(ctx context.Context) error {
	b, _, err := r.s.getBatch(ctx, r.b.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errStopped
	}
	if err != nil {
		return storeErr("get batch", err)
	}
	if !r.s.batchRunnable(b) {
		return errStopped
	}
	return nil
}

// send sends one recipient of a page, under the rate limit.
func (r *shardRun) send(ctx context.Context, it runItem) {
	s, b, t := r.s, r.b, r.t
	select {
	case <-r.stop:
		r.end(it.page, 1, true) // not sent: the page goes again
		return
	default:
	}
	if err := s.limiter.wait(ctx); err != nil {
		r.fail(err)
		r.end(it.page, 1, true)
		return
	}
	if s.now().Add(s.batchOpts.Margin).After(r.deadline) {
		// The rate limit held it until the deadline came close.
		r.fail(errStopped)
		r.end(it.page, 1, true)
		return
	}
	to := it.to
	n, err := s.sendWithRetry(ctx, SendRequest{
		To: Recipient{UserID: to.UserID, OpenID: to.OpenID}, Template: t.ID, Data: mergeData(b.Data, to.Data),
		Page: b.Page, MiniprogramState: b.MiniprogramState, Lang: b.Lang,
		IdempotencyKey: b.ID + ":" + to.key(), Source: FromBatch,
	})
	switch code := CodeOf(err); {
	case quotaReached(n, err):
		r.fail(errQuotaReached) // the page is sent again after the reset
		r.end(it.page, 1, true)
	case err == nil && b.Audience != "" && notInAudience(n):
		// A stale index entry: pruned, and not counted (the audience is
		// the users who hold a credit).
		s.leaveAudience(context.WithoutCancel(ctx), n.OpenID, t)
		r.end(it.page, 1, false)
	case err == nil, code == CodeWeChatUnavailable, code == CodeBadRequest:
		if n.ID == "" {
			n.Status = StatusFailed
		}
		r.mu.Lock()
		it.page.counts.add(n.Status)
		r.mu.Unlock()
		r.end(it.page, 1, false)
	default:
		r.fail(err)
		r.end(it.page, 1, true)
	}
}

// checkpointer records the pages in order as they end, and reports
// whether it recorded the shard's last page. After a failed page it
// records none, but still waits for every page to end.
func (r *shardRun) checkpointer(ctx context.Context, pages <-chan *runPage) (done bool) {
	ok := true
	for p := range pages {
		<-p.done
		r.mu.Lock()
		failed := p.failed
		r.mu.Unlock()
		if !ok || failed {
			ok = false
			continue
		}
		if err := r.checkpoint(ctx, p); err != nil {
			r.fail(err)
			ok = false
			continue
		}
		done = p.last
	}
	return done
}

// checkpoint adds a page's outcomes to the shard and moves its cursor on
// the version this runner holds, renewing its lease; the last page marks
// the shard done. A reply lost after the write is recognised on the record
// by this runner's lease and the cursor.
func (r *shardRun) checkpoint(ctx context.Context, p *runPage) error {
	s := r.s
	sh := r.sh
	c := p.counts
	sh.Sent += c.sent
	sh.Skipped += c.skipped
	sh.Failed += c.failed
	sh.Unknown += c.unknown
	sh.Cursor = p.next
	sh.LeaseUntil = s.now().Add(s.batchOpts.Lease).UTC()
	if p.last {
		sh.Done, sh.LeaseUntil = true, time.Time{}
	}
	var ver int64
	err := s.retryWrite(ctx, "checkpoint batch shard", func() error {
		v, err := s.putShard(ctx, r.b, sh, r.ver)
		if errors.Is(err, store.ErrConflict) {
			cur, curVer, gerr := s.getShard(ctx, r.b.ID, sh.Index)
			switch {
			case gerr != nil:
				return gerr
			case cur.LeaseOwner != r.owner || cur.Cursor != sh.Cursor || cur.Done != sh.Done:
				ver = -1 // taken over
				return nil
			}
			v, err = curVer, nil // this write, its reply lost
		}
		ver = v
		return err
	})
	if err != nil {
		return err
	}
	if ver < 0 {
		return errLeaseLost
	}
	r.sh, r.ver = sh, ver
	step := BatchStep{AppID: s.appID, BatchID: r.b.ID, Sent: c.sent, Skipped: c.skipped, Failed: c.failed, Unknown: c.unknown}
	if p.last {
		r.lastStep = step
	} else {
		s.observe.BatchProgress(step)
	}
	return nil
}

// release gives the shard's lease up, on the version this runner holds
// (a conflict: a retry whose first try was applied, or another runner's).
func (r *shardRun) release(ctx context.Context) {
	sh := r.sh
	sh.LeaseOwner, sh.LeaseUntil = "", time.Time{}
	if err := r.s.retryWrite(ctx, "release batch shard", func() error {
		_, err := r.s.putShard(ctx, r.b, sh, r.ver)
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	}); err != nil {
		r.s.log.Warn("release batch shard", "batch", r.b.ID, "shard", sh.Index, "err", err)
	}
}

// loadShardPage returns the recipients of shard i at cursor, the cursor
// after them and whether they are the shard's last.
func (s *Service) loadShardPage(ctx context.Context, b Batch, i int, cursor string) ([]BatchRecipient, string, bool, error) {
	if b.Audience != "" {
		upTo := b.shardEnd(i)
		page, err := s.st.Query(ctx, store.Query{Partition: s.audiencePartition(b.TemplateID), After: cursor, Limit: s.batchOpts.PageSize})
		if err != nil {
			return nil, "", false, storeErr("query audience", err)
		}
		// The cursor is the last entry done; a user's other entries follow
		// it, and are skipped (a cursor of the earlier layout, or a shard's
		// start, is an openid).
		out := make([]BatchRecipient, 0, len(page.Items))
		prev, next, end := audienceOpenID(cursor), cursor, page.Next == ""
		for _, it := range page.Items {
			o := audienceOpenID(it.Key.Sort)
			if upTo != "" && o > upTo {
				end = true // the next shard's
				break
			}
			if o != prev {
				out, prev = append(out, BatchRecipient{OpenID: o}), o
			}
			next = it.Key.Sort
		}
		return out, next, end, nil
	}
	n, err := strconv.Atoi(cursor)
	end, eerr := strconv.Atoi(b.shardEnd(i))
	if err != nil || eerr != nil || n < 0 {
		return nil, "", false, fmt.Errorf("batch %s shard %d: bad cursor %q", b.ID, i, cursor)
	}
	if n >= end {
		return nil, cursor, true, nil
	}
	it, err := s.st.Get(ctx, s.batchPageKey(b.ID, n))
	if err != nil {
		return nil, "", false, storeErr("get batch page", err)
	}
	var out []BatchRecipient
	if err := json.Unmarshal(it.Value, &out); err != nil {
		return nil, "", false, storeErr("decode batch page", err)
	}
	return out, strconv.Itoa(n + 1), n+1 >= end, nil
}
