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
	// Applied are the operations applied to the record (push items,
	// reports): the record is their done mark (see appliedMemory).
	Applied []appliedOp `json:"applied,omitempty"`
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
// reply is recognised by the store), and the consent record of each
// template marks it applied in the Write that applies its choice (see
// applyChoice). A report with settings is also marked done for a day once
// applied: settings are set, not named operations. A failure answers an
// error; the retry completes it.
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
	marked := r.ID != "" && r.Settings != nil // the choices alone need no mark
	apply := true
	if marked {
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
		if _, _, err := s.applyChoice(ctx, openID, t, status, SourceReport, +1, op); err != nil {
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
	if marked && apply {
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
// redelivery of the event takes, whose done mark (the consent record's
// Applied) covers the time after.
const opKeep = time.Hour

// applyChoice applies one popup choice from the client (side +1) or from
// WeChat's popup event (side -1), the operation op (the report or the push
// item). The user's consent record of the template is the operation's done
// mark (consentMeta.Applied): it is read first, in the Query that also reads
// the credits, and a choice whose op it holds is not applied again (applied
// false). Otherwise the pairing and the credit are named counter operations
// (a retry after a failure or a lost reply, a copy applied concurrently,
// gets the same answers), and the record, its timeline and webhook events,
// the funnel's counters and, for a user who just became a holder, the audience
// index entry are one conditional Write that also marks op applied: an
// error tells the caller to repeat, and the repeat either finds op applied
// or completes it. credited reports whether a credit was granted (reported
// to the observer: again when a repeat follows an error, since the store
// answers a repeated AddOnce as it answered the first).
//
// The pairing and the credit cannot join that Write: their answers decide
// what it writes (the pairing whether there is a credit at all, the credit
// whether the cap was reached and whether the user was a holder before), and
// a Write answers no values on DynamoDB. The credit also stays a bounded
// AddOnce: a counter the Write replaced would forget the takes of the sends
// in flight (their retries and give-backs need them), and an unbounded Add
// in the Write, conditioned on nothing, could not tell whether this credit
// made the user a holder: a send could take the last credit and prune the
// user's index entry between the read and the Write, and the note skipped
// for a user who seemed to hold a credit would leave a holder out.
func (s *Service) applyChoice(ctx context.Context, openID string, t Template, status string, src Source, side int64, op string) (credited, applied bool, err error) {
	st, err := s.readConsentRetrying(ctx, openID, t.ID)
	if err != nil {
		return false, false, err
	}
	if st.meta.applied(op) {
		if status == StatusAccept && t.Kind == LongTerm && st.meta.LongTerm {
			// A repeat: on a store that writes the record and the index
			// entry apart (writeConsentOps), the first attempt may have
			// stopped between the two.
			err := s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, t.ID) })
			return false, false, err
		}
		return false, false, nil
	}
	var after int64 // the credits after the grant
	join := joinNone
	if status == StatusAccept && t.Kind == OneTime {
		granted, err := s.pairedGrant(ctx, openID, t.ID, side, op)
		if err != nil {
			return false, false, err
		}
		if granted {
			limit := s.maxCredits
			if side > 0 && s.pushConfigured {
				// On probation until WeChat's popup event confirms it; noted
				// before the credit exists, so that no credit escapes the sweep.
				if err := s.notePendingReport(ctx, openID, t.ID); err != nil {
					return false, false, err
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
				return false, false, err
			}
			if credited {
				s.reportCredits(t.ID, CreditGranted, 1)
			}
			// The user joins the audience index after the credit, in the
			// record's Write, only when this credit made them a holder:
			// with more (or at the cap) an earlier change did, and noted
			// them after it (see the index's rules in audience.go).
			if credited && after == 1 {
				join = joinBefore
			}
		}
	}
	hint := consentHint{op: op, granted: credited}
	if credited {
		hint.credits = &after
	}
	err = s.retryWrite(ctx, "record consent", func() error {
		var err error
		applied, err = s.writeConsent(ctx, openID, t.ID, st, op, hint, func(st consentState, m *consentMeta) consentChange {
			ch := consentChange{join: join}
			if t.Kind == LongTerm && status == StatusAccept && !st.meta.LongTerm {
				ch.join = joinAfter // the record's acceptance makes the holder
			}
			m.Status, m.Source = status, src
			if t.Kind == LongTerm {
				m.LongTerm = status == StatusAccept
			}
			metrics := s.choiceMetrics(status, src, credited)
			if len(metrics) > 0 && m.Counted != op {
				m.Counted = op
				ch.adds = s.statAdds(s.now(), t.ID, metrics...)
			}
			return ch
		})
		return err
	})
	return credited, applied, err
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
		_, err := s.zeroCredits(ctx, openID, t.ID, edit, "")
		return err
	}
	return s.updateConsent(ctx, openID, t.ID, edit)
}

