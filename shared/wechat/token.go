package wechat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wxnotify/wxnotify/shared/store"
)

// TokenSource supplies access tokens to a Client.
type TokenSource interface {
	// Token returns an access token that is valid now. Clients call it
	// once per API call, so a cached token must come back cheaply.
	Token(ctx context.Context) (string, error)

	// Invalidate reports that WeChat rejected bad (IsTokenInvalid). It
	// returns nil once Token will return a token other than bad, and an
	// error when no replacement can be had; the Client then returns the
	// rejection without retrying.
	Invalidate(ctx context.Context, bad string) error
}

// StaticToken is a fixed access token, for tests and one-off tools. It
// cannot be replaced: Invalidate always fails.
type StaticToken string

// Token returns t, or an error when t is empty.
func (t StaticToken) Token(context.Context) (string, error) {
	if t == "" {
		return "", errors.New("wechat: empty static token")
	}
	return string(t), nil
}

// Invalidate fails: a static token has no replacement.
func (t StaticToken) Invalidate(context.Context, string) error {
	return errors.New("wechat: a static token cannot be replaced")
}

// Defaults of TokenOptions.
const (
	DefaultRefreshAhead = 4 * time.Minute
	DefaultLeaseTTL     = 10 * time.Second
	DefaultMaxWait      = 15 * time.Second
	DefaultPollInterval = 100 * time.Millisecond
)

const (
	// TokenPartition is the store partition of access tokens; the sort key
	// is the appid, and appid+"#lease" holds the refresh lease.
	TokenPartition = "wxtoken"

	// stableRenewal is how long before expiry WeChat's stable_token starts
	// handing out the next token. A refresh earlier than that gets the
	// same token back.
	stableRenewal = 5 * time.Minute
	// expiryMargin: a token with less time left is not used.
	expiryMargin = 30 * time.Second
	// recheckInterval spaces out the store reads of an instance whose token
	// is due for refresh while another instance refreshes it, and the
	// attempts after a failed refresh: a misconfigured app or an outage
	// costs at most one stable_token call per second per instance, not one
	// per API call.
	recheckInterval = time.Second
	// echoWindow is how long a token that stable_token handed back right
	// after WeChat rejected it is not refreshed again for a new rejection.
	echoWindow = time.Minute
)

var errTokenNotReplaced = errors.New("wechat: stable_token returned the rejected access token again")

// TokenOptions tune a StoreTokenSource. Zero fields take the defaults.
type TokenOptions struct {
	// RefreshAhead: a token is refreshed once less than this remains
	// (default DefaultRefreshAhead). It must lie between 1 and 5 minutes:
	// stable_token hands out the next token only in the last 5 minutes of
	// the current one, so an earlier refresh would get the same token back
	// and be repeated.
	RefreshAhead time.Duration
	// LeaseTTL is how long a refreshing instance holds the lease (default
	// DefaultLeaseTTL); an instance that dies holding it delays the others
	// at most this long. A fetch that outlives it is harmless: stable_token
	// returns the same token to concurrent callers.
	LeaseTTL time.Duration
	// MaxWait bounds how long Token waits, without a valid token, for
	// another instance's refresh before failing (default DefaultMaxWait).
	// Keep it above LeaseTTL.
	MaxWait time.Duration
	// PollInterval spaces the store reads while waiting (default
	// DefaultPollInterval).
	PollInterval time.Duration
}

