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
	// Shards, ShardPages and Bounds are the batch's layout in shards (see
	// batchshard.go): their number, the stored pages of each (explicit
	// recipients), the last openid of each but the last (an audience).
	Shards     int      `json:"shards,omitempty"`
	ShardPages int      `json:"shardPages,omitempty"`
	Bounds     []string `json:"bounds,omitempty"`
	// ShardsDone and ShardsRunning are the numbers of shards done and held
	// by a runner now, read with the shards (not stored).
	ShardsDone    int `json:"-"`
	ShardsRunning int `json:"-"`
	// LeaseOwner and LeaseUntil are the lease of a batch recorded before
	// shards, which one runner sent alone.
	LeaseOwner string    `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// StartedAt is when the tick first started the batch.
	StartedAt time.Time `json:"startedAt,omitzero"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
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
	// ShardSize is the number of recipients of one shard, the unit many
	// runners send at once (default 10,000; see batchshard.go).
	ShardSize int
	// Runners is the number of shards this process sends at once when no
	// ShardDispatcher hands them to the cloud's queue (default 1), each
	// with Workers/Runners of the workers.
	Runners int
	// Redispatch is how long a shard handed to the queue may wait before
	// the tick hands it over again (default 5 minutes).
	Redispatch time.Duration
	// Dispatcher hands shards to the cloud's queue; nil: this process
	// sends them (Runners at a time) in the tick.
	Dispatcher ShardDispatcher
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
	if o.ShardSize <= 0 {
		o.ShardSize = 10_000
	}
	if o.Runners <= 0 {
		o.Runners = 1
	}
	if o.Redispatch <= 0 {
		o.Redispatch = 5 * time.Minute
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
	var bounds []string
	if b.Audience != "" {
		n, bs, err := s.countAudience(ctx, t.ID)
		if err != nil {
			return Batch{}, err
		}
		b.Total, bounds = n, bs
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
	s.shardLayout(&b, bounds)
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

// countAudience counts the users of the template's audience index (the
// holders, and the rare stale entries the run will prune) and returns the
// bounds of its shards: the openid that ends each run of ShardSize users
// but the last.
func (s *Service) countAudience(ctx context.Context, tmplID string) (int, []string, error) {
	n, prev := 0, ""
	var bounds []string
	q := store.Query{Partition: s.audiencePartition(tmplID), Limit: store.MaxQueryLimit}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return 0, nil, storeErr("count audience", err)
		}
		for _, it := range page.Items {
			if o := audienceOpenID(it.Key.Sort); o != prev {
				n, prev = n+1, o
				if n%s.batchOpts.ShardSize == 0 {
					bounds = append(bounds, o)
				}
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if len(bounds) > 0 && bounds[len(bounds)-1] == prev {
		bounds = bounds[:len(bounds)-1] // no empty last shard
	}
	if k := (len(bounds) + MaxBatchShards - 1) / (MaxBatchShards - 1); k > 1 {
		thin := make([]string, 0, len(bounds)/k+1)
		for i := k - 1; i < len(bounds); i += k {
			thin = append(thin, bounds[i])
		}
		bounds = thin
	}
	return n, bounds, nil
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
	return s.withShards(ctx, b)
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
			return s.withShards(ctx, b)
		} else if !errors.Is(err, store.ErrConflict) {
			return Batch{}, storeErr("cancel batch", err)
		}
	}
	return Batch{}, storeErr("cancel batch", errors.New("too many concurrent updates"))
}

// batchExpiry is when a batch's items expire: retention after it was due.
func (s *Service) batchExpiry(b Batch) time.Time {
	return b.CreatedAt.Add(s.retention).Add(b.NotBefore.Sub(b.CreatedAt))
}

func (s *Service) putBatch(ctx context.Context, b Batch, ver int64) error {
	raw, _ := json.Marshal(b)
	_, err := s.st.Put(ctx, s.batchKey(b.ID), raw, store.PutOptions{IfVersion: ver, ExpiresAt: s.batchExpiry(b)})
	return err
}

// putBatchEnding is putBatch for the write that ends b (done or
// cancelled): batch.finished is written in the same Write, with the
// counters of its shards (a done batch's record holds them already).
func (s *Service) putBatchEnding(ctx context.Context, b Batch, ver int64) error {
	view, err := s.withShards(ctx, b)
	if err != nil {
		return err
	}
	events, err := s.batchEventOps(view)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(b)
	put := store.WritePut(s.batchKey(b.ID), raw, store.PutOptions{IfVersion: ver, ExpiresAt: s.batchExpiry(b)})
	_, err = s.writeWithEvents(ctx, put, events)
	return err
}

func (s *Service) dropDue(ctx context.Context, b Batch) {
	if err := s.st.Delete(ctx, s.dueKey(b), store.DeleteOptions{}); err != nil {
		s.log.Warn("drop batch due entry", "batch", b.ID, "err", err)
	}
}

// RunBatches is the batch function's tick: for each due batch, one after
// the other, it hands the shards no runner holds to the dispatcher, or
// without one sends them itself (Runners at a time), each shard under a
// lease, checkpointed after every page, stopping Margin before deadline.
// The next tick goes on where this one stopped (see batchshard.go).
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
		if err := s.runDue(ctx, string(it.Value), it.Key, time.UnixMilli(due), deadline); err != nil {
			errs = append(errs, fmt.Errorf("batch %s: %w", it.Value, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// errLeaseLost: another runner owns the shard now.
var errLeaseLost = errors.New("batch shard lease lost")

// runDue is the tick's work on one due entry.
func (s *Service) runDue(ctx context.Context, id string, due store.Key, dueAt, deadline time.Time) error {
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
	return s.startBatch(ctx, b, ver, deadline)
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
