// Package upgrade proves that an upgrade of wxnotify keeps the data a
// deployment already holds.
//
// # Fixtures
//
// testdata/v1 holds what the store layout before multi-app support (v1)
// physically wrote on each backend, captured from a scripted scenario run
// by that code through shared/boot against the fake WeChat: users logged in
// and bound, consent credits from client reports and popup events, a
// long-term acceptance, sends that ended sent, skipped and failed (each
// with an idempotency key), finished batches, a batch scheduled far in the
// future, and the shared access token.
//
//	bolt.json      every bucket, key and value of the bbolt file
//	redis.json     every key under the store's prefix: type, contents, PTTL
//	dynamodb.json  every item of the table, in DynamoDB's attribute-value JSON
//	expect.json    what must read back: users, credits, notifications, batches
//
// Binary strings are written {"base64": "..."}, every other string as it is.
//
// TestUpgradeKeepsData loads each dump into a fresh backend byte for byte
// (not through the store API), shifting absolute expiry times by the time
// elapsed since the dump so that the data is as fresh as right after an
// upgrade, builds the parts with the current code (buildParts) and checks
// that everything reads back, that repeated sends keep their idempotency and
// that new sends and the scheduled batch still work.
//
// # Regenerating
//
//	WXN_WRITE_FIXTURES=1 go test ./internal/upgrade -run TestWriteFixtures
//
// Only regenerate them with the v1 layout's code. Once the layout changes,
// these files are the old layout's truth: regenerating them with the new
// code would make the test compare the new layout with itself. A later
// layout gets its own directory (testdata/v2) beside this one.
package upgrade
