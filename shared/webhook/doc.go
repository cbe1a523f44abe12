// Package webhook holds the self-contained pieces of wxnotify's outcome
// webhooks: Standard Webhooks signing and verification, the event
// envelope and its stable delivery id, an HTTP client that refuses to
// reach private networks (SSRF guard), the retry schedule, and one signed
// delivery attempt with its outcome classified.
//
// The outbox that stores pending deliveries, the per-app subscriptions and
// the worker that drives retries are not part of this package; they use
// it.
package webhook
