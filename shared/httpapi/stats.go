package httpapi

import (
	"net/http"
	"strconv"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// handleShown counts a subscribe popup the mini program opened:
// {"templates": [template ids]}. An Idempotency-Key counts a retried
// report once.
func (a *API) handleShown(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Templates []string `json:"templates"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	sess := sessionFrom(r.Context())
	ignored, err := svc(r).RecordShown(r.Context(), sess.OpenID, notify.Shown{Templates: body.Templates, ID: r.Header.Get("Idempotency-Key")})
	if err != nil {
		writeError(w, r, err)
		return
	}
	if ignored == nil {
		ignored = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "ignored": ignored})
}

// StatsTemplate is one template's funnel in the body of GET /v1/stats
// (StatsBody); `wxnotify stats` decodes it.
type StatsTemplate struct {
	Template    string           `json:"template,omitempty"`
	TemplateID  string           `json:"templateId"`
	Shown       int64            `json:"shown"`
	Accepted    int64            `json:"accepted"`
	Rejected    int64            `json:"rejected"`
	Granted     int64            `json:"granted"`
	Taken       int64            `json:"taken"`
	GivenBack   int64            `json:"givenBack"`
	Sent        int64            `json:"sent"`
	Delivered   int64            `json:"delivered"`
	Failed      int64            `json:"failed"`
	FailedBy    map[string]int64 `json:"failedByErrcode"`
	Held        int64            `json:"held"`
	Wasted      int64            `json:"wasted"`
	WastedRate  float64          `json:"wastedRate"`
	Unknown     int64            `json:"unknown"`
	Outstanding int64            `json:"outstanding"`
}

func statsJSON(ts notify.TemplateStats) StatsTemplate {
	by := map[string]int64{}
	for code, n := range ts.Failed {
		by[strconv.Itoa(code)] = n
	}
	return StatsTemplate{Template: ts.Template, TemplateID: ts.TemplateID, Shown: ts.Shown, Accepted: ts.Accepted,
		Rejected: ts.Rejected, Granted: ts.Granted, Taken: ts.Taken, GivenBack: ts.GivenBack, Sent: ts.Sent,
		Delivered: ts.Delivered, Failed: ts.FailedTotal(), FailedBy: by, Held: ts.Held, Wasted: ts.Wasted,
		WastedRate: ts.WastedRate(), Unknown: ts.Unknown, Outstanding: ts.Outstanding()}
}

// StatsDay is one day of the body of GET /v1/stats.
type StatsDay struct {
	Day       string          `json:"day"`
	Templates []StatsTemplate `json:"templates"`
}

// StatsBody is the body of GET /v1/stats.
type StatsBody struct {
	From   string          `json:"from"`
	To     string          `json:"to"`
	Days   []StatsDay      `json:"days"`
	Totals []StatsTemplate `json:"totals"`
}

// handleStats answers the consent funnel per UTC day and template:
// ?from=&to= (yyyy-mm-dd, both included, at most notify.MaxStatsDays
// days) and ?template= (alias or id).
func (a *API) handleStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "from" && k != "to" && k != "template" {
			writeError(w, r, notify.FieldError(k, "unknown parameter"))
			return
		}
	}
	rep, err := svc(r).Stats(r.Context(), notify.StatsQuery{From: q.Get("from"), To: q.Get("to"), Template: q.Get("template")})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := StatsBody{From: rep.From, To: rep.To, Days: []StatsDay{}, Totals: []StatsTemplate{}}
	for _, d := range rep.Days {
		dj := StatsDay{Day: d.Day, Templates: []StatsTemplate{}}
		for _, ts := range d.Templates {
			dj.Templates = append(dj.Templates, statsJSON(ts))
		}
		out.Days = append(out.Days, dj)
	}
	for _, ts := range rep.Totals {
		out.Totals = append(out.Totals, statsJSON(ts))
	}
	writeJSON(w, http.StatusOK, out)
}
