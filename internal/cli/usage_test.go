package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/report"
)

// fixedUsage serves one report for any month and grouping.
type fixedUsage struct{ rep report.Report }

func (f fixedUsage) Usage(_ context.Context, q report.UsageQuery) (*report.Report, error) {
	rep := f.rep
	rep.Month = q.Month
	return &rep, nil
}

// TestUsageOutput pins what `gateway usage` prints in each format, from the
// admin API's report to the bytes on stdout.
func TestUsageOutput(t *testing.T) {
	t.Parallel()
	rep := report.Report{GroupBy: "account", Rows: []report.ReportRow{
		{Account: "111111111111", AccountName: "hub", Requests: 1, InputTokens: 100, OutputTokens: 100, TotalTokens: 200, CostUSD: 30},
		{Account: "222222222222", AccountName: "support-bot", Requests: 10, Errors: 1, EstimatedRequests: 2, InputTokens: 1_000_000,
			OutputTokens: 250_000, CacheReadTokens: 3, CacheWriteTokens: 7, TotalTokens: 1_250_010, CostUSD: 1_800_007},
		{Account: "999999999999", Requests: 1, InputTokens: 40, OutputTokens: 2, TotalTokens: 42},
	}, Totals: report.ReportRow{Requests: 12, Errors: 1, EstimatedRequests: 2, InputTokens: 1_000_140, OutputTokens: 250_102,
		CacheReadTokens: 3, CacheWriteTokens: 7, TotalTokens: 1_250_252, CostUSD: 1_800_037},
		UnpricedModels: []string{"cohere.command-r-v1:0"}}
	h := newHarness(t, func(o *admin.Options) { o.Usage = fixedUsage{rep} })
	tests := []struct {
		format, want string
	}{
		{"table", `Usage for 2026-10 by account

ACCOUNT       NAME         REQUESTS  ERRORS  ESTIMATED    INPUT  OUTPUT  CACHE READ  CACHE WRITE  TOTAL TOKENS  COST USD
111111111111  hub                 1       0          0      100     100           0            0           200  0.000030
222222222222  support-bot        10       1          2  1000000  250000           3            7       1250010  1.800007
999999999999                      1       0          0       40       2           0            0            42  0.000000
------------------------------------------------------------------------------------------------------------------------
TOTAL                            12       1          2  1000140  250102           3            7       1250252  1.800037

No price configured (counted at 0 USD): cohere.command-r-v1:0
`},
		{"csv", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,estimated_requests,tier
2026-10,,111111111111,,,1,100,100,0,0,200,0.000030,0,
2026-10,,222222222222,,,10,1000000,250000,3,7,1250010,1.800007,2,
2026-10,,999999999999,,,1,40,2,0,0,42,0.000000,0,
total,,,,,12,1000140,250102,3,7,1250252,1.800037,2,
`},
		{"json", `{
  "month": "2026-10",
  "group_by": "account",
  "rows": [
    {
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
      "cost_usd": 0.000030
    },
    {
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
      "cost_usd": 1.800007
    },
    {
      "account": "999999999999",
      "requests": 1,
      "errors": 0,
      "estimated_requests": 0,
      "input_tokens": 40,
      "output_tokens": 2,
      "cache_read_tokens": 0,
      "cache_write_tokens": 0,
      "total_tokens": 42,
      "cost_usd": 0.000000
    }
  ],
  "totals": {
    "requests": 12,
    "errors": 1,
    "estimated_requests": 2,
    "input_tokens": 1000140,
    "output_tokens": 250102,
    "cache_read_tokens": 3,
    "cache_write_tokens": 7,
    "total_tokens": 1250252,
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
