// Package platform runs a function's cores on the platform it finds itself
// on: AWS Lambda, Tencent Cloud SCF, or a plain local HTTP server.
//
// A function is a set of neutral cores (Handlers): an http.Handler for its
// HTTP routes, and, as the function needs them, a queue core (Events), a
// schedule core (Tick) and a direct-invocation core (Invoke). The adapters
// here only decode the platform's payload into what a core takes and encode
// the core's answer into what the platform expects; they hold no business
// logic, so every core behaves the same on every platform.
//
// One binary serves every platform. Run chooses from the environment
// (Detect):
//
//   - AWS_LAMBDA_RUNTIME_API set: AWS Lambda (aws-lambda-go, Runtime API).
//   - else _LAMBDA_SERVER_PORT set: Tencent Cloud SCF, runtime Go1 (the
//     net/rpc protocol of scf-go-lib's cloudfunction on that port, served
//     by this package to keep binaries small).
//   - else: a local HTTP server on WXN_ADDR, else :$PORT, else :8080.
//
// Build every binary, for either cloud, with -tags lambda.norpc: without it
// aws-lambda-go links its legacy RPC mode, and with it Go's net/rpc server,
// whose reflective method lookup keeps every method of every type in the
// binary (about 8 MB more).
//
// # Payloads
//
// On AWS (Lambda.Invoke): API Gateway HTTP API payload 2.0 and Lambda Function
// URL requests go to HTTP; SQS batches and EventBridge events to Events (SQS
// answered with a partial batch response); the EventBridge Scheduler input
// ScheduleInput and classic "Scheduled Event"s to Tick; anything else to
// Invoke. On Tencent Cloud (SCF.Invoke): Function URL and API Gateway
// requests go to HTTP, timer events to Tick, CKafka batches to Events,
// anything else to Invoke.
package platform
