package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"
)

const consentsUsage = `usage: wxnotify consents <subcommand> [flags]

subcommands:
  show   a user's consent ledger: per template, the last choice, the messages
         that may still be sent, whether asking again is useful

Run 'wxnotify consents <subcommand> --help' for its flags.

Exit status: 0 success, 1 failure, 2 usage.
`

const consentsShowUsage = `usage: wxnotify consents show --user USERID | --openid OPENID [--json]

Shows a user's consent ledger (GET /v1/users/{userId}/consents or
GET /v1/openids/{openid}/consents).

  --user USERID          the customer's account id, bound with POST /v1/bindings
  --openid OPENID        the WeChat openid
  --json                 print the API's answer as it came
` + apiFlagsUsage + `
Exit status: 0 success, 1 failure (such as a userId that nobody is bound to), 2 usage.
`

// consents is `wxnotify consents`.
func (c *cli) consents(ctx context.Context, args []string) int {
	return c.subcommand("consents", consentsUsage, args, map[string]func([]string) int{
		"show": func(args []string) int { return c.consentsShow(ctx, args) },
	})
}

// ledger is the API's consent ledger body.
type ledger struct {
	OpenID   string `json:"openid"`
	UserID   string `json:"userId"`
	Consents []struct {
		Alias      string    `json:"alias"`
		TemplateID string    `json:"templateId"`
		Kind       string    `json:"kind"`
		Status     string    `json:"status"`
		Credits    int64     `json:"credits"`
		Accepted   *bool     `json:"accepted"`
		AlwaysKeep bool      `json:"alwaysKeep"`
		Prompt     bool      `json:"prompt"`
		UpdatedAt  time.Time `json:"updatedAt"`
	} `json:"consents"`
}

// consentsShowOptions is the parsed command line of consents show.
type consentsShowOptions struct {
	path string // the API path of the ledger
	json bool
	api  apiFlags
}

// parseConsentsShow parses consents show's flags. It returns ok false with
// the exit code when the command line was bad or asked for help.
func (c *cli) parseConsentsShow(args []string) (o consentsShowOptions, code int, ok bool) {
	fs := flag.NewFlagSet("consents show", flag.ContinueOnError)
	user := fs.String("user", "", "")
	openID := fs.String("openid", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	o.api.register(fs)
	if _, code, ok := c.parse(fs, consentsShowUsage, args, 0); !ok {
		return o, code, false
	}
	switch {
	case *user == "" && *openID == "":
		return o, c.usageError("consents show", consentsShowUsage, "--user or --openid is required"), false
	case *user != "" && *openID != "":
		return o, c.usageError("consents show", consentsShowUsage, "give --user or --openid, not both"), false
	case *user != "":
		o.path = "/v1/users/" + url.PathEscape(*user) + "/consents"
	default:
		o.path = "/v1/openids/" + url.PathEscape(*openID) + "/consents"
	}
	return o, exitOK, true
}

// consentsShow is `wxnotify consents show`.
func (c *cli) consentsShow(ctx context.Context, args []string) int {
	o, code, ok := c.parseConsentsShow(args)
	if !ok {
		return code
	}
	api, err := o.api.client(c)
	if err != nil {
		return c.usageError("consents show", consentsShowUsage, err.Error())
	}
	var l ledger
	raw, err := api.call(ctx, "GET", o.path, nil, &l)
	if o.json && raw != nil {
		_, _ = c.stdout.Write(raw)
	}
	if err != nil {
		return c.fail("consents show", err)
	}
	if o.json {
		return exitOK
	}
	who := "openid " + l.OpenID
	if l.UserID != "" {
		who = "user " + l.UserID + " (openid " + l.OpenID + ")"
	}
	fmt.Fprintln(c.stdout, who)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE\tKIND\tSTATUS\tCAN SEND\tALWAYS KEEP\tASK AGAIN\tUPDATED")
	for _, cs := range l.Consents {
		status := cs.Status
		if status == "" {
			status = "never asked"
		}
		canSend := fmt.Sprint(cs.Credits)
		if cs.Accepted != nil {
			canSend = yesNo(*cs.Accepted)
		}
		updated := "-"
		if !cs.UpdatedAt.IsZero() {
			updated = cs.UpdatedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cs.Alias, cs.Kind, status, canSend,
			yesNo(cs.AlwaysKeep), yesNo(cs.Prompt), updated)
	}
	if err := tw.Flush(); err != nil {
		return c.fail("consents show", err)
	}
	return exitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