func (o *TokenOptions) setDefaults() error {
	if o.RefreshAhead == 0 {
		o.RefreshAhead = DefaultRefreshAhead
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	switch {
	case o.RefreshAhead < time.Minute || o.RefreshAhead >= stableRenewal:
		return fmt.Errorf("wechat: token options: RefreshAhead %v outside [1m, 5m)", o.RefreshAhead)
	case o.LeaseTTL < 0 || o.MaxWait < 0 || o.PollInterval < 0:
		return errors.New("wechat: token options: negative duration")
	case o.PollInterval > o.MaxWait:
		return fmt.Errorf("wechat: token options: PollInterval %v above MaxWait %v", o.PollInterval, o.MaxWait)
	}
	return nil
}

// StoreTokenSource is the production TokenSource: access tokens from
// stable_token (never with force_refresh), shared through a store.Store by
// every instance of every function of the app, so that one token fetch
// serves the whole fleet for the token's lifetime.
//
//   - Token serves the in-memory copy until the token is due for refresh
//     (RefreshAhead before expiry); it touches neither the store nor
//     WeChat before that.
//   - Then one goroutine per process (the others share its result) reads
//     the store and, if the stored token is due too, takes the lease (a
//     conditional put with a LeaseTTL expiry); only the lease holder calls
//     stable_token and stores the answer. Callers with a still-valid token
//     keep using it meanwhile; callers without one poll the store for at
//     most MaxWait and take the lease themselves once it expires.
//   - Invalidate replaces a rejected token: it re-reads the store and
//     fetches (under the lease) only if the stored token is the rejected
//     one.
//   - If the store fails, tokens are fetched directly (stable_token hands
//     every caller the same token) and kept in memory.
//
// The token is never logged. It is safe for concurrent use.
type StoreTokenSource struct {
	caller
	appID    string
	store    store.Store
	key      store.Key
	leaseKey store.Key
	owner    []byte     // lease value: identifies this source in the store
	secret   *appSecret // stable_token's secret
	opts     TokenOptions

	mu        sync.Mutex
	mem       *tokenRecord // immutable once set; nil when none
	nextCheck time.Time    // the due path stays on mem until then
	rejected  string       // the token last rejected by WeChat: never returned again
	echoed    string       // a rejected token stable_token handed back...
	echoUntil time.Time    // ...and until when Invalidate gives up on it at once
	failErr   error        // the last refresh failure...
	failUntil time.Time    // ...returned without a new attempt until then
	flight    *flight      // the refresh in progress, if any
}

// tokenRecord is the stored form of a token.
type tokenRecord struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	FetchedAt time.Time `json:"fetchedAt"`
}

func (r *tokenRecord) usable(now time.Time) bool {
	return r.Token != "" && now.Add(expiryMargin).Before(r.ExpiresAt)
}

func (r *tokenRecord) due(now time.Time, ahead time.Duration) bool {
	return !now.Add(ahead).Before(r.ExpiresAt)
}

// flight is one refresh shared by the goroutines of a process.
type flight struct {
	done chan struct{} // closed when rec and err are set
	rec  tokenRecord
	err  error
}

type stableTokenBody struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

type stableTokenResponse struct {
	apiStatus
	AccessToken string  `json:"access_token"`
	ExpiresIn   flexInt `json:"expires_in"`
}

