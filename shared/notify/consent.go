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

	"wxnotify/shared/store"
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
	// RevokingAt and RevokedAt bracket the last zeroing of the credits (a
	// change event, a 43101, a kept reject): written before and after it,
	// so that giveBack can tell a credit the zeroing took with it.
	RevokingAt time.Time `json:"revokingAt,omitzero"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
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
		c := Consent{Template: t, Status: m.Status, AlwaysKeep: m.AlwaysKeep, UpdatedAt: m.UpdatedAt}
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
func (s *Service) RecordReport(ctx context.Context, openID string, r Report) (ignored []string, err error) {
	if err := CheckReportID(r.ID); err != nil {
		return nil, err
	}
	if err := s.allowReport(ctx, openID); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(r.Result))
	for id := range r.Result {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	apply := true
	if r.ID != "" {
		var release func()
		apply, release, err = s.claimReport(ctx, openID, r.ID)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				release() // nothing of it was counted: its retry applies it
			}
		}()
	}
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
		if err := s.applyChoice(ctx, openID, t, status, SourceReport, +1); err != nil {
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
	return ignored, nil
}

func (s *Service) templateByID(id string) (Template, bool) {
	t, ok := s.catalog.Lookup(id)
	return t, ok && t.ID == id
}

// applyChoice applies one popup choice from the client (side +1) or from
// WeChat's popup event (side -1).
func (s *Service) applyChoice(ctx context.Context, openID string, t Template, status string, src Source, side int64) error {
	if status == StatusAccept && t.Kind == OneTime {
		granted, err := s.pairedGrant(ctx, openID, t.ID, side)
		if err != nil {
			return err
		}
		// The popup is counted in the pairing balance now: whatever fails
		// from here on must not fail the call, or the caller's retry (the
		// client's, WeChat's redelivery) would count the popup again. The
		// writes left are retried, then logged.
		if granted {
			limit := s.maxCredits
			if side > 0 && s.pushConfigured {
				// On probation until WeChat's popup event confirms it; noted
				// before the credit exists, so that no credit escapes the sweep.
				if err := s.notePendingReport(ctx, openID, t.ID); err != nil {
					s.log.Warn("report-granted credit not put on probation", "template", t.Alias, "openid", HashID(openID), "err", err)
				}
			} else if side > 0 {
				limit = s.maxReportCredits // nothing will ever confirm it
			}
			err := s.retryWrite(ctx, "grant credit", func() error {
				_, err := s.st.Add(ctx, s.creditsKey(openID, t.ID), 1, 0, limit)
				if errors.Is(err, store.ErrOutOfRange) {
					s.log.Warn("credit cap reached", "template", t.Alias, "openid", HashID(openID), "cap", limit, "source", src)
					return nil
				}
				return err
			})
			if err != nil {
				s.log.Error("popup counted, credit not granted", "template", t.Alias, "openid", HashID(openID), "err", err)
			}
			if err == nil {
				err = s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, t.ID) })
			}
			if err != nil {
				s.log.Warn("credit granted, audience not noted", "template", t.Alias, "openid", HashID(openID), "err", err)
			}
		}
		if err := s.retryWrite(ctx, "record consent", func() error { return s.recordChoice(ctx, openID, t, status, src) }); err != nil {
			s.log.Warn("popup counted, consent state not recorded", "template", t.Alias, "openid", HashID(openID), "err", err)
		}
		return nil
	}
	if status == StatusAccept && t.Kind == LongTerm {
		if err := s.noteAudience(ctx, openID, t.ID); err != nil {
			return err
		}
	}
	return s.recordChoice(ctx, openID, t, status, src)
}

// recordChoice sets the consent state after a popup choice.
func (s *Service) recordChoice(ctx context.Context, openID string, t Template, status string, src Source) error {
	return s.updateConsent(ctx, openID, t.ID, func(m *consentMeta) {
		m.Status, m.Source = status, src
		if t.Kind == LongTerm {
			m.LongTerm = status == StatusAccept
		}
	})
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
		return s.zeroCredits(ctx, openID, t.ID, edit)
	}
	return s.updateConsent(ctx, openID, t.ID, edit)
}

// zeroCredits zeroes a user's credits for a template, applying edit to the
// consent state, between two marks of the state (see giveBack).
func (s *Service) zeroCredits(ctx context.Context, openID, tmplID string, edit func(*consentMeta)) error {
	if err := s.updateConsent(ctx, openID, tmplID, func(m *consentMeta) {
		edit(m)
		m.RevokingAt = s.now().UTC()
	}); err != nil {
		return err
	}
	if _, err := s.st.Put(ctx, s.creditsKey(openID, tmplID), []byte("0"), store.PutOptions{}); err != nil {
		return storeErr("zero credits", err)
	}
	err := s.retryWrite(ctx, "mark credits zeroed", func() error {
		return s.updateConsent(ctx, openID, tmplID, func(m *consentMeta) { m.RevokedAt = s.now().UTC() })
	})
	if err != nil {
		// giveBack takes the zeroing as in progress for revokeSettle.
		s.log.Warn("credits zeroed, not marked", "openid", HashID(openID), "err", err)
	}
	return nil
}

// Revoke zeroes the user's credits and acceptance of a template: WeChat said
// 43101, or the user turned the template off.
func (s *Service) Revoke(ctx context.Context, openID string, tmplID string, src Source) error {
	return s.zeroCredits(ctx, openID, tmplID, func(m *consentMeta) {
		m.Status, m.LongTerm, m.Source = StatusReject, false, src
	})
}

// updateConsent applies edit to the consent state with optimistic concurrency.
func (s *Service) updateConsent(ctx context.Context, openID, tmplID string, edit func(*consentMeta)) error {
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
		edit(&m)
		m.UpdatedAt = s.now().UTC()
		b, _ := json.Marshal(m)
		if _, err := s.st.Put(ctx, key, b, opts); err == nil {
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
// occurrences, and bounded Adds make "pair with an unmatched opposite, else
// record myself as unmatched" atomic: the two ranges tried partition the
// integers, so one of them holds unless another writer moved the counter,
// and then the loop re-reads it through the next Add.
func (s *Service) pairedGrant(ctx context.Context, openID, tmplID string, side int64) (bool, error) {
	key := s.pairKey(openID, tmplID)
	now := s.now()
	it, err := s.st.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, err = s.st.Put(ctx, key, []byte("0"), store.PutOptions{IfAbsent: true, ExpiresAt: now.Add(pairLife * s.pairWindow)})
	case err == nil && (it.ExpiresAt.IsZero() || it.ExpiresAt.Sub(now) < (pairLife-1)*s.pairWindow):
		// An ageing window: restart it with its balance (IfVersion: no Add
		// came in between), so that a new popup gets a full window and an
		// unconfirmed report is still counted when SweepReports looks at it
		// a PairWindow from now (tolerating a sweep up to a window late).
		_, err = s.st.Put(ctx, key, it.Value, store.PutOptions{IfVersion: it.Version, ExpiresAt: now.Add(pairLife * s.pairWindow)})
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return false, storeErr("pair window", err)
	}
	pairMin, pairMax := int64(0), int64(math.MaxInt64) // an event pairs with a pending report (balance >= 1)
	ownMin, ownMax := int64(math.MinInt64), int64(-1)  // else it records itself (balance <= 0)
	if side > 0 {
		pairMin, pairMax = math.MinInt64, 0 // a report pairs with a pending event (balance <= -1)
		ownMin, ownMax = 1, math.MaxInt64   // else it records itself (balance >= 0)
	}
	for range 16 {
		_, err := s.st.Add(ctx, key, side, pairMin, pairMax)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, store.ErrOutOfRange) {
			return false, storeErr("pair", err)
		}
		_, err = s.st.Add(ctx, key, side, ownMin, ownMax)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrOutOfRange) {
			return false, storeErr("pair", err)
		}
	}
	return false, storeErr("pair", errors.New("too many concurrent popups"))
}

// consume takes the right to send one message before WeChat is called: a
// credit for one-time templates (one bounded Add), the acceptance for
// long-term ones. It reports false when the ledger allows nothing.
func (s *Service) consume(ctx context.Context, openID string, t Template) (bool, error) {
	if t.Kind == LongTerm {
		it, err := s.st.Get(ctx, s.consentKey(openID, t.ID))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, storeErr("get consent", err)
		}
		var m consentMeta
		return json.Unmarshal(it.Value, &m) == nil && m.LongTerm, nil
	}
	_, err := s.st.Add(ctx, s.creditsKey(openID, t.ID), -1, 0, math.MaxInt64)
	if errors.Is(err, store.ErrOutOfRange) {
		return false, nil
	}
	if err != nil {
		return false, storeErr("consume credit", err)
	}
	return true, nil
}

// giveBack returns a credit consumed for a send made at callAt (taken before
// the credit) that WeChat did not deliver. When the credits were zeroed
// since (the user turned the template off, or WeChat said 43101), WeChat's
// count was zeroed with that credit in it: it is not given back. A zeroing
// is marked before (RevokingAt) and after (RevokedAt) it happens; the
// credit is not given back while one is in progress or when one ended
// after callAt. The write is conditional on the counter's version read
// before the marks were checked, so a zeroing in between makes it look
// again. What is left: a credit granted and consumed in the few
// milliseconds between a zeroing and its second mark is not given back
// (one message fewer).
func (s *Service) giveBack(ctx context.Context, openID string, t Template, callAt time.Time) error {
	if t.Kind == LongTerm {
		return nil
	}
	key := s.creditsKey(openID, t.ID)
	// Three round trips a try: tried longer than a single write.
	return s.retryWriteN(ctx, "give back credit", 10, func() error {
		for attempt := range 16 {
			var (
				n    int64
				opts store.PutOptions
			)
			it, err := s.st.Get(ctx, key)
			switch {
			case errors.Is(err, store.ErrNotFound):
				opts.IfAbsent = true
			case err != nil:
				return err
			default:
				if n, err = store.ParseCounter(it.Value); err != nil {
					return err
				}
				opts.IfVersion = it.Version
			}
			if revoked, err := s.revokedSince(ctx, openID, t.ID, callAt); err != nil || revoked {
				return err
			}
			_, err = s.st.Put(ctx, key, store.FormatCounter(n+1), opts)
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
			// A send or a grant moved the counter meanwhile: look again.
			time.Sleep(time.Duration(rand.IntN(2<<min(attempt, 4))) * time.Millisecond)
		}
		return errors.New("too many concurrent updates")
	})
}

// revokeSettle bounds how long a zeroing counts as in progress: longer
// means its second mark was lost.
const revokeSettle = 30 * time.Second

// revokedSince reports whether the user's credits for a template were
// zeroed after t, or are being zeroed.
func (s *Service) revokedSince(ctx context.Context, openID, tmplID string, t time.Time) (bool, error) {
	it, err := s.st.Get(ctx, s.consentKey(openID, tmplID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	var m consentMeta
	if json.Unmarshal(it.Value, &m) != nil {
		return false, nil
	}
	inProgress := m.RevokingAt.After(m.RevokedAt) && s.now().Sub(m.RevokingAt) < revokeSettle
	return inProgress || !m.RevokedAt.Before(t), nil
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

// claimReport claims a report's idempotency key for the user: apply is
// false when a report with that key was applied before. release gives the
// claim up (the report failed before anything of it was counted).
func (s *Service) claimReport(ctx context.Context, openID, id string) (apply bool, release func(), err error) {
	sum := sha256.Sum256([]byte(id))
	key := store.Key{Partition: s.userPartition(openID), Sort: "rk|" + hex.EncodeToString(sum[:16])}
	ver, err := s.claim(ctx, key, []byte(s.newID("rk_")), reportMemory)
	switch {
	case errors.Is(err, store.ErrConflict):
		return false, func() {}, nil
	case err != nil:
		return false, nil, err
	}
	return true, func() { s.release(ctx, key, ver) }, nil
}
