package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// The test send of a template (docs/console.md): a form with one input per
// keyword, a check that judges every field as a send would (notify's
// CheckSend: no store read, no credit, no WeChat call), and, on
// confirmation, a send through the domain's Send, audited as test_send.

// testKeyPrefix starts the idempotency key of a test send: the check makes
// one and the confirmation form carries it, so a send posted twice is one
// notification.
const testKeyPrefix = "console-test-"

var testKeyRe = regexp.MustCompile(`^console-test-[0-9a-f]{16}$`)

func newTestKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return testKeyPrefix + hex.EncodeToString(b[:])
}

// tsendStates are the mini program versions a test send may open.
var tsendStates = []string{"formal", "trial", "developer"}

// tsendField is one keyword's input and, once checked, its result.
type tsendField struct {
	notify.Keyword
	Input                string // the form input's name: "data." + keyword name
	Limit, Note, Example string // WeChat's rule of the type, quoted
	Value                string
	Result               *notify.FieldResult
}

type tsendData struct {
	T       notify.Template
	Base    string // the test page's path
	Fields  []tsendField
	Extra   []notify.FieldResult // results of no keyword (none from this form)
	UserID  string
	Page    string
	State   string
	States  []string
	Checked bool
	OK      bool
	// Request is the refusal of a field other than the data ("to.userId:
	// ..."), RequestField its field.
	Request, RequestField string
	Key                   string // the confirmation form's idempotency key
	Sent                  bool
	N                     notify.Notification
	NotificationID        string
	SendCode, SendMsg     string
}

// tsendTemplate finds the {alias} of the request: not_found when the
// catalog has no such alias.
func (c *Console) tsendTemplate(w http.ResponseWriter, r *http.Request, a App) (notify.Template, bool) {
	alias := r.PathValue("alias")
	t, ok := a.Service.Catalog().Lookup(alias)
	if !ok || t.Alias != alias {
		c.fail(w, r, http.StatusNotFound, codeNotFound, "no such template")
		return notify.Template{}, false
	}
	return t, true
}

func newTsendData(p *page, t notify.Template) *tsendData {
	d := &tsendData{T: t, Base: p.AppURL("templates/" + url.PathEscape(t.Alias) + "/test"), States: tsendStates, State: "formal"}
	for _, kw := range t.Keywords {
		limit, note, example, _ := wechat.KeywordRule(kw.Type)
		d.Fields = append(d.Fields, tsendField{Keyword: kw, Input: "data." + kw.Name, Limit: limit, Note: note, Example: example})
	}
	return d
}

// GET /console/apps/{app}/templates/{alias}/test: the form.
func (c *Console) handleTestSendForm(w http.ResponseWriter, r *http.Request, a App) {
	t, ok := c.tsendTemplate(w, r, a)
	if !ok {
		return
	}
	p := &page{Active: "templates", App: a.ID}
	p.Data = newTsendData(p, t)
	c.render(w, r, http.StatusOK, "tsend", p)
}

// tsendCheck reads the posted form and judges it: the page's data, the
// request Send would get, and whether it passes.
func (c *Console) tsendCheck(r *http.Request, a App, t notify.Template, p *page) (*tsendData, notify.SendRequest, error) {
	d := newTsendData(p, t)
	d.Checked = true
	d.UserID, d.Page, d.State = r.PostFormValue("userId"), r.PostFormValue("page"), r.PostFormValue("miniprogramState")
	req := notify.SendRequest{To: notify.Recipient{UserID: d.UserID}, Template: t.Alias, Data: map[string]string{},
		Page: d.Page, MiniprogramState: d.State, Source: notify.FromAPI}
	for i := range d.Fields {
		if vs, ok := r.PostForm[d.Fields[i].Input]; ok && len(vs) > 0 {
			d.Fields[i].Value = vs[0]
			req.Data[d.Fields[i].Name] = vs[0]
		}
	}
	chk, err := a.Service.CheckSend(req)
	if err != nil {
		return d, req, err
	}
	for j := range chk.Fields {
		placed := false
		for i := range d.Fields {
			if d.Fields[i].Name == chk.Fields[j].Keyword {
				d.Fields[i].Result, placed = &chk.Fields[j], true
			}
		}
		if !placed {
			d.Extra = append(d.Extra, chk.Fields[j])
		}
	}
	var e *notify.Error
	if errors.As(chk.Request, &e) {
		d.Request, d.RequestField = e.Message, e.Field
	}
	d.OK = chk.OK()
	return d, req, nil
}

