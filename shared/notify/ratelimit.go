package notify

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// RateScope says which sends BatchOptions.Rate bounds.
type RateScope string

// The scopes of the batch rate.
const (
	// RateProcess bounds the sends of one Service (one runner process) on
	// its own: N runners of the app send up to N times the rate.
	RateProcess RateScope = "process"
	// RateShared bounds the sends of every runner of the app together,
	// through a token bucket in the store (docs/performance.md, "One rate
	// limit across runners").
	RateShared RateScope = "shared"
)

// rateLimiter paces batch sends: wait returns when the caller may send.
type rateLimiter interface {
	wait(ctx context.Context) error
}

// Tuning of the shared limiter.
const (
	// rateEpoch is how long one counter of the shared bucket lasts: it
	// holds the rate times the epoch slots (at least one, the epoch growing
	// for rates under one send per epoch).
	rateEpoch = 10 * time.Second
	// rateLate is how late after its time a reserved slot may still be
	// used; later it is dropped, so that late sends never bunch up.
	rateLate = 20 * time.Millisecond
	// rateMinChunk is the most slots one store round trip reserves at low
	// rates; at high rates the most is a fiftieth of the rate, so that an
	// app's counter takes at most about 50 reservations a second.
	rateMinChunk = 10
	// rateHorizon is how far ahead of the present a runner reserves at
	// most: beyond, it waits for time to pass.
	rateHorizon = 2 * time.Second
	// rateKeep is how long an epoch's counter outlives the epoch: much
	// more than the clock skew between runners, so that no runner still
	// reserves in an epoch whose counter expired (it would start over at 0).
	rateKeep = time.Minute
	// rateOpKeep is how long a counter remembers a reservation: long enough
	// for its repeat after a lost reply, short enough that the counter
	// remembers few (on DynamoDB they are in the item, which every
	// reservation rewrites).
	rateOpKeep = 2 * time.Second
	// rateFallbackFor is how long a runner keeps to its local fallback after
	// the store failed a reservation, before it asks the store again.
	rateFallbackFor = time.Second
	// rateFallbackShare is the share of the rate a runner sends at on its
	// own while the store does not answer: safe for up to 1/share runners.
	rateFallbackShare = 0.1
)

// newRateLimiter returns the limiter of o's scope for the app's sends.
func newRateLimiter(st store.Store, appID string, o BatchOptions) rateLimiter {
	if o.RateScope != RateShared {
		return newLimiter(o.Rate)
	}
	return newSharedLimiter(st, appID, o.Rate, time.Now, sleepCtx)
}

// sharedLimiter is a token bucket shared by every runner of an app through
// the store. Time is cut into epochs, each holding capacity slots evenly
// spaced (one per interval); the counter rl|<app>|<epoch> says how many of
// them runners have reserved. A runner adds a chunk of slots with one
// AddOnce: the value it gets back, v, means that it owns the slots
// v-chunk+1..v within the capacity, and nobody else does. It sends at their
// times, or drops those whose time passed (rateLate); when an epoch is full
// it reserves in the next. When the counter lags behind the present (the
// rate did not bind for a while) the runner moves it on to the present with
// a second AddOnce: the slots skipped are in the past, unused. The counter
// is the only shared state, so runners in any number of processes never
// own the same slot, and so never send more than one per interval between
// them (docs/performance.md, "One rate limit across runners").
type sharedLimiter struct {
	st       store.Store
	app      string
	epoch    time.Duration
	interval time.Duration
	capacity int64
	maxChunk int64
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	fallback *limiter
	instance string

	mu       sync.Mutex
	slots    []time.Time   // reserved and not yet handed out, in time order
	next     int64         // the first epoch that may have room
	fetch    chan struct{} // closed when the reservation in progress ends; nil: none
	waiting  int           // callers waiting for that reservation
	chunk    int64         // the slots to reserve next (slow start)
	dropped  bool          // slots went unused since the last reservation
	last     time.Time     // the last slot reserved
	seq      int64         // numbers this limiter's operations
	fallBack time.Time     // until then, the local fallback paces sends
	trips    int64         // store round trips made (for tests and benchmarks)
	misses   int64         // of which found their epoch full
	catchUps int64         // of which moved a lagging counter on
	tripTime time.Duration // how long the last reservation took
}

