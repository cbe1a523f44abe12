package wechat

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// WeChat errcodes this package classifies. Any other non-zero errcode still
// becomes an *Error; these are the ones with a documented meaning for
// login, access tokens and subscribe messages.
const (
	CodeBusy               = -1     // system busy: retry later
	CodeInvalidCredential  = 40001  // access token invalid or not the latest
	CodeInvalidOpenID      = 40003  // touser is not an openid of this app
	CodeInvalidAppID       = 40013  // appid unknown
	CodeInvalidAccessToken = 40014  // access token malformed
	CodeInvalidCode        = 40029  // js_code invalid or expired
	CodeInvalidTemplateID  = 40037  // template_id invalid, long-term or not ours
	CodeInvalidSecret      = 40125  // appsecret wrong
	CodeCodeUsed           = 40163  // js_code already used
	CodeIPNotAllowed       = 40164  // caller IP not in the whitelist
	CodeHighRiskUser       = 40226  // user blocked as high risk
	CodeMissingToken       = 41001  // access_token missing
	CodeInvalidPage        = 41030  // page is not a page of the mini program
	CodeTokenExpired       = 42001  // access token expired
	CodeNoSubscription     = 43101  // the user holds no subscription for the template
	CodeSubscribeBanned    = 43107  // the app's subscribe-message ability is banned
	CodeConcurrentSend     = 43108  // concurrent sends to the same user
	CodeQuotaReached       = 45009  // daily API quota reached
	CodeRateLimited        = 45011  // per-minute limit reached (code2Session: 100/min/user)
	CodeSensitiveContent   = 45168  // data contains sensitive words
	CodeInvalidData        = 47003  // a data value is invalid; the errmsg names the field
	CodeUnauthorized       = 48001  // API not authorized for this app
	CodeTemplateExists     = 200022 // addtemplate: this combination was already added
)

// ErrInvalidArgument marks a request rejected locally, before any call to
// WeChat, because an argument breaks a documented rule. IsBadRequest
// reports it. Errors wrap it with the rule that was broken.
var ErrInvalidArgument = errors.New("wechat: invalid argument")

// ErrIPNotWhitelisted matches (with errors.Is) every *Error with errcode
// 40164: the app has an API IP whitelist and the caller's public address is
// not on it. WeChat then refuses the access token, so every call fails
// until an operator adds the functions' egress IP (WeChat's errmsg names
// the address it saw) to the whitelist in mp.weixin.qq.com. See
// docs/production.md for a fixed egress IP on each cloud.
var ErrIPNotWhitelisted = errors.New("wechat: caller IP not in the app's API IP whitelist: add the functions' egress IP to the whitelist in mp.weixin.qq.com")

// ipWhitelistHint ends the message of a 40164 error: what to do about it.
const ipWhitelistHint = "add the functions' egress IP (WeChat's errmsg names the address it saw) to the app's API IP whitelist in mp.weixin.qq.com"

// Error is a WeChat answer with a non-zero errcode.
type Error struct {
	Code int    // errcode
	Msg  string // errmsg as received, usually ending with " rid: ..."
	API  string // the API's official name, e.g. "subscribeMessage.send"
}

func (e *Error) Error() string {
	msg := "wechat " + e.API + ": errcode " + strconv.Itoa(e.Code) + ": " + e.Msg
	if e.Code == CodeIPNotAllowed {
		msg += ": " + ipWhitelistHint
	}
	return msg
}

// Is reports whether target is a sentinel this error stands for:
// ErrIPNotWhitelisted for errcode 40164.
func (e *Error) Is(target error) bool {
	return target == ErrIPNotWhitelisted && e.Code == CodeIPNotAllowed
}

// HTTPError is an answer with a non-2xx HTTP status (WeChat itself answers
// 200 with an errcode; other statuses come from proxies and gateways).
type HTTPError struct {
	API        string
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("wechat %s: http status %d %s", e.API, e.StatusCode, http.StatusText(e.StatusCode))
}

// TransportError is a call that got no usable answer: the connection
// failed, the context ended, or the answer was cut short, oversized or not
// JSON.
//
// Written tells whether the whole request reached the network. When it is
// false, WeChat cannot have acted on the request: it is safe to retry or to
// give back whatever was reserved for it. When it is true the outcome is
// unknown (see IsAmbiguous).
type TransportError struct {
	API     string
	Written bool
	Err     error
}

