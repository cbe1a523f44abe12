//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
)

// TestBatchWatchOnATerminal runs `batch watch` with its stdout on a real
// pseudo-terminal of 80 and of 200 columns, following a batch the dev
// server runs: the CLI finds the terminal and its width by itself, draws
// one line redrawn in place (carriage return, clear to the end of the line)
// at each poll, every drawing narrower than the terminal so that it never
// wraps, and ends it with one newline once the batch is done.
func TestBatchWatchOnATerminal(t *testing.T) {
	e := newEnv(t)
	for _, cols := range []int{80, 200} {
		t.Run(fmt.Sprintf("%dColumns", cols), func(t *testing.T) {
			var recipients []map[string]any
			for i := range 40 {
				recipients = append(recipients, map[string]any{"openid": fmt.Sprintf("o6_pty_%d_%d", cols, i)})
			}
			body := map[string]any{"template": "lead_assigned", "recipients": recipients,
				"data": map[string]string{"thing1": "Acme", "character_string2": "L-1", "time3": "09:30", "thing4": "官网"}}
			id := e.want(e.do("POST", "/v1/batches", e.key, body), 202).str("id")

			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatalf("open a pseudo-terminal: %v", err)
			}
			defer ptmx.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: uint16(cols)}); err != nil {
				t.Fatal(err)
			}
			var screen lockedbuf.Buffer
			copied := make(chan error, 1)
			go func() {
				_, err := io.Copy(&screen, ptmx)
				copied <- err
			}()
			var errb lockedbuf.Buffer
			env := map[string]string{"WXN_URL": e.url, "WXN_API_KEY": e.key, "TERM": "xterm"}
			c := newCLI(tty, &errb, func(k string) string { return env[k] })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := c.run(ctx, []string{"batch", "watch", id, "--interval", "100ms"})
			// Wait for the terminal to show the final newline before closing it.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.HasSuffix(screen.String(), "\r\n") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			_ = tty.Close()
			select {
			case err := <-copied:
				if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "input/output error") {
					t.Fatalf("reading the terminal: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the terminal did not close")
			}
			out := screen.String()
			if code != exitOK || errb.String() != "" {
				t.Fatalf("watch: got exit %d, stderr %q; want 0 and nothing", code, errb.String())
			}
			// The terminal's line discipline shows the one newline as \r\n.
			body2, ok := strings.CutSuffix(out, "\r\n")
			if !ok || strings.Contains(body2, "\n") {
				t.Fatalf("got %q; want one line, redrawn in place, ended by one newline", out)
			}
			draws := strings.Split(body2, "\r\x1b[K")
			if draws[0] != "" || len(draws) < 3 {
				t.Fatalf("got %d drawings in %q; want the line redrawn in place at each poll", len(draws)-1, out)
			}
			for _, d := range draws[1:] {
				if w := width(d); w >= cols || strings.ContainsAny(d, "\r\n\x1b") {
					t.Fatalf("drawing %q: %d wide on %d columns, or with control characters", d, w, cols)
				}
			}
			last := draws[len(draws)-1]
			t.Logf("%d drawings; the first %q, the last %q", len(draws)-1, draws[1], last)
			if !strings.Contains(last, "done") || !strings.Contains(last, "100% 40/40") || !strings.Contains(last, "skip") {
				t.Fatalf("last drawing %q; want the done batch", last)
			}
			if wide := strings.HasPrefix(last, id+" done ["); wide != (cols == 200) {
				t.Fatalf("last drawing on %d columns: %q; want the id and the bar only on the wide terminal", cols, last)
			}
		})
	}
}
