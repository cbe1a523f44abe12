package notify

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Consent advice: which templates the mini program should ask a user for
// now, so that the subscribe popup asks for credits that will be used.
// docs/advice.md explains the ranking and why; in short, each template of
// the catalog is either excluded (asking is useless) or ranked in a tier
// by what is known of its use:
//
//	excluded  always_reject       rejected with "always keep this choice", or turned off in the settings
//	          banned              WeChat reports the template banned
//	          long_term_accepted  a long-term template already accepted: no popup is ever needed
//	tier 1    held_messages       messages wait for a credit (held until consent; not built yet: Held is 0)
//	tier 2    unmet_demand        sends were skipped for lack of consent, and the user still has none
//	tier 3    recent_demand       the app sends it to this user, and the next send would be skipped
//	tier 4    low_credit          credits are left, fewer than the recent sends used
//	tier 5    no_credit           nothing is known of its use, and the user has no credit (not_accepted
//	                              for a long-term template)
//	tier 6    credit_covers_demand  the credits left cover the recent sends: not suggested
//
// Within a tier the shortfall (held + unmet + recent sends - credits)
// ranks first, then the app's own sends of the template over the last
// AdviceAppDays days (GET /v1/stats: a user without history gets the
// templates the app sends most), then the catalog's order.

// Advice reason codes: the first reason of an AdviceTemplate is the one
// that placed it (its tier); the others are facts that also hold.
const (
	AdviceHeldMessages = "held_messages"
	AdviceUnmetDemand  = "unmet_demand"
	AdviceRecentDemand = "recent_demand"
	AdviceLowCredit    = "low_credit"
	AdviceNoCredit     = "no_credit"
	AdviceNotAccepted  = "not_accepted"
	AdviceCovered      = "credit_covers_demand"
	AdviceAppDemand    = "app_demand"
	// AdviceAlwaysAccept: the user accepts with "always keep this choice":
	// asking shows no popup and grants a credit.
	AdviceAlwaysAccept = "always_accept"

	// Reasons of excluded templates.
	AdviceAlwaysReject     = "always_reject"
	AdviceBanned           = "banned"
	AdviceLongTermAccepted = "long_term_accepted"
)

// Advice bounds.
const (
	// AdviceDefaultLimit is how many template ids Suggested holds by
	// default: every WeChat client takes 3 per wx.requestSubscribeMessage
	// (the current documentation says 5, older clients refuse more than 3).
	AdviceDefaultLimit = 3
	// AdviceMaxLimit is the most a caller may ask for.
	AdviceMaxLimit = 5
	// AdviceWindow is how far back the user's timeline is read.
	AdviceWindow = 30 * 24 * time.Hour
	// AdviceHistoryEvents bounds the timeline events read: the newest
	// ones within AdviceWindow.
	AdviceHistoryEvents = MaxTimelineLimit
	// AdviceAppDays is the days (today, UTC, and the day before) of the
	// app's funnel read for its demand: one query each.
	AdviceAppDays = 2
)

// AdviceOptions tune Advice; the zero value takes the defaults.
type AdviceOptions struct {
	// Limit caps Suggested: 1 to AdviceMaxLimit, 0 for AdviceDefaultLimit.
	Limit int
}

// AdviceTemplate is one template's standing in an Advice.
type AdviceTemplate struct {
	Template Template
	// Tier is 1 (most worth asking) to 6 (not worth asking now); see the
	// package's ranking above.
	Tier int
	// Reasons are machine-readable codes, the tier's first.
	Reasons []string
	// Held is the messages held for the template until the user consents.
	// Holding is not built yet: always 0, the ranking counts it already.
	Held int
	// Unmet is the sends skipped for lack of consent within the window.
	Unmet int
	// Demand is the sends that used the user's consent (sent, or sent
	// without a known outcome) within the window.
	Demand int
	// Credits left (one-time templates).
	Credits int64
	// Accepted: a long-term template is accepted (always false here: an
	// accepted one is excluded).
	Accepted bool
	// AppDemand is the app's sends of the template, to every user, over
	// the last AdviceAppDays days.
	AppDemand int64
	// Suggested: the template is in Advice.Suggested.
	Suggested bool
}

// AdviceExcluded is a template never worth asking for, and why.
type AdviceExcluded struct {
	Template Template
	Reason   string
}

