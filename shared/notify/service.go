package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// WeChat is what the domain needs of WeChat; *wechat.Client implements it.
type WeChat interface {
	Code2Session(ctx context.Context, code string) (wechat.Session, error)
	SendSubscribeMessage(ctx context.Context, req wechat.SendRequest) (wechat.SendResult, error)
}

// Options configure a Service. Store, WeChat, Catalog and Sessions are
// required; zero values of the rest take the documented defaults.
type Options struct {
	AppID    string
	Store    store.Store
	WeChat   WeChat
	Catalog  *Catalog
	Sessions *Sessions
	Now      func() time.Time
	Logger   *slog.Logger

	// PairWindow is how long a client report and WeChat's popup event for
	// the same popup wait for each other so that the popup counts once
	// (default 10 minutes).
	PairWindow time.Duration
	// Retention is how long notification records are kept (default 30 days).
	Retention time.Duration
	// SendLease is how long a send in progress holds its idempotency key
	// before a duplicate may declare it interrupted (default 30 s). It must
	// exceed the longest a send can take (the WeChat client's timeout plus
	// the store writes), or a slow send is taken for a dead one.
	SendLease time.Duration
	// MaxCredits caps the one-time credits of one user and template
	// (default 1000).
	MaxCredits int64
	// PushConfigured says that WeChat's message push reaches this app, so
	// that every popup the user answers is confirmed by a
	// subscribe_msg_popup_event. A client report of an accept that no event
	// confirms within PairWindow is then withdrawn by SweepReports.
	PushConfigured bool
	// UnknownWindow is how long after its call SweepUnknown settles an
	// ambiguous send, with WeChat's sent event or as not delivered (default
	// 10 min; at least SendLease plus a minute, so that every send made at
	// the same time has finished). Only with PushConfigured: without it
	// such sends stay unknown.
	UnknownWindow time.Duration
	// MaxReportCredits caps, without push, the one-time credits of one user
	// and template that client reports can grant: nothing verifies them
	// (default 50; MaxCredits when lower).
	MaxReportCredits int64
	// ReportsPerMinute bounds the consent reports of one user per minute;
	// more are refused with rate_limited (default 10, negative: no limit).
	ReportsPerMinute int
	// StoreSessionKey keeps WeChat's session_key in the user record for
	// customers that decrypt wx.getUserInfo-style data. Off by default: the
	// key is then never stored.
	StoreSessionKey bool
	// Batch tunes batch sends.
	Batch BatchOptions
	// Rules map lead events to notifications; nil: no event has a rule.
	Rules *Rules
	// Observer receives what the service did (metrics, logs); nil: none.
	Observer Observer
	// Webhooks are the app's outcome webhooks (see DeliverWebhooks); the
	// zero value: none.
	Webhooks WebhookOptions
}

// Service is the domain's entry point, shared by every function.
type Service struct {
	appID    string
	st       store.Store
	wx       WeChat
	catalog  *Catalog
	sessions *Sessions
	now      func() time.Time
	log      *slog.Logger

	pairWindow      time.Duration
	retention       time.Duration
	sendLease       time.Duration
	maxCredits      int64
	storeSessionKey bool
	random          io.Reader

	pushConfigured   bool // client reports are verified by popup events
	unknownWindow    time.Duration
	maxReportCredits int64
	reportsPerMinute int

	batchOpts BatchOptions
	limiter   rateLimiter
	rules     *Rules
	observe   Observer
	hooks     webhooks
	bus       EventBridgeOptions
}

