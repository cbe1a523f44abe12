package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Consent statuses, as wx.requestSubscribeMessage reports them.
const (
	StatusAccept = "accept"
	StatusReject = "reject"
	StatusBan    = "ban"
	StatusFilter = "filter"
)

// Source says where a consent change came from.
type Source string

// Consent sources.
const (
	SourceReport   Source = "report"   // the mini program's POST /v1/consents
	SourceSettings Source = "settings" // wx.getSetting's subscriptionsSetting
	SourcePopup    Source = "popup"    // WeChat's subscribe_msg_popup_event
	SourceChange   Source = "change"   // WeChat's subscribe_msg_change_event
	SourceSend     Source = "send"     // a 43101 answer to a send
)

// consentMeta is the stored state of one user and template, beside its
// credit counter.
type consentMeta struct {
	Status     string    `json:"status,omitempty"`
	AlwaysKeep bool      `json:"alwaysKeep,omitempty"`
	LongTerm   bool      `json:"longTerm,omitempty"` // a long-term template is accepted
	Source     Source    `json:"source,omitempty"`
	UpdatedAt  time.Time `json:"updatedAt"`
	// LastPromptAt is when a popup was last answered (a report or a popup
	// event), LastAcceptAt when the user last accepted (a popup or a
	// change event).
	LastPromptAt time.Time `json:"lastPromptAt,omitzero"`
	LastAcceptAt time.Time `json:"lastAcceptAt,omitzero"`
	// Counted names the last popup choice counted in the funnel (its
	// report or push operation), so that applying it again counts nothing.
	Counted string `json:"counted,omitempty"`
}

// Consent is a user's standing for one template.
type Consent struct {
	Template   Template
	Status     string // "" when the user was never asked
	Credits    int64  // one-time templates: messages that may still be sent
	LongTerm   bool   // long-term templates: accepted
	AlwaysKeep bool
	// Prompt tells the mini program whether asking again is useful.
	Prompt    bool
	UpdatedAt time.Time
	// LastPromptAt: when the user last answered a popup of the template;
	// LastAcceptAt: when they last accepted it (zero: never, as far as
	// the ledger knows).
	LastPromptAt time.Time
	LastAcceptAt time.Time
}

// Sendable reports whether the ledger allows a message now.
func (c Consent) Sendable() bool {
	if c.Template.Kind == LongTerm {
		return c.LongTerm
	}
	return c.Credits > 0
}

func (c *Consent) setPrompt() {
	blocked := c.Status == StatusBan || (c.AlwaysKeep && c.Status == StatusReject)
	c.Prompt = !blocked && !c.Sendable()
}

// Settings is the subscriptionsSetting of wx.getSetting({withSubscriptions:
// true}): it lists only templates whose "always keep this choice" is ticked.
type Settings struct {
	MainSwitch   *bool
	ItemSettings map[string]string
}

// Report is what the mini program reports after wx.requestSubscribeMessage.
type Report struct {
	// Result maps template ids to the statuses of the success callback
	// (its errMsg removed).
	Result   map[string]string
	Settings *Settings
	// ID, when given (the Idempotency-Key header), makes the report
	// idempotent: a retry of a report whose answer was lost is not counted
	// again. Printable ASCII, at most 128 bytes.
	ID string
}

// reportMemory is how long a report ID is remembered.
const reportMemory = 24 * time.Hour

// CheckReportID validates a report's idempotency key.
func CheckReportID(id string) error {
	if len(id) > 128 {
		return FieldError("Idempotency-Key", "at most 128 bytes")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return FieldError("Idempotency-Key", "printable ASCII without spaces")
		}
	}
	return nil
}

