package cli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/report"
)

// fixedUsage serves one report for any month and grouping, as of that month
// (the month of the source's clock, 2026-11, when none is asked).
type fixedUsage struct{ rep report.Report }

func (f fixedUsage) Usage(_ context.Context, q report.UsageQuery) (*report.Report, error) {
	rep := f.rep
	rep.Month = q.Month
	if rep.Month == "" {
		rep.Month = "2026-11"
	}
	rep.Rows = slices.Clone(rep.Rows)
	for i := range rep.Rows {
		rep.Rows[i].Month = rep.Month
	}
	rep.Totals.Month = rep.Month
	return &rep, nil
}

// queryRecorder records the queries it is asked and serves an empty
// report of their months.
type queryRecorder struct {
	mu  sync.Mutex
	got []report.UsageQuery
}

func (r *queryRecorder) Usage(_ context.Context, q report.UsageQuery) (*report.Report, error) {
	r.mu.Lock()
	r.got = append(r.got, q)
	r.mu.Unlock()
	rep := &report.Report{Month: q.Month, GroupBy: "team", Rows: []report.ReportRow{}}
	if q.From != "" {
		rep.From, rep.To = q.From, q.To
		rep.MonthTotals = []report.ReportRow{{Month: q.From}, {Month: q.To}}
	}
	return rep, nil
}

