package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The notification history: when a notification's outcome is recorded
// (sent, skipped, failed, unknown, and the settling of an unknown), the
// record and its history entries are written in one store.Write. An entry
// is an item whose value is the notification id, expiring with the record,
// in each partition the notification is listed in:
//
//	nh|<appid>              every notification
//	nh|<appid>|s|<status>   by the status of that outcome
//	nh|<appid>|t|<template> by template id
//	nh|<appid>|u|<openid>   by recipient (when it was resolved)
//	nh|<appid>|b|<batch>    by batch (batch sends)
//
// under the sort key listSort(createdAt, id), so a Query reads newest
// first. Entries are Puts IfAbsent: one that exists was written by an
// earlier outcome of the same notification (a failed send retried, an
// unknown settled) or by this very write whose reply was lost; either way
// it is the entry wanted, so it is dropped from the write, which is tried
// again (a lost reply then fails on the record's version, as before).
//
// An entry outlives the status it was written for: a settled unknown keeps
// its s|unknown entry. ListNotifications checks each record it reads, so a
// notification is listed once, under its current status. Notifications
// recorded before the history existed have no entries and are not listed.

// MaxNotificationListLimit bounds a page of ListNotifications.
const MaxNotificationListLimit = 100

// examineFactor bounds the entries one page examines: limit times this.
const examineFactor = 10

func (s *Service) historyPartition() string { return "nh|" + s.appID }

// historyPartitions returns the partitions n's outcome is listed in.
func (s *Service) historyPartitions(n Notification) []string {
	base := s.historyPartition()
	ps := []string{base, base + "|s|" + string(n.Status), base + "|t|" + n.TemplateID}
	if n.OpenID != "" {
		ps = append(ps, base+"|u|"+n.OpenID)
	}
	if b := batchIDOf(n); b != "" {
		ps = append(ps, base+"|b|"+b)
	}
	return ps
}

// batchIDOf returns the id of the batch that sent n, "" for other sends.
// A batch send's idempotency key is "<batch id>:<recipient>".
func batchIDOf(n Notification) string {
	if n.Source != FromBatch {
		return ""
	}
	id, _, ok := strings.Cut(n.IdempotencyKey, ":")
	if !ok || !strings.HasPrefix(id, "bat_") {
		return ""
	}
	return id
}

// writeOutcome records n, the outcome of a notification, over the version
// ver of its record, with its history entries, in one store.Write. prior,
// when known, is the record's previous outcome, whose entries exist and
// are not written again. It returns the record's new version; a failed
// condition on the record wraps store.ErrConflict.
func (s *Service) writeOutcome(ctx context.Context, n Notification, ver int64, prior *Notification) (int64, error) {
	b, err := marshalNotification(n)
	if err != nil {
		return 0, err
	}
	expires := n.CreatedAt.Add(s.retention)
	ops := make([]store.WriteOp, 1, 12) // the record, its entries, its event, a few outbox entries and counters
	ops[0] = store.WritePut(s.notificationKey(n.ID), b, store.PutOptions{IfVersion: ver, ExpiresAt: expires})
	id := []byte(n.ID) // every entry's value, never written to
	had := map[string]bool{}
	if prior != nil && prior.Status != StatusPending {
		for _, p := range s.historyPartitions(*prior) {
			had[p] = true
		}
	}
	sortKey := listSort(n.CreatedAt, n.ID)
	for _, p := range s.historyPartitions(n) {
		if !had[p] {
			ops = append(ops, store.WritePut(store.Key{Partition: p, Sort: sortKey}, id,
				store.PutOptions{IfAbsent: true, ExpiresAt: expires}))
		}
	}
	// The outcome's event in the recipient's timeline: a Put IfAbsent
	// too, keyed by the outcome (its status and time), dropped like the
	// entries when a lost reply or an earlier try wrote it.
	if event, ok, err := s.outcomeTimelineOp(n); err != nil {
		return 0, err
	} else if ok {
		ops = append(ops, event)
	}
	// The outbox entries of the outcome's event: Puts IfAbsent too, so a
	// lost reply or a retried Write finds them and drops them like the
	// history entries.
	hooks, err := s.outboxOps(n)
	if err != nil {
		return 0, err
	}
	ops = append(ops, hooks...)
	if !n.deliveredAt.IsZero() && n.Status == StatusSent {
		delivered, err := s.deliveredOps(n, n.deliveredAt)
		if err != nil {
			return 0, err
		}
		ops = append(ops, delivered...)
	}
	// The msgid mark of a send WeChat answered (sentevent.go): a Put, no
	// condition.
	if mark, ok := s.sentMarkOp(ctx, n); ok {
		ops = append(ops, mark)
	}
	// The funnel's counters of the outcome (see stats.go): Adds, which no
	// condition refuses and which apply with the record or not at all.
	ops = append(ops, s.statAdds(n.UpdatedAt, n.TemplateID, s.outcomeMetrics(n, prior)...)...)
	for {
		versions, err := s.st.Write(ctx, ops)
		if err == nil {
			return versions[0], nil
		}
		if errors.Is(err, store.ErrInvalidWrite) {
			// A store that cannot write across partitions at once (Redis
			// Cluster): the entries first, then the record.
			return s.writeOutcomeApart(ctx, ops)
		}
		var wc *store.WriteConflict
		if !errors.As(err, &wc) {
			return 0, err
		}
		if wc.Index < 0 {
			if ops, err = s.dropExistingEntries(ctx, ops, err); err != nil {
				return 0, err
			}
			continue
		}
		if wc.Index == 0 || wc.Index >= len(ops) {
			return 0, err
		}
		ops = slices.Delete(ops, wc.Index, wc.Index+1) // the entry exists
	}
}

