package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
)

const sendUsage = `usage: wxnotify send --to userId:ID|openid:OPENID --template ALIAS [--data key=value ...] [flags]

Sends one notification through wxnotify's API (POST /v1/notifications), the
path every backend takes, and prints its outcome.

  --to RECIPIENT         userId:sales-42 (bound with POST /v1/bindings) or openid:o6_bm...
  --template ALIAS       a template alias (or template id) of wxnotify.yaml
  --data key=value       one keyword's value; repeat for each keyword:
                         --data thing1='Acme Ltd' --data time3='2026-11-21 09:30'
  --page PAGE            the mini program page the message opens, query included
  --state STATE          developer, trial or formal (default formal)
  --lang LANG            zh_CN (default), en_US, zh_HK or zh_TW
  --idempotency-key KEY  send at most once for this key: the command can be repeated safely
  --json                 print the API's answer as it came
` + apiFlagsUsage + `
Exit status: 0 when the notification was sent; 1 when it was skipped or
failed, its outcome is unknown, or the request failed; 2 for a bad command line.
`

// recipient is the "to" of a send, or one recipient of a batch.
type recipient struct {
	UserID string `json:"userId,omitempty"`
	OpenID string `json:"openid,omitempty"`
}

// parseRecipient reads --to: "userId:ID" or "openid:OPENID" (the prefix in
// any case).
func parseRecipient(s string) (recipient, error) {
	kind, id, ok := strings.Cut(s, ":")
	id = strings.TrimSpace(id)
	if ok && id != "" {
		switch strings.ToLower(strings.TrimSpace(kind)) {
		case "userid":
			return recipient{UserID: id}, nil
		case "openid":
			return recipient{OpenID: id}, nil
		}
	}
	return recipient{}, fmt.Errorf("--to: %q is not userId:ID or openid:OPENID", s)
}

// sendRequest is the body of POST /v1/notifications.
type sendRequest struct {
	To               recipient         `json:"to"`
	Template         string            `json:"template"`
	Data             map[string]string `json:"data"`
	Page             string            `json:"page,omitempty"`
	MiniprogramState string            `json:"miniprogramState,omitempty"`
	Lang             string            `json:"lang,omitempty"`
	IdempotencyKey   string            `json:"idempotencyKey,omitempty"`
}

// notification is the part of the API's notification body the CLI shows.
type notification struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Field  string `json:"field"`
	WeChat struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
		MsgID   string `json:"msgid"`
	} `json:"wechat"`
}

// sendOptions is the parsed command line of send.
type sendOptions struct {
	req  sendRequest
	json bool
	api  apiFlags
}

// parseSend parses send's flags. It returns ok false with the exit code
// when the command line was bad or asked for help.
func (c *cli) parseSend(args []string) (o sendOptions, code int, ok bool) {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var to string
	data := dataFlag{}
	fs.StringVar(&to, "to", "", "")
	fs.StringVar(&o.req.Template, "template", "", "")
	fs.Var(data, "data", "")
	fs.StringVar(&o.req.Page, "page", "", "")
	fs.StringVar(&o.req.MiniprogramState, "state", "", "")
	fs.StringVar(&o.req.Lang, "lang", "", "")
	fs.StringVar(&o.req.IdempotencyKey, "idempotency-key", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	o.api.register(fs)
	if _, code, ok := c.parse(fs, sendUsage, args, 0); !ok {
		return o, code, false
	}
	if err := required("to", to, "template", o.req.Template); err != nil {
		return o, c.usageError("send", sendUsage, err.Error()), false
	}
	var err error
	if o.req.To, err = parseRecipient(to); err != nil {
		return o, c.usageError("send", sendUsage, err.Error()), false
	}
	o.req.Data = data
	return o, exitOK, true
}

// send is `wxnotify send`.
func (c *cli) send(ctx context.Context, args []string) int {
	o, code, ok := c.parseSend(args)
	if !ok {
		return code
	}
	api, err := o.api.client(c)
	if err != nil {
		return c.usageError("send", sendUsage, err.Error())
	}
	var n notification
	raw, err := api.call(ctx, "POST", "/v1/notifications", o.req, &n)
	if o.json && raw != nil {
		_, _ = c.stdout.Write(raw)
	}
	if err != nil {
		return c.fail("send", err)
	}
	if !o.json {
		fmt.Fprintln(c.stdout, describeNotification(n))
	}
	if n.Status != "sent" {
		return exitFailure
	}
	return exitOK
}

// reasonHints explain the reasons a notification was not sent.
var reasonHints = map[string]string{
	"no_consent":         "the user has no unused acceptance of this template; ask in the mini program",
	"unbound_user":       "no WeChat user is bound to this userId",
	"wechat_unavailable": "WeChat did not answer; try again later",
	"no_answer":          "WeChat may have delivered it; its sent event will settle the status",
}

// describeNotification is one human-readable line: status, id, reason,
// WeChat's answer.
func describeNotification(n notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", n.Status, n.ID)
	if n.WeChat.MsgID != "" {
		fmt.Fprintf(&b, " (msgid %s)", n.WeChat.MsgID)
	}
	if n.Reason != "" {
		b.WriteString(": " + n.Reason)
		if n.Field != "" {
			b.WriteString(" " + n.Field)
		}
		if n.WeChat.Errcode != 0 {
			fmt.Fprintf(&b, " (WeChat errcode %d", n.WeChat.Errcode)
			if n.WeChat.Errmsg != "" {
				b.WriteString(": " + n.WeChat.Errmsg)
			}
			b.WriteString(")")
		}
		if hint := reasonHints[n.Reason]; hint != "" {
			b.WriteString(" - " + hint)
		}
	}
	return b.String()
}