// zeroCredits zeroes a user's credits for a template, applying edit to the
// consent state first, by the operation op (a push item, marked applied in
// the record: a repeat changes nothing; "" for none). Replacing the counter
// makes it forget its operations: a credit a send took before the zeroing
// cannot be given back (WeChat's zeroing took it too), while a credit
// granted after it can. The Put of 0 is an op of the record's Write,
// conditional on the counter's version as the record's Query read it
// (absent: on its staying absent), so the state and the zeroing are one
// change, and the credits the zeroing removed are known exactly (reported
// to the observer for a one-time template). A user who held something
// then leaves the template's audience index (best effort); one who held
// nothing is left alone (an entry left by a failed prune is pruned by the
// batch that meets it).
func (s *Service) zeroCredits(ctx context.Context, openID, tmplID string, edit func(*consentMeta), op string) (applied bool, err error) {
	st, err := s.readConsentRetrying(ctx, openID, tmplID)
	if err != nil || st.meta.applied(op) {
		return false, err
	}
	t, known := s.templateByID(tmplID)
	var before consentState // the state the zeroing replaced
	zero := int64(0)
	applied, err = s.writeConsent(ctx, openID, tmplID, st, op, consentHint{op: op, credits: &zero}, func(st consentState, m *consentMeta) consentChange {
		before = st
		edit(m)
		key := s.creditsKey(openID, tmplID)
		if st.creditsVersion == 0 {
			return consentChange{local: []store.WriteOp{store.WriteCheck(key, 0)}}
		}
		return consentChange{local: []store.WriteOp{store.WritePut(key, []byte("0"), store.PutOptions{IfVersion: st.creditsVersion})}}
	})
	if err != nil || !applied || !known {
		return applied, err
	}
	if t.Kind == OneTime {
		s.reportCredits(tmplID, CreditZeroed, max(0, before.credits))
	}
	if before.holds(t) {
		s.leaveAudience(ctx, openID, t)
	}
	return true, nil
}

// Revoke zeroes the user's credits and acceptance of a template: WeChat said
// 43101, or the user turned the template off.
func (s *Service) Revoke(ctx context.Context, openID string, tmplID string, src Source) error {
	_, err := s.revokeOp(ctx, openID, tmplID, src, "")
	return err
}

// revoke is Revoke for a counter the caller believes holds removed
// credits; the observer is told what the zeroing found (zeroCredits).
func (s *Service) revoke(ctx context.Context, openID string, tmplID string, src Source, _ int64) error {
	_, err := s.revokeOp(ctx, openID, tmplID, src, "")
	return err
}

// revokeOp is Revoke by the operation op (a push item; "" for none); it
// reports false when op was applied before.
func (s *Service) revokeOp(ctx context.Context, openID string, tmplID string, src Source, op string) (bool, error) {
	return s.zeroCredits(ctx, openID, tmplID, func(m *consentMeta) {
		m.Status, m.LongTerm, m.Source = StatusReject, false, src
	}, op)
}

// acceptChange applies a subscribe_msg_change_event's accept, the push
// item op: the status (and a long-term template's acceptance, after which
// the user joins the audience index in the same Write) and op marked
// applied, one conditional Write after the Query of the record. It reports
// false when op was applied before.
func (s *Service) acceptChange(ctx context.Context, openID string, t Template, op string) (bool, error) {
	st, err := s.readConsentRetrying(ctx, openID, t.ID)
	if err != nil {
		return false, err
	}
	if st.meta.applied(op) {
		if t.Kind == LongTerm && st.meta.LongTerm {
			// See applyChoice: the first attempt may have stopped before the note.
			return false, s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, t.ID) })
		}
		return false, nil
	}
	return s.writeConsent(ctx, openID, t.ID, st, op, consentHint{op: op}, func(st consentState, m *consentMeta) consentChange {
		var ch consentChange
		m.Status, m.Source = StatusAccept, SourceChange
		if t.Kind == LongTerm {
			m.LongTerm = true
			if !st.meta.LongTerm {
				ch.join = joinAfter
			}
		}
		return ch
	})
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
	st, err := s.readConsent(ctx, openID, tmplID)
	if err != nil {
		return storeErr("get consent", err)
	}
	_, err = s.writeConsent(ctx, openID, tmplID, st, "", hint, func(_ consentState, m *consentMeta) consentChange {
		edit(m)
		return consentChange{}
	})
	return err
}