// POST /console/apps/{app}/templates/{alias}/test/check (CSRF-checked by
// signedIn): every field judged, nothing sent. 200 with a confirmation
// form when the send would be taken, else 400 with the rules broken.
func (c *Console) handleTestSendCheck(w http.ResponseWriter, r *http.Request, a App) {
	t, ok := c.tsendTemplate(w, r, a)
	if !ok {
		return
	}
	p := &page{Active: "templates", App: a.ID}
	d, _, err := c.tsendCheck(r, a, t, p)
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	p.Data = d
	if !d.OK {
		p.Problem, p.Code = "tsend_refused", codeBadRequest
		c.render(w, r, http.StatusBadRequest, "tsend", p)
		return
	}
	d.Key = newTestKey()
	c.render(w, r, http.StatusOK, "tsend", p)
}

// sendStatus is the HTTP status of a send's refusal, as the API answers it
// (httpapi's table) for the codes Send returns.
func sendStatus(code notify.Code) int {
	switch code {
	case notify.CodeBadRequest:
		return http.StatusBadRequest
	case notify.CodeConflict:
		return http.StatusConflict
	case notify.CodeBlockedUser:
		return http.StatusForbidden
	case notify.CodeRateLimited:
		return http.StatusTooManyRequests
	case notify.CodeWeChatUnavailable, notify.CodeStoreUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// POST /console/apps/{app}/templates/{alias}/test/send (CSRF-checked by
// signedIn): checked again, then sent through Send with the confirmation
// form's idempotency key - spending a credit as any send - and audited
// (test_send: the template, the userId, the notification and its status,
// or the refusal's code).
func (c *Console) handleTestSend(w http.ResponseWriter, r *http.Request, a App) {
	t, ok := c.tsendTemplate(w, r, a)
	if !ok {
		return
	}
	p := &page{Active: "templates", App: a.ID}
	d, req, err := c.tsendCheck(r, a, t, p)
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	p.Data = d
	entry := auditEntry{Action: "test_send", Actor: sessionOf(r.Context()).Key, IP: clientAddr(r), Target: t.Alias, User: d.UserID}
	key := r.PostFormValue("idempotencyKey")
	if !d.OK || !testKeyRe.MatchString(key) {
		if d.OK {
			d.Request, d.RequestField = "must be the key of a check's confirmation form ("+testKeyPrefix+"<16 hex digits>)", "idempotencyKey"
			d.OK = false
		}
		entry.Result = codeBadRequest
		c.audit(r.Context(), a.Service.AppID(), entry)
		p.Problem, p.Code = "tsend_refused", codeBadRequest
		c.render(w, r, http.StatusBadRequest, "tsend", p)
		return
	}
	req.IdempotencyKey = key
	n, err := a.Service.Send(r.Context(), req)
	d.Sent, d.N, d.NotificationID, d.Key = true, n, n.ID, key
	status := http.StatusOK
	entry.Result = string(n.Status)
	if err != nil {
		code := notify.CodeOf(err)
		status = sendStatus(code)
		d.SendCode, d.SendMsg = string(code), "internal error"
		var e *notify.Error
		if errors.As(err, &e) {
			if code != notify.CodeInternal {
				d.SendMsg = e.Message
				if e.Field != "" {
					d.SendMsg = e.Field + ": " + e.Message
				}
			}
			if d.NotificationID == "" {
				d.NotificationID = e.Notification
			}
		}
		if status >= 500 {
			c.log.Error("console test send failed", "template", t.Alias, "err", err.Error())
		}
		entry.Result = string(code)
		p.Problem, p.Code = d.SendMsg, string(code)
	}
	entry.Notification = d.NotificationID
	c.audit(r.Context(), a.Service.AppID(), entry)
	c.render(w, r, status, "tsend", p)
}
