// Package platformtest runs function processes under emulations of the
// platforms' own invoke protocols, for end-to-end tests and benchmarks:
//
//   - LambdaAPI is the AWS Lambda Runtime API (2018-06-01) a process finds
//     at AWS_LAMBDA_RUNTIME_API: it hands out invocations on
//     /runtime/invocation/next with the request id and deadline headers and
//     collects /response and /error.
//   - SCFClient is Tencent Cloud SCF's Go1 runtime: it calls Function.Ping
//     and Function.Invoke over net/rpc on the port the process was given in
//     _LAMBDA_SERVER_PORT, with scf-go-lib's messages types.
//
// LambdaTransport and SCFTransport are http.RoundTrippers on top of them: an
// ordinary http.Client then talks to a function as API Gateway (HTTP API,
// payload 2.0), a Lambda Function URL or an SCF Function URL would. They
// build the platform events themselves, independently of package runtime,
// so that tests through them check the adapters against the platforms'
// formats rather than against themselves.
package platformtest