// appliedOp is an operation (a push item, a report) applied to a consent
// record.
type appliedOp struct {
	ID string `json:"id"`
	At int64  `json:"at"` // Unix seconds
}

// A consent record remembers the operations applied to it for
// appliedMemory (as long as a push item's done mark was kept, longer than a
// report's Idempotency-Key is), at most maxApplied of them: past that, the
// oldest are forgotten first. WeChat redelivers a push within seconds and a
// client retries a report at once, so only a user answering more than
// maxApplied popups of one template within the time of a retry could make a
// repeat apply again - and then every counter operation of the repeat is
// still named (opKeep), answering what it answered the first time.
const (
	appliedMemory = pushMemory
	maxApplied    = 32
)

// applied reports whether the record holds op.
func (m *consentMeta) applied(op string) bool {
	if op == "" {
		return false
	}
	for _, a := range m.Applied {
		if a.ID == op {
			return true
		}
	}
	return false
}

// markApplied records op, forgetting what appliedMemory and maxApplied
// let go.
func (m *consentMeta) markApplied(op string, now time.Time) {
	if op == "" || m.applied(op) {
		return
	}
	keep := m.Applied[:0:0]
	for _, a := range m.Applied {
		if now.Unix()-a.At < int64(appliedMemory/time.Second) {
			keep = append(keep, a)
		}
	}
	keep = append(keep, appliedOp{ID: op, At: now.Unix()})
	if len(keep) > maxApplied {
		keep = keep[len(keep)-maxApplied:]
	}
	m.Applied = keep
}

// consentState is a user's consent record and credit counter for one
// template, as one Query read them.
type consentState struct {
	meta    consentMeta
	version int64 // the record's; 0: absent
	credits int64
	// creditsVersion is the counter's version; 0: absent.
	creditsVersion int64
}

// holds reports whether the state lets the user receive t's messages. A
// counter that is not a counter counts as holding (see Service.holds).
func (st consentState) holds(t Template) bool {
	if t.Kind == LongTerm {
		return st.meta.LongTerm
	}
	return st.credits > 0
}

// readConsent reads the user's consent record and credits for tmplID in
// one Query (their sort keys share the prefix c|<tmplId>|).
func (s *Service) readConsent(ctx context.Context, openID, tmplID string) (consentState, error) {
	var st consentState
	prefix := "c|" + tmplID + "|"
	q := store.Query{Partition: s.userPartition(openID), Prefix: prefix, Limit: 4}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return consentState{}, err
		}
		for _, it := range page.Items {
			switch it.Key.Sort {
			case prefix + "m":
				st.version = it.Version
				if json.Unmarshal(it.Value, &st.meta) != nil {
					st.meta = consentMeta{}
				}
			case prefix + "n":
				st.creditsVersion = it.Version
				n, err := store.ParseCounter(it.Value)
				if err != nil {
					n = 1 // unreadable: holding, as Service.holds says
				}
				st.credits = n
			}
		}
		if page.Next == "" {
			return st, nil
		}
		q.After = page.Next
	}
}

// readConsentRetrying is readConsent tried a few times when the store fails.
func (s *Service) readConsentRetrying(ctx context.Context, openID, tmplID string) (consentState, error) {
	var st consentState
	err := s.retryWrite(ctx, "get consent", func() error {
		var err error
		st, err = s.readConsent(ctx, openID, tmplID)
		return err
	})
	return st, err
}

// joinKind says whether a consent change makes the user a holder, who
// joins the template's audience index.
type joinKind uint8

const (
	joinNone joinKind = iota
	// joinBefore: a credit granted before the record's write made the user
	// a holder (the entry may be written before the record).
	joinBefore
	// joinAfter: the record's own change (a long-term acceptance) makes the
	// user a holder (the entry must not be written before it).
	joinAfter
)

// consentChange is what a consent edit writes beside the record.
type consentChange struct {
	// local are more ops in the user's partition (the credits zeroed),
	// written with the record in any case.
	local []store.WriteOp
	// adds are the funnel's counters.
	adds []store.WriteOp
	join joinKind
}