func (e *TransportError) Error() string {
	state := "request not sent"
	if e.Written {
		state = "request sent, outcome unknown"
	}
	if e.Err == nil {
		return "wechat " + e.API + ": " + state
	}
	return "wechat " + e.API + ": " + state + ": " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// tokenError is a failure to obtain the access token for a call: the call
// itself never left, whatever the token fetch's own failure was.
type tokenError struct {
	api string
	err error
}

func (e *tokenError) Error() string { return "wechat " + e.api + ": access token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// ErrCode returns the errcode of the *Error in err's chain, or 0.
func ErrCode(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return 0
}

func hasCode(err error, codes ...int) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// IsTokenInvalid reports an access token WeChat rejected (40001, 40014,
// 42001). Client calls already handle it by refreshing and retrying once;
// seeing it from a Client means the retry failed too.
func IsTokenInvalid(err error) bool {
	return hasCode(err, CodeInvalidCredential, CodeInvalidAccessToken, CodeTokenExpired)
}

// IsConsentGone reports that the user holds no subscription for the
// template (43101): never accepted, one-time credits used up, or turned off.
func IsConsentGone(err error) bool { return hasCode(err, CodeNoSubscription) }

// IsBadRequest reports a request WeChat will refuse however often it is
// sent: invalid openid (40003), template_id (40037), data (47003), page
// (41030), sensitive words (45168), or an argument refused locally
// (ErrInvalidArgument).
func IsBadRequest(err error) bool {
	return errors.Is(err, ErrInvalidArgument) ||
		hasCode(err, CodeInvalidOpenID, CodeInvalidTemplateID, CodeInvalidData, CodeInvalidPage, CodeSensitiveContent)
}

// IsRetryable reports a transient failure that a later identical call may
// not meet: WeChat busy (-1), quota or rate limit (45009, 45011, both
// after a wait), concurrent sends to one user (43108), HTTP 429 and 5xx,
// and transport failures, including a failure to obtain the access token
// for one of these reasons.
//
// Retryable does not mean safe to resend: for a send, check IsAmbiguous
// first, since an ambiguous failure may have delivered the message.
func IsRetryable(err error) bool {
	if hasCode(err, CodeBusy, CodeQuotaReached, CodeRateLimited, CodeConcurrentSend) {
		return true
	}
	if e, ok := errors.AsType[*HTTPError](err); ok {
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
	}
	_, ok := errors.AsType[*TransportError](err)
	return ok
}

// IsAmbiguous reports a call that may have taken effect although no answer
// says so: the request was fully written and then the connection failed,
// the context ended or the answer was unreadable, or a gateway timed out
// waiting for WeChat (HTTP 504). A send that fails this way may have been
// delivered; record it as unknown rather than sending again. A failure to
// obtain the access token is never ambiguous: the call did not leave.
func IsAmbiguous(err error) bool {
	if _, ok := errors.AsType[*tokenError](err); ok {
		return false
	}
	if e, ok := errors.AsType[*TransportError](err); ok {
		return e.Written
	}
	if e, ok := errors.AsType[*HTTPError](err); ok {
		return e.StatusCode == http.StatusGatewayTimeout
	}
	return false
}

// IsInvalidCode reports a js_code that cannot be exchanged (40029 invalid
// or expired, 40163 already used): the mini program must call wx.login
// again.
func IsInvalidCode(err error) bool { return hasCode(err, CodeInvalidCode, CodeCodeUsed) }

// IsUserBlocked reports a user WeChat blocks as high risk (40226).
func IsUserBlocked(err error) bool { return hasCode(err, CodeHighRiskUser) }

// IsRateLimited reports WeChat's per-minute limit (45011).
func IsRateLimited(err error) bool { return hasCode(err, CodeRateLimited) }

// IsIPNotWhitelisted reports errcode 40164: the caller's IP is not in the
// app's API IP whitelist (see ErrIPNotWhitelisted). IsMisconfigured reports
// it too.
func IsIPNotWhitelisted(err error) bool { return errors.Is(err, ErrIPNotWhitelisted) }

// IsMisconfigured reports errors that only an operator can fix: wrong
// appid (40013) or secret (40125), caller IP not whitelisted (40164), API
// not authorized (48001), missing access token (41001), subscribe messages
// banned for the app (43107).
func IsMisconfigured(err error) bool {
	return hasCode(err, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotAllowed, CodeUnauthorized,
		CodeMissingToken, CodeSubscribeBanned)
}

// InvalidField returns the data field that a 47003 error names, such as
// "data.thing1" for the errmsg "argument invalid! data.thing1.value
// invalid rid: ...", or "" when err is not a 47003 error or names no field.
func InvalidField(err error) string {
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeInvalidData {
		return ""
	}
	return parseInvalidField(e.Msg)
}

// parseInvalidField finds the first word of msg that starts with "data."
// and returns it up to its ".value" suffix.
func parseInvalidField(msg string) string {
	for word := range strings.FieldsFuncSeq(msg, func(r rune) bool {
		return r == ' ' || r == ',' || r == ';' || r == ':' || r == '!' || r == '\t' || r == '\n'
	}) {
		name, ok := strings.CutPrefix(word, "data.")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ".")
		if name == "" || !isKeywordName(name) {
			continue
		}
		return "data." + name
	}
	return ""
}

// isKeywordName reports whether s looks like a keyword name: ASCII letters,
// digits and underscores.
func isKeywordName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
