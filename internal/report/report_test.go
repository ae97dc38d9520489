package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/usd"
)

const testStateYAML = `
organization:
  id: o-exampleorg1
  root: r-ab12
  hub_account: "111111111111"
  units:
    - {id: ou-ab12-dev00001, name: Development}
    - {id: ou-ab12-ds000001, name: Data Science}
  accounts:
    - {id: "111111111111", name: hub, team: platform}
    - {id: "222222222222", name: support-bot, unit: ou-ab12-dev00001}
    - {id: "333333333333", name: ds-lab, unit: ou-ab12-ds000001, team: data-science}
entitlements:
  - name: support-llm
    model: us.anthropic.claude-3-5-haiku-20241022-v1:0
    scope: [o-exampleorg1]
    limits: {monthly_tokens: 1000000, account_monthly_tokens: 100000}
    shares:
      - {target: ou-ab12-dev00001}
      - {target: "333333333333", monthly_tokens: 50000}
  - name: copy
    model: amazon.nova-lite-v1:0
    scope: [o-exampleorg1]
    shares:
      - {target: o-exampleorg1}
`

// authzSnapshot and priceTable adapt authz and metering as the server does.
type authzSnapshot struct{ snap *authz.Snapshot }

func (s authzSnapshot) State() *state.State { return s.snap.State() }

func (s authzSnapshot) Account(id string) (Account, bool) {
	a, ok := s.snap.Account(id)
	if !ok {
		return Account{}, false
	}
	return Account{Team: a.Team, Name: a.Name}, true
}

type priceTable struct{ t *metering.PriceTable }

func (p priceTable) Cost(model, tier string, t Tokens) (usd.Micros, bool) {
	price, ok := p.t.LookupTier(model, tier)
	if !ok {
		return 0, false
	}
	return price.Cost(metering.TokenCounts(t)), true
}

