package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// Client reports of popups are not evidence: the mini program says what it
// likes. These are the controls that keep a client from minting credits.
//
// Store layout (beside the package comment's):
//
//	u|<appid>|<openid>   rl|report|<minute>   consent reports of that minute (a counter)
//	rptdue|<appid>       <deadline ms>|<id>   a report-granted credit awaiting WeChat's popup event

// pairLife is how many PairWindows a pairing balance lives after its last
// restart; it is restarted when less than pairLife-1 windows are left, so
// that a report's balance outlives its sweep (due a window later) even when
// the sweep runs up to a window late.
const pairLife = 3

// maxSweep bounds the pending reports one SweepReports call looks at.
const maxSweep = 1000

// pendingReport is a credit granted on a client report alone.
type pendingReport struct {
	OpenID   string `json:"o"`
	Template string `json:"t"`
}

func (s *Service) reportDuePartition() string { return "rptdue|" + s.appID }

// allowReport counts a consent report of the user in the current minute
// and fails with rate_limited past ReportsPerMinute. The count is one
// AddOnce named op (a retried report is not counted twice) that gives the
// minute's counter its expiry.
func (s *Service) allowReport(ctx context.Context, openID, op string) error {
	if s.reportsPerMinute < 0 {
		return nil
	}
	minute := s.now().Unix() / 60
	key := store.Key{Partition: s.userPartition(openID), Sort: "rl|report|" + strconv.FormatInt(minute, 10)}
	expires := time.Unix((minute+2)*60, 0)
	err := s.retryWrite(ctx, "count report", func() error {
		_, err := s.st.AddOnce(ctx, key, 1, 0, int64(s.reportsPerMinute), store.CounterOp{ID: op, Keep: 2 * time.Minute, ExpiresAt: expires})
		return err
	})
	if errors.Is(err, store.ErrOutOfRange) {
		retry := time.Unix((minute+1)*60, 0).Sub(s.now()).Round(time.Second)
		return Errorf(CodeRateLimited, "more than %d consent reports in a minute, retry in %s", s.reportsPerMinute, max(retry, time.Second))
	}
	return err
}

// notePendingReport records that a credit is about to be granted on a
// client report alone, due for SweepReports a PairWindow from now.
func (s *Service) notePendingReport(ctx context.Context, openID, tmplID string) error {
	now := s.now()
	key := store.Key{Partition: s.reportDuePartition(),
		Sort: fmt.Sprintf("%013d|%s", now.Add(s.pairWindow).UnixMilli(), s.newID("rpt_"))}
	b, _ := json.Marshal(pendingReport{OpenID: openID, Template: tmplID})
	return s.retryWrite(ctx, "note pending report", func() error {
		_, err := s.st.Put(ctx, key, b, store.PutOptions{ExpiresAt: now.Add(pairLife * s.pairWindow)})
		return err
	})
}

// SweepReports withdraws the credits that client reports granted and that
// no subscribe_msg_popup_event confirmed within PairWindow (only reports
// recorded with PushConfigured are pending). A popup event that comes
// later still grants its credit, so a real popup whose event was slow is
// counted once in the end. It reports how many credits it withdrew.
//
// Run it at least once a PairWindow (the batch function's tick does): the
// pairing balance that tells a confirmed report from an unconfirmed one is
// kept for a window after the sweep is due. Overlapping sweeps, and a sweep
// that died half-way and the next one, withdraw each credit once (see
// sweepReport). It stops after maxSweep entries or when ctx ends; the next
// call resumes.
func (s *Service) SweepReports(ctx context.Context) (withdrawn int, err error) {
	now := s.now()
	q := store.Query{Partition: s.reportDuePartition(), Limit: 100}
	for seen := 0; seen < maxSweep; {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return withdrawn, storeErr("query pending reports", err)
		}
		for _, it := range page.Items {
			ms, _, _ := strings.Cut(it.Key.Sort, "|")
			due, _ := strconv.ParseInt(ms, 10, 64)
			if due > now.UnixMilli() {
				return withdrawn, nil
			}
			if err := ctx.Err(); err != nil {
				return withdrawn, err
			}
			seen++
			ok, err := s.sweepReport(ctx, it)
			if err != nil {
				return withdrawn, err
			}
			if ok {
				withdrawn++
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	return withdrawn, nil
}

// sweepReport settles one due pending report: withdrawn (true) when the
// pairing balance still holds an unmatched report, confirmed otherwise.
// The balance counts reports that no event matched (> 0) or events that no
// report matched (< 0): taking one unmatched report out of it is the same
// bounded Add an event does to pair with it, so a late event and the sweep
// cannot both have it. Both writes are named after the entry, so a sweep
// that died half-way, or one overlapping another, withdraws once; the entry
// is deleted last.
func (s *Service) sweepReport(ctx context.Context, it store.Item) (bool, error) {
	var p pendingReport
	if json.Unmarshal(it.Value, &p) != nil || p.OpenID == "" || p.Template == "" {
		s.log.Warn("malformed pending report dropped")
		_, err := s.dropPendingReport(ctx, it)
		return false, err
	}
	op := store.CounterOp{ID: "withdraw:" + it.Key.Sort, Keep: opKeep}
	unmatched := false
	err := s.retryWrite(ctx, "withdraw report", func() error {
		_, err := s.st.AddOnce(ctx, s.pairKey(p.OpenID, p.Template), -1, 0, math.MaxInt64, op)
		if errors.Is(err, store.ErrOutOfRange) {
			return nil // confirmed by its event (or the balance is gone)
		}
		unmatched = err == nil
		return err
	})
	if err != nil {
		return false, err
	}
	if !unmatched {
		_, err := s.dropPendingReport(ctx, it)
		return false, err
	}
	spent, last := false, false
	err = s.retryWrite(ctx, "withdraw credit", func() error {
		left, err := s.st.AddOnce(ctx, s.creditsKey(p.OpenID, p.Template), -1, 0, math.MaxInt64, op)
		if errors.Is(err, store.ErrOutOfRange) {
			spent = true
			return nil
		}
		last = err == nil && left == 0
		return err
	})
	if err != nil {
		return false, err
	}
	if t, ok := s.templateByID(p.Template); ok && last {
		s.leaveAudience(ctx, p.OpenID, t) // the withdrawn credit was the last
	}
	// An overlapping sweep withdrew the same credit (once): the one whose
	// delete takes the entry counts and logs it.
	if mine, err := s.dropPendingReport(ctx, it); err != nil || !mine {
		return false, err
	}
	alias := p.Template
	if t, ok := s.templateByID(p.Template); ok {
		alias = t.Alias
	}
	if !spent {
		s.reportCredits(p.Template, CreditWithdrawn, 1)
	}
	if spent {
		// Sent meanwhile: WeChat answered the send by its own ledger (43101
		// when the accept was made up, which zeroed ours).
		s.log.Warn("unconfirmed consent report: its credit was already used", "template", alias, "openid", HashID(p.OpenID))
	} else {
		s.log.Info("unconfirmed consent report withdrawn", "template", alias, "openid", HashID(p.OpenID))
	}
	return true, nil
}

// dropPendingReport deletes a settled entry; mine is false when another
// sweep deleted it first.
func (s *Service) dropPendingReport(ctx context.Context, it store.Item) (mine bool, err error) {
	err = s.retryWrite(ctx, "drop pending report", func() error {
		err := s.st.Delete(ctx, it.Key, store.DeleteOptions{IfVersion: it.Version})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil
		}
		mine = err == nil
		return err
	})
	return mine, err
}
