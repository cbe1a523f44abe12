package notify

import "strings"

// IsSessionToken reports whether a bearer credential has the form of a
// session token Sessions issues (its version prefix), without checking
// it: routes that take a session token or an API key tell the two apart
// by it before verifying either.
func IsSessionToken(token string) bool { return strings.HasPrefix(token, tokenPrefix) }