// NewStoreTokenSource returns a token source for the app of cfg (AppID,
// Secret, RefreshSecret, BaseURL, HTTPClient, Now and Logger are used;
// TokenFree must be false) that shares tokens through st. The same cfg, with Tokens set to
// the result, then configures the Client.
func NewStoreTokenSource(st store.Store, cfg Config, opts TokenOptions) (*StoreTokenSource, error) {
	switch {
	case st == nil:
		return nil, errors.New("wechat: token source: nil store")
	case cfg.TokenFree:
		return nil, errors.New("wechat: token source: not used with TokenFree")
	case cfg.AppID == "" || cfg.Secret == "":
		return nil, errors.New("wechat: token source: AppID and Secret are required")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	key := store.Key{Partition: TokenPartition, Sort: cfg.AppID}
	leaseKey := store.Key{Partition: TokenPartition, Sort: cfg.AppID + "#lease"}
	if err := store.CheckKey(leaseKey); err != nil {
		return nil, fmt.Errorf("wechat: token source: appid: %w", err)
	}
	cl, err := newCaller(cfg)
	if err != nil {
		return nil, err
	}
	return &StoreTokenSource{
		caller:   cl,
		appID:    cfg.AppID,
		store:    st,
		key:      key,
		leaseKey: leaseKey,
		owner:    []byte(rand.Text()),
		secret:   newAppSecret(cfg, cl.log),
		opts:     opts,
	}, nil
}

// Token returns a valid access token: the cached one until it is due for
// refresh, then a refreshed one. While the refresh is in progress or
// failing, a cached token that is still valid is returned. It fails when
// no valid token could be had: WeChat refused or did not answer, or no
// other instance refreshed it within MaxWait, or ctx ended.
func (s *StoreTokenSource) Token(ctx context.Context) (string, error) {
	for range 3 {
		s.mu.Lock()
		now := s.now()
		if cur := s.mem; cur != nil && cur.Token != s.rejected && cur.usable(now) {
			if !cur.due(now, s.opts.RefreshAhead) || s.flight != nil || now.Before(s.nextCheck) {
				s.mu.Unlock()
				return cur.Token, nil
			}
			// Due: refresh, but fall back on the valid token if that fails
			// or takes longer than the caller can wait.
			f := s.startFlightLocked(ctx)
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return cur.Token, nil
			}
			continue
		}
		f := s.flight
		if f == nil {
			if now.Before(s.failUntil) {
				err := s.failErr
				s.mu.Unlock()
				return "", err
			}
			f = s.startFlightLocked(ctx)
		}
		s.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return "", f.err
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return "", errors.New("wechat: no usable access token after refreshing")
}

// Invalidate makes sure Token no longer returns bad. It refreshes only if
// bad is still the current token, here or in the store, and fails when
// the refresh fails or stable_token hands bad back.
func (s *StoreTokenSource) Invalidate(ctx context.Context, bad string) error {
	if bad == "" {
		return nil
	}
	s.mu.Lock()
	if bad == s.echoed && s.now().Before(s.echoUntil) {
		s.mu.Unlock()
		return errTokenNotReplaced
	}
	s.rejected = bad
	dropped := s.mem != nil && s.mem.Token == bad
	if dropped {
		s.mem = nil
	}
	s.mu.Unlock()
	if dropped {
		s.log.LogAttrs(ctx, slog.LevelInfo, "wechat access token rejected; replacing it", slog.String("appid", s.appID))
	}

	tok, err := s.Token(ctx)
	switch {
	case err != nil:
		return err
	case tok == bad:
		return errTokenNotReplaced
	}
	return nil
}

// startFlightLocked starts a refresh in its own goroutine, detached from
// ctx's cancellation (other callers may wait for it) but bounded in time.
// s.mu must be held.
func (s *StoreTokenSource) startFlightLocked(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	skip := s.rejected
	var fallback *tokenRecord
	if m := s.mem; m != nil && m.Token != skip && m.usable(s.now()) {
		fallback = m
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.MaxWait+s.opts.LeaseTTL)
	go func() {
		defer cancel()
		rec, err := s.refresh(fctx, skip, fallback)
		s.finish(fctx, f, skip, rec, err)
	}()
	return f
}

// finish records the outcome of flight f, which started when skip was the
// rejected token.
func (s *StoreTokenSource) finish(ctx context.Context, f *flight, skip string, rec tokenRecord, err error) {
	s.mu.Lock()
	now := s.now()
	switch {
	case err != nil:
		s.nextCheck = now.Add(recheckInterval)
		s.failErr, s.failUntil = err, now.Add(recheckInterval)
	case rec.Token == s.rejected && skip != s.rejected:
		// The flight began before this token was rejected: leave mem empty
		// so that the waiting Token call starts a new one.
	default:
		if rec.Token == s.rejected {
			// stable_token handed the rejected token back: it is WeChat's
			// current token after all. Use it, but do not refetch it for
			// every call it fails.
			s.rejected = ""
			s.echoed, s.echoUntil = rec.Token, now.Add(echoWindow)
		}
		s.mem = &rec
		s.failErr, s.failUntil = nil, time.Time{}
		if rec.due(now, s.opts.RefreshAhead) {
			s.nextCheck = now.Add(recheckInterval)
		}
	}
	s.flight = nil
	f.rec, f.err = rec, err
	s.mu.Unlock()
	// The failure is logged before the waiters are released, so that the
	// log line precedes every error it explains.
	switch {
	case IsIPNotWhitelisted(err):
		// Nothing works until an operator acts: say what to do.
		s.log.LogAttrs(ctx, slog.LevelError, "wechat access token refresh failed: this server's IP is not in the app's API IP whitelist",
			slog.String("appid", s.appID), slog.Int("errcode", CodeIPNotAllowed),
			slog.String("fix", ipWhitelistHint), slog.String("error", err.Error()))
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token refresh failed",
			slog.String("appid", s.appID), slog.String("error", err.Error()))
	}
	close(f.done)
}

