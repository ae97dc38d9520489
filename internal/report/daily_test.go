package report

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeDays serves fixed per-day rows for November 2026.
type fakeDays struct{ rows map[string][]LedgerRow }

func (f fakeDays) LedgerDays(_ context.Context, month string, ents []string) ([]DayLedger, error) {
	var out []DayLedger
	for d := 1; d <= 30; d++ {
		date := fmt.Sprintf("%s-%02d", month, d)
		out = append(out, DayLedger{Date: date, Rows: f.rows[date]})
	}
	return out, nil
}

func TestDaily(t *testing.T) {
	t.Parallel()
	snap := testSnapshot(t)
	haiku := "us.anthropic.claude-3-5-haiku-20241022-v1:0"
	days := fakeDays{rows: map[string][]LedgerRow{
		"2026-11-02": {
			{Entitlement: "support-llm", Account: "222222222222", Model: haiku, Tier: "default", Requests: 2, InputTokens: 1_000_000, OutputTokens: 10},
			{Entitlement: "support-llm", Account: "333333333333", Model: haiku, Tier: "default", Team: "data-science", Requests: 1, InputTokens: 5, CacheReadTokens: 7},
			{Entitlement: "copy", Account: "333333333333", Model: "amazon.nova-lite-v1:0", Tier: "default", Team: "ml", Requests: 1, OutputTokens: 3, CacheWriteTokens: 2},
		},
		"2026-11-30": {{Entitlement: "copy", Account: "222222222222", Model: "amazon.nova-lite-v1:0", Tier: "default", Requests: 4, InputTokens: 8}},
	}}
	r := NewReports(ReportOptions{Ledger: &fakeLedger{}, Days: days, Snapshot: func() Snapshot { return snap }, Prices: testPrices(t),
		Now: func() time.Time { return time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC) }})
	cases := []struct {
		groupBy string
		day2    []string // group keys on 2 November
	}{
		{"", []string{"Development", "data-science", "ml"}},
		{"account", []string{"222222222222", "333333333333"}},
		{"entitlement", []string{"copy", "support-llm"}},
		{"model", []string{"amazon.nova-lite-v1:0", haiku}},
	}
	for _, tc := range cases {
		rep, err := r.Daily(context.Background(), DailyQuery{GroupBy: tc.groupBy})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Month != "2026-11" || len(rep.Days) != 30 || rep.Days[0].Date != "2026-11-01" || rep.Days[0].Groups == nil || len(rep.Days[0].Groups) != 0 {
			t.Fatalf("%s: report %+v", tc.groupBy, rep)
		}
		var keys []string
		for _, g := range rep.Days[1].Groups {
			keys = append(keys, g.Key)
		}
		if fmt.Sprint(keys) != fmt.Sprint(tc.day2) {
			t.Errorf("group_by %q: 2 November groups %v, want %v", tc.groupBy, keys, tc.day2)
		}
	}
	rep, err := r.Daily(context.Background(), DailyQuery{Month: "2026-11", GroupBy: "team"})
	if err != nil {
		t.Fatal(err)
	}
	dev := rep.Days[1].Groups[0]
	// 1M input tokens of haiku at $0.8 per million, 10 output at $4 per million.
	if dev.Key != "Development" || dev.Requests != 2 || dev.InputTokens != 1_000_000 || dev.CostUSD.String() != "0.800040" {
		t.Errorf("development on 2 November %+v (cost %s)", dev, dev.CostUSD)
	}
	ds := rep.Days[1].Groups[1]
	if ds.CacheReadInputTokens != 7 || rep.Days[1].Groups[2].CacheWriteInputTokens != 2 {
		t.Errorf("cache tokens %+v %+v", ds, rep.Days[1].Groups[2])
	}
	if g := rep.Days[29].Groups; len(g) != 1 || g[0].Requests != 4 {
		t.Errorf("30 November %+v", g)
	}

	for _, q := range []DailyQuery{{Month: "2026-13"}, {Month: "nov"}, {GroupBy: "tier"}, {GroupBy: "x"}} {
		if _, err := r.Daily(context.Background(), q); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%+v: %v, want ErrInvalidQuery", q, err)
		}
	}
	if _, err := NewReports(ReportOptions{Ledger: &fakeLedger{}}).Daily(context.Background(), DailyQuery{}); err == nil {
		t.Error("Daily without a per-day ledger succeeded")
	}
}