func testSnapshot(t *testing.T) Snapshot {
	t.Helper()
	st, err := state.Parse([]byte(testStateYAML))
	if err != nil {
		t.Fatal(err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	snap, err := authz.Build(st, 1)
	if err != nil {
		t.Fatal(err)
	}
	return authzSnapshot{snap}
}

// fakeLedger serves fixed rows and records the entitlements asked for.
type fakeLedger struct {
	mu    sync.Mutex
	rows  []LedgerRow
	asked [][]string
	err   error
}

func (f *fakeLedger) Ledger(_ context.Context, month string, ents []string) ([]LedgerRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, slices.Clone(ents))
	if f.err != nil {
		return nil, f.err
	}
	var out []LedgerRow
	for _, r := range f.rows {
		if r.Month == month && slices.Contains(ents, r.Entitlement) {
			out = append(out, r)
		}
	}
	return out, nil
}

type fakeStatus struct{ used map[string]int64 }

func (f fakeStatus) Status(_ context.Context, _ string, caps []Cap) ([]CapStatus, error) {
	out := make([]CapStatus, len(caps))
	for i, c := range caps {
		u := f.used[string(c.Level)+":"+c.Target]
		out[i] = CapStatus{Level: c.Level, Target: c.Target, Limit: c.Limit, Used: u, Reserved: 10,
			Remaining: max(0, c.Limit-u-10), Month: "2026-10", ResetAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	}
	return out, nil
}

func testPrices(t *testing.T) Pricer {
	t.Helper()
	p, err := metering.ParsePrices(strings.NewReader(`
prices:
  - model: anthropic.claude-3-5-haiku-20241022-v1:0
    input: 0.8
    output: 4
    cache_read: 0.08
    cache_write: 1.000001
  - model: amazon.nova-lite-v1:0
    input: 0.06
    output: 0.24
`))
	if err != nil {
		t.Fatal(err)
	}
	return priceTable{p}
}

const haiku = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

func testLedgerRows() []LedgerRow {
	return []LedgerRow{
		{Month: "2026-10", Entitlement: "support-llm", Account: "222222222222", Model: haiku,
			Requests: 10, Errors: 1, InputTokens: 1_000_000, OutputTokens: 250_000, CacheReadTokens: 3, CacheWriteTokens: 7, CountedTokens: 1_250_000},
		{Month: "2026-10", Entitlement: "support-llm", Account: "333333333333", Model: haiku,
			Requests: 2, InputTokens: 1, OutputTokens: 1, CountedTokens: 2},
		{Month: "2026-10", Entitlement: "copy", Account: "333333333333", Model: "amazon.nova-lite-v1:0",
			Requests: 5, InputTokens: 12_345, OutputTokens: 678, CountedTokens: 12_345}, // count: input
		{Month: "2026-10", Entitlement: "copy", Account: "111111111111", Model: "amazon.nova-lite-v1:0",
			Requests: 1, InputTokens: 100, OutputTokens: 100, CountedTokens: 100},
		// Usage of an account that has since left the organization, through a
		// model nobody priced, settled before counted tokens were recorded.
		{Month: "2026-10", Entitlement: "copy", Account: "999999999999", Model: "cohere.command-r-v1:0",
			Requests: 1, InputTokens: 40, OutputTokens: 2},
		// Another month: never in the October report.
		{Month: "2026-09", Entitlement: "copy", Account: "111111111111", Model: "amazon.nova-lite-v1:0",
			Requests: 99, InputTokens: 99},
	}
}

func newTestReports(t *testing.T, ledger *fakeLedger) *Reports {
	snap := testSnapshot(t)
	return NewReports(ReportOptions{
		Ledger:   ledger,
		Status:   fakeStatus{used: map[string]int64{"entitlement:support-llm": 500_000, "account:222222222222": 100_000}},
		Snapshot: func() Snapshot { return snap },
		Prices:   testPrices(t),
		Now:      func() time.Time { return time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC) },
	})
}

func csvOf(t *testing.T, r *Reports, month, by string) string {
	t.Helper()
	rep, err := r.Usage(context.Background(), UsageQuery{Month: month, GroupBy: by})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Costs of the ledger lines above, by hand (micro-dollars, half up):
//
//	support-llm/222: 1e6*0.8 + 250000*4 + 3*0.08 + 7*1.000001 = 0.8 + 1.0 + 0.00000024 + 0.000007000007 = 1.800007240007 -> 1.800007
//	support-llm/333: 1*0.8 + 1*4 per million = 0.0000048 -> 0.000005
//	copy/333: 12345*0.06 + 678*0.24 per million = 0.0007407 + 0.00016272 = 0.00090342 -> 0.000903
//	copy/111: 100*0.06 + 100*0.24 per million = 0.00003 -> 0.000030
//	copy/999: unpriced -> 0
//
// Total: 1.800007 + 0.000005 + 0.000903 + 0.000030 = 1.800945
func TestUsageCSV(t *testing.T) {
	t.Parallel()
	ledger := &fakeLedger{rows: testLedgerRows()}
	r := newTestReports(t, ledger)
	tests := []struct {
		by   string
		want string
	}{
		{"team", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,(unknown),,,,1,40,2,0,0,42,0.000000,0,0,0,,
2026-10,Development,,,,10,1000000,250000,3,7,1250010,1.800007,1,1250000,0,,
2026-10,data-science,,,,7,12346,679,0,0,13025,0.000908,0,12347,0,,
2026-10,platform,,,,1,100,100,0,0,200,0.000030,0,100,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`},
		{"", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,(unknown),,,,1,40,2,0,0,42,0.000000,0,0,0,,
2026-10,Development,,,,10,1000000,250000,3,7,1250010,1.800007,1,1250000,0,,
2026-10,data-science,,,,7,12346,679,0,0,13025,0.000908,0,12347,0,,
2026-10,platform,,,,1,100,100,0,0,200,0.000030,0,100,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`},
		{"account", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,,111111111111,,,1,100,100,0,0,200,0.000030,0,100,0,,
2026-10,,222222222222,,,10,1000000,250000,3,7,1250010,1.800007,1,1250000,0,,
2026-10,,333333333333,,,7,12346,679,0,0,13025,0.000908,0,12347,0,,
2026-10,,999999999999,,,1,40,2,0,0,42,0.000000,0,0,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`},
		{"entitlement", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,,,copy,,7,12485,780,0,0,13265,0.000933,0,12445,0,,
2026-10,,,support-llm,,12,1000001,250001,3,7,1250012,1.800012,1,1250002,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`},
		{"model", `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,,,,amazon.nova-lite-v1:0,6,12445,778,0,0,13223,0.000933,0,12445,0,,
2026-10,,,,cohere.command-r-v1:0,1,40,2,0,0,42,0.000000,0,0,0,,
2026-10,,,,us.anthropic.claude-3-5-haiku-20241022-v1:0,12,1000001,250001,3,7,1250012,1.800012,1,1250002,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`},
	}
	for _, tt := range tests {
		t.Run("by="+tt.by, func(t *testing.T) {
			t.Parallel()
			got := csvOf(t, r, "2026-10", tt.by)
			if got != tt.want {
				t.Errorf("CSV by %q:\n%s\nwant:\n%s", tt.by, got, tt.want)
			}
			if first := strings.SplitN(got, "\n", 2)[0]; first != CSVHeader {
				t.Errorf("header %q", first)
			}
		})
	}
}

func TestUsageJSONRoundTripAndTotals(t *testing.T) {
	t.Parallel()
	r := newTestReports(t, &fakeLedger{rows: testLedgerRows()})
	for _, by := range []string{"team", "account", "entitlement", "model"} {
		rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: by})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if back.GroupBy != by || back.Month != "2026-10" || back.Note != "" {
			t.Errorf("by %s: header fields %+v", by, back)
		}
		sum := ReportRow{Month: "2026-10"}
		for _, row := range back.Rows {
			if row.Month != "2026-10" {
				t.Errorf("by %s: row of month %q", by, row.Month)
			}
			sum.add(row)
		}
		if sum != back.Totals {
			t.Errorf("by %s: rows add up to %+v, totals %+v", by, sum, back.Totals)
		}
		if back.Totals.CostUSD != 1_800_945 || back.Totals.Requests != 19 || back.Totals.Errors != 1 {
			t.Errorf("by %s: totals %+v", by, back.Totals)
		}
		if !slices.Equal(back.UnpricedModels, []string{"cohere.command-r-v1:0"}) {
			t.Errorf("unpriced %v", back.UnpricedModels)
		}
		if !bytes.Contains(b, []byte(`"cost_usd":1.800945`)) {
			t.Errorf("cost not a six-decimal number: %s", b)
		}
	}
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "account"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows[1].AccountName != "support-bot" || rep.Rows[3].AccountName != "" {
		t.Errorf("account names: %+v", rep.Rows)
	}
}

