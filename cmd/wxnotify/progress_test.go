package main

import (
	"strings"
	"testing"
	"time"
)

// TestTermLineFits: at every terminal width, for every state of a batch,
// the progress line leaves the last column free, and it keeps what matters
// most as the width shrinks: the counts before the id, the status always.
func TestTermLineFits(t *testing.T) {
	id := "bat_XX15MKX2Y46MXKF00CVB37N9FQ"
	states := []struct {
		b    batchState
		tail string
	}{
		{batchState{ID: id, Status: "scheduled", Total: 100000}, "  starts in 59m59s"},
		{batchState{ID: id, Status: "running", Total: 100000, Sent: 41234, Skipped: 1234, Failed: 12, Unknown: 1}, "  1234.5/s ETA 1h2m3s"},
		{batchState{ID: id, Status: "running", Total: 3, Sent: 1}, ""},
		{batchState{ID: id, Status: "done", Total: 100000, Sent: 99999, Failed: 1}, ""},
		{batchState{ID: id, Status: "cancelled", Total: 7, Sent: 2}, ""},
	}
	for cols := 1; cols <= 220; cols++ {
		for _, st := range states {
			line := termLine(st.b, st.tail, cols)
			if w := width(line); w > cols-1 {
				t.Fatalf("%d columns: %q is %d wide", cols, line, w)
			}
			if strings.ContainsAny(line, "\r\n\x1b") {
				t.Fatalf("%d columns: control characters in %q", cols, line)
			}
			if cols >= 40 && !strings.HasPrefix(strings.TrimPrefix(line, id+" "), st.b.Status+" ") {
				t.Fatalf("%d columns: %q does not start with the status", cols, line)
			}
		}
	}
	b, tail := states[1].b, states[1].tail
	// A large batch: the id goes first, then the long labels, the bar, the
	// rate; what is left is cut.
	for _, tc := range []struct {
		cols int
		want string
	}{
		{200, id + " running [##########--------------]  42% 42481/100000  sent 41234 skipped 1234 failed 12 unknown 1  1234.5/s ETA 1h2m3s"},
		{120, "running [##########--------------]  42% 42481/100000  sent 41234 skipped 1234 failed 12 unknown 1  1234.5/s ETA 1h2m3s"},
		{80, "running 42% 42481/100000 sent 41234 skip 1234 fail 12 unk 1 1234.5/s ETA 1h2m3s"},
		{60, "running 42% 42481/100000 sent 41234 skip 1234 fail 12 unk 1"},
		{40, "running 42% 42481/100000 sent 41234 ski"},
	} {
		if got := termLine(b, tail, tc.cols); got != tc.want {
			t.Errorf("%d columns: got  %q\nwant %q", tc.cols, got, tc.want)
		}
	}
}

// TestTermLineSmallBatch: a usual batch at 80 columns keeps a bar.
func TestTermLineSmallBatch(t *testing.T) {
	b := batchState{ID: "bat_XX15MKX2Y46MXKF00CVB37N9FQ", Status: "running", Total: 500, Sent: 120, Skipped: 3}
	want := "running [###----------]  24% 123/500 sent 120 skip 3 fail 0 unk 0 50.0/s ETA 8s"
	if got := termLine(b, "  50.0/s ETA 8s", 80); got != want || width(got) > 79 {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestProgressShowsNoControlCharacters: an id or status with control
// characters in the server's answer draws none, on a terminal or not.
func TestProgressShowsNoControlCharacters(t *testing.T) {
	b := batchState{ID: "bat_1\x1b[2J\n", Status: "run\rning", Total: 2, Sent: 1}
	for _, tty := range []bool{false, true} {
		var out strings.Builder
		p := &progress{w: &out, tty: tty, now: time.Now}
		p.show(b)
		p.end()
		got := strings.TrimSuffix(strings.TrimPrefix(out.String(), "\r\x1b[K"), "\n")
		if strings.ContainsAny(got, "\r\n\x1b") || !strings.HasPrefix(got, "bat_1[2J running") {
			t.Fatalf("terminal %v: got %q", tty, out.String())
		}
	}
}
