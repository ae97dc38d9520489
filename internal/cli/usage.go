package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bedrock-gateway/gateway/internal/report"
)

func runUsage(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("usage", "usage [--month YYYY-MM | --from YYYY-MM --to YYYY-MM] [--by team|account|entitlement|model|tier|principal] [-o table|json|yaml|csv] [flags]\n\n"+
		"Prints the monthly usage report: requests and input, output, cache read and cache write\n"+
		"tokens with their cost and the tokens the caps counted, grouped as asked, with a totals\n"+
		"row per month.", env, readFormats)
	// No default here: the gateway picks this month in its --time-zone, the
	// zone its caps count months in, which this machine may not share.
	month := fs.String("month", "", "month, YYYY-MM (default this month in the gateway's --time-zone)")
	from := fs.String("from", "", fmt.Sprintf("first month, YYYY-MM, with --to: several months in one report (at most %d)", report.MaxMonths))
	to := fs.String("to", "", "last month, YYYY-MM, with --from")
	by := fs.String("by", "team", "group by team, account, entitlement, model, tier (service tier, or optimized latency) or principal (IAM role or user)")
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
	case "team", "account", "entitlement", "model", "tier", "principal":
	default:
		return usageError(fs, "usage: --by must be team, account, entitlement, model, tier or principal, not %q", *by)
	}
	for _, f := range []struct{ name, v string }{{"month", *month}, {"from", *from}, {"to", *to}} {
		if t, err := time.Parse("2006-01", f.v); f.v != "" && (err != nil || t.Format("2006-01") != f.v) {
			return usageError(fs, "usage: --%s must be YYYY-MM, not %q", f.name, f.v)
		}
	}
	switch {
	case *month != "" && (*from != "" || *to != ""):
		return usageError(fs, "usage: give --month or --from and --to, not both")
	case (*from == "") != (*to == ""):
		return usageError(fs, "usage: --from and --to go together")
	case *from > *to: // YYYY-MM compares as text
		return usageError(fs, "usage: --from %s is after --to %s", *from, *to)
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	q := url.Values{"group_by": {*by}}
	span := "this month"
	switch {
	case *month != "":
		q.Set("month", *month)
		span = *month
	case *from != "":
		q.Set("from", *from)
		q.Set("to", *to)
		span = *from + " to " + *to
	}
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
		if !csvHasGroups(body) {
			fmt.Fprintf(env.Stderr, "no usage recorded for %s\n", span)
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

// csvHasGroups reports whether a usage CSV has a group row: one with a
// grouping column set (totals rows have none).
func csvHasGroups(body []byte) bool {
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		return true // not ours to judge
	}
	for _, r := range recs[min(1, len(recs)):] {
		if len(r) > 15 && r[1]+r[2]+r[3]+r[4]+r[15] != "" {
			return true
		}
	}
	return false
}