// refresh returns a token that is valid, not skip, and not due unless
// another instance is refreshing it: the stored one, or one fetched under
// the lease. fallback, if not nil, is a valid token in memory, returned
// rather than waiting for another instance.
func (s *StoreTokenSource) refresh(ctx context.Context, skip string, fallback *tokenRecord) (tokenRecord, error) {
	maxPolls := int(s.opts.MaxWait / s.opts.PollInterval)
	for poll := 0; ; poll++ {
		now := s.now()
		stored, _, err := s.load(ctx)
		if err != nil {
			return s.fetchWithoutStore(ctx, err)
		}
		valid := stored.Token != skip && stored.usable(now)
		if valid && !stored.due(now, s.opts.RefreshAhead) {
			return stored, nil
		}
		lease, err := s.takeLease(ctx, now)
		switch {
		case err == nil:
			return s.refreshUnderLease(ctx, lease, skip)
		case !errors.Is(err, store.ErrConflict):
			return s.fetchWithoutStore(ctx, err)
		case valid:
			return stored, nil // due, but another instance is refreshing it
		case fallback != nil:
			return *fallback, nil
		case poll >= maxPolls:
			return tokenRecord{}, fmt.Errorf("wechat: no access token: another instance held the refresh lease for over %v", s.opts.MaxWait)
		}
		t := time.NewTimer(s.opts.PollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return tokenRecord{}, fmt.Errorf("wechat: waiting for the access token refresh: %w", ctx.Err())
		}
	}
}

// takeLease takes the refresh lease with a put-if-absent of this source's
// own value. A lease found taken is recognised as this source's when it
// holds that value: the reply of an earlier put was lost (a timeout after
// the store applied it), and waiting for "another instance" would stall
// every refresh until the lease expires.
func (s *StoreTokenSource) takeLease(ctx context.Context, now time.Time) (int64, error) {
	lease, err := s.store.Put(ctx, s.leaseKey, s.owner, store.PutOptions{IfAbsent: true, ExpiresAt: now.Add(s.opts.LeaseTTL)})
	if !errors.Is(err, store.ErrConflict) {
		return lease, err
	}
	it, gerr := s.store.Get(ctx, s.leaseKey)
	if gerr == nil && bytes.Equal(it.Value, s.owner) {
		return it.Version, nil
	}
	return 0, err
}

