package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// sessionOrServer takes either credential: a session token of the
// request's app (the mini program asks for its own user) or an API key
// (a backend names the user). A bearer credential of a session token's
// form that is no API key is checked as a session token, anything else
// as an API key, so a mini program's expired token is never counted as a
// failed API-key attempt of its address (which would slow every user
// behind the same NAT).
func (a *API) sessionOrServer(h http.HandlerFunc) http.HandlerFunc {
	session, server := a.session(h), a.server(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if token, ok := bearer(r); ok && notify.IsSessionToken(token) && a.scope(appOf(r), token) == keyInvalid {
			session(w, r)
			return
		}
		server(w, r)
	}
}

// adviceTemplateJSON is one ranked template of GET /v1/consents/advice.
type adviceTemplateJSON struct {
	Alias      string      `json:"alias"`
	TemplateID string      `json:"templateId"`
	Kind       notify.Kind `json:"kind"`
	Rank       int         `json:"rank"`
	Tier       int         `json:"tier"`
	Reasons    []string    `json:"reasons"`
	Suggested  bool        `json:"suggested"`
	Held       int         `json:"held"`
	Unmet      int         `json:"unmetDemand"`
	Demand     int         `json:"recentDemand"`
	Credits    int64       `json:"credits"`
	AppDemand  int64       `json:"appDemand"`
}

// adviceExcludedJSON is a template GET /v1/consents/advice never suggests.
type adviceExcludedJSON struct {
	Alias      string      `json:"alias"`
	TemplateID string      `json:"templateId"`
	Kind       notify.Kind `json:"kind"`
	Reason     string      `json:"reason"`
}

// adviceJSON is the body of GET /v1/consents/advice.
type adviceJSON struct {
	OpenID    string               `json:"openid"`
	UserID    string               `json:"userId,omitempty"`
	Suggested []string             `json:"suggested"`
	Limit     int                  `json:"limit"`
	Since     time.Time            `json:"since"`
	Templates []adviceTemplateJSON `json:"templates"`
	Excluded  []adviceExcludedJSON `json:"excluded"`
}

// GET /v1/consents/advice?limit=&userId=: the templates worth asking the
// user for now, ranked, and the ids of the next popup (docs/advice.md).
// With a session token the user is the token's, and userId is refused;
// with an API key userId names a bound user (user_not_found otherwise).
func (a *API) handleAdvice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		if k != "limit" && k != "userId" {
			writeError(w, r, notify.FieldError(k, "unknown parameter"))
			return
		}
		if len(v) > 1 {
			writeError(w, r, notify.FieldError(k, "given more than once"))
			return
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || strconv.Itoa(n) != v || n < 1 || n > notify.AdviceMaxLimit { // digits only: not "+3" or "03"
			writeError(w, r, notify.FieldError("limit", "must be a number from 1 to %d", notify.AdviceMaxLimit))
			return
		}
		limit = n
	}
	s := svc(r)
	out := adviceJSON{}
	if sess := sessionFrom(r.Context()); sess.OpenID != "" {
		if q.Has("userId") {
			writeError(w, r, notify.FieldError("userId", "not with a session token: it answers for its own user (userId is for API keys)"))
			return
		}
		out.OpenID = sess.OpenID
	} else {
		userID := q.Get("userId")
		if err := notify.CheckUserID("userId", userID); err != nil {
			writeError(w, r, err)
			return
		}
		b, err := s.Binding(r.Context(), userID)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out.OpenID, out.UserID = b.OpenID, userID
	}
	noteOpenID(r, out.OpenID)
	adv, err := s.Advice(r.Context(), out.OpenID, notify.AdviceOptions{Limit: limit})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out.Suggested, out.Limit, out.Since = adv.Suggested, adv.Limit, adv.Since
	out.Templates = make([]adviceTemplateJSON, 0, len(adv.Templates))
	for i, at := range adv.Templates {
		out.Templates = append(out.Templates, adviceTemplateJSON{Alias: at.Template.Alias, TemplateID: at.Template.ID,
			Kind: at.Template.Kind, Rank: i + 1, Tier: at.Tier, Reasons: at.Reasons, Suggested: at.Suggested, Held: at.Held,
			Unmet: at.Unmet, Demand: at.Demand, Credits: at.Credits, AppDemand: at.AppDemand})
	}
	out.Excluded = make([]adviceExcludedJSON, 0, len(adv.Excluded))
	for _, e := range adv.Excluded {
		out.Excluded = append(out.Excluded, adviceExcludedJSON{Alias: e.Template.Alias, TemplateID: e.Template.ID,
			Kind: e.Template.Kind, Reason: e.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}
