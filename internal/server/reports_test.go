package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/proxy"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const reportsStateYAML = `
organization:
  id: o-exampleorg1
  root: r-ab12
  hub_account: "111111111111"
  units:
    - {id: ou-ab12-dev00001, name: Development}
  accounts:
    - {id: "111111111111", name: hub, team: platform}
    - {id: "222222222222", name: support-bot, unit: ou-ab12-dev00001}
    - {id: "333333333333", name: ds-lab, unit: ou-ab12-dev00001, team: data-science}
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

// TestReportsOverRealLedger drives the reports as serve wires them over a
// real quota.Limiter on redis-server, a snapshot and a price table: the
// ledger feeds the report (including an entitlement no longer in the state,
// found by the ledger scanner), the caps' status feeds the quota report, and
// the snapshot gives teams and account names.
func TestReportsOverRealLedger(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	lim, err := quota.New(quota.Options{Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { _ = lim.Close(ctx) })

	const haiku = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
	month := ""
	use := func(ent, account, model string, caps []quota.Cap, u bedrock.Usage) {
		t.Helper()
		r, err := lim.Reserve(ctx, quota.Request{Entitlement: ent, Account: account, Model: model, Caps: caps, Tokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		month = r.Month
		if err := lim.Settle(ctx, r, u.InputTokens+u.OutputTokens, u); err != nil {
			t.Fatal(err)
		}
	}
	// The caps the proxy would pass for these accounts under the state below.
	ent := quota.Cap{Level: quota.LevelEntitlement, Target: "support-llm", Limit: 1_000_000}
	use("support-llm", "222222222222", haiku, []quota.Cap{ent,
		{Level: quota.LevelAccount, Target: "222222222222", Limit: 100_000}},
		bedrock.Usage{InputTokens: 300, OutputTokens: 200, CacheReadTokens: 5})
	use("support-llm", "333333333333", haiku, []quota.Cap{ent,
		{Level: quota.LevelShare, Target: "333333333333", Limit: 50_000},
		{Level: quota.LevelAccount, Target: "333333333333", Limit: 100_000}},
		bedrock.Usage{InputTokens: 300, OutputTokens: 10})
	use("copy", "333333333333", "amazon.nova-lite-v1:0", nil, bedrock.Usage{InputTokens: 1_000_000})
	use("deleted-one", "111111111111", "amazon.nova-lite-v1:0", nil, bedrock.Usage{OutputTokens: 1_000_000})
	use("copy", "999999999999", "cohere.command-r-v1:0", nil, bedrock.Usage{InputTokens: 7})
	if err := lim.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	prices, err := metering.ParsePrices(strings.NewReader(`
prices:
  - model: anthropic.claude-3-5-haiku-20241022-v1:0
    input: 0.8
    output: 4
    cache_read: 0.08
  - model: amazon.nova-lite-v1:0
    input: 0.06
    output: 0.24
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse([]byte(reportsStateYAML))
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
	var current *authz.Snapshot // none loaded yet
	reports := newReports(lim, func() *authz.Snapshot { return current }, prices, nil, client)

	// Before the first snapshot the reports fail (they do not read a nil
	// snapshot wrapped in an interface).
	if _, err := reports.Usage(ctx, report.UsageQuery{Month: month}); err == nil || !strings.Contains(err.Error(), "not loaded yet") {
		t.Fatalf("report before the first snapshot: %v", err)
	}
	current = snap

	csvOf := func(by string) string {
		t.Helper()
		rep, err := reports.Usage(ctx, report.UsageQuery{Month: month, GroupBy: by})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := report.WriteCSV(&b, rep); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// support-llm: 300*0.8 + 200*4 + 5*0.08 = 1040.4 µ$ -> 1040 and
	// 300*0.8 + 10*4 = 280 µ$: 0.001320. The command-r line is unpriced.
	tests := []struct{ by, want string }{
		{"entitlement", report.CSVHeader + "\n" +
			month + ",,,copy,,2,1000007,0,0,0,1000007,0.060000,0,1000007,0,,\n" +
			month + ",,,deleted-one,,1,0,1000000,0,0,1000000,0.240000,0,1000000,0,,\n" +
			month + ",,,support-llm,,2,600,210,5,0,815,0.001320,0,810,0,,\n" +
			month + ",,,,,5,1000607,1000210,5,0,2000822,0.301320,0,2000817,0,,\n"},
		{"team", report.CSVHeader + "\n" +
			month + ",(unknown),,,,1,7,0,0,0,7,0.000000,0,7,0,,\n" +
			month + ",Development,,,,1,300,200,5,0,505,0.001040,0,500,0,,\n" +
			month + ",data-science,,,,2,1000300,10,0,0,1000310,0.060280,0,1000310,0,,\n" +
			month + ",platform,,,,1,0,1000000,0,0,1000000,0.240000,0,1000000,0,,\n" +
			month + ",,,,,5,1000607,1000210,5,0,2000822,0.301320,0,2000817,0,,\n"},
		{"tier", report.CSVHeader + "\n" +
			month + ",,,,,5,1000607,1000210,5,0,2000822,0.301320,0,2000817,0,default,\n" +
			month + ",,,,,5,1000607,1000210,5,0,2000822,0.301320,0,2000817,0,,\n"},
	}
	for _, tt := range tests {
		if got := csvOf(tt.by); got != tt.want {
			t.Errorf("CSV by %s:\n%s\nwant:\n%s", tt.by, got, tt.want)
		}
	}
	rep, err := reports.Usage(ctx, report.UsageQuery{Month: month, GroupBy: report.GroupByAccount})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 4 || rep.Rows[1].AccountName != "support-bot" || rep.Rows[3].AccountName != "" ||
		len(rep.UnpricedModels) != 1 || rep.UnpricedModels[0] != "cohere.command-r-v1:0" {
		t.Errorf("by account: %+v", rep)
	}

	q, err := reports.Quota(ctx, "support-llm")
	if err != nil {
		t.Fatal(err)
	}
	// The caps count the tokens settled (the test settles input plus output).
	want := []report.CapReport{
		{Level: report.LevelEntitlement, Target: "support-llm", Limit: 1_000_000, Used: 810, Remaining: 999_190, PercentUsed: 0.1},
		{Level: report.LevelShare, Target: "333333333333", Limit: 50_000, Used: 310, Remaining: 49_690, PercentUsed: 0.6},
		{Level: report.LevelAccount, Target: "222222222222", Limit: 100_000, Used: 500, Remaining: 99_500, PercentUsed: 0.5},
		{Level: report.LevelAccount, Target: "333333333333", Limit: 100_000, Used: 310, Remaining: 99_690, PercentUsed: 0.3},
	}
	if q.Month != month || q.ResetAt.IsZero() || len(q.Caps) != len(want) {
		t.Fatalf("quota %+v", q)
	}
	for i := range want {
		if q.Caps[i] != want[i] {
			t.Errorf("cap %d: %+v, want %+v", i, q.Caps[i], want[i])
		}
	}
}

// The reports name cap levels as quota does: the adapter converts one into
// the other by value.
func TestReportCapLevels(t *testing.T) {
	t.Parallel()
	for r, q := range map[string]quota.Level{
		report.LevelEntitlement: quota.LevelEntitlement,
		report.LevelShare:       quota.LevelShare,
		report.LevelAccount:     quota.LevelAccount,
	} {
		if r != string(q) {
			t.Errorf("report level %q, quota level %q", r, q)
		}
	}
}

// TestReportTeamAtCallTime: usage is reported under the team the account had
// when the call was made (the proxy's quota adapter records it with the
// call), so moving the account to another team does not move its past usage;
// and counted_tokens is what the caps were charged (count: total leaves
// cache tokens out), next to total_tokens, which has them.
func TestReportTeamAtCallTime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	lim, err := quota.New(quota.Options{Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { _ = lim.Close(ctx) })
	adapter := &limiterQuota{Limiter: lim}

	build := func(yaml string) *authz.Snapshot {
		t.Helper()
		st, err := state.Parse([]byte(yaml))
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
		return snap
	}
	before := build(reportsStateYAML)
	// 222222222222 moves from its OU's team (Development) to "support".
	after := build(strings.Replace(reportsStateYAML, "unit: ou-ab12-dev00001}", "unit: ou-ab12-dev00001, team: support}", 1))
	current := before
	call := func(u bedrock.Usage) {
		t.Helper()
		d, err := current.Authorize("222222222222", bedrock.OpConverse, "copy")
		if err != nil {
			t.Fatal(err)
		}
		tk, err := adapter.Reserve(ctx, proxy.QuotaRequest{Decision: d, Tokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		tk.Settle(ctx, u.InputTokens+u.OutputTokens, u)
	}
	call(bedrock.Usage{InputTokens: 4, OutputTokens: 3, CacheReadTokens: 300})
	current = after
	call(bedrock.Usage{InputTokens: 40, OutputTokens: 30})
	if err := lim.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	reports := newReports(lim, func() *authz.Snapshot { return current }, nil, nil, client)
	rep, err := reports.Usage(ctx, report.UsageQuery{GroupBy: report.GroupByTeam})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := report.WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	m := rep.Month
	want := report.CSVHeader + "\n" +
		m + ",Development,,,,1,4,3,300,0,307,0.000000,0,7,0,,\n" +
		m + ",support,,,,1,40,30,0,0,70,0.000000,0,70,0,,\n" +
		m + ",,,,,2,44,33,300,0,377,0.000000,0,77,0,,\n"
	if b.String() != want {
		t.Errorf("CSV by team:\n%s\nwant:\n%s", b.String(), want)
	}
}