// dropExistingEntries removes from ops the entries that exist, for a
// conflict the store could not place; none existing, the conflict is the
// record's (cause).
func (s *Service) dropExistingEntries(ctx context.Context, ops []store.WriteOp, cause error) ([]store.WriteOp, error) {
	kept := ops[:1]
	for _, op := range ops[1:] {
		if op.Kind == store.AddKind {
			kept = append(kept, op) // a counter, never a condition
			continue
		}
		_, err := s.st.Get(ctx, op.Key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			kept = append(kept, op)
		case err != nil:
			return nil, err
		}
	}
	if len(kept) == len(ops) {
		return nil, cause
	}
	return kept, nil
}

// writeOutcomeApart writes the entries of ops one by one (existing ones
// are kept), then the record (ops[0]), then its counters. An entry whose
// record write then fails is skipped by ListNotifications, which checks
// every record.
func (s *Service) writeOutcomeApart(ctx context.Context, ops []store.WriteOp) (int64, error) {
	ops, adds := splitAdds(ops)
	for _, op := range ops[1:] {
		if _, err := s.st.Put(ctx, op.Key, op.Value, op.Put); err != nil && !errors.Is(err, store.ErrConflict) {
			return 0, err
		}
	}
	v, err := s.st.Put(ctx, ops[0].Key, ops[0].Value, ops[0].Put)
	if err == nil {
		s.writeStatsApart(ctx, adds)
	}
	return v, err
}

// NotificationFilter selects notifications for ListNotifications; zero
// fields select all.
type NotificationFilter struct {
	UserID   string // a bound user: resolved to its openid
	OpenID   string
	Template string // alias or template id
	Status   Status // sent, skipped, failed or unknown
	Batch    string
	Since    time.Time // created at or after
	Until    time.Time // created before
}

// NotificationPage is one page of ListNotifications.
type NotificationPage struct {
	Notifications []Notification
	// Next is the cursor of the following page, "" at the end.
	Next string
}

// listQuery is a checked filter: the partition to read and the checks
// every record read must pass.
type listQuery struct {
	partition  string
	openID     string
	templateID string
	status     Status
	batch      string
	since      string // the last sort-key prefix in range, "" for none
	start      string // Query.After of the first page, "" for the newest
	none       bool   // nothing can match (an unbound userId)
}

// ListNotifications returns the app's notifications that match f, newest
// first, at most limit (1..MaxNotificationListLimit) per page, after the
// cursor a previous page answered ("" for the first page). The index of
// the most selective filter is read (user, batch, template, status, else
// all) and the other filters are checked on each record, one read per
// entry: a page costs one query and one read per notification listed,
// whatever the history's size. A page examines at most ten times limit
// entries, so a query combining filters may answer a short (even empty)
// page with a cursor to continue.
func (s *Service) ListNotifications(ctx context.Context, f NotificationFilter, cursor string, limit int) (NotificationPage, error) {
	if limit < 1 || limit > MaxNotificationListLimit {
		return NotificationPage{}, FieldError("limit", "must be 1 to %d", MaxNotificationListLimit)
	}
	if cursor != "" && !validListCursor(cursor) {
		return NotificationPage{}, FieldError("cursor", "is not a cursor this list answered")
	}
	lq, err := s.listQuery(ctx, f)
	if err != nil || lq.none {
		return NotificationPage{}, err
	}
	after := lq.start
	if cursor != "" {
		after = cursor
	}
	var out NotificationPage
	for budget := examineFactor * limit; budget > 0; {
		page, err := s.st.Query(ctx, store.Query{Partition: lq.partition, After: after,
			Limit: min(limit-len(out.Notifications), budget)})
		if err != nil {
			return NotificationPage{}, storeErr("query notification history", err)
		}
		for _, it := range page.Items {
			if lq.since != "" && len(it.Key.Sort) >= 16 && it.Key.Sort[:16] > lq.since {
				return out, nil // older than since
			}
			after = it.Key.Sort
			budget--
			n, ok, err := s.listed(ctx, lq, it)
			if err != nil {
				return NotificationPage{}, err
			}
			if ok {
				out.Notifications = append(out.Notifications, n)
			}
		}
		if page.Next == "" {
			return out, nil
		}
		if len(out.Notifications) == limit {
			break
		}
		after = page.Next
	}
	out.Next = after
	return out, nil
}