// Consents returns the user's standing for every template of the catalog,
// in one store query.
func (s *Service) Consents(ctx context.Context, openID string) ([]Consent, error) {
	metas := map[string]consentMeta{}
	credits := map[string]int64{}
	q := store.Query{Partition: s.userPartition(openID), Prefix: "c|", Limit: store.MaxQueryLimit}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return nil, storeErr("query consents", err)
		}
		for _, it := range page.Items {
			rest := strings.TrimPrefix(it.Key.Sort, "c|")
			i := strings.LastIndexByte(rest, '|')
			if i < 0 {
				continue
			}
			tmplID, kind := rest[:i], rest[i+1:]
			switch kind {
			case "n":
				n, err := store.ParseCounter(it.Value)
				if err == nil {
					credits[tmplID] = n
				}
			case "m":
				var m consentMeta
				if json.Unmarshal(it.Value, &m) == nil {
					metas[tmplID] = m
				}
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	var out []Consent
	for _, t := range s.catalog.Templates() {
		m := metas[t.ID]
		c := Consent{Template: t, Status: m.Status, AlwaysKeep: m.AlwaysKeep, UpdatedAt: m.UpdatedAt,
			LastPromptAt: m.LastPromptAt, LastAcceptAt: m.LastAcceptAt}
		if t.Kind == LongTerm {
			c.LongTerm = m.LongTerm
		} else {
			c.Credits = credits[t.ID]
		}
		c.setPrompt()
		out = append(out, c)
	}
	return out, nil
}

// Consent returns the user's standing for one template.
func (s *Service) Consent(ctx context.Context, openID string, t Template) (Consent, error) {
	all, err := s.Consents(ctx, openID)
	if err != nil {
		return Consent{}, err
	}
	for _, c := range all {
		if c.Template.ID == t.ID {
			return c, nil
		}
	}
	return Consent{}, Errorf(CodeNotFound, "template %s is not in the catalog", t.Alias)
}

// RecordReport applies the mini program's report of a subscribe popup. Each
// accept of a one-time template is one credit, paired with WeChat's popup
// event for the same popup so that the two count once. Template ids not in
// the catalog (or with statuses WeChat does not use) are returned as ignored.
//
// Nothing authenticates a report but the user's session, so a client could
// claim accepts it never got: with PushConfigured, an accept that no popup
// event confirms within PairWindow is withdrawn by SweepReports; without,
// report-granted credits are capped at MaxReportCredits. Either way a user
// may report ReportsPerMinute times a minute; more fail with rate_limited.
//
// A report with an ID is applied once however often it is retried: every
// counter operation it makes is named after the ID (a retry after a lost
// reply is recognised by the store), and once applied the report is marked
// done for a day. A failure answers an error; the retry completes it.
func (s *Service) RecordReport(ctx context.Context, openID string, r Report) (ignored []string, err error) {
	if err := CheckReportID(r.ID); err != nil {
		return nil, err
	}
	op := s.newID("rpt_") // a report without an ID is a new popup each time
	var mark store.Key
	if r.ID != "" {
		sum := sha256.Sum256([]byte(r.ID))
		op = "rpt:" + hex.EncodeToString(sum[:12])
		mark = store.Key{Partition: s.userPartition(openID), Sort: "rk|" + hex.EncodeToString(sum[:16])}
	}
	if err := s.allowReport(ctx, openID, op); err != nil {
		return nil, err
	}
	apply := true
	if r.ID != "" {
		done, err := s.isDone(ctx, mark)
		if err != nil {
			return nil, err
		}
		apply = !done
	}
	ids := make([]string, 0, len(r.Result))
	for id := range r.Result {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		t, ok := s.templateByID(id)
		status, valid := normalizeStatus(r.Result[id])
		if !ok || !valid {
			ignored = append(ignored, id)
			continue
		}
		if !apply {
			continue
		}
		if _, err := s.applyChoice(ctx, openID, t, status, SourceReport, +1, op); err != nil {
			return ignored, err
		}
	}
	if r.Settings != nil {
		ids = ids[:0]
		for id := range r.Settings.ItemSettings {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			t, ok := s.templateByID(id)
			status, valid := normalizeStatus(r.Settings.ItemSettings[id])
			if !ok || !valid {
				if !slices.Contains(ignored, id) {
					ignored = append(ignored, id)
				}
				continue
			}
			if err := s.applySetting(ctx, openID, t, status); err != nil {
				return ignored, err
			}
		}
	}
	if r.ID != "" && apply {
		if err := s.markDone(ctx, mark, reportMemory); err != nil {
			return ignored, err
		}
	}
	return ignored, nil
}

func (s *Service) templateByID(id string) (Template, bool) {
	t, ok := s.catalog.Lookup(id)
	return t, ok && t.ID == id
}

// opKeep is how long counters remember the operations of a popup (its
// pairing, its credit): longer than any retry of the report or
// redelivery of the event takes, whose done mark covers the time after.
const opKeep = time.Hour

// applyChoice applies one popup choice from the client (side +1) or from
// WeChat's popup event (side -1). Its counter operations are named after op
// (the report or the push item), so that applying the same choice again -
// a retry after a failure or a lost reply, a copy applied concurrently -
// changes nothing more: every write here is safe to repeat, and an error
// tells the caller to. It reports whether a credit was granted (reported
// to the observer: again when a repeat follows an error, since the store
// answers a repeated AddOnce as it answered the first).
func (s *Service) applyChoice(ctx context.Context, openID string, t Template, status string, src Source, side int64, op string) (credited bool, err error) {
	if status == StatusAccept && t.Kind == OneTime {
		var after int64 // the credits after the grant
		granted, err := s.pairedGrant(ctx, openID, t.ID, side, op)
		if err != nil {
			return false, err
		}
		if granted {
			limit := s.maxCredits
			if side > 0 && s.pushConfigured {
				// On probation until WeChat's popup event confirms it; noted
				// before the credit exists, so that no credit escapes the sweep.
				if err := s.notePendingReport(ctx, openID, t.ID); err != nil {
					return false, err
				}
			} else if side > 0 {
				limit = s.maxReportCredits // nothing will ever confirm it
			}
			err := s.retryWrite(ctx, "grant credit", func() error {
				v, err := s.st.AddOnce(ctx, s.creditsKey(openID, t.ID), 1, 0, limit, store.CounterOp{ID: "grant:" + op, Keep: opKeep})
				after = v
				if errors.Is(err, store.ErrOutOfRange) {
					s.log.Warn("credit cap reached", "template", t.Alias, "openid", HashID(openID), "cap", limit, "source", src)
					return nil
				}
				credited = err == nil
				return err
			})
			if err != nil {
				return false, err
			}
			if credited {
				s.reportCredits(t.ID, CreditGranted, 1)
			}
			if err := s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, t.ID) }); err != nil {
				return credited, err
			}
		}
		hint := consentHint{op: op, granted: credited}
		if credited {
			hint.credits = &after
		}
		return credited, s.retryWrite(ctx, "record consent", func() error { return s.recordChoice(ctx, openID, t, status, src, hint, credited) })
	}
	if err := s.recordChoice(ctx, openID, t, status, src, consentHint{op: op}, false); err != nil {
		return false, err
	}
	if status == StatusAccept && t.Kind == LongTerm {
		return false, s.noteAudience(ctx, openID, t.ID) // after the acceptance it notes
	}
	return false, nil
}

