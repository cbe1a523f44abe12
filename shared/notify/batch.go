package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// BatchStatus is a batch's state.
type BatchStatus string

// Batch statuses.
const (
	BatchScheduled BatchStatus = "scheduled"
	BatchRunning   BatchStatus = "running"
	BatchDone      BatchStatus = "done"
	BatchCancelled BatchStatus = "cancelled"
	// BatchPaused: stopped by PauseBatch with its place kept, until
	// ResumeBatch (see batchpause.go).
	BatchPaused BatchStatus = "paused"
)

// AudienceConsenting sends to every user with a credit (or a long-term
// acceptance) for the template when the batch runs: the users of the
// template's audience index (see audience.go).
const AudienceConsenting = "consenting"

// MaxBatchRecipients bounds the explicit recipients of one batch.
const MaxBatchRecipients = 200_000

// BatchRecipient is one explicit recipient, with data merged over the
// batch's shared data.
type BatchRecipient struct {
	UserID string            `json:"userId,omitempty"`
	OpenID string            `json:"openid,omitempty"`
	Data   map[string]string `json:"data,omitempty"`
}

func (r BatchRecipient) key() string {
	if r.UserID != "" {
		return "u:" + r.UserID
	}
	return "o:" + r.OpenID
}

// BatchRequest asks for a batch send.
type BatchRequest struct {
	Template         string
	Data             map[string]string
	Recipients       []BatchRecipient
	Audience         string
	NotBefore        time.Time
	Page             string
	MiniprogramState string
	Lang             string
	IdempotencyKey   string
}