// writeConsent applies edit to the consent record st read and writes it,
// with its timeline event, its webhook events (consent.changed) and what
// edit returns, in one Write conditional on the record's version; with op,
// the record also marks op applied. A failed condition (a concurrent
// change, or the counter an edit conditions on moved) reads the state
// again and edits again, unless op was applied meanwhile (applied false: a
// copy of the operation, or this one's write whose reply was lost).
func (s *Service) writeConsent(ctx context.Context, openID, tmplID string, st consentState, op string, hint consentHint, edit func(consentState, *consentMeta) consentChange) (applied bool, err error) {
	key := s.consentKey(openID, tmplID)
	for attempt := range 8 {
		if attempt > 0 {
			time.Sleep(time.Duration(rand.IntN(4<<attempt)) * time.Millisecond) // let the other writer finish
			if st, err = s.readConsent(ctx, openID, tmplID); err != nil {
				return false, storeErr("get consent", err)
			}
			if st.meta.applied(op) {
				return false, nil
			}
		}
		m := st.meta
		old := m
		old.Applied = nil
		ch := edit(st, &m)
		m.UpdatedAt = s.now().UTC()
		switch m.Source {
		case SourceReport, SourcePopup:
			m.LastPromptAt = m.UpdatedAt
		}
		if m.Status == StatusAccept && (m.Source == SourceReport || m.Source == SourcePopup || m.Source == SourceChange) {
			m.LastAcceptAt = m.UpdatedAt
		}
		m.markApplied(op, m.UpdatedAt)
		b, _ := json.Marshal(m)
		opts := store.PutOptions{IfAbsent: true}
		if st.version > 0 {
			opts = store.PutOptions{IfVersion: st.version}
		}
		h := hint
		if h.credits == nil {
			c := st.credits
			h.credits = &c
		}
		events, err := s.consentEventOps(ctx, openID, tmplID, old, m, h)
		if err != nil {
			return false, err
		}
		event, err := s.timelineOp(openID, s.newID("evt_"), TimelineEvent{Type: TimelineConsent, At: m.UpdatedAt,
			TemplateID: tmplID, Status: m.Status, Source: m.Source})
		if err != nil {
			return false, storeErr("encode timeline event", err)
		}
		err = s.writeConsentOps(ctx, openID, tmplID, store.WritePut(key, b, opts), event, events, ch)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, storeErr("put consent", err)
		}
	}
	return false, storeErr("put consent", errors.New("too many concurrent updates"))
}

// writeConsentOps writes a consent record (put), its timeline event, its
// webhook events and ch in one Write: one conditional request on every
// backend (every Put is conditional, the funnel's Adds have none). A store
// that cannot write across partitions (Redis Cluster) gets, in this order:
// the audience note of a credit granted before (joinBefore), the record
// with the ops of the user's partition (one Write), the webhook events, the
// funnel's counters, the audience note of a long-term acceptance
// (joinAfter: a repeat of the operation notes again, see applyChoice).
func (s *Service) writeConsentOps(ctx context.Context, openID, tmplID string, put, timeline store.WriteOp, events []store.WriteOp, ch consentChange) error {
	local := append([]store.WriteOp{put, timeline}, ch.local...)
	all := append(append(slices.Clip(local), events...), ch.adds...)
	if ch.join != joinNone {
		// A fresh entry, as noteAudience writes when it finds none: no
		// query of the user's entries first. An entry a failed prune left
		// stays beside it (read once, pruned with it).
		entry := store.Key{Partition: s.audiencePartition(tmplID), Sort: openID + audienceSep + s.newID("")}
		all = append(all, store.WritePut(entry, []byte("1"), store.PutOptions{IfAbsent: true}))
	}
	_, err := s.st.Write(ctx, all)
	if !errors.Is(err, store.ErrInvalidWrite) {
		return err
	}
	note := func() error {
		return s.retryWrite(ctx, "note audience", func() error { return s.noteAudience(ctx, openID, tmplID) })
	}
	if ch.join == joinBefore {
		if err := note(); err != nil {
			return err
		}
	}
	if _, err := s.st.Write(ctx, local); err != nil {
		return err
	}
	s.writeEventsApart(ctx, events)
	s.writeStatsApart(ctx, ch.adds)
	if ch.join == joinAfter {
		return note()
	}
	return nil
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
