// Package wechattest is a faithful fake of the WeChat server, for tests, the local sandbox and benchmarks.
//
// It serves the APIs wxnotify calls, on the same paths and with the same answers as
// https://api.weixin.qq.com: access tokens (/cgi-bin/token and /cgi-bin/stable_token), login
// (/sns/jscode2session), subscribe messages (/cgi-bin/message/subscribe/send) and template management
// (/wxaapi/newtmpl/...). It pushes subscribe events to the mini program's server as WeChat's message push
// does (plaintext, compatible or safe mode, XML or JSON), signed and encrypted with the Token and
// EncodingAESKey of the console.
//
// The fake keeps WeChat's truth: the users that logged in, which templates they accepted and how many
// one-time credits each has left, and every message delivered. A test plays the WeChat user with Login,
// Subscribe and Unsubscribe, reads the truth with Credits, Accepted and Messages to check invariants, moves
// the fake's clock with Advance, and makes calls fail, stall or lose their answer with Inject.
//
// The fake is strict: it accepts what WeChat documents and rejects the rest with WeChat's error codes, so
// that a client cannot pass against it while being wrong against the real thing. Where WeChat's behaviour
// is not documented, the doc comments say which behaviour the fake chose.
//
// A Server fakes one mini program. A Multi serves several Servers at one base URL, as WeChat's one host
// serves every app: each call reaches the app named by its appid or by the Server that issued its
// access token, and a send with one app's token to another app's openid is refused with 40003.
//
// A Server and a Multi are safe for concurrent use.
package wechattest
