package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wxnotify/wxnotify/shared/httpapi"
)

const statsUsage = `usage: wxnotify stats [--from DAY] [--to DAY] [--template ALIAS|ID] [--json]

Prints the consent funnel (GET /v1/stats): per UTC day and template, the
popups shown, the choices (accepted, rejected), the one-time credits granted,
the sends (sent, delivered, failed by WeChat errcode, held back, wasted on a
43101), the wasted-send rate and the credits left outstanding (granted -
taken + given back), then the totals of each template over the range.

  --from DAY             first day, yyyy-mm-dd (UTC; default --to minus 6 days)
  --to DAY               last day, yyyy-mm-dd (UTC; default today); at most 92 days
  --template T           one template, by alias or id
  --json                 print the API's answer as it came
` + apiFlagsUsage + `
Exit status: 0 success, 1 failure (such as a range the API refuses), 2 usage.
`

// stats is `wxnotify stats`.
func (c *cli) stats(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	tmpl := fs.String("template", "", "")
	asJSON := fs.Bool("json", false, "")
	var af apiFlags
	af.register(fs)
	if _, code, ok := c.parse(fs, statsUsage, args, 0); !ok {
		return code
	}
	api, err := af.client(c)
	if err != nil {
		return c.usageError("stats", statsUsage, err.Error())
	}
	q := url.Values{}
	for k, v := range map[string]string{"from": *from, "to": *to, "template": *tmpl} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/stats"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var body httpapi.StatsBody
	raw, err := api.call(ctx, "GET", path, nil, &body)
	if *asJSON && raw != nil {
		_, _ = c.stdout.Write(raw)
	}
	if err != nil {
		return c.fail("stats", err)
	}
	if *asJSON {
		return exitOK
	}
	fmt.Fprintf(c.stdout, "consent funnel %s .. %s (UTC days)\n", body.From, body.To)
	if len(body.Days) == 0 {
		fmt.Fprintln(c.stdout, "no counts in this range")
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tTEMPLATE\tSHOWN\tACCEPTED\tREJECTED\tGRANTED\tSENT\tDELIVERED\tFAILED\tHELD\tWASTED\tWASTED%\tOUTSTANDING\t")
	row := func(day string, ts httpapi.StatsTemplate) {
		name := ts.Template
		if name == "" {
			name = ts.TemplateID
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%.1f\t%d\t\n", day, name, ts.Shown, ts.Accepted, ts.Rejected,
			ts.Granted, ts.Sent, ts.Delivered, failedCell(ts), ts.Held, ts.Wasted, 100*ts.WastedRate, ts.Outstanding)
	}
	for _, d := range body.Days {
		for _, ts := range d.Templates {
			row(d.Day, ts)
		}
	}
	for _, ts := range body.Totals {
		row("total", ts)
	}
	if err := tw.Flush(); err != nil {
		return c.fail("stats", err)
	}
	return exitOK
}

// failedCell is the failures and, when there are any, their errcodes:
// "3 (45009:2,-1:1)".
func failedCell(ts httpapi.StatsTemplate) string {
	if ts.Failed == 0 {
		return "0"
	}
	codes := make([]string, 0, len(ts.FailedBy))
	for code := range ts.FailedBy {
		codes = append(codes, code)
	}
	slices.SortFunc(codes, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = code + ":" + strconv.FormatInt(ts.FailedBy[code], 10)
	}
	return fmt.Sprintf("%d (%s)", ts.Failed, strings.Join(parts, ","))
}