func TestUsageEmptyMonthAndDefaults(t *testing.T) {
	t.Parallel()
	ledger := &fakeLedger{rows: testLedgerRows()}
	r := newTestReports(t, ledger)
	got := csvOf(t, r, "2026-11", "model")
	// The totals row keeps its month; every grouping column is empty.
	want := CSVHeader + "\n2026-11,,,,,0,0,0,0,0,0,0.000000,0,0,0,,\n"
	if got != want {
		t.Errorf("empty month CSV:\n%s\nwant\n%s", got, want)
	}
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-11", GroupBy: ""})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if rep.Note != "no usage recorded for 2026-11" || !bytes.Contains(b, []byte(`"rows":[]`)) || rep.GroupBy != "team" {
		t.Errorf("empty month JSON: %s", b)
	}
	// No month: the current one (Now is 2026-10-15).
	rep, err = r.Usage(context.Background(), UsageQuery{Month: "", GroupBy: "team"})
	if err != nil || rep.Month != "2026-10" {
		t.Errorf("default month: %v %+v", err, rep)
	}
	// Every entitlement of the state is read.
	if last := ledger.asked[len(ledger.asked)-1]; !slices.Equal(last, []string{"copy", "support-llm"}) {
		t.Errorf("asked for %v", last)
	}
}

