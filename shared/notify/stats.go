package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// The consent funnel: counters per app, UTC day and template, one store
// item each, in the partition
//
//	st|<appid>|<yyyy-mm-dd>
//
// under the sort key "<template id>|<metric>" (a failure's metric names
// its errcode: "failed.43108"). They are added by the very store.Write
// that records what they count - the consent record of a popup choice,
// the outcome of a send, the done mark of a sent event, the mark of a
// shown popup - as store.WriteAdd operations: no extra round trip, and a
// write that fails (or is refused by its conditions) counts nothing. They
// expire with the retention, counted from the end of their day.

// The metrics of the funnel.
const (
	MetricShown     = "shown"     // popups the mini program opened, per template asked
	MetricAccepted  = "accepted"  // popup choices: accept
	MetricRejected  = "rejected"  // popup choices: reject
	MetricGranted   = "granted"   // one-time credits granted
	MetricTaken     = "taken"     // one-time credits sends kept (sent, unknown, 43101)
	MetricGivenBack = "givenBack" // credits of unknown sends given back when not delivered
	MetricSent      = "sent"      // sends WeChat accepted
	MetricDelivered = "delivered" // WeChat's sent events reporting a delivery
	MetricFailed    = "failed"    // failed sends, by errcode
	MetricHeld      = "held"      // sends held back: skipped without consent or binding
	MetricWasted    = "wasted"    // one-time sends WeChat answered 43101 while the ledger had a credit
	MetricUnknown   = "unknown"   // sends whose outcome is unknown
)

// MaxStatsDays bounds the range of one Stats call.
const MaxStatsDays = 92

// statsDay formats the UTC day of t.
func statsDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func (s *Service) statsPartition(day string) string { return "st|" + s.appID + "|" + day }

// statAdds are the Write operations adding one to each metric of tmplID on
// the day of at.
func (s *Service) statAdds(at time.Time, tmplID string, metrics ...string) []store.WriteOp {
	if tmplID == "" || len(metrics) == 0 {
		return nil
	}
	u := at.UTC()
	day := statsDay(u)
	exp := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC).Add(24*time.Hour + s.retention)
	partition := s.statsPartition(day)
	ops := make([]store.WriteOp, 0, len(metrics))
	for _, m := range metrics {
		ops = append(ops, store.WriteAdd(store.Key{Partition: partition, Sort: tmplID + "|" + m}, 1, exp))
	}
	return ops
}

// failedMetric is the metric of a failure with errcode.
func failedMetric(errcode int) string { return MetricFailed + "." + strconv.Itoa(errcode) }

// outcomeMetrics are the metrics the outcome n counts, over prior (the
// record's previous outcome, nil when unknown or none).
func (s *Service) outcomeMetrics(n Notification, prior *Notification) []string {
	oneTime := false
	if t, ok := s.catalog.Lookup(n.TemplateID); ok {
		oneTime = t.Kind == OneTime
	}
	settling := prior != nil && prior.Status == StatusUnknown
	var ms []string
	switch n.Status {
	case StatusSent:
		ms = append(ms, MetricSent)
	case StatusFailed:
		ms = append(ms, failedMetric(n.WeChat.Errcode))
		if settling && n.Reason == ReasonNotDelivered && oneTime {
			ms = append(ms, MetricGivenBack)
		}
	case StatusUnknown:
		ms = append(ms, MetricUnknown)
	case StatusSkipped:
		if oneTime && n.WeChat.Errcode == wechat.CodeNoSubscription {
			ms = append(ms, MetricWasted)
		} else {
			ms = append(ms, MetricHeld)
		}
	}
	// A credit kept by the send: taken once, when its first outcome that
	// keeps it is written (a settled unknown kept it already).
	keeps := n.Status == StatusSent || n.Status == StatusUnknown ||
		(n.Status == StatusSkipped && n.WeChat.Errcode == wechat.CodeNoSubscription)
	if oneTime && keeps && !settling {
		ms = append(ms, MetricTaken)
	}
	return ms
}

// writeStatsApart adds the counters of a write that a store could not make
// in one Write with them (Redis Cluster): after it, best effort.
func (s *Service) writeStatsApart(ctx context.Context, adds []store.WriteOp) {
	if len(adds) == 0 {
		return
	}
	if _, err := s.st.Write(ctx, adds); err != nil {
		s.log.Warn("consent funnel counters not added", "err", err)
	}
}

// splitAdds separates the Adds of ops from the rest.
func splitAdds(ops []store.WriteOp) (rest, adds []store.WriteOp) {
	for _, op := range ops {
		if op.Kind == store.AddKind {
			adds = append(adds, op)
		} else {
			rest = append(rest, op)
		}
	}
	return rest, adds
}

