// Package cloudcall answers direct invocations of the send function in the
// shape of WeChat's cloud call cloud.openapi.subscribeMessage.send, so that
// a WeChat cloud function that sends subscribe messages is ported by
// changing one call: invoke wxnotify's send function (Lambda Invoke, SCF
// Invoke) with the object it gave the cloud call, and read the same
// {errCode, errMsg} back.
//
// The request goes through the notify service like POST /v1/notifications:
// the consent ledger, idempotency (optional idempotencyKey), template
// validation. The answer is never a function error: every outcome,
// refusals included, is an errCode, as the cloud call's own result object.
//
// The package is a core for runtime.Handlers.Invoke; it knows no platform.
package cloudcall
