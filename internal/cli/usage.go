package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/report"
)

func runUsage(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("usage", "usage [--month YYYY-MM] [--by team|account|entitlement|model|tier] [-o table|json|yaml|csv] [flags]\n\n"+
		"Prints the monthly usage report: requests and input, output, cache read and cache write\n"+
		"tokens with their cost, grouped as asked, with a totals row.", env, readFormats)
	month := fs.String("month", time.Now().UTC().Format("2006-01"), "month, YYYY-MM (default this month, UTC)")
	by := fs.String("by", "team", "group by team, account, entitlement, model or tier (service tier, or optimized latency)")
	format := fs.String("format", "", "deprecated: use -o/--output")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "usage: unexpected argument %q", pos[0])
	}
	if *format != "" {
		// --format predates -o; scripts using it keep working.
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "output" || f.Name == "o" })
		if set && common.output != *format {
			return usageError(fs, "usage: --format %q and --output %q disagree (--format is deprecated: use -o)", *format, common.output)
		}
		fmt.Fprintln(env.Stderr, "gateway usage: --format is deprecated; use -o/--output")
		common.output = *format
	}
	switch *by {
	case "team", "account", "entitlement", "model", "tier":
	default:
		return usageError(fs, "usage: --by must be team, account, entitlement, model or tier, not %q", *by)
	}
	if t, err := time.Parse("2006-01", *month); err != nil || t.Format("2006-01") != *month {
		return usageError(fs, "usage: --month must be YYYY-MM, not %q", *month)
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	q := url.Values{"month": {*month}, "group_by": {*by}}
	if common.output == outCSV {
		// The admin API writes the CSV (the same file finance downloads).
		q.Set("format", "csv")
		body, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/usage", query: q}, nil)
		if err != nil {
			return err
		}
		if _, err := env.Stdout.Write(body); err != nil {
			return err
		}
		if lines := strings.Count(strings.TrimSpace(string(body)), "\n"); lines <= 1 {
			fmt.Fprintf(env.Stderr, "no usage recorded for %s\n", *month)
		}
		return nil
	}
	q.Set("format", "json")
	var rep report.Report
	raw, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/usage", query: q}, &rep)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	if rep.Note != "" {
		fmt.Fprintln(env.Stderr, rep.Note)
	}
	return report.RenderTable(env.Stdout, &rep)
}