// choiceMetrics are the metrics of a popup choice from src that credited
// (or not) a one-time credit. The choices are counted from one side of a
// popup only: WeChat's popup events when push is configured (every popup
// answered has one), the mini program's reports otherwise. A grant is
// counted on whichever side made it.
func (s *Service) choiceMetrics(status string, src Source, credited bool) []string {
	var ms []string
	counts := (s.pushConfigured && src == SourcePopup) || (!s.pushConfigured && src == SourceReport)
	if counts {
		switch status {
		case StatusAccept:
			ms = append(ms, MetricAccepted)
		case StatusReject:
			ms = append(ms, MetricRejected)
		}
	}
	if credited {
		ms = append(ms, MetricGranted)
	}
	return ms
}

// Shown is the mini program's report that it opened a subscribe popup.
type Shown struct {
	// Templates are the template ids the popup asked for.
	Templates []string
	// ID, when given (the Idempotency-Key header), counts the popup once
	// however often the report is retried (for a day).
	ID string
}

// MaxShownTemplates bounds the templates of one shown popup (WeChat asks
// for at most 3 at once).
const MaxShownTemplates = 10

// RecordShown counts a popup the mini program opened, once per template of
// the catalog it asked for; other template ids are returned as ignored. A
// report with an ID is counted once: its mark and its counters are one
// store.Write.
func (s *Service) RecordShown(ctx context.Context, openID string, sh Shown) (ignored []string, err error) {
	if err := CheckReportID(sh.ID); err != nil {
		return nil, err
	}
	if len(sh.Templates) == 0 {
		return nil, FieldError("templates", "must name at least one template")
	}
	if len(sh.Templates) > MaxShownTemplates {
		return nil, FieldError("templates", "at most %d templates", MaxShownTemplates)
	}
	now := s.now()
	var ops []store.WriteOp
	if sh.ID != "" {
		sum := sha256.Sum256([]byte(sh.ID))
		mark := store.Key{Partition: s.userPartition(openID), Sort: "sh|" + hex.EncodeToString(sum[:16])}
		ops = append(ops, store.WritePut(mark, []byte(pushDone), store.PutOptions{IfAbsent: true, ExpiresAt: now.Add(reportMemory)}))
	}
	var seen []string
	for _, id := range sh.Templates {
		if _, ok := s.templateByID(id); !ok {
			ignored = append(ignored, id)
			continue
		}
		if slices.Contains(seen, id) {
			continue
		}
		seen = append(seen, id)
		ops = append(ops, s.statAdds(now, id, MetricShown)...)
	}
	if len(seen) == 0 {
		return ignored, nil
	}
	err = s.retryWrite(ctx, "count shown popup", func() error {
		_, err := s.st.Write(ctx, ops)
		if errors.Is(err, store.ErrInvalidWrite) && sh.ID != "" {
			// Redis Cluster: the mark first, then the counters.
			if _, err = s.st.Put(ctx, ops[0].Key, ops[0].Value, ops[0].Put); err == nil {
				s.writeStatsApart(ctx, ops[1:])
			}
		}
		if errors.Is(err, store.ErrConflict) {
			return nil // counted before (or by this write, whose reply was lost)
		}
		return err
	})
	return ignored, err
}

// TemplateStats are the funnel of one template over a day (or a range).
type TemplateStats struct {
	Template   string // the catalog alias, "" for a template no longer in it
	TemplateID string
	Shown      int64
	Accepted   int64
	Rejected   int64
	Granted    int64
	Taken      int64
	GivenBack  int64
	Sent       int64
	Delivered  int64
	Held       int64
	Wasted     int64
	Unknown    int64
	// Failed counts the failed sends by WeChat's errcode (0: no answer
	// from WeChat, or a failure before it was called).
	Failed map[int]int64
}

// FailedTotal is the sum of Failed.
func (t TemplateStats) FailedTotal() int64 {
	var n int64
	for _, v := range t.Failed {
		n += v
	}
	return n
}

// WastedRate is the share of the sends that kept a credit which WeChat
// answered 43101: wasted / (sent + unknown + wasted), 0 without sends.
func (t TemplateStats) WastedRate() float64 {
	d := t.Sent + t.Unknown + t.Wasted
	if d == 0 {
		return 0
	}
	return float64(t.Wasted) / float64(d)
}

// Outstanding is the one-time credits granted and not used:
// granted - taken + given back. Credits WeChat or the user zeroed are not
// subtracted.
func (t TemplateStats) Outstanding() int64 { return t.Granted - t.Taken + t.GivenBack }