func TestUsageExtraEntitlements(t *testing.T) {
	t.Parallel()
	rows := append(testLedgerRows(), LedgerRow{Month: "2026-10", Entitlement: "deleted-one", Account: "111111111111",
		Model: "amazon.nova-lite-v1:0", Requests: 1, InputTokens: 1_000_000})
	snap := testSnapshot(t)
	r := NewReports(ReportOptions{
		Ledger: &fakeLedger{rows: rows}, Snapshot: func() Snapshot { return snap }, Prices: testPrices(t),
		ExtraEntitlements: func(context.Context, string) ([]string, error) { return []string{"deleted-one", "copy"}, nil },
	})
	got := csvOf(t, r, "2026-10", "entitlement")
	if !strings.Contains(got, "\n2026-10,,,deleted-one,,1,1000000,0,0,0,1000000,0.060000,0,0,0,,\n") {
		t.Errorf("deleted entitlement missing:\n%s", got)
	}
	r = NewReports(ReportOptions{
		Ledger: &fakeLedger{rows: rows}, Snapshot: func() Snapshot { return snap },
		ExtraEntitlements: func(context.Context, string) ([]string, error) { return nil, errors.New("boom") },
	})
	if _, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "team"}); err == nil || errors.Is(err, ErrInvalidQuery) {
		t.Errorf("extra entitlements error: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	r := newTestReports(t, &fakeLedger{})
	for _, q := range []UsageQuery{
		{Month: "2026-13"}, {Month: "26-10"}, {Month: "2026-1"}, {Month: "2026-10", GroupBy: "region"},
	} {
		if _, err := r.Usage(context.Background(), q); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%+v: %v, want ErrInvalidQuery", q, err)
		}
	}
	failing := newTestReports(t, &fakeLedger{err: errors.New("redis down")})
	if _, err := failing.Usage(context.Background(), UsageQuery{Month: "2026-10"}); err == nil || errors.Is(err, ErrInvalidQuery) {
		t.Errorf("ledger error: %v", err)
	}
	noSnap := NewReports(ReportOptions{Ledger: &fakeLedger{}, Snapshot: func() Snapshot { return nil }})
	if _, err := noSnap.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: ""}); err == nil {
		t.Error("report without a snapshot succeeded")
	}
}