// New validates opts and returns a Service.
func New(opts Options) (*Service, error) {
	switch {
	case opts.AppID == "":
		return nil, errors.New("notify: AppID is required")
	case opts.Store == nil:
		return nil, errors.New("notify: Store is required")
	case opts.WeChat == nil:
		return nil, errors.New("notify: WeChat is required")
	case opts.Catalog == nil:
		return nil, errors.New("notify: Catalog is required")
	case opts.Sessions == nil:
		return nil, errors.New("notify: Sessions is required")
	}
	s := &Service{
		appID: opts.AppID, st: opts.Store, wx: opts.WeChat, catalog: opts.Catalog, sessions: opts.Sessions,
		now: opts.Now, log: opts.Logger, pairWindow: opts.PairWindow, retention: opts.Retention,
		sendLease: opts.SendLease, maxCredits: opts.MaxCredits, storeSessionKey: opts.StoreSessionKey,
		random: rand.Reader, pushConfigured: opts.PushConfigured, maxReportCredits: opts.MaxReportCredits,
		reportsPerMinute: opts.ReportsPerMinute,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.pairWindow <= 0 {
		s.pairWindow = 10 * time.Minute
	}
	if s.retention <= 0 {
		s.retention = 30 * 24 * time.Hour
	}
	if s.sendLease <= 0 {
		s.sendLease = 30 * time.Second
	}
	if s.maxCredits <= 0 {
		s.maxCredits = 1000
	}
	if s.maxReportCredits <= 0 {
		s.maxReportCredits = 50
	}
	s.maxReportCredits = min(s.maxReportCredits, s.maxCredits)
	if s.reportsPerMinute == 0 {
		s.reportsPerMinute = 10
	}
	s.unknownWindow = opts.UnknownWindow
	if s.unknownWindow <= 0 {
		s.unknownWindow = 10 * time.Minute
	}
	s.unknownWindow = max(s.unknownWindow, s.sendLease+time.Minute)
	s.observe = opts.Observer
	if s.observe == nil {
		s.observe = nopObserver{}
	}
	s.rules = opts.Rules
	if s.rules == nil {
		s.rules = &Rules{}
	}
	s.batchOpts = opts.Batch
	s.batchOpts.setDefaults()
	s.limiter = newRateLimiter(s.st, s.appID, s.batchOpts)
	hooks, err := newWebhooks(opts.Webhooks)
	if err != nil {
		return nil, err
	}
	s.hooks = hooks
	if s.bus, err = newEventBridge(opts.Webhooks); err != nil {
		return nil, err
	}
	return s, nil
}

// AppID returns the app the service works for.
func (s *Service) AppID() string { return s.appID }

// Catalog returns the template catalog.
func (s *Service) Catalog() *Catalog { return s.catalog }

// Sessions returns the session token issuer.
func (s *Service) Sessions() *Sessions { return s.sessions }

// Keys of the store layout (see the package comment).
func (s *Service) userPartition(openID string) string { return "u|" + s.appID + "|" + openID }
func (s *Service) profileKey(openID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "profile"}
}
func (s *Service) creditsKey(openID, tmplID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "c|" + tmplID + "|n"}
}
func (s *Service) consentKey(openID, tmplID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "c|" + tmplID + "|m"}
}
func (s *Service) pairKey(openID, tmplID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "p|" + tmplID}
}
func (s *Service) unknownKey(openID, tmplID string) store.Key {
	return store.Key{Partition: s.userPartition(openID), Sort: "unk|" + tmplID}
}
func (s *Service) bindingKey(userID string) store.Key {
	return store.Key{Partition: "b|" + s.appID + "|" + userID, Sort: "openid"}
}
func (s *Service) notificationKey(id string) store.Key {
	return store.Key{Partition: "n|" + s.appID + "|" + id, Sort: "n"}
}
func (s *Service) pushKey(eventKey string) store.Key {
	return store.Key{Partition: "push|" + s.appID, Sort: eventKey}
}

// Crockford's base32, as ULIDs use: ids sort by creation time.
var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// newID returns a time-ordered random id with the prefix (e.g. "ntf_").
func (s *Service) newID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().UnixMilli())<<16)
	if _, err := io.ReadFull(s.random, b[6:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the
		// clock rather than returning an id shared with other requests.
		binary.BigEndian.PutUint64(b[8:], uint64(s.now().UnixNano()))
	}
	return prefix + idEncoding.EncodeToString(b[:])[:26]
}

// derivedID returns the id that an idempotency key always maps to, so that
// claiming the key and creating the record are one conditional write.
func (s *Service) derivedID(prefix, key string) string {
	sum := sha256.Sum256([]byte(s.appID + "\x00" + key))
	return prefix + idEncoding.EncodeToString(sum[:17])[:26]
}

// storeErr wraps a store failure: store_unavailable (503, retryable) when
// the store could not be reached or did not answer in time, internal for a
// refusal that no retry changes (a key, value or operation the contract
// forbids: a bug). A cancelled context (the caller is gone) is returned as
// it is. The details are for logs only.
func storeErr(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	cause := fmt.Errorf("%s: %w", op, err)
	for _, bug := range []error{store.ErrInvalidKey, store.ErrTooLarge, store.ErrNotCounter, store.ErrInvalidOp} {
		if errors.Is(err, bug) {
			return &Error{Code: CodeInternal, Message: "internal error", Err: cause}
		}
	}
	return &Error{Code: CodeStoreUnavailable, Message: "the state store is unavailable, retry", Err: cause}
}
