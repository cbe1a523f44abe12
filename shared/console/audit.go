package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// The audit log: every admin action (sign-in, failed sign-in, sign-out,
// batch cancel) is an item of
//
//	caudit|<appid>   sort key: 16 digits of (maxMicros - microseconds) + "|" + random
//
// so a Query reads newest first, expiring with the deployment's retention.
// Sign-in and sign-out concern every app (an admin key acts for all), so
// they are written to each app's log.

// auditEntry is one admin action.
type auditEntry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Actor  string    `json:"actor,omitempty"` // the admin key's fingerprint
	IP     string    `json:"ip,omitempty"`
	Target string    `json:"target,omitempty"` // a batch id...
	Result string    `json:"result,omitempty"` // e.g. the batch's status after
	// User and Notification are a test send's userId and notification id.
	User         string `json:"user,omitempty"`
	Notification string `json:"notification,omitempty"`
}

// maxAuditMicros is the largest time a sort key holds (year 2286).
const maxAuditMicros = 9999999999999999

func auditPartition(appID string) string { return "caudit|" + appID }

// audit writes e to the log of the app whose AppID is appID. A failed write
// is logged, not answered: the action happened.
func (c *Console) audit(ctx context.Context, appID string, e auditEntry) {
	if e.At.IsZero() {
		e.At = c.now()
	}
	b, err := json.Marshal(e)
	if err == nil {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		sort := fmt.Sprintf("%016d|%s", maxAuditMicros-e.At.UnixMicro(), hex.EncodeToString(rnd[:]))
		_, err = c.st.Put(ctx, store.Key{Partition: auditPartition(appID), Sort: sort}, b,
			store.PutOptions{ExpiresAt: e.At.Add(c.retention)})
	}
	if err != nil {
		c.log.Error("console audit write failed", "action", e.Action, "err", err.Error())
	}
}

// auditAll writes e to every app's log.
func (c *Console) auditAll(ctx context.Context, e auditEntry) {
	e.At = c.now()
	for _, a := range c.apps {
		c.audit(ctx, a.Service.AppID(), e)
	}
}

// auditPage is one page of an app's log, newest first.
func (c *Console) auditPage(ctx context.Context, appID, cursor string, limit int) ([]auditEntry, string, error) {
	page, err := c.st.Query(ctx, store.Query{Partition: auditPartition(appID), After: cursor, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	out := make([]auditEntry, 0, len(page.Items))
	for _, it := range page.Items {
		var e auditEntry
		if json.Unmarshal(it.Value, &e) == nil {
			out = append(out, e)
		}
	}
	return out, page.Next, nil
}

// validAuditCursor reports whether v can be a sort key of the log.
func validAuditCursor(v string) bool {
	if len(v) != 16+1+12 || v[16] != '|' {
		return false
	}
	for i := range 16 {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	_, err := hex.DecodeString(v[17:])
	return err == nil
}