// recordChoice sets the consent state after a popup choice (named
// hint.op, which credited a credit or not), counting it in the funnel with
// the same write unless that choice was counted already.
func (s *Service) recordChoice(ctx context.Context, openID string, t Template, status string, src Source, hint consentHint, credited bool) error {
	return s.updateConsentFull(ctx, openID, t.ID, func(m *consentMeta) []store.WriteOp {
		m.Status, m.Source = status, src
		if t.Kind == LongTerm {
			m.LongTerm = status == StatusAccept
		}
		metrics := s.choiceMetrics(status, src, credited)
		if len(metrics) == 0 || m.Counted == hint.op {
			return nil
		}
		m.Counted = hint.op
		return s.statAdds(s.now(), t.ID, metrics...)
	}, hint)
}

// applySetting records an "always keep this choice" setting. A kept reject
// means WeChat refuses the template's messages: its credits are zeroed.
func (s *Service) applySetting(ctx context.Context, openID string, t Template, status string) error {
	edit := func(m *consentMeta) {
		m.Status, m.AlwaysKeep, m.Source = status, true, SourceSettings
		if t.Kind == LongTerm {
			m.LongTerm = status == StatusAccept
		}
	}
	if status == StatusReject || status == StatusBan {
		return s.zeroCredits(ctx, openID, t.ID, 0, edit, "")
	}
	return s.updateConsent(ctx, openID, t.ID, edit)
}

