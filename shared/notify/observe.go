package notify

import "time"

// Observer receives what the domain did, for metrics, traces and logs: the
// adapters at the edge (package shared/observe) turn it into CloudWatch
// Embedded Metric Format, Prometheus, log lines. The domain depends on no
// vendor package.
//
// Each method is called once per fact the domain recorded (a replay of an
// idempotent request that changes nothing reports nothing), after the
// store write that made it true. Implementations must be safe for
// concurrent use and must not block: they are called on the request path.
type Observer interface {
	// NotificationDone: a notification reached an outcome (sent, skipped,
	// failed, unknown), or a settled unknown one its final outcome.
	NotificationDone(Outcome)
	// CreditsChanged: a user's one-time credits of a template changed.
	CreditsChanged(CreditChange)
	// PushApplied: a push event was applied.
	PushApplied(PushEvent)
	// BatchProgress: a batch checkpointed a page, or finished.
	BatchProgress(BatchStep)
}

// Outcome is a notification's outcome as an observer sees it. Identifiers
// of people come hashed (HashID), never raw.
type Outcome struct {
	AppID          string
	NotificationID string
	Template       string // the catalog alias
	TemplateID     string
	Status         Status
	Reason         string
	Errcode        int // WeChat's errcode, 0 when it gave none
	Source         SourceKind
	// Wasted: WeChat answered 43101 (no consent) where the ledger held a
	// credit - a credit the ledger believed in was gone.
	Wasted bool
	// Duration is how long the send took, from its claim to its outcome.
	Duration   time.Duration
	OpenIDHash string
	UserIDHash string // "" when sent to an openid
}

// CreditKind names a change of the consent ledger.
type CreditKind string

// Credit changes.
const (
	CreditGranted   CreditKind = "granted"    // an accept (popup event or client report)
	CreditTaken     CreditKind = "taken"      // a send took one
	CreditGivenBack CreditKind = "given_back" // a failed send gave its credit back
	CreditZeroed    CreditKind = "zeroed"     // WeChat's 43101 or a reject zeroed the ledger
	CreditWithdrawn CreditKind = "withdrawn"  // an unconfirmed client report was withdrawn
)

// CreditChange is one change of a user's credits of a template.
type CreditChange struct {
	AppID      string
	TemplateID string
	Kind       CreditKind
	// N is the number of credits the change moved (positive; for zeroed,
	// possibly 0): a zeroing reads the counter with the consent record and
	// replaces it in the record's Write, conditional on the version read,
	// so N is what it removed.
	N int64
}

// PushEvent is a push event the domain applied.
type PushEvent struct {
	AppID string
	// Event is WeChat's event name (subscribe_msg_popup_event,
	// subscribe_msg_change_event, subscribe_msg_sent_event).
	Event string
	// Changed: applying it changed the ledger or settled a send (false
	// for a redelivery, or an event that confirmed what a report said).
	Changed bool
}

// BatchStep is a batch's progress: the counts a checkpoint added.
type BatchStep struct {
	AppID   string
	BatchID string
	Sent    int
	Skipped int
	Failed  int
	Unknown int
	// Done: the batch finished with this step (done, or cancelled while
	// this page was being sent).
	Done bool
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) NotificationDone(Outcome)    {}
func (nopObserver) CreditsChanged(CreditChange) {}
func (nopObserver) PushApplied(PushEvent)       {}
func (nopObserver) BatchProgress(BatchStep)     {}

// How the domain reports (see Observer): every call follows the store
// write that made its fact true, and none adds a store round trip. Where a
// write's reply was lost, the domain recognises its own write when it can
// (a notification's outcome, by its claim and time; a given-back credit, by
// Undo's answer). Where it cannot, it errs as each call site documents:
// repeated counter operations (AddOnce named after a report or push item)
// answer the same as the first, so a grant retried after a lost reply is
// reported again; writes whose replies were lost and that nothing re-reads
// (a checkpoint, a settled unknown send) are not reported.

// reportOutcome reports the outcome n records, for a send claimed at
// claimAt. wasted: WeChat answered 43101 for a credit the ledger held.
func (s *Service) reportOutcome(n Notification, claimAt time.Time, wasted bool) {
	s.observe.NotificationDone(Outcome{
		AppID: s.appID, NotificationID: n.ID, Template: n.Template, TemplateID: n.TemplateID,
		Status: n.Status, Reason: n.Reason, Errcode: n.WeChat.Errcode, Source: n.Source,
		Wasted: wasted, Duration: max(0, s.now().Sub(claimAt)),
		OpenIDHash: HashID(n.OpenID), UserIDHash: HashID(n.To.UserID),
	})
}

// reportCredits reports a change of n one-time credits of tmplID.
func (s *Service) reportCredits(tmplID string, kind CreditKind, n int64) {
	s.observe.CreditsChanged(CreditChange{AppID: s.appID, TemplateID: tmplID, Kind: kind, N: n})
}