// Advice is what the mini program should ask the user for now.
type Advice struct {
	// Suggested are at most Limit template ids of one kind (WeChat refuses
	// one-time and long-term ids in one call), best first: the tmplIds of
	// the next wx.requestSubscribeMessage. Empty when nothing is worth
	// asking.
	Suggested []string
	Limit     int
	// Since is the start of the window of the user's history read.
	Since time.Time
	// Templates are the templates that may be asked for, ranked.
	Templates []AdviceTemplate
	// Excluded are the others, in the catalog's order.
	Excluded []AdviceExcluded
}

// adviceLedger is one template's consent state as the advice reads it.
type adviceLedger struct {
	meta    consentMeta
	credits int64
}

// Advice ranks the catalog's templates by how worth asking the user
// openID for them is now, and suggests the ids of the next popup.
//
// Cost: one query of the user's consent records (one item per template
// and kind, paged by store.MaxQueryLimit: O(templates)), one query of the
// newest AdviceHistoryEvents events of the user's timeline within
// AdviceWindow (at most maxTimelineQueries when expired events fill a
// page), and one query per day of the app's funnel (AdviceAppDays, each
// O(templates) items): a constant number of round trips for a catalog of
// up to about a hundred templates, whatever the user's or the app's
// history.
func (s *Service) Advice(ctx context.Context, openID string, opts AdviceOptions) (Advice, error) {
	if err := checkOpenID("openid", openID); err != nil {
		return Advice{}, err
	}
	limit := opts.Limit
	switch {
	case limit == 0:
		limit = AdviceDefaultLimit
	case limit < 1 || limit > AdviceMaxLimit:
		return Advice{}, FieldError("limit", "must be 1 to %d", AdviceMaxLimit)
	}
	now := s.now()
	ledger, err := s.adviceLedger(ctx, openID)
	if err != nil {
		return Advice{}, err
	}
	since := now.Add(-AdviceWindow)
	unmet, demand, err := s.adviceHistory(ctx, openID, since)
	if err != nil {
		return Advice{}, err
	}
	app, err := s.appDemand(ctx, now)
	if err != nil {
		return Advice{}, err
	}
	out := Advice{Limit: limit, Since: since.UTC(), Suggested: []string{}}
	order := map[string]int{}
	for i, t := range s.catalog.Templates() {
		order[t.ID] = i
		l := ledger[t.ID]
		if reason := adviceExclusion(t, l.meta); reason != "" {
			out.Excluded = append(out.Excluded, AdviceExcluded{Template: t, Reason: reason})
			continue
		}
		at := AdviceTemplate{Template: t, Unmet: unmet[t.ID], Demand: demand[t.ID], AppDemand: app[t.ID]}
		if t.Kind == OneTime {
			at.Credits = max(0, l.credits)
		}
		at.Tier, at.Reasons = adviceRank(at, l.meta)
		out.Templates = append(out.Templates, at)
	}
	slices.SortStableFunc(out.Templates, func(a, b AdviceTemplate) int {
		switch {
		case a.Tier != b.Tier:
			return a.Tier - b.Tier
		case a.shortfall() != b.shortfall():
			return cmpDesc(a.shortfall(), b.shortfall())
		case a.AppDemand != b.AppDemand:
			return cmpDesc(a.AppDemand, b.AppDemand)
		}
		return order[a.Template.ID] - order[b.Template.ID]
	})
	var kind Kind
	for i := range out.Templates {
		at := &out.Templates[i]
		if at.Tier > tierNoCredit || len(out.Suggested) == limit {
			break
		}
		if kind == "" {
			kind = at.Template.Kind
		}
		if at.Template.Kind == kind {
			at.Suggested = true
			out.Suggested = append(out.Suggested, at.Template.ID)
		}
	}
	return out, nil
}

// The tiers of the ranking.
const (
	tierHeld = 1 + iota
	tierUnmet
	tierDemand
	tierLowCredit
	tierNoCredit
	tierCovered
)

func cmpDesc[T int | int64](a, b T) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// shortfall is the messages the recent use asks for that the credits
// left do not cover.
func (at AdviceTemplate) shortfall() int64 {
	return int64(at.Held+at.Unmet+at.Demand) - at.Credits
}

// adviceExclusion is why asking for t is useless, "" when it is not.
func adviceExclusion(t Template, m consentMeta) string {
	switch {
	case m.Status == StatusBan:
		return AdviceBanned
	case m.Status == StatusReject && (m.AlwaysKeep || m.Source == SourceChange):
		// A kept reject: WeChat no longer shows the popup and answers
		// reject. The settings page, where a change event comes from,
		// lists only kept choices: turning one off there keeps a reject.
		return AdviceAlwaysReject
	case t.Kind == LongTerm && m.LongTerm:
		return AdviceLongTermAccepted
	}
	return ""
}

