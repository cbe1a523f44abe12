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
	// N is the number of credits the change moved (positive).
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
	// Done: the batch finished with this step.
	Done bool
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) NotificationDone(Outcome)    {}
func (nopObserver) CreditsChanged(CreditChange) {}
func (nopObserver) PushApplied(PushEvent)       {}
func (nopObserver) BatchProgress(BatchStep)     {}
