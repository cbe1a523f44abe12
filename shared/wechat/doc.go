// Package wechat talks to WeChat for a mini program backend: the server
// API client (login, subscribe messages, template management), access
// tokens shared by every instance of the app, subscribe-message keyword
// rules, and the message push (signatures, encryption, events).
//
// # Client
//
// A Client serves one app. Its dependencies (an *http.Client with
// timeouts, the base URL, a clock, an *slog.Logger, a TokenSource) are
// passed in a Config; every call takes a context first. WeChat's answers
// become typed errors:
//
//   - *Error for every non-zero errcode, classified by IsTokenInvalid,
//     IsConsentGone, IsBadRequest, IsRetryable, IsInvalidCode,
//     IsUserBlocked, IsRateLimited and IsMisconfigured; InvalidField names
//     the data field of a 47003; a 40164 (the caller's IP is not in the
//     app's API IP whitelist) also matches ErrIPNotWhitelisted and says
//     to whitelist the egress IP;
//   - *HTTPError for a non-2xx status;
//   - *TransportError when no usable answer came. IsAmbiguous tells a
//     request that may have taken effect (it was fully written) from one
//     that certainly did not.
//
// # Access tokens
//
// StoreTokenSource fetches tokens from stable_token in normal mode (never
// force_refresh) and shares them through a store.Store, refreshing ahead
// of expiry by one instance at a time under a lease, so that one fetch
// serves all instances for the token's lifetime. A call whose token WeChat
// rejects is retried once with a replacement. StaticToken serves tests;
// Config.TokenFree makes calls without a token, for WeChat Cloud Hosting,
// whose open interface service adds it.
//
// Secrets, tokens and session keys are never logged nor included in
// errors.
package wechat
