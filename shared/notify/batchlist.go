package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The batch list: one item per batch in the partition bl|<appid>, sorted
// newest first (the sort key is the complement of the creation time in
// microseconds, then the id), holding the id and expiring with the batch's
// record. It is written before the record, like the due entry: a creation
// that dies in between leaves an entry whose record is missing, which the
// list skips; a retried creation (the same idempotency key, so the same
// id) leaves a second entry of another time, which the list skips too
// because the record's creation time is not the entry's.

// MaxBatchListLimit bounds a page of ListBatches.
const MaxBatchListLimit = 100

func (s *Service) batchListPartition() string { return "bl|" + s.appID }

// maxListMicros is the complement base of the list's sort keys: 16 digits
// cover every microsecond until the year 2286.
const maxListMicros = 9_999_999_999_999_999

// listSort is the sort key of a newest-first list entry (the batch list,
// the notification history): the complement of the creation time in
// microseconds, 16 digits, then the id.
func listSort(created time.Time, id string) string {
	n := maxListMicros - created.UnixMicro()
	if n < 0 || n > maxListMicros {
		return fmt.Sprintf("%016d|%s", n, id) // before 1970 or after 2286: never written
	}
	var buf [16]byte
	digits := strconv.AppendInt(buf[:0], n, 10)
	b := make([]byte, 0, 16+1+len(id))
	for range 16 - len(digits) {
		b = append(b, '0')
	}
	b = append(append(append(b, digits...), '|'), id...)
	return string(b)
}

// noteBatch writes the batch's list entry.
func (s *Service) noteBatch(ctx context.Context, b Batch, expires time.Time) error {
	return s.retryWrite(ctx, "put batch list entry", func() error {
		_, err := s.st.Put(ctx, store.Key{Partition: s.batchListPartition(), Sort: listSort(b.CreatedAt, b.ID)},
			[]byte(b.ID), store.PutOptions{ExpiresAt: expires})
		return err
	})
}

// BatchPage is one page of ListBatches.
type BatchPage struct {
	Batches []Batch
	// Next is the cursor of the following page, "" at the end.
	Next string
}

// ListBatches returns the app's batches, newest first, limit at most
// (1..MaxBatchListLimit) per page, after the cursor a previous page
// answered ("" for the first page). A page costs one query of the list
// and one read per entry, whatever the number of batches.
func (s *Service) ListBatches(ctx context.Context, cursor string, limit int) (BatchPage, error) {
	if limit < 1 || limit > MaxBatchListLimit {
		return BatchPage{}, FieldError("limit", "must be 1 to %d", MaxBatchListLimit)
	}
	if cursor != "" && !validListCursor(cursor) {
		return BatchPage{}, FieldError("cursor", "is not a cursor this list answered")
	}
	var out BatchPage
	after := cursor
	for {
		page, err := s.st.Query(ctx, store.Query{Partition: s.batchListPartition(), After: after, Limit: limit - len(out.Batches)})
		if err != nil {
			return BatchPage{}, storeErr("query batch list", err)
		}
		for _, it := range page.Items {
			after = it.Key.Sort
			b, err := s.Batch(ctx, string(it.Value))
			switch {
			case CodeOf(err) == CodeNotFound:
				continue // a creation that died before its record
			case err != nil:
				return BatchPage{}, err
			case listSort(b.CreatedAt, b.ID) != it.Key.Sort:
				continue // the entry of a retried creation
			}
			out.Batches = append(out.Batches, b)
		}
		if page.Next == "" {
			return out, nil
		}
		if len(out.Batches) == limit {
			out.Next = after
			return out, nil
		}
		after = page.Next
	}
}

// validListCursor reports whether c has the shape of a list sort key.
func validListCursor(c string) bool {
	ms, id, ok := strings.Cut(c, "|")
	if !ok || len(ms) != 16 || len(id) == 0 || len(id) > 64 || strings.ContainsAny(id, "|\x00") {
		return false
	}
	_, err := strconv.ParseUint(ms, 10, 64)
	return err == nil
}
