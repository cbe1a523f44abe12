// Package dynamostore implements store.Store on one Amazon DynamoDB table.
//
// # Table
//
// The table has a string partition key pk and a string sort key sk, which
// hold a store.Key's Partition and Sort as they are. Every other attribute
// belongs to this package:
//
//	pk     S  partition key (HASH)
//	sk     S  sort key (RANGE)
//	v      B  the value, unless it is a counter
//	n      N  the value when it is the canonical decimal text of an int64
//	          (strconv.FormatInt(x, 10) == value), so that Add can do arithmetic
//	ver    N  version: 1 on creation, +1 on every Put and Add
//	expms  N  expiry in Unix milliseconds, absent for permanent items
//	ttl    N  expiry in Unix seconds rounded up: the table's TTL attribute
//	opu    M  counters: the operations AddOnce remembers, operation id ->
//	          until when (Unix ms); opd and opr (M) hold their delta and the
//	          value they answered, opn (N) the entries added since the last
//	          trim. Put writes them empty for a counter and removes them for
//	          any other value, so that replacing an item forgets them
//
// An item holds exactly one of v and n. A value such as "007", "-0" or "+1"
// is not canonical and stays binary, so Get returns every value byte for
// byte; Add treats such values as non-counters (store.ErrNotCounter).
//
// DynamoDB's TTL deletes expired items eventually (typically within days),
// so every read and every condition also compares expms with the Store's
// clock: an expired item is invisible and counts as absent from its expiry
// on, whether or not DynamoDB has removed it yet.
//
// CreateTable creates the table for tests and local runs. Deployments define
// it in their template; with CloudFormation or SAM:
//
//	Table:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions:
//	      - {AttributeName: pk, AttributeType: S}
//	      - {AttributeName: sk, AttributeType: S}
//	    KeySchema:
//	      - {AttributeName: pk, KeyType: HASH}
//	      - {AttributeName: sk, KeyType: RANGE}
//	    TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
//
// The functions need dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem,
// dynamodb:DeleteItem and dynamodb:Query on the table; Write also needs
// dynamodb:ConditionCheckItem (a transaction is authorised per item action)
// and, for unconditional Puts, dynamodb:BatchGetItem.
//
// # Round trips
//
// Get, Delete and Query are one request each; reads are strongly consistent.
// Put is one PutItem (IfAbsent, IfVersion) or UpdateItem (no condition; it
// returns the incremented version); replacing an expired item, which must
// restart at version 1, takes a second request. Add is one UpdateItem whose
// condition enforces the bounds; when it fails, the reason (out of range,
// not a counter, expired) is read from the item DynamoDB returns with the
// failure (ReturnValuesOnConditionCheckFailure), or with a consistent
// GetItem from emulators that do not return it, such as dynalite. AddOnce
// is one UpdateItem too (the operation is recorded in the same request, on
// condition that the counter does not remember it; a repeat is answered
// from the item the failed condition returns), plus a read and a trimming
// UpdateItem every 32 operations of a counter. Undo is a consistent GetItem
// and an UpdateItem conditional on the version it read.
//
// Write is one TransactWriteItems (a conditional Put per Put, a Delete per
// Delete, a ConditionCheck per Check, an UpdateItem per Add conditioned on
// a live counter in range or no item) when its Puts are all conditional
// (IfAbsent or IfVersion). When an Add's condition fails (the counter
// expired, or the item is no counter, or would overflow), the items of the
// Adds are read with the BatchGetItem below and the Write is tried again:
// an expired counter is replaced by a Put at version 1. A transaction returns no values, so the versions
// of unconditional Puts are read first with one consistent BatchGetItem,
// and the transaction is conditioned on them. A cancelled transaction tells
// which item failed its condition (CancellationReasons); one cancelled by a
// collision with another transaction, or by a change between the read and
// the transaction, is tried again.
package dynamostore
