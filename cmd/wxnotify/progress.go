package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// barWidth is the width of the progress bar, in characters, when the
	// terminal has room for it; minBarWidth the narrowest bar drawn.
	barWidth    = 24
	minBarWidth = 8
	// defaultColumns is the terminal width assumed when it cannot be read.
	defaultColumns = 80
	// rateWindow is how far back the rate looks: long enough to smooth the
	// runner's page-by-page checkpoints, short enough to follow changes.
	rateWindow = 15 * time.Second
)

// progress shows a batch's progress on w: on a terminal one line, redrawn
// in place at each poll and fitted to the terminal's width, so that it never
// wraps; otherwise one plain line each time the counts or status change.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time
	// columns is the terminal's width, read at each redraw (it may be
	// resized); nil or 0 means defaultColumns.
	columns func() int

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
	// What the server named is shown without control characters, which
	// would move the cursor or break the line.
	b.ID, b.Status = printable(b.ID), printable(b.Status)
	now := p.now()
	p.samples = append(p.samples, sample{at: now, done: b.done()})
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	tail := p.tail(b, now)
	if p.tty {
		cols := 0
		if p.columns != nil {
			cols = p.columns()
		}
		if cols <= 0 {
			cols = defaultColumns
		}
		// Carriage return, clear to the end of the line, the line.
		fmt.Fprint(p.w, "\r\x1b[K"+termLine(b, tail, cols))
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

// termLine is b's progress line for a terminal cols wide: the richest
// layout whose width is below cols (the last column stays free: a character
// there makes some terminals wrap). In order: the batch id, status, bar,
// share and counts; without the id; shorter count labels; without the bar;
// without the rate; cut to the width.
func termLine(b batchState, tail string, cols int) string {
	room := cols - 1
	share := fmt.Sprintf("%3d%% %d/%d", percent(b), b.done(), b.Total)
	long := fmt.Sprintf("sent %d skipped %d failed %d unknown %d", b.Sent, b.Skipped, b.Failed, b.Unknown)
	short := fmt.Sprintf("sent %d skip %d fail %d unk %d", b.Sent, b.Skipped, b.Failed, b.Unknown)
	shortTail := strings.TrimPrefix(tail, " ")
	for _, l := range []struct{ head, rest string }{
		{b.ID + " " + b.Status + " ", " " + share + "  " + long + tail},
		{b.Status + " ", " " + share + "  " + long + tail},
		{b.Status + " ", " " + share + " " + short + shortTail},
	} {
		n := min(barWidth, room-width(l.head)-width(l.rest)-2)
		if n >= minBarWidth {
			return l.head + "[" + bar(b, n) + "]" + l.rest
		}
	}
	line := b.Status + " " + strings.TrimSpace(share) + " " + short
	if width(line+shortTail) <= room {
		return line + shortTail
	}
	if width(line) <= room {
		return line
	}
	return cut(line, room)
}

// printable is s without control characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// width is the number of terminal columns s takes: one a rune (batch ids,
// statuses and numbers are ASCII).
func width(s string) int { return utf8.RuneCountInString(s) }

// cut is s cut to n runes.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// bar is an n-wide ASCII bar of the share done.
func bar(b batchState, n int) string {
	done := percent(b) * n / 100
	return strings.Repeat("#", done) + strings.Repeat("-", n-done)
}