func (t *TemplateStats) add(metric string, n int64) {
	switch metric {
	case MetricShown:
		t.Shown += n
	case MetricAccepted:
		t.Accepted += n
	case MetricRejected:
		t.Rejected += n
	case MetricGranted:
		t.Granted += n
	case MetricTaken:
		t.Taken += n
	case MetricGivenBack:
		t.GivenBack += n
	case MetricSent:
		t.Sent += n
	case MetricDelivered:
		t.Delivered += n
	case MetricHeld:
		t.Held += n
	case MetricWasted:
		t.Wasted += n
	case MetricUnknown:
		t.Unknown += n
	default:
		code, ok := strings.CutPrefix(metric, MetricFailed+".")
		if c, err := strconv.Atoi(code); ok && err == nil {
			if t.Failed == nil {
				t.Failed = map[int]int64{}
			}
			t.Failed[c] += n
		}
	}
}

func (t *TemplateStats) merge(o TemplateStats) {
	t.Shown += o.Shown
	t.Accepted += o.Accepted
	t.Rejected += o.Rejected
	t.Granted += o.Granted
	t.Taken += o.Taken
	t.GivenBack += o.GivenBack
	t.Sent += o.Sent
	t.Delivered += o.Delivered
	t.Held += o.Held
	t.Wasted += o.Wasted
	t.Unknown += o.Unknown
	for c, n := range o.Failed {
		if t.Failed == nil {
			t.Failed = map[int]int64{}
		}
		t.Failed[c] += n
	}
}

// DayStats are the funnel of the templates with any count on one UTC day.
type DayStats struct {
	Day       string // yyyy-mm-dd
	Templates []TemplateStats
}

// StatsQuery selects the days (UTC, both included) and optionally one
// template (alias or id) of Stats.
type StatsQuery struct {
	From, To string // yyyy-mm-dd; To defaults to today, From to To minus 6 days
	Template string
}

// StatsReport is what Stats answers: the days with counts, oldest first,
// and the totals of each template over the range.
type StatsReport struct {
	From, To string
	Days     []DayStats
	Totals   []TemplateStats
}

// Stats returns the consent funnel of the app, per day and template: one
// store query per day.
func (s *Service) Stats(ctx context.Context, q StatsQuery) (StatsReport, error) {
	to := statsDay(s.now())
	if q.To != "" {
		to = q.To
	}
	toT, err := time.Parse(time.DateOnly, to)
	if err != nil {
		return StatsReport{}, FieldError("to", "must be a date yyyy-mm-dd")
	}
	fromT := toT.AddDate(0, 0, -6)
	if q.From != "" {
		if fromT, err = time.Parse(time.DateOnly, q.From); err != nil {
			return StatsReport{}, FieldError("from", "must be a date yyyy-mm-dd")
		}
	}
	switch days := int(toT.Sub(fromT)/(24*time.Hour)) + 1; {
	case days < 1:
		return StatsReport{}, FieldError("from", "must not be after to")
	case days > MaxStatsDays:
		return StatsReport{}, FieldError("from", "the range is %d days, at most %d", days, MaxStatsDays)
	}
	tmplID := ""
	if q.Template != "" {
		t, ok := s.catalog.Lookup(q.Template)
		if !ok {
			return StatsReport{}, FieldError("template", "is not in the catalog")
		}
		tmplID = t.ID
	}
	out := StatsReport{From: fromT.Format(time.DateOnly), To: toT.Format(time.DateOnly)}
	totals := map[string]*TemplateStats{}
	for d := fromT; !d.After(toT); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		byTmpl := map[string]*TemplateStats{}
		query := store.Query{Partition: s.statsPartition(day), Limit: store.MaxQueryLimit}
		if tmplID != "" {
			query.Prefix = tmplID + "|"
		}
		for {
			page, err := s.st.Query(ctx, query)
			if err != nil {
				return StatsReport{}, storeErr("query stats", err)
			}
			for _, it := range page.Items {
				i := strings.LastIndexByte(it.Key.Sort, '|')
				n, err := store.ParseCounter(it.Value)
				if i <= 0 || err != nil {
					continue
				}
				id := it.Key.Sort[:i]
				if tmplID != "" && id != tmplID {
					continue
				}
				ts := byTmpl[id]
				if ts == nil {
					ts = &TemplateStats{TemplateID: id}
					if t, ok := s.templateByID(id); ok {
						ts.Template = t.Alias
					}
					byTmpl[id] = ts
				}
				ts.add(it.Key.Sort[i+1:], n)
			}
			if page.Next == "" {
				break
			}
			query.After = page.Next
		}
		if len(byTmpl) == 0 {
			continue
		}
		ds := DayStats{Day: day}
		for _, id := range slices.Sorted(maps.Keys(byTmpl)) {
			ds.Templates = append(ds.Templates, *byTmpl[id])
			if totals[id] == nil {
				totals[id] = &TemplateStats{TemplateID: id, Template: byTmpl[id].Template}
			}
			totals[id].merge(*byTmpl[id])
		}
		out.Days = append(out.Days, ds)
	}
	for _, id := range slices.Sorted(maps.Keys(totals)) {
		out.Totals = append(out.Totals, *totals[id])
	}
	return out, nil
}