// zeroCredits zeroes a user's credits for a template, applying edit to the
// consent state first. Replacing the counter makes it forget its
// operations: a credit a send took before the zeroing cannot be given back
// (WeChat's zeroing took it too), while a credit granted after it can.
// The user then leaves the template's audience index (best effort).
// removed is what the counter is believed to hold, for the observer (0:
// unknown); the zeroing of a one-time template is reported.
func (s *Service) zeroCredits(ctx context.Context, openID, tmplID string, removed int64, edit func(*consentMeta), op string) error {
	var zero int64
	if err := s.updateConsentWith(ctx, openID, tmplID, edit, consentHint{op: op, credits: &zero}); err != nil {
		return err
	}
	if _, err := s.st.Put(ctx, s.creditsKey(openID, tmplID), []byte("0"), store.PutOptions{}); err != nil {
		return storeErr("zero credits", err)
	}
	if t, ok := s.templateByID(tmplID); ok {
		if t.Kind == OneTime {
			s.reportCredits(tmplID, CreditZeroed, max(0, removed))
		}
		s.leaveAudience(ctx, openID, t)
	}
	return nil
}

// Revoke zeroes the user's credits and acceptance of a template: WeChat said
// 43101, or the user turned the template off.
func (s *Service) Revoke(ctx context.Context, openID string, tmplID string, src Source) error {
	return s.revoke(ctx, openID, tmplID, src, 0)
}

// revoke is Revoke for a counter believed to hold removed credits (0:
// unknown), which the observer is told.
func (s *Service) revoke(ctx context.Context, openID string, tmplID string, src Source, removed int64) error {
	return s.revokeOp(ctx, openID, tmplID, src, removed, "")
}

// revokeOp is revoke by the operation op (a push item; "" for none).
func (s *Service) revokeOp(ctx context.Context, openID string, tmplID string, src Source, removed int64, op string) error {
	return s.zeroCredits(ctx, openID, tmplID, removed, func(m *consentMeta) {
		m.Status, m.LongTerm, m.Source = StatusReject, false, src
	}, op)
}

// updateConsent applies edit to the consent state with optimistic
// concurrency. The change is an event of the user's timeline, written in
// the same store.Write (one partition: the user's).
func (s *Service) updateConsent(ctx context.Context, openID, tmplID string, edit func(*consentMeta)) error {
	return s.updateConsentWith(ctx, openID, tmplID, edit, consentHint{})
}

// updateConsentWith is updateConsent for a change hint describes: a change
// of the consent writes consent.changed in the record's Write.
func (s *Service) updateConsentWith(ctx context.Context, openID, tmplID string, edit func(*consentMeta), hint consentHint) error {
	return s.updateConsentFull(ctx, openID, tmplID, func(m *consentMeta) []store.WriteOp {
		edit(m)
		return nil
	}, hint)
}