// TestUsageOutput pins what `gateway usage` prints in each format, from the
// admin API's report to the bytes on stdout.
func TestUsageOutput(t *testing.T) {
	t.Parallel()
	rep := report.Report{GroupBy: "account", Rows: []report.ReportRow{
		{Account: "111111111111", AccountName: "hub", Requests: 1, InputTokens: 100, OutputTokens: 100, TotalTokens: 200, CountedTokens: 200, CostUSD: 30},
		{Account: "222222222222", AccountName: "support-bot", Requests: 10, Errors: 1, EstimatedRequests: 2, InputTokens: 1_000_000,
			OutputTokens: 250_000, CacheReadTokens: 3, CacheWriteTokens: 7, TotalTokens: 1_250_010, CountedTokens: 1_250_000, CostUSD: 1_800_007},
		{Account: "999999999999", Requests: 1, InputTokens: 40, OutputTokens: 2, TotalTokens: 42},
	}, Totals: report.ReportRow{Requests: 12, Errors: 1, EstimatedRequests: 2, InputTokens: 1_000_140, OutputTokens: 250_102,
		CacheReadTokens: 3, CacheWriteTokens: 7, TotalTokens: 1_250_252, CountedTokens: 1_250_200, CostUSD: 1_800_037},
		UnpricedModels: []string{"cohere.command-r-v1:0"}}
	h := newHarness(t, func(o *admin.Options) { o.Usage = fixedUsage{rep} })
	tests := []struct {
		format, want string
	}{
		{"table", `Usage for 2026-10 by account

ACCOUNT       NAME         REQUESTS  ERRORS  ESTIMATED    INPUT  OUTPUT  CACHE READ  CACHE WRITE  TOTAL TOKENS  COUNTED  COST USD
111111111111  hub                 1       0          0      100     100           0            0           200      200  0.000030
222222222222  support-bot        10       1          2  1000000  250000           3            7       1250010  1250000  1.800007
999999999999                      1       0          0       40       2           0            0            42        0  0.000000
---------------------------------------------------------------------------------------------------------------------------------
TOTAL                            12       1          2  1000140  250102           3            7       1250252  1250200  1.800037

No price configured (counted at 0 USD): cohere.command-r-v1:0
`},
		{"csv", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,,111111111111,,,1,100,100,0,0,200,0.000030,0,200,0,,
2026-10,,222222222222,,,10,1000000,250000,3,7,1250010,1.800007,1,1250000,2,,
2026-10,,999999999999,,,1,40,2,0,0,42,0.000000,0,0,0,,
2026-10,,,,,12,1000140,250102,3,7,1250252,1.800037,1,1250200,2,,
`},
		{"json", `{
  "month": "2026-10",
  "group_by": "account",
  "rows": [
    {
      "month": "2026-10",
      "account": "111111111111",
      "account_name": "hub",
      "requests": 1,
      "errors": 0,
      "estimated_requests": 0,
      "input_tokens": 100,
      "output_tokens": 100,
      "cache_read_tokens": 0,
      "cache_write_tokens": 0,
      "total_tokens": 200,
      "counted_tokens": 200,
      "cost_usd": 0.000030
    },
    {
      "month": "2026-10",
      "account": "222222222222",
      "account_name": "support-bot",
      "requests": 10,
      "errors": 1,
      "estimated_requests": 2,
      "input_tokens": 1000000,
      "output_tokens": 250000,
      "cache_read_tokens": 3,
      "cache_write_tokens": 7,
      "total_tokens": 1250010,
      "counted_tokens": 1250000,
      "cost_usd": 1.800007
    },
    {
      "month": "2026-10",
      "account": "999999999999",
      "requests": 1,
      "errors": 0,
      "estimated_requests": 0,
      "input_tokens": 40,
      "output_tokens": 2,
      "cache_read_tokens": 0,
      "cache_write_tokens": 0,
      "total_tokens": 42,
      "counted_tokens": 0,
      "cost_usd": 0.000000
    }
  ],
  "totals": {
    "month": "2026-10",
    "requests": 12,
    "errors": 1,
    "estimated_requests": 2,
    "input_tokens": 1000140,
    "output_tokens": 250102,
    "cache_read_tokens": 3,
    "cache_write_tokens": 7,
    "total_tokens": 1250252,
    "counted_tokens": 1250200,
    "cost_usd": 1.800037
  },
  "unpriced_models": [
    "cohere.command-r-v1:0"
  ]
}

`}, // the admin API's newline, then printJSON's
	}
	for _, tt := range tests {
		// -o is the convention; --format is its deprecated alias.
		for _, flagName := range []string{"-o", "--output", "--format"} {
			t.Run(tt.format+flagName, func(t *testing.T) {
				t.Parallel()
				out, errOut, err := h.run("usage", "--month", "2026-10", "--by", "account", flagName, tt.format)
				if err != nil {
					t.Fatal(err)
				}
				if out != tt.want {
					t.Errorf("got:\n%s\nwant:\n%s", out, tt.want)
				}
				if deprecated := strings.Contains(errOut, "--format is deprecated"); deprecated != (flagName == "--format") {
					t.Errorf("stderr %q", errOut)
				}
			})
		}
	}
	if _, _, err := h.run("usage", "--format", "csv", "-o", "json"); err == nil {
		t.Error("--format and -o disagreeing accepted")
	}
}

// TestUsageMonths: without --month the gateway picks the month (in its
// zone); --from/--to ask for several months; bad combinations are usage
// errors that reach no server.
func TestUsageMonths(t *testing.T) {
	t.Parallel()
	rec := &queryRecorder{}
	h := newHarness(t, func(o *admin.Options) { o.Usage = rec })
	tests := []struct {
		args    []string
		want    report.UsageQuery
		wantOut string
	}{
		{[]string{"usage"}, report.UsageQuery{GroupBy: "team"}, ""},
		{[]string{"usage", "--month", "2026-09"}, report.UsageQuery{Month: "2026-09", GroupBy: "team"}, ""},
		{[]string{"usage", "--from", "2026-08", "--to", "2026-10", "-o", "csv"}, report.UsageQuery{From: "2026-08", To: "2026-10", GroupBy: "team"},
			report.CSVHeader + "\n2026-08,,,,,0,0,0,0,0,0,0.000000,0,0,0,,\n2026-10,,,,,0,0,0,0,0,0,0.000000,0,0,0,,\n"},
	}
	for _, tt := range tests {
		rec.mu.Lock()
		rec.got = nil
		rec.mu.Unlock()
		out, errOut, err := h.run(tt.args...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		rec.mu.Lock()
		got := slices.Clone(rec.got)
		rec.mu.Unlock()
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%v: asked %+v, want %+v", tt.args, got, tt.want)
		}
		if tt.wantOut != "" && (out != tt.wantOut || !strings.Contains(errOut, "no usage recorded for 2026-08 to 2026-10")) {
			t.Errorf("%v: stdout\n%s\nstderr %q", tt.args, out, errOut)
		}
	}
	for _, args := range [][]string{
		{"usage", "--from", "2026-08"},
		{"usage", "--to", "2026-08"},
		{"usage", "--month", "2026-08", "--from", "2026-08", "--to", "2026-09"},
		{"usage", "--from", "2026-10", "--to", "2026-09"},
		{"usage", "--from", "2026-1", "--to", "2026-09"},
	} {
		rec.mu.Lock()
		rec.got = nil
		rec.mu.Unlock()
		var ue *UsageError
		if _, _, err := h.run(args...); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
		rec.mu.Lock()
		if len(rec.got) != 0 {
			t.Errorf("%v reached the server", args)
		}
		rec.mu.Unlock()
	}
}