func newSharedLimiter(st store.Store, appID string, rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *sharedLimiter {
	capacity := max(1, int64(math.Floor(rate*rateEpoch.Seconds())))
	epoch := time.Duration(float64(capacity) / rate * float64(time.Second))
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &sharedLimiter{
		st: st, app: appID, epoch: epoch, interval: epoch / time.Duration(capacity), capacity: capacity,
		maxChunk: min(capacity, max(rateMinChunk, int64(math.Ceil(rate/50)))),
		now:      now, sleep: sleep, fallback: newLimiter(rate * rateFallbackShare),
		instance: idEncoding.EncodeToString(id[:]), chunk: 1,
	}
}

// epochOf returns the epoch a time falls in.
func (l *sharedLimiter) epochOf(t time.Time) int64 { return t.UnixNano() / int64(l.epoch) }

func (l *sharedLimiter) epochStart(e int64) time.Time { return time.Unix(0, e*int64(l.epoch)) }

// slotAt is the time of slot i (from 1) of epoch e.
func (l *sharedLimiter) slotAt(e, i int64) time.Time {
	return l.epochStart(e).Add(time.Duration((i - 1) * int64(l.epoch) / l.capacity))
}

// firstUsable is the first slot of epoch e that is not too late at now.
func (l *sharedLimiter) firstUsable(e int64, now time.Time) int64 {
	late := now.Sub(l.epochStart(e)) - rateLate
	if late <= 0 {
		return 1
	}
	return int64(math.Ceil(float64(late)/float64(l.interval))) + 1
}

func (l *sharedLimiter) key(e int64) store.Key {
	return store.Key{Partition: "rl|" + l.app + "|" + strconv.FormatInt(e, 10), Sort: "n"}
}

func (l *sharedLimiter) wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		now := l.now()
		for len(l.slots) > 0 && now.Sub(l.slots[0]) > rateLate {
			l.slots = l.slots[1:] // too late: unused
			l.dropped = true
		}
		if len(l.slots) > 0 {
			at := l.slots[0]
			l.slots = l.slots[1:]
			l.mu.Unlock()
			if err := l.sleep(ctx, at.Sub(now)); err != nil {
				return err
			}
			if l.now().Sub(at) <= rateLate {
				return nil
			}
			// Woken too late (the process stalled): sending now could
			// bunch with the sends of the next slots. Take another.
			continue
		}
		if now.Before(l.fallBack) {
			l.mu.Unlock()
			return l.fallback.wait(ctx)
		}
		if l.fetch != nil {
			done := l.fetch
			l.waiting++
			l.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
			}
			l.mu.Lock()
			l.waiting--
			l.mu.Unlock()
			continue
		}
		done := make(chan struct{})
		l.fetch = done
		// Slow start: the chunk doubles while the slots reserved are used
		// up in time, and halves when some went unused or the runner comes
		// back after a pause, so that a runner sending little does not
		// hold slots the others could use.
		if l.dropped || now.Sub(l.last) > rateLate+l.interval {
			l.chunk = max(1, l.chunk/2)
		} else {
			l.chunk = min(2*l.chunk, l.maxChunk)
		}
		l.dropped = false
		chunk := min(max(l.chunk, int64(l.waiting)+1), l.maxChunk)
		from, last := max(l.next, l.epochOf(now)), l.last
		l.mu.Unlock()

		var err error
		if ahead := last.Sub(now); ahead > rateHorizon {
			err = l.sleep(ctx, ahead-rateHorizon)
		}
		var slots []time.Time
		next := from
		if err == nil {
			slots, next, err = l.reserve(ctx, from, chunk)
		}

		l.mu.Lock()
		l.slots = append(l.slots, slots...)
		if len(slots) > 0 {
			l.last = slots[len(slots)-1]
		}
		l.next = next
		l.fetch = nil
		close(done)
		if err != nil && ctx.Err() == nil {
			l.fallBack = l.now().Add(rateFallbackFor)
		}
		l.mu.Unlock()
	}
}

