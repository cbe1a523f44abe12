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

	"wxnotify/shared/store"
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
// and fails with rate_limited past ReportsPerMinute.
func (s *Service) allowReport(ctx context.Context, openID string) error {
	if s.reportsPerMinute < 0 {
		return nil
	}
	minute := s.now().Unix() / 60
	key := store.Key{Partition: s.userPartition(openID), Sort: "rl|report|" + strconv.FormatInt(minute, 10)}
	// Add creates counters without expiry: create it with one first.
	expires := time.Unix((minute+2)*60, 0)
	if _, err := s.st.Put(ctx, key, []byte("0"), store.PutOptions{IfAbsent: true, ExpiresAt: expires}); err != nil && !errors.Is(err, store.ErrConflict) {
		return storeErr("count report", err)
	}
	_, err := s.st.Add(ctx, key, 1, 0, int64(s.reportsPerMinute))
	if errors.Is(err, store.ErrOutOfRange) {
		retry := time.Unix((minute+1)*60, 0).Sub(s.now()).Round(time.Second)
		return Errorf(CodeRateLimited, "more than %d consent reports in a minute, retry in %s", s.reportsPerMinute, max(retry, time.Second))
	}
	if err != nil {
		return storeErr("count report", err)
	}
	return nil
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
// kept for a window after the sweep is due. Each pending report is looked
// at by one sweep only (it is deleted first), so overlapping sweeps are
// safe; a sweep that dies between deleting an entry and withdrawing its
// credit leaves that one credit in place. It stops after maxSweep entries
// or when ctx ends; the next call resumes.
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
func (s *Service) sweepReport(ctx context.Context, it store.Item) (bool, error) {
	if err := s.st.Delete(ctx, it.Key, store.DeleteOptions{IfVersion: it.Version}); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return false, nil // another sweep has it
		}
		return false, storeErr("take pending report", err)
	}
	var p pendingReport
	if json.Unmarshal(it.Value, &p) != nil || p.OpenID == "" || p.Template == "" {
		s.log.Warn("malformed pending report dropped")
		return false, nil
	}
	// The balance counts reports that no event matched (> 0) or events that
	// no report matched (< 0): taking one unmatched report out of it is the
	// same bounded Add an event does to pair with it, so a late event and
	// the sweep cannot both have it.
	unmatched := false
	err := s.retryWrite(ctx, "withdraw report", func() error {
		_, err := s.st.Add(ctx, s.pairKey(p.OpenID, p.Template), -1, 0, math.MaxInt64)
		if errors.Is(err, store.ErrOutOfRange) {
			return nil // confirmed by its event (or the balance is gone)
		}
		unmatched = err == nil
		return err
	})
	if err != nil || !unmatched {
		return false, err
	}
	spent := false
	err = s.retryWrite(ctx, "withdraw credit", func() error {
		_, err := s.st.Add(ctx, s.creditsKey(p.OpenID, p.Template), -1, 0, math.MaxInt64)
		if errors.Is(err, store.ErrOutOfRange) {
			spent = true
			return nil
		}
		return err
	})
	if err != nil {
		return false, err
	}
	alias := p.Template
	if t, ok := s.templateByID(p.Template); ok {
		alias = t.Alias
	}
	if spent {
		// Sent meanwhile: WeChat answered the send by its own ledger (43101
		// when the accept was made up, which zeroed ours).
		s.log.Warn("unconfirmed consent report: its credit was already used", "template", alias, "openid", HashID(p.OpenID))
		return true, nil
	}
	s.log.Info("unconfirmed consent report withdrawn", "template", alias, "openid", HashID(p.OpenID))
	return true, nil
}
