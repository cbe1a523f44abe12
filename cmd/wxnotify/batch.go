package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const batchUsage = `usage: wxnotify batch <subcommand> [flags]

Batch sends through wxnotify's API (POST/GET/DELETE /v1/batches, POST
/v1/batches/{id}/pause and /resume).

subcommands:
  create   schedule a batch from a CSV file of recipients; prints its id
  watch    follow a batch's progress until it is done
  pause    pause a batch at its next page boundary, keeping its place
  resume   resume a paused batch from where it stopped
  cancel   cancel a batch; recipients not yet sent to are not sent

Run 'wxnotify batch <subcommand> --help' for its flags.

Exit status: 0 success, 1 failure (or a cancelled batch, for watch), 2 usage.
`

const batchCreateUsage = `usage: wxnotify batch create --file recipients.csv --template ALIAS [flags]
       wxnotify batch create --audience consenting --template ALIAS [flags]

Schedules a batch send and prints its id on stdout.

  --file FILE            CSV of recipients ("-" reads stdin). The first row is the header: a
                         userId or openid column (or both, one filled per row) and one column per
                         keyword that differs by recipient. Empty cells take the --data value.
                           userId,thing1,number2
                           sales-42,Acme Ltd,7
                         A file with bad rows creates nothing: every problem is listed with its
                         line and column (ids, field counts, CSV syntax, encoding); the values'
                         fit to the template is checked by the server, which names the first
                         bad row.
  --audience consenting  instead of --file: every user who can receive the template
  --template ALIAS       a template alias (or template id) of wxnotify.yaml
  --data key=value       a keyword value shared by every recipient; repeatable
  --not-before TIME      do not start before this RFC 3339 time (default now)
  --page PAGE            the mini program page the messages open
  --state STATE          developer, trial or formal (default formal)
  --lang LANG            zh_CN (default), en_US, zh_HK or zh_TW
  --idempotency-key KEY  create at most one batch for this key: repeat the command safely
  --json                 print the API's answer as it came
` + apiFlagsUsage + `
Exit status: 0 created, 1 failure, 2 usage.
`

const batchWatchUsage = `usage: wxnotify batch watch ID [--interval 1s]

Polls a batch until it is done, showing sent, skipped, failed and unknown
recipients, the rate and the time left: on a terminal one line redrawn in
place at each poll, fitted to the terminal's width (it never wraps); one
plain line per change otherwise (a file, a pipe, TERM=dumb).

  --interval DURATION    time between polls (default 1s, at least 100ms)
` + apiFlagsUsage + `
Exit status: 0 when the batch is done, 1 when it was cancelled or watching
failed, 2 usage.
`

const batchCancelUsage = `usage: wxnotify batch cancel ID

Cancels a batch: recipients not yet sent to are not sent. Cancelling a batch
that is already done or cancelled changes nothing.
` + apiFlagsUsage + `
Exit status: 0 when the batch is stopped (cancelled now or before, or done),
1 failure, 2 usage.
`

const batchPauseUsage = `usage: wxnotify batch pause ID

Pauses a scheduled or running batch: a running one stops at its next page
boundary, with the page under way sent and counted, and keeps its place;
'wxnotify batch resume ID' goes on from there. Pausing a paused batch
changes nothing; a done or cancelled one is refused (batch_finished).
` + apiFlagsUsage + `
Exit status: 0 when the batch is paused (now or before), 1 failure, 2 usage.
`

const batchResumeUsage = `usage: wxnotify batch resume ID

Resumes a paused batch: the batch function's next tick goes on from where
it stopped. Resuming a batch that is not paused changes nothing; a done or
cancelled one is refused (batch_finished).
` + apiFlagsUsage + `
Exit status: 0 when the batch is scheduled or running, 1 failure, 2 usage.
`

// batch is `wxnotify batch`.
func (c *cli) batch(ctx context.Context, args []string) int {
	return c.subcommand("batch", batchUsage, args, map[string]func([]string) int{
		"create": func(args []string) int { return c.batchCreate(ctx, args) },
		"watch":  func(args []string) int { return c.batchWatch(ctx, args) },
		"cancel": func(args []string) int { return c.batchCancel(ctx, args) },
		"pause":  func(args []string) int { return c.batchPost(ctx, "pause", batchPauseUsage, args) },
		"resume": func(args []string) int { return c.batchPost(ctx, "resume", batchResumeUsage, args) },
	})
}