// refreshUnderLease fetches and stores a token while holding the lease of
// the given version, unless the store already has a good one, and then
// releases the lease.
func (s *StoreTokenSource) refreshUnderLease(ctx context.Context, lease int64, skip string) (tokenRecord, error) {
	defer func() {
		// Release even if ctx ran out meanwhile. If the lease expired and
		// another instance took it, theirs stays.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.LeaseTTL)
		defer cancel()
		err := s.store.Delete(rctx, s.leaseKey, store.DeleteOptions{IfVersion: lease})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token lease not released",
				slog.String("appid", s.appID), slog.String("error", err.Error()))
		}
	}()
	// Another instance may have stored a token between our read and the lease.
	now := s.now()
	stored, version, err := s.load(ctx)
	if err != nil {
		return s.fetchWithoutStore(ctx, err)
	}
	if stored.Token != skip && stored.usable(now) && !stored.due(now, s.opts.RefreshAhead) {
		return stored, nil
	}
	rec, err := s.fetch(ctx)
	if err != nil {
		return tokenRecord{}, err
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return rec, nil // not reachable: the record always encodes
	}
	opts := store.PutOptions{ExpiresAt: rec.ExpiresAt, IfAbsent: version == 0, IfVersion: version}
	if _, err := s.store.Put(ctx, s.key, value, opts); err != nil {
		// ErrConflict: another instance stored a token while our lease had
		// expired; both are valid. Otherwise the token still serves this
		// process.
		if !errors.Is(err, store.ErrConflict) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token not stored",
				slog.String("appid", s.appID), slog.String("error", err.Error()))
		}
	}
	return rec, nil
}

// load reads the stored token. An undecodable item reads as no token
// (with its version, so that it can be replaced).
func (s *StoreTokenSource) load(ctx context.Context) (tokenRecord, int64, error) {
	item, err := s.store.Get(ctx, s.key)
	if errors.Is(err, store.ErrNotFound) {
		return tokenRecord{}, 0, nil
	}
	if err != nil {
		return tokenRecord{}, 0, err
	}
	var rec tokenRecord
	if err := json.Unmarshal(item.Value, &rec); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token record unreadable; replacing it",
			slog.String("appid", s.appID), slog.String("error", err.Error()))
		return tokenRecord{}, item.Version, nil
	}
	return rec, item.Version, nil
}

// fetchWithoutStore fetches a token for this process alone because the
// store failed with storeErr.
func (s *StoreTokenSource) fetchWithoutStore(ctx context.Context, storeErr error) (tokenRecord, error) {
	if ctx.Err() != nil {
		return tokenRecord{}, fmt.Errorf("wechat: access token store: %w", storeErr)
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "wechat access token store unavailable; fetching without it",
		slog.String("appid", s.appID), slog.String("error", storeErr.Error()))
	return s.fetch(ctx)
}

// fetch calls stable_token in normal mode, once more with the secret
// RefreshSecret returns if WeChat refuses the secret.
func (s *StoreTokenSource) fetch(ctx context.Context) (tokenRecord, error) {
	secret := s.secret.get()
	rec, err := s.fetchWith(ctx, secret)
	if err != nil && s.secret.renew(ctx, secret, err) {
		rec, err = s.fetchWith(ctx, s.secret.get())
	}
	return rec, err
}

// fetchWith calls stable_token with secret.
//
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getStableAccessToken.html
func (s *StoreTokenSource) fetchWith(ctx context.Context, secret string) (tokenRecord, error) {
	req, err := postRequest(APIStableToken, "/cgi-bin/stable_token",
		stableTokenBody{GrantType: "client_credential", AppID: s.appID, Secret: secret})
	if err != nil {
		return tokenRecord{}, err
	}
	start := s.now()
	var out stableTokenResponse
	if err := s.roundTrip(ctx, req, "", &out); err != nil {
		return tokenRecord{}, err
	}
	if out.AccessToken == "" || out.ExpiresIn <= 0 {
		return tokenRecord{}, &TransportError{API: req.api, Written: true,
			Err: errors.New("answer without access_token or expires_in")}
	}
	// Counting from before the request keeps the expiry on the safe side.
	rec := tokenRecord{
		Token:     out.AccessToken,
		ExpiresAt: start.Add(time.Duration(out.ExpiresIn) * time.Second),
		FetchedAt: start,
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "wechat access token fetched",
		slog.String("appid", s.appID), slog.Time("expires_at", rec.ExpiresAt))
	return rec, nil
}

// APIStableToken is the name of WeChat's stable_token API in logs and in
// Config.OnCall: each call is an access token fetch.
const (
	APIStableToken = "auth.getStableAccessToken" // #nosec G101 -- an API name, not a credential
)