// Batch is the record of a batch send: its definition, progress and exact
// counters (a page's outcomes are added when the page is checkpointed).
type Batch struct {
	ID               string            `json:"id"`
	IdempotencyKey   string            `json:"idempotencyKey,omitempty"`
	Fingerprint      string            `json:"fingerprint"`
	Template         string            `json:"template"`
	TemplateID       string            `json:"templateId"`
	Data             map[string]string `json:"data,omitempty"`
	Page             string            `json:"page,omitempty"`
	MiniprogramState string            `json:"miniprogramState,omitempty"`
	Lang             string            `json:"lang,omitempty"`
	Audience         string            `json:"audience,omitempty"`
	NotBefore        time.Time         `json:"notBefore"`
	Status           BatchStatus       `json:"status"`
	Total            int               `json:"total"`
	Sent             int               `json:"sent"`
	Skipped          int               `json:"skipped"`
	Failed           int               `json:"failed"`
	Unknown          int               `json:"unknown"`
	Pages            int               `json:"pages"`
	// Cursor is where the batch resumes: the next page number for explicit
	// recipients, the last openid done for an audience.
	Cursor string `json:"cursor,omitempty"`
	// QuotaResetAt, when set, is when the batch goes on after a page met
	// WeChat's daily quota (45009): see batchquota.go.
	QuotaResetAt time.Time `json:"quotaResetAt,omitzero"`
	LeaseOwner   string    `json:"leaseOwner,omitempty"`
	LeaseUntil   time.Time `json:"leaseUntil,omitzero"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Pending is the number of recipients not yet done.
func (b Batch) Pending() int {
	return max(0, b.Total-b.Sent-b.Skipped-b.Failed-b.Unknown)
}

// BatchOptions tune the batch runner.
type BatchOptions struct {
	// Rate is the most sends per second of the app (default 100): of this
	// runner alone with RateScope process, of every runner together with
	// RateScope shared.
	Rate float64
	// RateScope is RateProcess (the default) or RateShared (see
	// ratelimit.go).
	RateScope RateScope
	// Workers is the number of concurrent sends (default 32).
	Workers int
	// PageSize is the number of recipients per stored page and checkpoint
	// (default 500).
	PageSize int
	// Lease is how long a runner owns a batch without checkpointing
	// (default 2 minutes).
	Lease time.Duration
	// Margin is how long before its deadline a runner stops taking work
	// (default 5 s).
	Margin time.Duration
}

func (o *BatchOptions) setDefaults() {
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Margin <= 0 {
		o.Margin = 5 * time.Second
	}
}

func (s *Service) batchPartition(id string) string { return "bat|" + s.appID + "|" + id }
func (s *Service) batchKey(id string) store.Key {
	return store.Key{Partition: s.batchPartition(id), Sort: "m"}
}
func (s *Service) batchPageKey(id string, page int) store.Key {
	return store.Key{Partition: s.batchPartition(id), Sort: fmt.Sprintf("p|%06d", page)}
}
func (s *Service) duePartition() string { return "batdue|" + s.appID }
func dueSort(notBefore time.Time, id string) string {
	return fmt.Sprintf("%013d|%s", max(0, notBefore.UnixMilli()), id)
}

// CreateBatch validates and stores a batch: explicit recipients are stored
// in pages, an audience is read when the batch runs. The same idempotency
// key with the same payload returns the existing batch; with another, a
// conflict.
func (s *Service) CreateBatch(ctx context.Context, req BatchRequest) (Batch, error) {
	t, ok := s.catalog.Lookup(req.Template)
	if !ok {
		return Batch{}, FieldError("template", "unknown template %q", truncate(req.Template, 64))
	}
	switch {
	case req.Audience != "" && len(req.Recipients) > 0:
		return Batch{}, FieldError("audience", "give recipients or an audience, not both")
	case req.Audience != "" && req.Audience != AudienceConsenting:
		return Batch{}, FieldError("audience", "the only audience is %q", AudienceConsenting)
	case req.Audience == "" && len(req.Recipients) == 0:
		return Batch{}, FieldError("recipients", "give recipients or \"audience\": \"consenting\"")
	case len(req.Recipients) > MaxBatchRecipients:
		return Batch{}, FieldError("recipients", "at most %d recipients per batch", MaxBatchRecipients)
	}
	// The shared settings (an audience batch's data too) are checked once,
	// every explicit recipient's merged data below.
	probe := SendRequest{To: Recipient{OpenID: "probe"}, Template: t.ID, Page: req.Page,
		MiniprogramState: req.MiniprogramState, Lang: req.Lang, IdempotencyKey: req.IdempotencyKey}
	if _, err := s.prepareFields(&probe); err != nil {
		return Batch{}, err
	}
	if req.Audience != "" {
		if _, err := t.Check(req.Data); err != nil {
			return Batch{}, err
		}
	}
	seen := make(map[string]bool, len(req.Recipients))
	recipients := make([]BatchRecipient, 0, len(req.Recipients))
	for i, r := range req.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		sr := SendRequest{To: Recipient{UserID: r.UserID, OpenID: r.OpenID}, Template: t.ID, Data: mergeData(req.Data, r.Data),
			Page: probe.Page, MiniprogramState: probe.MiniprogramState, Lang: probe.Lang}
		_, err := s.prepareFields(&sr)
		if err == nil {
			_, err = t.Check(sr.Data)
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return Batch{}, &Error{Code: e.Code, Field: field + "." + e.Field, Message: e.Message}
			}
			return Batch{}, err
		}
		if seen[r.key()] {
			continue // the same recipient twice gets one message
		}
		seen[r.key()] = true
		recipients = append(recipients, r)
	}
	now := s.now().UTC()
	b := Batch{
		IdempotencyKey: req.IdempotencyKey, Template: t.Alias, TemplateID: t.ID, Data: req.Data, Page: probe.Page,
		MiniprogramState: probe.MiniprogramState, Lang: probe.Lang, Audience: req.Audience, NotBefore: req.NotBefore.UTC(),
		Status: BatchScheduled, Total: len(recipients), CreatedAt: now, UpdatedAt: now,
	}
	if b.NotBefore.IsZero() {
		b.NotBefore = now
	}
	b.Fingerprint = batchFingerprint(b, req.NotBefore, recipients)
	if req.IdempotencyKey != "" {
		b.ID = s.derivedID("bat_", req.IdempotencyKey)
	} else {
		b.ID = s.newID("bat_")
	}
	if existing, err := s.Batch(ctx, b.ID); err == nil {
		return s.sameBatch(existing, b)
	} else if CodeOf(err) != CodeNotFound {
		return Batch{}, err
	}
	if b.Audience != "" {
		n, err := s.countAudience(ctx, t.ID)
		if err != nil {
			return Batch{}, err
		}
		b.Total = n
	}
	expires := now.Add(s.retention).Add(time.Until(b.NotBefore))
	for start, page := 0, 0; start < len(recipients); start, page = start+s.batchOpts.PageSize, page+1 {
		chunk, _ := json.Marshal(recipients[start:min(start+s.batchOpts.PageSize, len(recipients))])
		if err := s.retryWrite(ctx, "put batch page", func() error {
			_, err := s.st.Put(ctx, s.batchPageKey(b.ID, page), chunk, store.PutOptions{ExpiresAt: expires})
			return err
		}); err != nil {
			return Batch{}, err
		}
		b.Pages = page + 1
	}
	b.Cursor = "0"
	if b.Audience != "" {
		b.Cursor = ""
	}
	if err := s.noteBatch(ctx, b, expires); err != nil {
		return Batch{}, err
	}
	// The due entry before the record: a crash in between leaves an entry the
	// runner drops, never a batch that would not run.
	if err := s.retryWrite(ctx, "put batch due", func() error {
		_, err := s.st.Put(ctx, s.dueKey(b), []byte(b.ID), store.PutOptions{})
		return err
	}); err != nil {
		return Batch{}, err
	}
	raw, _ := json.Marshal(b)
	if _, err := s.st.Put(ctx, s.batchKey(b.ID), raw, store.PutOptions{IfAbsent: true, ExpiresAt: expires}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			existing, gerr := s.Batch(ctx, b.ID)
			if gerr != nil {
				return Batch{}, gerr
			}
			return s.sameBatch(existing, b)
		}
		return Batch{}, storeErr("put batch", err)
	}
	return b, nil
}

func (s *Service) sameBatch(existing, mine Batch) (Batch, error) {
	if existing.Fingerprint != mine.Fingerprint {
		return Batch{}, &Error{Code: CodeConflict, Field: "idempotencyKey", Message: "this idempotency key was used with another batch"}
	}
	return existing, nil
}

func mergeData(shared, own map[string]string) map[string]string {
	out := make(map[string]string, len(shared)+len(own))
	for k, v := range shared {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// batchFingerprint identifies a batch request (notBefore as requested: a
// default "now" must not make a retry look like another batch).
func batchFingerprint(b Batch, notBefore time.Time, recipients []BatchRecipient) string {
	h := sha256.New()
	head, _ := json.Marshal([]any{b.TemplateID, b.Data, b.Page, b.MiniprogramState, b.Lang, b.Audience, notBefore.UnixMilli()})
	h.Write(head)
	enc := json.NewEncoder(h)
	for _, r := range recipients {
		_ = enc.Encode(r)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// countAudience counts the users of the template's audience index: the
// holders, and the rare stale entries the run will prune.
func (s *Service) countAudience(ctx context.Context, tmplID string) (int, error) {
	n, prev := 0, ""
	q := store.Query{Partition: s.audiencePartition(tmplID), Limit: store.MaxQueryLimit}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return 0, storeErr("count audience", err)
		}
		for _, it := range page.Items {
			if o := audienceOpenID(it.Key.Sort); o != prev {
				n, prev = n+1, o
			}
		}
		if page.Next == "" {
			return n, nil
		}
		q.After = page.Next
	}
}

func (s *Service) getBatch(ctx context.Context, id string) (Batch, int64, error) {
	it, err := s.st.Get(ctx, s.batchKey(id))
	if err != nil {
		return Batch{}, 0, err
	}
	var b Batch
	if err := json.Unmarshal(it.Value, &b); err != nil {
		return Batch{}, 0, err
	}
	return b, it.Version, nil
}

// Batch returns a batch by id.
func (s *Service) Batch(ctx context.Context, id string) (Batch, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "|\x00") {
		return Batch{}, Errorf(CodeNotFound, "no such batch")
	}
	b, _, err := s.getBatch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Batch{}, Errorf(CodeNotFound, "no such batch")
	}
	if err != nil {
		return Batch{}, storeErr("get batch", err)
	}
	return b, nil
}

// CancelBatch stops a batch: a running one stops at its next page.
func (s *Service) CancelBatch(ctx context.Context, id string) (Batch, error) {
	for range 16 {
		if _, err := s.Batch(ctx, id); err != nil {
			return Batch{}, err
		}
		b, ver, err := s.getBatch(ctx, id)
		if err != nil {
			return Batch{}, storeErr("get batch", err)
		}
		if b.Status == BatchDone || b.Status == BatchCancelled {
			return b, nil
		}
		b.Status, b.UpdatedAt = BatchCancelled, s.now().UTC()
		if err := s.putBatchEnding(ctx, b, ver); err == nil {
			s.dropDue(ctx, b)
			return b, nil
		} else if !errors.Is(err, store.ErrConflict) {
			return Batch{}, storeErr("cancel batch", err)
		}
	}
	return Batch{}, storeErr("cancel batch", errors.New("too many concurrent updates"))
}

func (s *Service) putBatch(ctx context.Context, b Batch, ver int64) error {
	raw, _ := json.Marshal(b)
	_, err := s.st.Put(ctx, s.batchKey(b.ID), raw, store.PutOptions{IfVersion: ver, ExpiresAt: b.CreatedAt.Add(s.retention).Add(b.NotBefore.Sub(b.CreatedAt))})
	return err
}

// putBatchEnding is putBatch for the write that ends b (done or
// cancelled): batch.finished is written in the same Write.
func (s *Service) putBatchEnding(ctx context.Context, b Batch, ver int64) error {
	events, err := s.batchEventOps(b)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(b)
	put := store.WritePut(s.batchKey(b.ID), raw, store.PutOptions{IfVersion: ver, ExpiresAt: b.CreatedAt.Add(s.retention).Add(b.NotBefore.Sub(b.CreatedAt))})
	_, err = s.writeWithEvents(ctx, put, events)
	return err
}

func (s *Service) dropDue(ctx context.Context, b Batch) {
	if err := s.st.Delete(ctx, s.dueKey(b), store.DeleteOptions{}); err != nil {
		s.log.Warn("drop batch due entry", "batch", b.ID, "err", err)
	}
}

// RunBatches is the batch function's tick: it takes the due batches one
// after the other, each under a lease so that overlapping ticks never work
// on the same batch, sends page by page, checkpoints after every page, and
// stops taking work Margin before deadline. The next tick resumes where
// this one stopped.
func (s *Service) RunBatches(ctx context.Context, deadline time.Time) error {
	now := s.now()
	page, err := s.st.Query(ctx, store.Query{Partition: s.duePartition(), Limit: 100})
	if err != nil {
		return storeErr("query due batches", err)
	}
	var errs []error
	for _, it := range page.Items {
		ms, _, _ := strings.Cut(it.Key.Sort, "|")
		due, _ := strconv.ParseInt(ms, 10, 64)
		if due > now.UnixMilli() {
			break
		}
		if s.now().Add(s.batchOpts.Margin).After(deadline) {
			break
		}
		if err := s.runBatch(ctx, string(it.Value), it.Key, time.UnixMilli(due), deadline); err != nil {
			errs = append(errs, fmt.Errorf("batch %s: %w", it.Value, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// errLeaseLost: another runner owns the batch now.
var errLeaseLost = errors.New("batch lease lost")

func (s *Service) runBatch(ctx context.Context, id string, due store.Key, dueAt, deadline time.Time) error {
	b, ver, err := s.getBatch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// A creation that crashed before writing its record (or one still
		// writing it, hence the minute), or an expired batch.
		if s.now().Sub(dueAt) > time.Minute {
			_ = s.st.Delete(ctx, due, store.DeleteOptions{})
		}
		return nil
	}
	if err != nil {
		return storeErr("get batch", err)
	}
	if b.Status == BatchDone || b.Status == BatchCancelled {
		s.dropDue(ctx, b)
		if due != s.dueKey(b) {
			_ = s.st.Delete(ctx, due, store.DeleteOptions{}) // one a quota wait left (batchquota.go)
		}
		return nil
	}
	if s.now().Before(b.QuotaResetAt) {
		// Waiting for WeChat's daily quota: this entry is the one it left
		// behind, if not the one it is due by.
		if due != s.dueKey(b) {
			_ = s.st.Delete(ctx, due, store.DeleteOptions{})
		}
		return nil
	}
	if b.Status == BatchPaused {
		// Its due entry is PauseBatch's to drop: a resume may have
		// written it again already (batchpause.go).
		return nil
	}
	now := s.now()
	if b.LeaseOwner != "" && b.LeaseOwner != s.instance && now.Before(b.LeaseUntil) {
		return nil // another runner has it
	}
	b.Status, b.LeaseOwner, b.LeaseUntil, b.UpdatedAt = BatchRunning, s.instance, now.Add(s.batchOpts.Lease).UTC(), now.UTC()
	if err := s.putBatch(ctx, b, ver); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // another runner took it first
		}
		return storeErr("lease batch", err)
	}
	ver++
	t, ok := s.catalog.Lookup(b.TemplateID)
	if !ok {
		return fmt.Errorf("template %s left the catalog", b.TemplateID)
	}
	for {
		if s.now().Add(s.batchOpts.Margin).After(deadline) {
			return s.releaseBatch(ctx, b, ver)
		}
		recipients, next, last, err := s.loadPage(ctx, b)
		if err != nil {
			return err
		}
		counts, err := s.sendPage(ctx, b, t, recipients, deadline)
		if errors.Is(err, errQuotaReached) {
			return s.waitForQuota(ctx, b, ver)
		}
		if err != nil {
			// Nothing of this page is counted: the next run sends it again,
			// and idempotency makes that exact.
			_ = s.releaseBatch(context.WithoutCancel(ctx), b, ver)
			return err
		}
		b, ver, err = s.checkpoint(ctx, b, ver, counts, next, last)
		if err != nil || b.Status != BatchRunning {
			return err
		}
	}
}

// pageCounts are the outcomes of one page.
type pageCounts struct{ sent, skipped, failed, unknown int }

func (c *pageCounts) add(st Status) {
	switch st {
	case StatusSent:
		c.sent++
	case StatusSkipped:
		c.skipped++
	case StatusUnknown:
		c.unknown++
	default:
		c.failed++
	}
}

// checkpoint adds a page's outcomes to the batch and moves its cursor, on
// the version this runner holds; if the batch was cancelled or paused
// meanwhile, the outcomes are still counted (and a paused batch's cursor
// moved, so that it resumes after this page) and the run stops; if it was
// paused and resumed while this runner still held its lease, the run goes
// on.
func (s *Service) checkpoint(ctx context.Context, b Batch, ver int64, c pageCounts, next string, last bool) (Batch, int64, error) {
	at := b.Cursor // the cursor this page was loaded at
	for range 16 {
		b.Sent += c.sent
		b.Skipped += c.skipped
		b.Failed += c.failed
		b.Unknown += c.unknown
		b.Cursor = next
		now := s.now().UTC()
		b.UpdatedAt = now
		put := s.putBatch
		if b.Status == BatchPaused && b.LeaseOwner == s.instance {
			b.LeaseOwner, b.LeaseUntil = "", time.Time{} // stopped here
		}
		if b.Status == BatchRunning {
			b.LeaseUntil = now.Add(s.batchOpts.Lease)
		}
		if last && (b.Status == BatchRunning || b.Status == BatchPaused) {
			// A pause that came during the last page leaves nothing to
			// resume: the batch is done.
			b.Status, b.LeaseOwner, b.LeaseUntil = BatchDone, "", time.Time{}
			if b.Audience != "" {
				b.Total = b.Sent + b.Skipped + b.Failed + b.Unknown // the audience as it was when sent
			}
			put = s.putBatchEnding // this write ends it
		}
		err := put(ctx, b, ver)
		if err == nil {
			finished := b.Status == BatchDone || b.Status == BatchCancelled
			// Reported once recorded; a checkpoint whose reply was lost
			// (an error here) is counted in the batch but not reported.
			s.observe.BatchProgress(BatchStep{AppID: s.appID, BatchID: b.ID, Sent: c.sent, Skipped: c.skipped,
				Failed: c.failed, Unknown: c.unknown, Done: finished})
			if finished {
				s.dropDue(ctx, b)
			}
			return b, ver + 1, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return b, ver, storeErr("checkpoint batch", err)
		}
		cur, curVer, gerr := s.getBatch(ctx, b.ID)
		if gerr != nil {
			return b, ver, storeErr("get batch", gerr)
		}
		switch {
		case cur.Cursor != at:
			// Another runner took the batch over and checkpointed this
			// page (or a later one) itself.
			return cur, curVer, errLeaseLost
		case cur.Status == BatchCancelled, cur.Status == BatchPaused:
			// Stopped meanwhile: count this page on it, keep the status.
		case (cur.Status == BatchRunning || cur.Status == BatchScheduled) && cur.LeaseOwner == s.instance && now.Before(cur.LeaseUntil):
			cur.Status = BatchRunning // paused and resumed meanwhile, still ours: go on
		default:
			return cur, curVer, errLeaseLost
		}
		b, ver = cur, curVer
	}
	return b, ver, storeErr("checkpoint batch", errors.New("too many concurrent updates"))
}

// releaseBatch gives the batch's lease up; if the record changed meanwhile
// (paused, resumed or cancelled), on the record as it is now, as long as
// the lease is still this runner's.
func (s *Service) releaseBatch(ctx context.Context, b Batch, ver int64) error {
	for range 4 {
		b.LeaseOwner, b.LeaseUntil, b.UpdatedAt = "", time.Time{}, s.now().UTC()
		err := s.putBatch(ctx, b, ver)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeErr("release batch", err)
		}
		cur, curVer, gerr := s.getBatch(ctx, b.ID)
		if gerr != nil || cur.LeaseOwner != s.instance {
			return nil // not ours any more
		}
		b, ver = cur, curVer
	}
	return nil
}

// loadPage returns the recipients at the batch's cursor, the cursor after
// them and whether they are the last.
func (s *Service) loadPage(ctx context.Context, b Batch) ([]BatchRecipient, string, bool, error) {
	if b.Audience != "" {
		page, err := s.st.Query(ctx, store.Query{Partition: s.audiencePartition(b.TemplateID), After: b.Cursor, Limit: s.batchOpts.PageSize})
		if err != nil {
			return nil, "", false, storeErr("query audience", err)
		}
		// The cursor is the last entry done; a user's other entries follow
		// it, and are skipped (a cursor of the earlier layout is an openid).
		out := make([]BatchRecipient, 0, len(page.Items))
		prev := audienceOpenID(b.Cursor)
		for _, it := range page.Items {
			if o := audienceOpenID(it.Key.Sort); o != prev {
				out, prev = append(out, BatchRecipient{OpenID: o}), o
			}
		}
		next := b.Cursor
		if len(page.Items) > 0 {
			next = page.Items[len(page.Items)-1].Key.Sort
		}
		return out, next, page.Next == "", nil
	}
	n, err := strconv.Atoi(b.Cursor)
	if err != nil || n < 0 {
		return nil, "", false, fmt.Errorf("batch %s: bad cursor %q", b.ID, b.Cursor)
	}
	if n >= b.Pages {
		return nil, strconv.Itoa(n), true, nil
	}
	it, err := s.st.Get(ctx, s.batchPageKey(b.ID, n))
	if err != nil {
		return nil, "", false, storeErr("get batch page", err)
	}
	var out []BatchRecipient
	if err := json.Unmarshal(it.Value, &out); err != nil {
		return nil, "", false, storeErr("decode batch page", err)
	}
	return out, strconv.Itoa(n + 1), n+1 >= b.Pages, nil
}

// sendPage sends to every recipient of a page with the worker pool under
// the rate limit. It fails (counting nothing) when a send could not be
// recorded or the deadline came before the page was done. Sends already
// under way always finish: cutting one short would make its outcome
// ambiguous.
func (s *Service) sendPage(ctx context.Context, b Batch, t Template, recipients []BatchRecipient, deadline time.Time) (pageCounts, error) {
	var (
		counts   pageCounts
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	var stopOnce sync.Once
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		stopOnce.Do(func() { close(stop) })
	}
	work := make(chan BatchRecipient)
	for range min(s.batchOpts.Workers, len(recipients)) {
		wg.Go(func() {
			for r := range work {
				if err := s.limiter.wait(ctx); err != nil {
					fail(err)
					return
				}
				n, err := s.sendWithRetry(ctx, SendRequest{
					To: Recipient{UserID: r.UserID, OpenID: r.OpenID}, Template: t.ID, Data: mergeData(b.Data, r.Data),
					Page: b.Page, MiniprogramState: b.MiniprogramState, Lang: b.Lang,
					IdempotencyKey: b.ID + ":" + r.key(), Source: FromBatch,
				})
				switch code := CodeOf(err); {
				case quotaReached(n, err):
					fail(errQuotaReached) // the page is sent again after the reset
				case err == nil && b.Audience != "" && notInAudience(n):
					// A stale index entry: pruned, and not counted (the
					// audience is the users who hold a credit).
					s.leaveAudience(context.WithoutCancel(ctx), n.OpenID, t)
				case err == nil, code == CodeWeChatUnavailable, code == CodeBadRequest:
					if n.ID == "" {
						n.Status = StatusFailed
					}
					mu.Lock()
					counts.add(n.Status)
					mu.Unlock()
				default:
					fail(err)
				}
			}
		})
	}
feed:
	for _, r := range recipients {
		if s.now().Add(s.batchOpts.Margin).After(deadline) {
			fail(errors.New("deadline reached mid-page"))
			break
		}
		select {
		case work <- r:
		case <-stop:
			break feed
		case <-ctx.Done():
			fail(ctx.Err())
			break feed
		}
	}
	close(work)
	wg.Wait()
	return counts, firstErr
}

// notInAudience reports whether an audience batch's send found no credit
// without calling WeChat: the user was not a holder (a 43101 answer is a
// holder WeChat refused, counted as skipped).
func notInAudience(n Notification) bool {
	return n.Status == StatusSkipped && n.Reason == ReasonNoConsent && n.WeChat.Errcode == 0 && n.OpenID != ""
}

// sendWithRetry sends one batch recipient, trying again a few times when the
// store failed: the idempotency key makes a retry safe (a send that reached
// WeChat is never repeated), and one store hiccup should not cost a page.
func (s *Service) sendWithRetry(ctx context.Context, req SendRequest) (Notification, error) {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := s.Send(ctx, req)
		if err == nil || CodeOf(err) != CodeStoreUnavailable || attempt == 5 || ctx.Err() != nil {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// limiter spaces sends evenly on the real clock: at most rate per second
// over any window (plus the one send at its start).
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(rate float64) *limiter {
	return &limiter{interval: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	slot := l.next
	if slot.Before(now) {
		slot = now
	}
	l.next = slot.Add(l.interval)
	l.mu.Unlock()
	return sleepCtx(ctx, time.Until(slot))
}

// BatchNotification returns the notification record of one recipient of a
// batch: what happened to that recipient's message.
func (s *Service) BatchNotification(ctx context.Context, batchID string, to Recipient) (Notification, error) {
	r := BatchRecipient{UserID: to.UserID, OpenID: to.OpenID}
	return s.Notification(ctx, s.derivedID("ntf_", string(FromBatch)+":"+batchID+":"+r.key()))
}