// batchRecipient is one recipient of POST /v1/batches.
type batchRecipient struct {
	UserID string            `json:"userId,omitempty"`
	OpenID string            `json:"openid,omitempty"`
	Data   map[string]string `json:"data,omitempty"`
}

// batchRequest is the body of POST /v1/batches.
type batchRequest struct {
	Template         string            `json:"template"`
	Data             map[string]string `json:"data,omitempty"`
	Recipients       []batchRecipient  `json:"recipients,omitempty"`
	Audience         string            `json:"audience,omitempty"`
	NotBefore        *time.Time        `json:"notBefore,omitempty"`
	Page             string            `json:"page,omitempty"`
	MiniprogramState string            `json:"miniprogramState,omitempty"`
	Lang             string            `json:"lang,omitempty"`
	IdempotencyKey   string            `json:"idempotencyKey,omitempty"`
}

// batchState is the API's batch body.
type batchState struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Template  string    `json:"template"`
	NotBefore time.Time `json:"notBefore"`
	Total     int       `json:"total"`
	Sent      int       `json:"sent"`
	Skipped   int       `json:"skipped"`
	Failed    int       `json:"failed"`
	Unknown   int       `json:"unknown"`
	Pending   int       `json:"pending"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func (b batchState) done() int { return b.Sent + b.Skipped + b.Failed + b.Unknown }

// batchCreateOptions is the parsed command line of batch create.
type batchCreateOptions struct {
	file string
	req  batchRequest
	json bool
	api  apiFlags
}

func (c *cli) parseBatchCreate(args []string) (o batchCreateOptions, code int, ok bool) {
	fs := flag.NewFlagSet("batch create", flag.ContinueOnError)
	data := dataFlag{}
	var notBefore timeFlag
	fs.StringVar(&o.file, "file", "", "")
	fs.StringVar(&o.req.Audience, "audience", "", "")
	fs.StringVar(&o.req.Template, "template", "", "")
	fs.Var(data, "data", "")
	fs.Var(&notBefore, "not-before", "")
	fs.StringVar(&o.req.Page, "page", "", "")
	fs.StringVar(&o.req.MiniprogramState, "state", "", "")
	fs.StringVar(&o.req.Lang, "lang", "", "")
	fs.StringVar(&o.req.IdempotencyKey, "idempotency-key", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	o.api.register(fs)
	if _, code, ok := c.parse(fs, batchCreateUsage, args, 0); !ok {
		return o, code, false
	}
	bad := func(msg string) (batchCreateOptions, int, bool) {
		return o, c.usageError("batch create", batchCreateUsage, msg), false
	}
	switch {
	case o.file == "" && o.req.Audience == "":
		return bad("--file or --audience is required")
	case o.file != "" && o.req.Audience != "":
		return bad("give --file or --audience, not both")
	case o.req.Audience != "" && o.req.Audience != "consenting":
		return bad(fmt.Sprintf("--audience: %q is not consenting", o.req.Audience))
	}
	if err := required("template", o.req.Template); err != nil {
		return bad(err.Error())
	}
	if len(data) > 0 {
		o.req.Data = data
	}
	if !notBefore.t.IsZero() {
		o.req.NotBefore = &notBefore.t
	}
	return o, exitOK, true
}

// batchCreate is `wxnotify batch create`.
func (c *cli) batchCreate(ctx context.Context, args []string) int {
	o, code, ok := c.parseBatchCreate(args)
	if !ok {
		return code
	}
	api, err := o.api.client(c)
	if err != nil {
		return c.usageError("batch create", batchCreateUsage, err.Error())
	}
	var rf recipientsFile
	if o.file != "" {
		if rf, err = c.readRecipients(o.file); err != nil {
			return c.fail("batch create", err)
		}
		o.req.Recipients = rf.Recipients
	}
	var b batchState
	raw, err := api.call(ctx, "POST", "/v1/batches", o.req, &b)
	if o.json && raw != nil {
		_, _ = c.stdout.Write(raw)
	}
	if err != nil {
		if where, ok := rf.recipientProblem(err); ok {
			// The server stops at the first recipient it refuses.
			name := o.file
			if name == "-" {
				name = "stdin"
			}
			err = fmt.Errorf("%s: %s: %w (no batch was created; the server names the first bad row only)", name, where, err)
		}
		return c.fail("batch create", err)
	}
	if !o.json {
		fmt.Fprintln(c.stdout, b.ID)
		fmt.Fprintf(c.stderr, "batch %s %s: %d recipients; follow it with: wxnotify batch watch %s\n", b.ID, b.Status, b.Total, b.ID)
	}
	return exitOK
}

// minInterval bounds how often watch polls.
const minInterval = 100 * time.Millisecond

// maxPollFailures is how many polls in a row may fail (no answer, 429 or
// 5xx) before watch gives up.
const maxPollFailures = 5

// batchWatch is `wxnotify batch watch`.
func (c *cli) batchWatch(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("batch watch", flag.ContinueOnError)
	var af apiFlags
	interval := fs.Duration("interval", time.Second, "")
	af.register(fs)
	pos, code, ok := c.parse(fs, batchWatchUsage, args, 1)
	if !ok {
		return code
	}
	if *interval < minInterval {
		return c.usageError("batch watch", batchWatchUsage, fmt.Sprintf("--interval: %v is below %v", *interval, minInterval))
	}
	api, err := af.client(c)
	if err != nil {
		return c.usageError("batch watch", batchWatchUsage, err.Error())
	}
	p := &progress{w: c.stdout, tty: c.terminal(c.stdout), now: c.now,
		columns: func() int { return c.columns(c.stdout) }}
	failures := 0
	for {
		var b batchState
		_, err := api.call(ctx, "GET", "/v1/batches/"+url.PathEscape(pos[0]), nil, &b)
		switch {
		case err == nil:
			failures = 0
			p.show(b)
			switch b.Status {
			case "done":
				p.end()
				return exitOK
			case "cancelled":
				p.end()
				return exitFailure
			}
		case ctx.Err() != nil:
			p.end()
			fmt.Fprintf(c.stderr, "wxnotify batch watch: stopped watching; the batch goes on\n")
			return exitFailure
		case transient(err) && failures < maxPollFailures:
			failures++
			p.end()
			fmt.Fprintf(c.stderr, "wxnotify batch watch: %v (retrying)\n", err)
		default:
			p.end()
			return c.fail("batch watch", err)
		}
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// transient reports whether a failed poll may succeed if repeated: no
// answer, 429 or a 5xx.
func transient(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	return true
}

// batchCancel is `wxnotify batch cancel`.
func (c *cli) batchCancel(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("batch cancel", flag.ContinueOnError)
	var af apiFlags
	af.register(fs)
	pos, code, ok := c.parse(fs, batchCancelUsage, args, 1)
	if !ok {
		return code
	}
	api, err := af.client(c)
	if err != nil {
		return c.usageError("batch cancel", batchCancelUsage, err.Error())
	}
	var b batchState
	if _, err := api.call(ctx, "DELETE", "/v1/batches/"+url.PathEscape(pos[0]), nil, &b); err != nil {
		return c.fail("batch cancel", err)
	}
	what := b.Status // cancelled, now or before
	if b.Status == "done" {
		what = "was already done"
	}
	fmt.Fprintf(c.stdout, "%s %s: %d of %d done (sent %d, skipped %d, failed %d, unknown %d)\n",
		b.ID, what, b.done(), b.Total, b.Sent, b.Skipped, b.Failed, b.Unknown)
	return exitOK
}

// batchPost is `wxnotify batch pause` and `wxnotify batch resume`: POST
// /v1/batches/{id}/<verb>, then the batch as it is now.
func (c *cli) batchPost(ctx context.Context, verb, usage string, args []string) int {
	name := "batch " + verb
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var af apiFlags
	af.register(fs)
	pos, code, ok := c.parse(fs, usage, args, 1)
	if !ok {
		return code
	}
	api, err := af.client(c)
	if err != nil {
		return c.usageError(name, usage, err.Error())
	}
	var b batchState
	if _, err := api.call(ctx, "POST", "/v1/batches/"+url.PathEscape(pos[0])+"/"+verb, nil, &b); err != nil {
		return c.fail(name, err)
	}
	fmt.Fprintf(c.stdout, "%s %s: %d of %d done (sent %d, skipped %d, failed %d, unknown %d)\n",
		b.ID, b.Status, b.done(), b.Total, b.Sent, b.Skipped, b.Failed, b.Unknown)
	return exitOK
}
