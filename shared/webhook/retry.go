package webhook

import (
	"math/rand/v2"
	"time"
)

// GiveUpAfter is how long after its first attempt a message is still
// retried. The last retry is moved to exactly this mark.
const GiveUpAfter = 24 * time.Hour

// schedule is the nominal wait after failed attempt n (schedule[n-1]),
// Standard Webhooks' recommendation: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
// 10 h. The sum passes 24 h: NextAttempt moves the last retry to the
// GiveUpAfter mark, so a message gets 8 attempts over 24 hours.
var schedule = []time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// MaxAttempts is the number of attempts of a message, the first included.
var MaxAttempts = len(schedule) + 1

// jitterFraction spreads each wait uniformly over ±20 %, so the retries
// of many messages failed together do not arrive together.
const jitterFraction = 0.2

// Backoff is the wait after failed attempt number attempt (1 for the
// first attempt) before the next one: the schedule's entry with ±20 %
// jitter. An attempt below 1 counts as 1; past the schedule the last
// entry repeats (NextAttempt says when to stop).
func Backoff(attempt int) time.Duration {
	return backoff(attempt, rand.Float64)
}

// backoff is Backoff with the random source given (rnd returns [0, 1)).
func backoff(attempt int, rnd func() float64) time.Duration {
	i := min(max(attempt, 1), len(schedule)) - 1
	d := schedule[i]
	f := 1 + jitterFraction*(2*rnd()-1)
	return time.Duration(float64(d) * f)
}

// NextAttempt says when to make the attempt after failed attempt number
// attempt of a message first attempted at first, failed at now; ok is
// false when the message is to be given up: MaxAttempts are made or
// GiveUpAfter has passed. The wait is Backoff's, cut so no attempt is
// made after first+GiveUpAfter.
func NextAttempt(first, now time.Time, attempt int) (at time.Time, ok bool) {
	deadline := first.Add(GiveUpAfter)
	if attempt >= MaxAttempts || !now.Before(deadline) {
		return time.Time{}, false
	}
	at = now.Add(Backoff(attempt))
	if at.After(deadline) {
		at = deadline
	}
	return at, true
}