// updateConsentFull is updateConsent for an edit that returns the funnel's
// counters to add, and a change hint describes (consent.changed): the
// state, its timeline event, its webhook events and its counters are one
// store.Write.
func (s *Service) updateConsentFull(ctx context.Context, openID, tmplID string, edit func(*consentMeta) []store.WriteOp, hint consentHint) error {
	key := s.consentKey(openID, tmplID)
	for attempt := range 8 {
		var m consentMeta
		opts := store.PutOptions{IfAbsent: true}
		it, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			if json.Unmarshal(it.Value, &m) != nil {
				m = consentMeta{}
			}
			opts = store.PutOptions{IfVersion: it.Version}
		case !errors.Is(err, store.ErrNotFound):
			return storeErr("get consent", err)
		}
		old := m
		adds := edit(&m)
		m.UpdatedAt = s.now().UTC()
		switch m.Source {
		case SourceReport, SourcePopup:
			m.LastPromptAt = m.UpdatedAt
		}
		if m.Status == StatusAccept && (m.Source == SourceReport || m.Source == SourcePopup || m.Source == SourceChange) {
			m.LastAcceptAt = m.UpdatedAt
		}
		b, _ := json.Marshal(m)
		events, err := s.consentEventOps(ctx, openID, tmplID, old, m, hint)
		if err != nil {
			return err
		}
		event, err := s.timelineOp(openID, s.newID("evt_"), TimelineEvent{Type: TimelineConsent, At: m.UpdatedAt,
			TemplateID: tmplID, Status: m.Status, Source: m.Source})
		if err != nil {
			return storeErr("encode timeline event", err)
		}
		extra := append(append([]store.WriteOp{event}, events...), adds...)
		if _, err := s.writeWithEvents(ctx, store.WritePut(key, b, opts), extra); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrConflict) {
			return storeErr("put consent", err)
		}
		time.Sleep(time.Duration(rand.IntN(4<<attempt)) * time.Millisecond) // let the other writer finish
	}
	return storeErr("put consent", errors.New("too many concurrent updates"))
}

// pairedGrant decides whether an accept grants a credit. The client's
// report (side +1) and WeChat's popup event (side -1) describe the same
// popup; a signed counter per user and template holds the unmatched
// occurrences: positive, reports no event matched yet; negative, events no
// report matched. One AddOnce (named op, so a repeat answers the same)
// both pairs and tells the outcome: a report pairs with a pending event
// when the balance was at most -1, i.e. is at most 0 after it; an event
// pairs with a pending report when it was at least 1. Each operation also
// restarts the balance's life (pairLife windows), so that an unconfirmed
// report is still counted when SweepReports looks at it a PairWindow later.
func (s *Service) pairedGrant(ctx context.Context, openID, tmplID string, side int64, op string) (bool, error) {
	var v int64
	err := s.retryWrite(ctx, "pair", func() error {
		var err error
		v, err = s.st.AddOnce(ctx, s.pairKey(openID, tmplID), side, math.MinInt64, math.MaxInt64,
			store.CounterOp{ID: "pair:" + op, Keep: opKeep, ExpiresAt: s.now().Add(pairLife * s.pairWindow)})
		return err
	})
	if err != nil {
		return false, err
	}
	if side > 0 {
		return v >= 1, nil
	}
	return v <= -1, nil
}

// holdKeep is how long a credit counter remembers the send that took a
// credit: longer than the send's retries and than SweepUnknown takes to
// settle it (UnknownWindow, twice for a late tick), so that both find it.
func (s *Service) holdKeep() time.Duration {
	return min(2*s.unknownWindow+time.Hour, store.MaxOpKeep)
}

// holdOp names the credit notification id holds.
func holdOp(id string) string { return "take:" + id }

