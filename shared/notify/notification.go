package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// Status is a notification's state.
type Status string

// Notification statuses.
const (
	StatusPending Status = "pending" // claimed, being sent
	StatusSent    Status = "sent"    // WeChat accepted it
	StatusSkipped Status = "skipped" // not sent: no consent, unbound user
	StatusFailed  Status = "failed"  // not sent: refused or WeChat unavailable
	StatusUnknown Status = "unknown" // WeChat may have it; SweepUnknown settles it
)

// Reasons of skipped, failed and unknown notifications.
const (
	ReasonNoConsent     = "no_consent"
	ReasonUnboundUser   = "unbound_user"
	ReasonInvalidData   = "invalid_data"
	ReasonInvalidPage   = "invalid_page"
	ReasonInvalidOpenID = "invalid_openid"
	ReasonRejected      = "wechat_rejected"
	ReasonUnavailable   = "wechat_unavailable"
	ReasonStore         = "store_unavailable"
	ReasonAmbiguous     = "no_answer"   // sent, but no answer came
	ReasonInterrupted   = "interrupted" // the sender stopped mid-send
	ReasonDelivery      = "delivery_failed"
)

// SourceKind tells which function asked for a notification.
type SourceKind string

// Notification sources.
const (
	FromAPI   SourceKind = "api"
	FromEvent SourceKind = "event"
	FromBatch SourceKind = "batch"
)

// Recipient is exactly one of a bound userId or an openid.
type Recipient struct {
	UserID string `json:"userId,omitempty"`
	OpenID string `json:"openid,omitempty"`
}

// SendRequest asks for one notification.
type SendRequest struct {
	To               Recipient
	Template         string // alias or template id
	Data             map[string]string
	Page             string
	MiniprogramState string // developer|trial|formal, default formal
	Lang             string // zh_CN|en_US|zh_HK|zh_TW, default zh_CN
	IdempotencyKey   string
	Source           SourceKind
}

// WeChatResult is WeChat's answer as recorded.
type WeChatResult struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg,omitempty"`
	MsgID   string `json:"msgid,omitempty"`
}

