package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// pathParams is how every path parameter of every route is checked, keyed
// by the segment before it and its name ("notifications/{id}"): the mux
// runs the check before the handler, so the domain never sees a value
// that cannot name anything. Registering a route whose parameter is not
// here panics, as http.ServeMux does for conflicting patterns.
var pathParams = map[string]func(string) error{
	// Ids that cannot exist are not found: wxnotify's ids are a prefix
	// and 26 base32 characters ("ntf_…", "bat_…").
	"notifications/{id}": recordID("notification"),
	"batches/{id}":       recordID("batch"),
	// A webhook's id (a slug of wxnotify.yaml) and a delivery's (its
	// webhook-id, msg_...): a value that cannot be one is not found.
	"webhooks/{id}":           idParam(notify.CodeWebhookNotFound, "webhook"),
	"deliveries/{deliveryId}": idParam(notify.CodeDeliveryNotFound, "delivery"),
	// The routes of an account id or an openid refuse a value that cannot
	// be one with 400 naming it (their documented contract).
	"bindings/{userId}": userIDParam,
	"users/{userId}":    userIDParam,
	"openids/{openid}":  openIDParam,
	// The app of /v1/apps/{app}/... and /wechat/push/{app} (withApp has
	// already found it: an unknown one never gets here).
	"apps/{app}": appParam,
	"push/{app}": appParam,
	// The rest of a console path: the console routes it and answers
	// what it does not serve with not_found.
	"console/{path}": consolePath,
}

// consolePath refuses a console path that is no UTF-8 text of at most 512
// bytes without NUL (the console's own routes are shorter).
func consolePath(v string) error {
	if len(v) > 512 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return notify.Errorf(notify.CodeNotFound, "no such console page")
	}
	return nil
}

// maxRecordIDLen bounds a record id in a path: wxnotify's are 30 bytes.
const maxRecordIDLen = 64

// recordID answers a value that is not 1 to 64 ASCII letters, digits, '_'
// or '-' as "no such <noun>", exactly as an unknown id is answered.
func recordID(noun string) func(string) error {
	return func(v string) error {
		if v == "" || len(v) > maxRecordIDLen || !isIDChars(v) {
			return notify.Errorf(notify.CodeNotFound, "no such %s", noun)
		}
		return nil
	}
}

// idParam answers a value that is not 1 to 64 ASCII letters, digits, '_'
// or '-' with code, as an unknown id is answered.
func idParam(code notify.Code, noun string) func(string) error {
	return func(v string) error {
		if v == "" || len(v) > maxRecordIDLen || !isIDChars(v) {
			return notify.Errorf(code, "no such %s", noun)
		}
		return nil
	}
}

func userIDParam(v string) error { return notify.CheckUserID("userId", v) }

func openIDParam(v string) error {
	if !IsOpenID(v) {
		return notify.FieldError("openid", "is not an openid")
	}
	return nil
}

// boundParam is one path parameter of a route with its check.
type boundParam struct {
	name  string
	check func(string) error
}

// routeParams returns the checks of the path parameters of pattern, or an
// error naming a parameter that pathParams does not know.
func routeParams(pattern string) ([]boundParam, error) {
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		path = pattern
	}
	segs := strings.Split(path, "/")
	var params []boundParam
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || seg == "{$}" {
			continue
		}
		name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
		key := "{" + name + "}"
		if i > 0 {
			key = segs[i-1] + "/" + key
		}
		check, ok := pathParams[key]
		if !ok {
			return nil, fmt.Errorf("httpapi: route %q: path parameter %q has no check in pathParams", pattern, key)
		}
		params = append(params, boundParam{name: name, check: check})
	}
	return params, nil
}

// checkPath answers the first path parameter that fails its check with its
// error, and otherwise serves next.
func checkPath(params []boundParam, next http.HandlerFunc) http.HandlerFunc {
	if len(params) == 0 {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		for _, p := range params {
			if err := p.check(r.PathValue(p.name)); err != nil {
				writeError(w, r, err)
				return
			}
		}
		next(w, r)
	}
}

// isIDChars reports whether s holds only ASCII letters, digits, '_' and '-'.
func isIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
