package webhook

import (
	"math"
	"testing"
	"time"
)

func TestBackoffSchedule(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	half := func() float64 { return 0.5 }
	for i, w := range want {
		if got := backoff(i+1, half); got != w {
			t.Errorf("nominal backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if backoff(0, half) != want[0] || backoff(-3, half) != want[0] {
		t.Error("attempt below 1 is not the first wait")
	}
	if backoff(100, half) != want[len(want)-1] || backoff(math.MaxInt, half) != want[len(want)-1] {
		t.Error("attempt past the schedule is not the last wait")
	}
	if got := backoff(2, func() float64 { return 0 }); got != 4*time.Minute {
		t.Errorf("lowest jitter of 5 min = %v", got)
	}
	if got := backoff(2, func() float64 { return math.Nextafter(1, 0) }); got > 6*time.Minute || got < 5*time.Minute+59*time.Second {
		t.Errorf("highest jitter of 5 min = %v", got)
	}
}

func TestBackoffJitter(t *testing.T) {
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		nominal := backoff(attempt, func() float64 { return 0.5 })
		lo, hi := time.Duration(float64(nominal)*0.8), time.Duration(float64(nominal)*1.2)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Backoff(attempt)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %v outside [%v, %v]", attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Fatalf("Backoff(%d) gave only %d distinct waits in 200", attempt, len(seen))
		}
	}
}

// TestRetriesCover24Hours simulates a message that always fails.
func TestRetriesCover24Hours(t *testing.T) {
	first := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	deadline := first.Add(GiveUpAfter)
	for run := range 500 {
		now, attempts := first, 1
		for {
			at, ok := NextAttempt(first, now, attempts)
			if !ok {
				break
			}
			if !at.After(now) || at.After(deadline) {
				t.Fatalf("run %d: attempt %d at %v (previous %v, deadline %v)", run, attempts+1, at, now, deadline)
			}
			now, attempts = at, attempts+1
		}
		if attempts != MaxAttempts || MaxAttempts != 8 {
			t.Fatalf("run %d: %d attempts, want 8", run, attempts)
		}
		if span := now.Sub(first); span < 20*time.Hour {
			t.Fatalf("run %d: last attempt %v after the first, want close to 24 h", run, span)
		}
	}
	if _, ok := NextAttempt(first, deadline, 2); ok {
		t.Error("a retry is scheduled at the deadline")
	}
	if at, ok := NextAttempt(first, deadline.Add(-time.Minute), 7); !ok || !at.Equal(deadline) {
		t.Errorf("last retry at %v, %v, want the deadline", at, ok)
	}
}