// Notification is the record of one send request.
type Notification struct {
	ID               string            `json:"id"`
	IdempotencyKey   string            `json:"idempotencyKey,omitempty"`
	Fingerprint      string            `json:"fingerprint"`
	To               Recipient         `json:"to"`
	OpenID           string            `json:"openid,omitempty"` // resolved recipient
	Template         string            `json:"template"`         // alias
	TemplateID       string            `json:"templateId"`
	Data             map[string]string `json:"data"`
	Page             string            `json:"page,omitempty"`
	MiniprogramState string            `json:"miniprogramState"`
	Lang             string            `json:"lang"`
	Source           SourceKind        `json:"source"`
	Status           Status            `json:"status"`
	Reason           string            `json:"reason,omitempty"`
	Field            string            `json:"field,omitempty"`
	Retryable        bool              `json:"retryable,omitempty"`
	Attempts         int               `json:"attempts"`
	WeChat           WeChatResult      `json:"wechat"`
	LeaseUntil       time.Time         `json:"leaseUntil,omitzero"`
	// Claim is a random value of the request that claimed the record, by
	// which it recognises its claim after a lost reply.
	Claim     string    `json:"claim,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	// deliveredAt, never stored, is set on an unknown notification that
	// WeChat's sent event settles as delivered: its outcome's Write then
	// also holds notification.delivered.
	deliveredAt time.Time
	// answered, never stored, is set on a send WeChat answered: the Write
	// of its outcome also marks its msgid (sentMarkOp).
	answered bool
}

// Final reports whether the notification reached a state no retry changes.
func (n Notification) Final() bool {
	return n.Status != StatusPending && !(n.Status == StatusFailed && n.Retryable)
}

var (
	pageRe    = regexp.MustCompile(`^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*$`)
	queryRe   = regexp.MustCompile(`^[A-Za-z0-9_\-.~%=&+:,;@*!'()/]*$`)
	states    = map[string]bool{"developer": true, "trial": true, "formal": true}
	languages = map[string]bool{"zh_CN": true, "en_US": true, "zh_HK": true, "zh_TW": true}
)

// CheckPage validates a mini-program page path with an optional query
// ("pages/clue/clue?id=L-1001"): no scheme, no host, no "..", at most 1024
// bytes. One leading "/" is allowed (NormalizePage drops it). WeChat itself
// answers 41030 for pages the app does not have.
func CheckPage(page string) error {
	_, err := NormalizePage(page)
	return err
}

// NormalizePage validates page as CheckPage does and returns the one form
// wxnotify validates, fingerprints and sends: without a leading "/".
// subscribeMessage.send refuses "/pages/index/index" (41030) where it takes
// "pages/index/index", while mini programs navigate with both.
func NormalizePage(page string) (string, error) {
	if page == "" {
		return "", nil
	}
	if len(page) > 1024 || !utf8.ValidString(page) {
		return "", FieldError("page", "must be a mini program page path of at most 1024 bytes")
	}
	page = strings.TrimPrefix(page, "/")
	path, query, _ := strings.Cut(page, "?")
	if !pageRe.MatchString(path) || strings.Contains(path, "..") || !queryRe.MatchString(query) {
		return "", FieldError("page", "must be a mini program page path like pages/index/index?foo=bar")
	}
	return page, nil
}

// prepare validates a request and resolves its template and data.
func (s *Service) prepare(req *SendRequest) (Template, map[string]string, error) {
	t, err := s.prepareFields(req)
	if err != nil {
		return t, nil, err
	}
	data, err := t.Check(req.Data)
	return t, data, err
}

// prepareFields validates everything of a request but its data, filling in
// the defaults of miniprogramState, lang and source.
func (s *Service) prepareFields(req *SendRequest) (Template, error) {
	if req.Template == "" {
		return Template{}, FieldError("template", "required")
	}
	t, ok := s.catalog.Lookup(req.Template)
	if !ok {
		return Template{}, FieldError("template", "unknown template %q", truncate(req.Template, 64))
	}
	switch {
	case req.To.UserID != "" && req.To.OpenID != "":
		return t, FieldError("to", "give either userId or openid, not both")
	case req.To.UserID != "":
		if err := CheckUserID("to.userId", req.To.UserID); err != nil {
			return t, err
		}
	case req.To.OpenID != "":
		if err := checkOpenID("to.openid", req.To.OpenID); err != nil {
			return t, err
		}
	default:
		return t, FieldError("to", "give userId or openid")
	}
	page, err := NormalizePage(req.Page)
	if err != nil {
		return t, err
	}
	req.Page = page
	if req.MiniprogramState == "" {
		req.MiniprogramState = "formal"
	}
	if !states[req.MiniprogramState] {
		return t, FieldError("miniprogramState", "must be developer, trial or formal")
	}
	if req.Lang == "" {
		req.Lang = "zh_CN"
	}
	if !languages[req.Lang] {
		return t, FieldError("lang", "must be zh_CN, en_US, zh_HK or zh_TW")
	}
	if len(req.IdempotencyKey) > 256 || !utf8.ValidString(req.IdempotencyKey) {
		return t, FieldError("idempotencyKey", "must be valid UTF-8 of at most 256 bytes")
	}
	if req.Source == "" {
		req.Source = FromAPI
	}
	return t, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// fingerprint identifies a request's payload: the same idempotency key with
// another fingerprint is a conflict.
func fingerprint(req SendRequest, t Template) string {
	bp := codecBufs.Get().(*[]byte)
	b := appendFingerprintPayload((*bp)[:0], req, t.ID)
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*bp = b
		codecBufs.Put(bp)
	}
	return hex.EncodeToString(sum[:16])
}

// Send sends one notification through the ledger, exactly once per
// idempotency key.
//
// The request is validated against the catalog first (a bad_request *Error
// names the field). Then the notification record is claimed with one
// conditional write (its id derives from the idempotency key), the recipient
// resolved, one credit consumed, WeChat called, and the outcome recorded.
// A duplicate key with the same payload returns the first result, waiting
// for it if it is in flight; with another payload it is a conflict. When
// WeChat is unavailable the record says failed and retryable, the error is
// wechat_unavailable, and a retry with the same key sends again.
func (s *Service) Send(ctx context.Context, req SendRequest) (Notification, error) {
	t, data, err := s.prepare(&req)
	if err != nil {
		return Notification{}, err
	}
	now := s.now().UTC()
	n := Notification{
		IdempotencyKey: req.IdempotencyKey, Fingerprint: fingerprint(req, t), To: req.To, OpenID: req.To.OpenID,
		Template: t.Alias, TemplateID: t.ID, Data: data, Page: req.Page, MiniprogramState: req.MiniprogramState,
		Lang: req.Lang, Source: req.Source, Status: StatusPending, Attempts: 1, LeaseUntil: now.Add(s.sendLease),
		CreatedAt: now, UpdatedAt: now,
	}
	if req.IdempotencyKey != "" {
		n.ID = s.derivedID("ntf_", string(req.Source)+":"+req.IdempotencyKey)
	} else {
		n.ID = s.newID("ntf_")
	}
	out, err := s.claimAndDeliver(ctx, n, t)
	if err != nil && CodeOf(err) != CodeConflict {
		// The request was accepted under this id: the caller can look it
		// up, or retry with the same key.
		err = withNotification(err, n.ID)
	}
	return out, err
}

// claimAndDeliver claims the record of a new notification and delivers it,
// or answers the duplicate of an earlier one. The claim is tried again when
// the store fails; one whose reply was lost is recognised by its Claim.
func (s *Service) claimAndDeliver(ctx context.Context, n Notification, t Template) (Notification, error) {
	n.Claim = s.newID("")
	var (
		ver       int64
		duplicate bool
	)
	// Finished even when the caller gives up (a batch tick ends): a claim
	// that landed unrecognised would hold the key until its lease ends.
	wctx := context.WithoutCancel(ctx)
	err := s.retryWrite(wctx, "claim notification", func() error {
		v, err := s.putNotification(wctx, n, store.PutOptions{IfAbsent: true})
		if !errors.Is(err, store.ErrConflict) {
			ver = v
			return err
		}
		cur, curVer, gerr := s.getNotification(wctx, n.ID)
		switch {
		case gerr == nil && cur.Claim == n.Claim:
			ver = curVer // ours: the reply of the claim was lost
		case gerr == nil:
			duplicate = true
		case !errors.Is(gerr, store.ErrNotFound):
			return gerr
		default:
			return err // gone meanwhile (retention): claim again
		}
		return nil
	})
	switch {
	case err != nil:
		return Notification{}, err
	case duplicate:
		return s.duplicate(ctx, n)
	}
	return s.deliver(ctx, n, ver, t)
}

func (s *Service) putNotification(ctx context.Context, n Notification, opts store.PutOptions) (int64, error) {
	b, err := marshalNotification(n)
	if err != nil {
		return 0, err
	}
	opts.ExpiresAt = n.CreatedAt.Add(s.retention)
	return s.st.Put(ctx, s.notificationKey(n.ID), b, opts)
}

func (s *Service) getNotification(ctx context.Context, id string) (Notification, int64, error) {
	it, err := s.st.Get(ctx, s.notificationKey(id))
	if err != nil {
		return Notification{}, 0, err
	}
	var n Notification
	if err := json.Unmarshal(it.Value, &n); err != nil {
		return Notification{}, 0, err
	}
	return n, it.Version, nil
}

// Notification returns a notification record by id.
func (s *Service) Notification(ctx context.Context, id string) (Notification, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "|\x00") {
		return Notification{}, Errorf(CodeNotFound, "no such notification")
	}
	n, _, err := s.getNotification(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Notification{}, Errorf(CodeNotFound, "no such notification")
	}
	if err != nil {
		return Notification{}, storeErr("get notification", err)
	}
	return n, nil
}

