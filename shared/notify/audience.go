package notify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The audience index lists, per template, the users who may receive its
// messages now: those with a credit (one-time templates) or an accepted
// long-term template. "audience": "consenting" batches count and walk it,
// so their cost grows with the holders, not with everyone who ever
// accepted.
//
// Layout: partition aud|<appid>|<tmplId>, one or (rarely, after concurrent
// writers) a few entries per user, sort key "<openid>!<nonce>". An entry
// written before this layout has the sort key "<openid>" alone; both are
// read, touched and pruned alike. '!' sorts before every character of an
// openid, so a user's entries are adjacent and come first in a query by the
// openid as prefix.
//
// A holder must never be missing from the index (a missed recipient);
// a non-holder present costs one skipped send. The rules that keep this
// with only single-item conditions:
//
//   - Whatever may make a user a holder (a credit granted or given back, a
//     long-term acceptance recorded) notes the user AFTER the change:
//     it touches an existing entry (a Put conditional on its version, which
//     bumps the version) or, when there is none or the touch loses a race,
//     creates an entry under a fresh nonce.
//   - A prune reads the user's entries first, then the ledger, and only if
//     the ledger holds nothing deletes each entry conditionally on the
//     version it read.
//
// A prune's read of the ledger comes after its read of an entry; that entry
// was written after the change it notes; so if the ledger then holds
// nothing, that change is spent. A change made after the prune's read of
// the ledger notes the user after it: either it touched the entry (the
// version moved, the conditional delete fails) or it wrote another one,
// which the prune never read. A deleted entry's key is never written again
// except by a retry of the Put that created it, after the same change, so
// a delete can never hit a newer entry with the same key and version.
//
// Stale entries (a prune that failed or did not run, entries written before
// this layout) are pruned when a batch meets them: their send is skipped
// for lack of credit and is not counted in the batch.
const audienceSep = "!"

func (s *Service) audiencePartition(tmplID string) string { return "aud|" + s.appID + "|" + tmplID }

// audienceOpenID returns the openid an index entry's sort key names.
func audienceOpenID(sort string) string {
	openID, _, _ := strings.Cut(sort, audienceSep)
	return openID
}

// audienceEntries returns the user's entries of the template's index.
func (s *Service) audienceEntries(ctx context.Context, openID, tmplID string) ([]store.Item, error) {
	var out []store.Item
	q := store.Query{Partition: s.audiencePartition(tmplID), Prefix: openID, Limit: 8}
	for {
		page, err := s.st.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if audienceOpenID(it.Key.Sort) != openID {
				return out, nil // another user whose openid starts with this one
			}
			out = append(out, it)
		}
		if page.Next == "" {
			return out, nil
		}
		q.After = page.Next
	}
}

// noteAudience records that openID may receive tmplID's messages. It must
// be called after the write that made the user a holder, never before (see
// the index's rules above). Repeating it after a lost reply is safe: the
// retry touches the entry the first attempt wrote.
func (s *Service) noteAudience(ctx context.Context, openID, tmplID string) error {
	entries, err := s.audienceEntries(ctx, openID, tmplID)
	if err != nil {
		return storeErr("note audience", err)
	}
	if len(entries) > 0 {
		e := entries[0]
		_, err := s.st.Put(ctx, e.Key, e.Value, store.PutOptions{IfVersion: e.Version})
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeErr("note audience", err)
		}
		// Pruned or touched meanwhile: a fresh entry is always right.
	}
	key := store.Key{Partition: s.audiencePartition(tmplID), Sort: openID + audienceSep + s.newID("")}
	if _, err := s.st.Put(ctx, key, []byte("1"), store.PutOptions{}); err != nil {
		return storeErr("note audience", err)
	}
	return nil
}

// pruneAudience removes the user from the template's index if the ledger
// holds nothing for them: the entries are read first, the ledger after,
// and each entry is deleted only at the version read (see the index's
// rules above). Every write is safe to repeat; a prune that fails leaves
// a stale entry, which costs a skipped send and is pruned by the batch
// that meets it.
func (s *Service) pruneAudience(ctx context.Context, openID string, t Template) error {
	entries, err := s.audienceEntries(ctx, openID, t.ID)
	if err != nil || len(entries) == 0 {
		return err
	}
	if holds, err := s.holds(ctx, openID, t); err != nil || holds {
		return err
	}
	for _, e := range entries {
		err := s.st.Delete(ctx, e.Key, store.DeleteOptions{IfVersion: e.Version})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// leaveAudience is pruneAudience after a write that may have left the user
// without credit: best effort. A prune that fails costs nothing but a read:
// the next audience batch meets the entry, finds no credit and prunes it, so
// the failure is logged at info, not as a warning an operator must act on.
func (s *Service) leaveAudience(ctx context.Context, openID string, t Template) {
	if err := s.pruneAudience(ctx, openID, t); err != nil {
		s.log.Info("audience entry left for the next batch to prune", "template", t.Alias, "openid", HashID(openID), "err", err)
	}
}

// holds reports whether the ledger lets the user receive the template's
// messages now. A value it cannot read counts as holding: keeping a user
// in the index is only a cost.
func (s *Service) holds(ctx context.Context, openID string, t Template) (bool, error) {
	if t.Kind == LongTerm {
		it, err := s.st.Get(ctx, s.consentKey(openID, t.ID))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var m consentMeta
		if json.Unmarshal(it.Value, &m) != nil {
			return true, nil
		}
		return m.LongTerm, nil
	}
	it, err := s.st.Get(ctx, s.creditsKey(openID, t.ID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n, err := store.ParseCounter(it.Value)
	return err != nil || n > 0, nil
}
