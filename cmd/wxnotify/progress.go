package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const (
	// barWidth is the width of the progress bar, in characters.
	barWidth = 24
	// rateWindow is how far back the rate looks: long enough to smooth the
	// runner's page-by-page checkpoints, short enough to follow changes.
	rateWindow = 15 * time.Second
)

// progress shows a batch's progress on w: one line redrawn in place on a
// terminal, otherwise one line each time the counts or status change.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	samples []sample // recent observations, oldest first, for the rate
	last    string   // status and counts of the last plain line
	drawn   bool     // a terminal line is on screen without its newline
}

// sample is the number of recipients done at a time.
type sample struct {
	at   time.Time
	done int
}

// show records b and draws it.
func (p *progress) show(b batchState) {
	now := p.now()
	p.samples = append(p.samples, sample{at: now, done: b.done()})
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	tail := p.tail(b, now)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s %s [%s] %3d%% %d/%d  sent %d skipped %d failed %d unknown %d%s",
			b.ID, b.Status, bar(b), percent(b), b.done(), b.Total, b.Sent, b.Skipped, b.Failed, b.Unknown, tail)
		p.drawn = true
		return
	}
	key := fmt.Sprintf("%s %d/%d %d %d %d %d", b.Status, b.done(), b.Total, b.Sent, b.Skipped, b.Failed, b.Unknown)
	if key == p.last {
		return
	}
	p.last = key
	fmt.Fprintf(p.w, "%s %s %d/%d (%d%%) sent %d skipped %d failed %d unknown %d%s\n",
		b.ID, b.Status, b.done(), b.Total, percent(b), b.Sent, b.Skipped, b.Failed, b.Unknown, tail)
}

// end finishes a line left open on a terminal.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// tail is the rate and time left of a running batch, or when a scheduled
// one starts; "" when neither is known.
func (p *progress) tail(b batchState, now time.Time) string {
	switch b.Status {
	case "scheduled":
		if wait := b.NotBefore.Sub(now); wait > time.Second {
			return "  starts in " + wait.Round(time.Second).String()
		}
		return ""
	case "running":
	default:
		return ""
	}
	first, last := p.samples[0], p.samples[len(p.samples)-1]
	elapsed := last.at.Sub(first.at).Seconds()
	if elapsed <= 0 || last.done <= first.done {
		return ""
	}
	rate := float64(last.done-first.done) / elapsed
	pending := max(0, b.Total-b.done())
	eta := time.Duration(float64(pending) / rate * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("  %.1f/s ETA %s", rate, eta)
}

// percent is the share of recipients done, 100 for a finished batch.
func percent(b batchState) int {
	if b.Total <= 0 {
		if b.Status == "done" {
			return 100
		}
		return 0
	}
	return min(100, b.done()*100/b.Total)
}

// bar is a barWidth-wide ASCII bar of the share done.
func bar(b batchState) string {
	n := percent(b) * barWidth / 100
	return strings.Repeat("#", n) + strings.Repeat("-", barWidth-n)
}