// listed reads the record of a history entry and reports whether it is
// listed: it exists (it expires with its entries), is the notification the
// entry was written for, and passes every filter.
func (s *Service) listed(ctx context.Context, lq listQuery, it store.Item) (Notification, bool, error) {
	n, _, err := s.getNotification(ctx, string(it.Value))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return n, false, nil
	case err != nil:
		return n, false, storeErr("get notification", err)
	}
	ok := listSort(n.CreatedAt, n.ID) == it.Key.Sort &&
		(lq.openID == "" || n.OpenID == lq.openID) &&
		(lq.templateID == "" || n.TemplateID == lq.templateID) &&
		(lq.status == "" || n.Status == lq.status) &&
		(lq.batch == "" || batchIDOf(n) == lq.batch)
	return n, ok, nil
}

// listQuery checks f and picks the partition to read.
func (s *Service) listQuery(ctx context.Context, f NotificationFilter) (listQuery, error) {
	var lq listQuery
	if f.OpenID != "" {
		if err := checkOpenID("openid", f.OpenID); err != nil {
			return lq, err
		}
		lq.openID = f.OpenID
	}
	if f.UserID != "" {
		if err := CheckUserID("userId", f.UserID); err != nil {
			return lq, err
		}
	}
	if f.Template != "" {
		t, ok := s.catalog.Lookup(f.Template)
		if !ok {
			return lq, FieldError("template", "unknown template %q", truncate(f.Template, 64))
		}
		lq.templateID = t.ID
	}
	switch f.Status {
	case "", StatusSent, StatusSkipped, StatusFailed, StatusUnknown:
		lq.status = f.Status
	default:
		return lq, FieldError("status", "must be sent, skipped, failed or unknown")
	}
	if f.Batch != "" {
		if !strings.HasPrefix(f.Batch, "bat_") || len(f.Batch) > 64 || strings.ContainsAny(f.Batch, "|:\x00") {
			return lq, FieldError("batch", "is not a batch id")
		}
		lq.batch = f.Batch
	}
	if err := lq.setTimes(f.Since, f.Until); err != nil {
		return lq, err
	}
	if f.UserID != "" {
		openID, err := s.ResolveUserID(ctx, f.UserID)
		switch {
		case CodeOf(err) == CodeNotFound:
			lq.none = true // no bound user: no notification reached one
			return lq, nil
		case err != nil:
			return lq, err
		case lq.openID != "" && lq.openID != openID:
			lq.none = true
			return lq, nil
		}
		lq.openID = openID
	}
	base := s.historyPartition()
	switch {
	case lq.openID != "":
		lq.partition = base + "|u|" + lq.openID
	case lq.batch != "":
		lq.partition = base + "|b|" + lq.batch
	case lq.templateID != "":
		lq.partition = base + "|t|" + lq.templateID
	case lq.status != "":
		lq.partition = base + "|s|" + string(lq.status)
	default:
		lq.partition = base
	}
	return lq, nil
}

// setTimes turns since (inclusive) and until (exclusive) into sort-key
// bounds: keys are complements, so until is where the list starts and
// since where it stops.
func (lq *listQuery) setTimes(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return FieldError("since", "must be before until")
	}
	if !until.IsZero() {
		c, err := complementMicros("until", until)
		if err != nil {
			return err
		}
		// After every key of an entry created at or after until: those
		// have a complement at most c ('}' sorts after '|').
		lq.start = c + "}"
	}
	if !since.IsZero() {
		c, err := complementMicros("since", since)
		if err != nil {
			return err
		}
		lq.since = c
	}
	return nil
}

// complementMicros is the 16-digit sort-key prefix of time t.
func complementMicros(field string, t time.Time) (string, error) {
	us := t.UnixMicro()
	if us < 0 || us > maxListMicros {
		return "", FieldError(field, "is out of range")
	}
	return fmt.Sprintf("%016d", maxListMicros-us), nil
}