// duplicate answers a request whose idempotency key was claimed before:
// the recorded result, waiting for it while another request sends; a retry
// of a retryable failure, which this request takes over and sends; or, when
// the sender's lease ran out, an interrupted send. Taking a record over is
// one conditional write, recognised by its Claim after a lost reply.
func (s *Service) duplicate(ctx context.Context, mine Notification) (Notification, error) {
	wait := 10 * time.Millisecond
	takeover, storeFailures := "", 0
	// The caller may give up while waiting for another sender, but not
	// between taking a record over and recognising it (it would be left
	// pending until its lease ends).
	wctx := context.WithoutCancel(ctx)
	for {
		if takeover == "" && ctx.Err() != nil {
			return Notification{}, ctx.Err()
		}
		n, ver, err := s.getNotification(wctx, mine.ID)
		if errors.Is(err, store.ErrNotFound) {
			// The claim expired (retention) between our Put and Get: claim again.
			t, _ := s.catalog.Lookup(mine.TemplateID)
			return s.claimAndDeliver(ctx, mine, t)
		}
		if err != nil {
			if storeFailures++; storeFailures < 5 {
				time.Sleep(wait)
				continue
			}
			return Notification{}, storeErr("get notification", err)
		}
		if n.Fingerprint != mine.Fingerprint {
			return Notification{}, &Error{Code: CodeConflict, Field: "idempotencyKey",
				Message: "this idempotency key was used with another payload"}
		}
		now := s.now()
		switch {
		case takeover != "" && n.Claim == takeover && n.Status == StatusPending:
			// Our takeover landed; its reply was lost.
			return s.deliverClaimed(ctx, n, ver)
		case n.Status == StatusFailed && n.Retryable:
			// The first attempt could not reach WeChat (or the store): this
			// retry sends. A credit the first attempt still holds is found
			// again by the same operation name (see consume).
			n.Status, n.Reason, n.Retryable, n.WeChat = StatusPending, "", false, WeChatResult{}
			n.Attempts++
			n.LeaseUntil, n.UpdatedAt = now.Add(s.sendLease).UTC(), now.UTC()
			n.Claim = s.newID("")
			takeover = n.Claim
			ver, err := s.putNotification(wctx, n, store.PutOptions{IfVersion: ver})
			switch {
			case errors.Is(err, store.ErrConflict):
				continue
			case err != nil:
				if storeFailures++; storeFailures < 5 {
					time.Sleep(wait)
					continue // it may have landed: the next read tells
				}
				return Notification{}, storeErr("retry notification", err)
			}
			return s.deliverClaimed(ctx, n, ver)
		case n.Status != StatusPending:
			return n, resultError(n)
		case now.After(n.LeaseUntil):
			// The sender stopped mid-send: WeChat may or may not have the
			// message, so it is not sent again. With push, SweepUnknown
			// settles it like any ambiguous send: with its sent event, or as
			// not delivered, giving back the credit if it took one.
			out, err := s.finish(ctx, n, ver, StatusUnknown, ReasonInterrupted)
			if (err != nil || out.Status == StatusUnknown) && n.OpenID != "" {
				callAt := n.LeaseUntil.Add(-s.sendLease)
				if err := s.awaitSentEvent(wctx, n.OpenID, n.TemplateID, n.ID, callAt); err != nil {
					s.log.Error("record interrupted send", "err", err, "notification", n.ID)
				}
			}
			return out, err
		}
		select {
		case <-ctx.Done():
			return Notification{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// deliverClaimed delivers a record this request has claimed for a retry.
func (s *Service) deliverClaimed(ctx context.Context, n Notification, ver int64) (Notification, error) {
	t, ok := s.catalog.Lookup(n.TemplateID)
	if !ok {
		return s.finish(ctx, n, ver, StatusFailed, ReasonRejected)
	}
	return s.deliver(ctx, n, ver, t)
}

// resultError is the error that accompanies a recorded result: only a
// retryable failure is one.
func resultError(n Notification) error {
	switch {
	case n.Status != StatusFailed || !n.Retryable:
		return nil
	case n.Reason == ReasonStore:
		return &Error{Code: CodeStoreUnavailable, Message: "the state store is unavailable, retry with the same idempotency key"}
	}
	return &Error{Code: CodeWeChatUnavailable, Message: "WeChat is unavailable, retry with the same idempotency key",
		WeChatErrcode: n.WeChat.Errcode}
}

// deliver runs a claimed notification to its end.
func (s *Service) deliver(ctx context.Context, n Notification, ver int64, t Template) (Notification, error) {
	if n.OpenID == "" {
		openID, err := s.ResolveUserID(ctx, n.To.UserID)
		if CodeOf(err) == CodeNotFound {
			return s.finish(ctx, n, ver, StatusSkipped, ReasonUnboundUser)
		}
		if err != nil {
			return s.finishStoreFailure(ctx, n, ver, err)
		}
		n.OpenID = openID
	}
	// Taken before the credit: a revoke recorded at or after it zeroed
	// that credit too (see giveBack).
	callAt := s.now()
	ok, last, left, err := s.consume(ctx, n.OpenID, t, n.ID)
	if err != nil {
		return s.finishStoreFailure(ctx, n, ver, err)
	}
	if !ok {
		return s.finish(ctx, n, ver, StatusSkipped, ReasonNoConsent)
	}
	res, err := s.wx.SendSubscribeMessage(ctx, wechat.SendRequest{
		ToUser: n.OpenID, TemplateID: t.ID, Page: n.Page, Data: n.Data,
		MiniprogramState: n.MiniprogramState, Lang: n.Lang,
	})
	var out Notification
	if err == nil {
		n.WeChat = WeChatResult{Errcode: 0, Errmsg: "ok", MsgID: res.MsgIDString()}
		n.answered = true // its msgid is marked with its outcome
		out, err = s.finish(ctx, n, ver, StatusSent, "")
	} else {
		out, err = s.settleFailure(ctx, n, ver, t, callAt, left, err)
	}
	if last && (out.Status == StatusSent || out.Status == StatusUnknown) {
		// The last credit is spent: the user leaves the audience index,
		// once the outcome is recorded (a failed send gave the credit back;
		// a 43101 pruned with its zeroing).
		s.leaveAudience(context.WithoutCancel(ctx), n.OpenID, t)
	}
	return out, err
}

// settleFailure records a send WeChat did not accept, keeping the ledger
// true: definite non-delivery gives the credit back, 43101 zeroes the
// ledger, an ambiguous outcome keeps the credit consumed. left is what the
// send's take left of the credits (the observer is told a 43101 zeroed it).
func (s *Service) settleFailure(ctx context.Context, n Notification, ver int64, t Template, callAt time.Time, left int64, sendErr error) (Notification, error) {
	// A cancelled request ctx must not stop the bookkeeping of a send
	// that may have happened.
	ctx = context.WithoutCancel(ctx)
	var we *wechat.Error
	if errors.As(sendErr, &we) {
		n.WeChat = WeChatResult{Errcode: we.Code, Errmsg: we.Msg}
	}
	switch {
	case wechat.IsConsentGone(sendErr):
		if err := s.revoke(ctx, n.OpenID, t.ID, SourceSend, left); err != nil {
			s.log.Error("revoke after 43101", "err", err, "notification", n.ID)
		}
		// A one-time send took a credit WeChat did not have: wasted.
		return s.finishObserved(ctx, n, ver, StatusSkipped, ReasonNoConsent, t.Kind == OneTime)
	case wechat.IsAmbiguous(sendErr):
		// Recorded unknown first, then offered to SweepUnknown, which pairs
		// it with WeChat's sent event (it may already have come: a send
		// usually gives up long after WeChat delivered) or closes it.
		out, err := s.finish(ctx, n, ver, StatusUnknown, ReasonAmbiguous)
		if err == nil && out.Status != StatusUnknown {
			return out, nil // another sender's outcome stands
		}
		// Also when the outcome could not be confirmed (it may be
		// recorded): the sweep settles only what is still unknown.
		if aerr := s.awaitSentEvent(ctx, n.OpenID, t.ID, n.ID, callAt); aerr != nil {
			s.log.Error("record unknown send", "err", aerr, "notification", n.ID)
		}
		return out, err
	}
	if err := s.giveBack(ctx, n.OpenID, t, n.ID); err != nil {
		s.log.Error("give back credit", "err", err, "notification", n.ID)
	}
	if we != nil {
		switch we.Code {
		case 47003:
			n.Field = wechat.InvalidField(sendErr)
			return s.finish(ctx, n, ver, StatusFailed, ReasonInvalidData)
		case 41030:
			return s.finish(ctx, n, ver, StatusFailed, ReasonInvalidPage)
		case 40003:
			return s.finish(ctx, n, ver, StatusFailed, ReasonInvalidOpenID)
		}
		if wechat.IsBadRequest(sendErr) {
			return s.finish(ctx, n, ver, StatusFailed, ReasonRejected)
		}
	}
	if wechat.IsRetryable(sendErr) || wechat.IsTokenInvalid(sendErr) || we == nil {
		n.Retryable = true
		return s.finish(ctx, n, ver, StatusFailed, ReasonUnavailable)
	}
	return s.finish(ctx, n, ver, StatusFailed, ReasonRejected)
}

// sameOutcome reports whether the stored record cur is the outcome n this
// sender wrote.
func sameOutcome(cur, n Notification) bool {
	return cur.Claim == n.Claim && cur.Attempts == n.Attempts && cur.Status == n.Status && cur.UpdatedAt.Equal(n.UpdatedAt)
}

// finishStoreFailure records that the store failed before WeChat was called:
// nothing was sent and a retry may send.
func (s *Service) finishStoreFailure(ctx context.Context, n Notification, ver int64, cause error) (Notification, error) {
	n.Retryable = true
	out, err := s.finish(context.WithoutCancel(ctx), n, ver, StatusFailed, ReasonStore)
	if err == nil || IsUnavailable(err) {
		return out, cause
	}
	return out, err
}

// finish records the outcome with a conditional write on the claim's
// version; if another sender took the record over meanwhile, its record wins.
func (s *Service) finish(ctx context.Context, n Notification, ver int64, st Status, reason string) (Notification, error) {
	return s.finishObserved(ctx, n, ver, st, reason, false)
}

// finishObserved is finish, reporting the outcome to the observer once it
// is recorded by this write (also when the write's reply was lost and the
// record read back is this outcome; not when another sender's outcome
// stands, nor when the outcome could not be recorded). wasted: see
// Outcome. A slow sender that overwrites the unknown (interrupted) outcome
// a duplicate recorded reports its own: the notification then has two
// outcomes, like a retried failure followed by its retry's.
func (s *Service) finishObserved(ctx context.Context, n Notification, ver int64, st Status, reason string, wasted bool) (Notification, error) {
	// Recorded even when the caller gave up (a batch tick ends, a client
	// hangs up): a record left pending turns unknown when its lease ends.
	ctx = context.WithoutCancel(ctx)
	claimAt := n.UpdatedAt // set by the claim (or the takeover)
	n.Status, n.Reason = st, reason
	if st != StatusFailed {
		n.Retryable = false
	}
	n.LeaseUntil = time.Time{}
	n.UpdatedAt = s.now().UTC()
	// The outcome is precious (the message may be out): a failed write is
	// tried again a few times before the record is left pending. It is
	// written with its history entries (see writeOutcome).
	var err error
	for attempt, wait := 0, 10*time.Millisecond; attempt < 5; attempt, wait = attempt+1, wait*2 {
		_, err = s.writeOutcome(ctx, n, ver, nil)
		if err == nil || errors.Is(err, store.ErrConflict) || ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	if errors.Is(err, store.ErrConflict) {
		var (
			cur    Notification
			curVer int64
		)
		gerr := s.retryWrite(ctx, "get notification", func() error {
			var err error
			cur, curVer, err = s.getNotification(ctx, n.ID)
			return err
		})
		if gerr == nil && cur.Status == StatusUnknown && cur.Reason == ReasonInterrupted && cur.Attempts == n.Attempts {
			// A duplicate took this send for dead while it was only slow:
			// its own outcome is the truth (SweepUnknown then leaves it).
			if _, perr := s.writeOutcome(ctx, n, curVer, &cur); perr == nil {
				s.reportOutcome(n, claimAt, wasted)
				return n, resultError(n)
			}
			cur, _, gerr = s.getNotification(ctx, n.ID)
		}
		if gerr == nil {
			if !sameOutcome(cur, n) {
				s.markSent(ctx, n) // the message is out, under another outcome
				s.log.Warn("notification taken over while sending", "notification", n.ID, "status", cur.Status)
			} else { // our write landed and its reply was lost
				s.reportOutcome(n, claimAt, wasted)
			}
			return cur, resultError(cur)
		}
	}
	if err != nil {
		s.markSent(ctx, n) // the outcome could not be written: its mark alone
		return n, storeErr("record notification", err)
	}
	s.reportOutcome(n, claimAt, wasted)
	return n, resultError(n)
}