// reserve reserves up to chunk slots in epoch from or the first later one
// with room, and returns those still usable with the first epoch that may
// still have room.
func (l *sharedLimiter) reserve(ctx context.Context, from, chunk int64) ([]time.Time, int64, error) {
	e := from
	var skip int64 // slots of the past to skip with the chunk
	bound := int64(math.MaxInt64)
	caughtUp := false
	for {
		v, err := l.add(ctx, e, chunk+skip, bound)
		if errors.Is(err, store.ErrOutOfRange) {
			// Another runner moved the counter on first: reserve after it.
			skip, bound = 0, math.MaxInt64
			continue
		}
		if err != nil {
			return nil, e, err
		}
		first, last := v-chunk-skip+1, min(v, l.capacity)
		skip, bound = 0, math.MaxInt64
		if first > l.capacity {
			l.mu.Lock()
			l.misses++
			l.mu.Unlock()
			e++ // full
			continue
		}
		now := l.now()
		var slots []time.Time
		for i := max(first, l.firstUsable(e, now)); i <= last; i++ {
			slots = append(slots, l.slotAt(e, i))
		}
		reserved, present := e, l.epochOf(now)
		if last == l.capacity {
			e++
		}
		switch {
		case len(slots) > 0 || caughtUp:
			return slots, e, nil
		case last == l.capacity:
			continue // the epoch is used up: on to the next
		case reserved < present:
			e = present // an epoch of the past
			continue
		}
		// The counter lags behind the present (the rate did not bind for a
		// while): move it on to the slot that will be due when the reply
		// comes (now plus the last round trip) and take the chunk from
		// there, unless another runner moved it on meanwhile (the bound),
		// so that runners catching up together do not each skip the slots
		// the others reserve.
		caughtUp = true
		l.mu.Lock()
		target := l.firstUsable(e, now.Add(l.tripTime+rateLate))
		if s := target - v - 1; s > 0 {
			l.catchUps++
			skip, bound = s, target+chunk-1
		}
		l.mu.Unlock()
	}
}

// add reserves delta slots of epoch e, keeping the counter at most bound,
// and returns the counter after it.
func (l *sharedLimiter) add(ctx context.Context, e, delta, bound int64) (int64, error) {
	end := l.epochStart(e).Add(l.epoch).Add(rateKeep)
	l.mu.Lock()
	l.seq++
	op := store.CounterOp{ID: "rl:" + l.instance + ":" + strconv.FormatInt(l.seq, 10),
		Keep: rateOpKeep, ExpiresAt: end}
	l.mu.Unlock()
	return l.addOnce(ctx, l.key(e), delta, bound, op)
}

// addOnce adds delta to an epoch's counter, repeating the same named
// operation once when the first attempt failed: if it was applied and only
// its reply was lost, the repeat returns the same value (the slots are not
// reserved twice).
func (l *sharedLimiter) addOnce(ctx context.Context, k store.Key, delta, bound int64, op store.CounterOp) (int64, error) {
	var err error
	for range 2 {
		l.mu.Lock()
		l.trips++
		l.mu.Unlock()
		began := l.now()
		var v int64
		v, err = l.st.AddOnce(ctx, k, delta, 0, bound, op)
		l.mu.Lock()
		l.tripTime = l.now().Sub(began)
		l.mu.Unlock()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return 0, err
		}
	}
	return 0, err
}

// retryable reports whether a store error may pass on a repeat: not one of
// the refusals that no repeat changes.
func retryable(err error) bool {
	for _, bug := range []error{store.ErrInvalidKey, store.ErrNotCounter, store.ErrInvalidOp, store.ErrOutOfRange} {
		if errors.Is(err, bug) {
			return false
		}
	}
	return true
}

// roundTrips is the number of store calls the limiter made.
func (l *sharedLimiter) roundTrips() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trips
}

// sleepCtx waits for d or the end of ctx.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
