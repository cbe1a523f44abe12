package httpapi

import (
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// adminRoutes are the Admin group's routes, under server auth: read-only
// views of the domain for operators and the CLI (`wxnotify consents
// show`), and the outcome webhooks' deliveries (list, replay, enable).
func (a *API) adminRoutes() []route {
	return []route{
		{"GET /v1/users/{userId}/consents", a.server, a.handleUserConsents, 0},
		{"GET /v1/openids/{openid}/consents", a.server, a.handleOpenIDConsents, 0},
		{"GET /v1/webhooks/{id}/deliveries", a.server, a.handleListDeliveries, 0},
		{"POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay", a.server, a.handleReplayDelivery, 0},
		{"POST /v1/webhooks/{id}/enable", a.server, a.handleEnableWebhook, 0},
	}
}

// ledgerJSON is a user's consent ledger as an operator sees it.
type ledgerJSON struct {
	OpenID   string              `json:"openid"`
	UserID   string              `json:"userId,omitempty"`
	Consents []ledgerConsentJSON `json:"consents"`
}

// ledgerConsentJSON is the mini program's consentJSON plus when the
// standing last changed.
type ledgerConsentJSON struct {
	consentJSON
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// GET /v1/users/{userId}/consents: the ledger of the WeChat user bound to
// userId; not_found when none is. (userId is checked by pathParams.)
func (a *API) handleUserConsents(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userId")
	openID, err := svc(r).ResolveUserID(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.writeLedger(w, r, openID, userID)
}

// GET /v1/openids/{openid}/consents: the ledger of an openid. A user who
// never logged in still has one (WeChat's pushes record consents), so an
// unknown openid answers an empty ledger, not not_found. (openid is checked
// by pathParams.)
func (a *API) handleOpenIDConsents(w http.ResponseWriter, r *http.Request) {
	openID := r.PathValue("openid")
	var userID string
	u, err := svc(r).User(r.Context(), openID)
	switch {
	case err == nil:
		userID = u.UserID
	case notify.CodeOf(err) != notify.CodeNotFound:
		writeError(w, r, err)
		return
	}
	a.writeLedger(w, r, openID, userID)
}

func (a *API) writeLedger(w http.ResponseWriter, r *http.Request, openID, userID string) {
	noteOpenID(r, openID)
	cs, err := svc(r).Consents(r.Context(), openID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := ledgerJSON{OpenID: openID, UserID: userID, Consents: make([]ledgerConsentJSON, 0, len(cs))}
	for _, c := range cs {
		cj := consentJSON{Alias: c.Template.Alias, TemplateID: c.Template.ID, Kind: c.Template.Kind, Status: c.Status,
			Credits: c.Credits, AlwaysKeep: c.AlwaysKeep, Prompt: c.Prompt}
		if c.Template.Kind == notify.LongTerm {
			accepted := c.LongTerm
			cj.Accepted = &accepted
		}
		out.Consents = append(out.Consents, ledgerConsentJSON{consentJSON: cj, UpdatedAt: c.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// IsOpenID accepts what WeChat issues as openids: at most 64 ASCII
// letters, digits, '-' and '_'. The push route and the sandbox hold
// openids to it too.
func IsOpenID(s string) bool { return s != "" && len(s) <= 64 && isIDChars(s) }