func TestRenderTable(t *testing.T) {
	t.Parallel()
	r := newTestReports(t, &fakeLedger{rows: testLedgerRows()})
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "account"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	want := `Usage for 2026-10 by account

ACCOUNT       NAME         REQUESTS  ERRORS  ESTIMATED    INPUT  OUTPUT  CACHE READ  CACHE WRITE  TOTAL TOKENS  COUNTED  COST USD
111111111111  hub                 1       0          0      100     100           0            0           200      100  0.000030
222222222222  support-bot        10       1          0  1000000  250000           3            7       1250010  1250000  1.800007
333333333333  ds-lab              7       0          0    12346     679           0            0         13025    12347  0.000908
999999999999                      1       0          0       40       2           0            0            42        0  0.000000
---------------------------------------------------------------------------------------------------------------------------------
TOTAL                            19       1          0  1012486  250781           3            7       1263277  1262447  1.800945

No price configured (counted at 0 USD): cohere.command-r-v1:0
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	rep, _ = r.Usage(context.Background(), UsageQuery{Month: "2020-01", GroupBy: "team"})
	b.Reset()
	if err := RenderTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Note: no usage recorded for 2020-01.") {
		t.Errorf("empty table:\n%s", b.String())
	}
}

func TestQuotaRemaining(t *testing.T) {
	t.Parallel()
	r := newTestReports(t, &fakeLedger{rows: testLedgerRows()})
	v, err := r.Quota(context.Background(), "support-llm")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", v.Caps)
	want := "[{Level:entitlement Target:support-llm Limit:1000000 Used:500000 Reserved:10 Remaining:499990 PercentUsed:50} " +
		"{Level:share Target:333333333333 Limit:50000 Used:0 Reserved:10 Remaining:49990 PercentUsed:0} " +
		"{Level:account Target:222222222222 Limit:100000 Used:100000 Reserved:10 Remaining:0 PercentUsed:100} " +
		"{Level:account Target:333333333333 Limit:100000 Used:0 Reserved:10 Remaining:99990 PercentUsed:0}]"
	if got != want {
		t.Errorf("caps\n%s\nwant\n%s", got, want)
	}
	if v.Month != "2026-10" || v.ResetAt.IsZero() {
		t.Errorf("quota report %+v", v)
	}
	v, err = r.Quota(context.Background(), "copy")
	if err != nil || len(v.Caps) != 0 {
		t.Errorf("uncapped entitlement: %v %+v", err, v)
	}
	if _, err := r.Quota(context.Background(), "nope"); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("unknown entitlement: %v", err)
	}
}

// Each tier is priced at its own price; a tier without a price is unpriced
// (not charged at the default price) and named so in unpriced_models.
func TestUsageTiers(t *testing.T) {
	t.Parallel()
	prices, err := metering.ParsePrices(strings.NewReader(`
prices:
  - model: anthropic.claude-3-5-haiku-20241022-v1:0
    input: 1
    output: 2
    tiers:
      priority: {input: 3, output: 4}
`))
	if err != nil {
		t.Fatal(err)
	}
	rows := []LedgerRow{
		{Month: "2026-10", Entitlement: "support-llm", Account: "222222222222", Model: haiku, Tier: "default", Requests: 1, InputTokens: 1_000_000, OutputTokens: 1_000_000},
		{Month: "2026-10", Entitlement: "support-llm", Account: "222222222222", Model: haiku, Requests: 1, InputTokens: 1_000_000}, // no tier: default
		{Month: "2026-10", Entitlement: "support-llm", Account: "222222222222", Model: haiku, Tier: "priority", Requests: 2, InputTokens: 1_000_000, OutputTokens: 1_000_000},
		{Month: "2026-10", Entitlement: "support-llm", Account: "333333333333", Model: haiku, Tier: "flex", Requests: 1, InputTokens: 5},
	}
	snap := testSnapshot(t)
	r := NewReports(ReportOptions{Ledger: &fakeLedger{rows: rows}, Snapshot: func() Snapshot { return snap }, Prices: priceTable{prices}})
	want := `month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal
2026-10,,,,,2,2000000,1000000,0,0,3000000,4.000000,0,0,0,default,
2026-10,,,,,1,5,0,0,0,5,0.000000,0,0,0,flex,
2026-10,,,,,2,1000000,1000000,0,0,2000000,7.000000,0,0,0,priority,
2026-10,,,,,5,3000005,2000000,0,0,5000005,11.000000,0,0,0,,
`
	if got := csvOf(t, r, "2026-10", "tier"); got != want {
		t.Errorf("CSV by tier:\n%s\nwant:\n%s", got, want)
	}
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "team"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.CostUSD != 11_000_000 || !slices.Equal(rep.UnpricedModels, []string{haiku + " (flex)"}) {
		t.Errorf("totals %+v, unpriced %v", rep.Totals, rep.UnpricedModels)
	}
	var table strings.Builder
	rep, _ = r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "tier"})
	if err := RenderTable(&table, rep); err != nil || !strings.Contains(table.String(), "priority") || !strings.HasPrefix(table.String(), "Usage for 2026-10 by tier") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}

// Usage is reported under the team recorded with the calls, not the team the
// account has now; lines written before teams were recorded fall back to it.
func TestUsageTeamAtCallTime(t *testing.T) {
	t.Parallel()
	rows := []LedgerRow{
		// 222222222222 is in Development now; it was in "support" before.
		{Month: "2026-10", Entitlement: "copy", Account: "222222222222", Model: "m", Team: "support", Requests: 1, InputTokens: 10},
		{Month: "2026-10", Entitlement: "copy", Account: "222222222222", Model: "m", Team: "Development", Requests: 2, InputTokens: 20},
		{Month: "2026-10", Entitlement: "copy", Account: "222222222222", Model: "m", Requests: 4, InputTokens: 40},
		// An account gone from the organization keeps its recorded team.
		{Month: "2026-10", Entitlement: "copy", Account: "999999999999", Model: "m", Team: "former", Requests: 8, InputTokens: 80},
	}
	snap := testSnapshot(t)
	r := NewReports(ReportOptions{Ledger: &fakeLedger{rows: rows}, Snapshot: func() Snapshot { return snap }})
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: "team"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, row := range rep.Rows {
		got[row.Team] = row.Requests
	}
	want := map[string]int64{"support": 1, "Development": 6, "former": 8}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests by team %v, want %v", got, want)
	}
}

// --from/--to: rows of every month, each month closed by its totals row;
// the span is checked.
func TestUsageMonthRange(t *testing.T) {
	t.Parallel()
	ledger := &fakeLedger{rows: testLedgerRows()}
	r := newTestReports(t, ledger)
	rep, err := r.Usage(context.Background(), UsageQuery{From: "2026-08", To: "2026-10", GroupBy: "entitlement"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Month != "" || rep.From != "2026-08" || rep.To != "2026-10" || len(rep.MonthTotals) != 3 ||
		rep.Totals.Requests != 19+99 || rep.Totals.Month != "" {
		t.Errorf("range report %+v", rep)
	}
	var b strings.Builder
	if err := WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	want := CSVHeader + `
2026-08,,,,,0,0,0,0,0,0,0.000000,0,0,0,,
2026-09,,,copy,,99,99,0,0,0,99,0.000006,0,0,0,,
2026-09,,,,,99,99,0,0,0,99,0.000006,0,0,0,,
2026-10,,,copy,,7,12485,780,0,0,13265,0.000933,0,12445,0,,
2026-10,,,support-llm,,12,1000001,250001,3,7,1250012,1.800012,1,1250002,0,,
2026-10,,,,,19,1012486,250781,3,7,1263277,1.800945,1,1262447,0,,
`
	if b.String() != want {
		t.Errorf("range CSV:\n%s\nwant:\n%s", b.String(), want)
	}
	var table strings.Builder
	if err := RenderTable(&table, rep); err != nil || !strings.HasPrefix(table.String(), "Usage for 2026-08 to 2026-10 by entitlement\n\nMONTH    ENTITLEMENT") {
		t.Errorf("range table: %v\n%s", err, table.String())
	}
	// JSON round trip keeps the span and the months' totals.
	js, _ := json.Marshal(rep)
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.From != "2026-08" || back.To != "2026-10" || len(back.MonthTotals) != 3 {
		t.Errorf("range JSON %v: %s", err, js)
	}
	// 24 months is the most.
	if _, err := r.Usage(context.Background(), UsageQuery{From: "2024-11", To: "2026-10"}); err != nil {
		t.Errorf("24 months: %v", err)
	}
	for _, q := range []UsageQuery{
		{From: "2024-10", To: "2026-10"}, // 25 months
		{From: "2026-10", To: "2026-09"},
		{From: "2026-10"},
		{To: "2026-10"},
		{Month: "2026-10", From: "2026-10", To: "2026-10"},
		{From: "2026-1", To: "2026-10"},
		{From: "2026-01", To: "2026-13"},
	} {
		if _, err := r.Usage(context.Background(), q); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%+v: %v, want ErrInvalidQuery", q, err)
		}
	}
}

// Without a month the report is of the current month in the configured
// zone, not in UTC.
func TestUsageDefaultMonthInZone(t *testing.T) {
	t.Parallel()
	snap := testSnapshot(t)
	r := NewReports(ReportOptions{
		Ledger: &fakeLedger{}, Snapshot: func() Snapshot { return snap },
		Now:      func() time.Time { return time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC) },
		Location: time.FixedZone("UTC-5", -5*3600),
	})
	rep, err := r.Usage(context.Background(), UsageQuery{})
	if err != nil || rep.Month != "2026-10" {
		t.Errorf("default month: %v %+v, want 2026-10", err, rep)
	}
}

// TestUsageByPrincipal: calls with an IAM identity group by their principal,
// gateway-issued credentials under NoPrincipal; the principal column is last
// in the CSV, so earlier columns keep their positions.
func TestUsageByPrincipal(t *testing.T) {
	t.Parallel()
	const role = "arn:aws:iam::222222222222:role/support-bot"
	rows := []LedgerRow{
		{Month: "2026-10", Entitlement: "support-llm", Account: "222222222222", Model: haiku, Principal: role, Requests: 2, InputTokens: 10, OutputTokens: 5},
		{Month: "2026-10", Entitlement: "copy", Account: "222222222222", Model: haiku, Principal: role, Requests: 1, InputTokens: 1, OutputTokens: 1},
		{Month: "2026-10", Entitlement: "support-llm", Account: "333333333333", Model: haiku, Requests: 4, InputTokens: 3, OutputTokens: 3},
	}
	r := newTestReports(t, &fakeLedger{rows: rows})
	rep, err := r.Usage(context.Background(), UsageQuery{Month: "2026-10", GroupBy: GroupByPrincipal})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, row := range rep.Rows {
		got[row.Principal] = row.Requests
	}
	if len(got) != 2 || got[role] != 3 || got[NoPrincipal] != 4 {
		t.Fatalf("rows by principal %+v", rep.Rows)
	}
	csv := csvOf(t, r, "2026-10", GroupByPrincipal)
	if !strings.Contains(csv, ","+role+"\n") || !strings.Contains(csv, ","+NoPrincipal+"\n") {
		t.Fatalf("CSV by principal:\n%s", csv)
	}
}