// consume takes the right to send one message before WeChat is called: a
// credit for one-time templates, the acceptance for long-term ones. It
// reports false when the ledger allows nothing, and whether the take left
// the user without credit (last: the send then prunes the audience index).
// The credit is taken by one AddOnce named after the notification, so that
// a retry of the send (after a store failure, a lost reply) finds the
// credit it already holds instead of taking another, and the same answer.
// left is the credits the take left (0 for long-term templates). The take
// is reported once it is known to be made: a take whose reply was lost is
// not, and the retry that finds it reports it. A retry that finds a credit
// an earlier attempt took and failed to give back reports it again (an
// over-count of takes, as rare as a failed Undo).
func (s *Service) consume(ctx context.Context, openID string, t Template, id string) (ok, last bool, left int64, err error) {
	if t.Kind == LongTerm {
		it, err := s.st.Get(ctx, s.consentKey(openID, t.ID))
		if errors.Is(err, store.ErrNotFound) {
			return false, false, 0, nil
		}
		if err != nil {
			return false, false, 0, storeErr("get consent", err)
		}
		var m consentMeta
		return json.Unmarshal(it.Value, &m) == nil && m.LongTerm, false, 0, nil
	}
	ok = true
	err = s.retryWrite(ctx, "consume credit", func() error {
		v, err := s.st.AddOnce(ctx, s.creditsKey(openID, t.ID), -1, 0, math.MaxInt64, store.CounterOp{ID: holdOp(id), Keep: s.holdKeep()})
		if errors.Is(err, store.ErrOutOfRange) {
			ok = false
			return nil
		}
		left = v
		last = err == nil && v == 0
		return err
	})
	if err == nil && ok {
		s.reportCredits(t.ID, CreditTaken, 1)
	}
	return ok, last, left, err
}

// giveBack returns the credit notification id took, for a send WeChat did
// not deliver. When the credits were zeroed since (the user turned the
// template off, or WeChat said 43101), WeChat's count was zeroed with that
// credit in it, and the counter no longer remembers the take: nothing is
// given back. The Undo is safe to repeat. A credit given back makes the
// user a holder again: they are noted in the audience index after it (also
// when an Undo's reply was lost, since it may have applied).
func (s *Service) giveBack(ctx context.Context, openID string, t Template, id string) error {
	if t.Kind == LongTerm {
		return nil
	}
	mayHave, given := false, false
	err := s.retryWrite(ctx, "give back credit", func() error {
		undone, err := s.st.Undo(ctx, s.creditsKey(openID, t.ID), holdOp(id))
		mayHave = mayHave || undone || err != nil
		given = given || undone
		return err
	})
	// Reported when an Undo said it gave the credit back: one whose reply
	// was lost, repeated, answers false and is not reported.
	if given {
		s.reportCredits(t.ID, CreditGivenBack, 1)
	}
	if mayHave {
		if nerr := s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, t.ID) }); err == nil {
			err = nerr
		}
	}
	return err
}

// retryWrite runs a compensating write (a credit given back, an outcome
// recorded) a few times before giving up: losing it would leave the ledger
// or the record wrong. write must be safe to repeat after a failure that
// happened before the store applied it.
func (s *Service) retryWrite(ctx context.Context, op string, write func() error) error {
	return s.retryWriteN(ctx, op, 5, write)
}

// retryWriteN is retryWrite with n tries (waits double up to 160 ms).
func (s *Service) retryWriteN(ctx context.Context, op string, n int, write func() error) error {
	var err error
	for attempt, wait := 0, 10*time.Millisecond; attempt < n; attempt, wait = attempt+1, min(wait*2, 160*time.Millisecond) {
		if err = write(); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return storeErr(op, err)
	}
	return nil
}

// isDone reports whether the done mark of a report or push item is there.
func (s *Service) isDone(ctx context.Context, key store.Key) (bool, error) {
	done := false
	err := s.retryWrite(ctx, "get done mark", func() error {
		_, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			done = true
		case errors.Is(err, store.ErrNotFound):
			done = false
		default:
			return err
		}
		return nil
	})
	return done, err
}

// markDone writes the done mark of a report or push item, kept for memory.
func (s *Service) markDone(ctx context.Context, key store.Key, memory time.Duration) error {
	return s.retryWrite(ctx, "mark done", func() error {
		_, err := s.st.Put(ctx, key, []byte(pushDone), store.PutOptions{ExpiresAt: s.now().Add(memory)})
		return err
	})
}