// adviceRank places a template that may be asked for in its tier.
func adviceRank(at AdviceTemplate, m consentMeta) (int, []string) {
	sendable := at.Credits > 0 // a long-term template here is not accepted
	need := int64(at.Held + at.Unmet + at.Demand)
	var tier int
	var primary string
	switch {
	case at.Held > 0 && int64(at.Held) > at.Credits:
		tier, primary = tierHeld, AdviceHeldMessages
	case at.Unmet > 0 && !sendable:
		tier, primary = tierUnmet, AdviceUnmetDemand
	case at.Demand > 0 && !sendable:
		tier, primary = tierDemand, AdviceRecentDemand
	case sendable && at.Credits < need:
		tier, primary = tierLowCredit, AdviceLowCredit
	case !sendable:
		tier, primary = tierNoCredit, AdviceNoCredit
		if at.Template.Kind == LongTerm {
			primary = AdviceNotAccepted
		}
	default:
		tier, primary = tierCovered, AdviceCovered
	}
	reasons := []string{primary}
	add := func(ok bool, r string) {
		if ok && !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	add(at.Held > 0, AdviceHeldMessages)
	add(at.Unmet > 0, AdviceUnmetDemand)
	add(at.Demand > 0, AdviceRecentDemand)
	add(!sendable && at.Template.Kind == OneTime, AdviceNoCredit)
	add(at.Template.Kind == LongTerm, AdviceNotAccepted)
	add(at.AppDemand > 0, AdviceAppDemand)
	add(m.AlwaysKeep && m.Status == StatusAccept, AdviceAlwaysAccept)
	return tier, reasons
}

// adviceLedger reads the user's consent records, by template id, in one
// query (paged): the state Consents reads, with where it came from.
func (s *Service) adviceLedger(ctx context.Context, openID string) (map[string]adviceLedger, error) {
	out := map[string]adviceLedger{}
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
			id, kind := rest[:i], rest[i+1:]
			l := out[id]
			switch kind {
			case "n":
				if n, err := store.ParseCounter(it.Value); err == nil {
					l.credits = n
				}
			case "m":
				var m consentMeta
				if json.Unmarshal(it.Value, &m) == nil {
					l.meta = m
				}
			}
			out[id] = l
		}
		if page.Next == "" {
			return out, nil
		}
		q.After = page.Next
	}
}

// adviceHistory counts, per template, the user's notifications since
// since, each once by its latest outcome: unmet, those skipped for lack of
// consent (no_consent, 43101 included); demand, those that used it (sent,
// or unknown: WeChat may have it). Failed sends count in neither: they
// say nothing of consent.
func (s *Service) adviceHistory(ctx context.Context, openID string, since time.Time) (unmet, demand map[string]int, err error) {
	var bounds listQuery
	if err := bounds.setTimes(since, time.Time{}); err != nil {
		return nil, nil, err
	}
	page, err := s.openIDTimeline(ctx, openID, bounds, "", AdviceHistoryEvents)
	if err != nil {
		return nil, nil, err
	}
	unmet, demand = map[string]int{}, map[string]int{}
	seen := map[string]bool{}
	for _, ev := range page.Events { // newest first: the latest outcome comes first
		if ev.Type != TimelineNotification || ev.Notification == "" || seen[ev.Notification] {
			continue
		}
		seen[ev.Notification] = true
		switch Status(ev.Status) {
		case StatusSkipped:
			if ev.Reason == ReasonNoConsent {
				unmet[ev.TemplateID]++
			}
		case StatusSent, StatusUnknown:
			demand[ev.TemplateID]++
		}
	}
	return unmet, demand, nil
}

// appDemand is the app's sends per template id (every outcome: sent,
// unknown, failed, skipped without consent) over the last AdviceAppDays
// days of its funnel.
func (s *Service) appDemand(ctx context.Context, now time.Time) (map[string]int64, error) {
	to := now.UTC()
	r, err := s.Stats(ctx, StatsQuery{From: statsDay(to.AddDate(0, 0, 1-AdviceAppDays)), To: statsDay(to)})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, t := range r.Totals {
		out[t.TemplateID] = t.Sent + t.Unknown + t.Held + t.Wasted + t.FailedTotal()
	}
	return out, nil
}
