package metering

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestReportsOverRealLedger drives a real quota.Limiter on redis-server:
// its ledger feeds the report (including an entitlement no longer in the
// state, found by LedgerScanner), its Status feeds Remaining, and its alert
// crossings reach a webhook through the Notifier.
func TestReportsOverRealLedger(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })

	rcv := newReceiver(t, "hook-secret", 200)
	notifier := NewNotifier(NotifierOptions{URL: rcv.srv.URL, Secret: "hook-secret", Backoff: time.Millisecond})
	lim, err := quota.New(quota.Options{Client: client, Prefix: "mt", OnAlert: notifier.Alert,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
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
	capped := []quota.Cap{{Level: quota.LevelEntitlement, Target: "support-llm", Limit: 1_000, Thresholds: []int{50, 80, 100}}}
	use("support-llm", "222222222222", haiku, capped, bedrock.Usage{InputTokens: 300, OutputTokens: 200, CacheReadTokens: 5})
	use("support-llm", "333333333333", haiku, capped, bedrock.Usage{InputTokens: 300, OutputTokens: 10})
	use("copy", "333333333333", "amazon.nova-lite-v1:0", nil, bedrock.Usage{InputTokens: 1_000_000})
	use("deleted-one", "111111111111", "amazon.nova-lite-v1:0", nil, bedrock.Usage{OutputTokens: 1_000_000})
	if err := lim.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	scanner := &LedgerScanner{Client: client, Prefix: "mt"}
	names, err := scanner.Entitlements(ctx, month)
	if err != nil || !slices.Equal(names, []string{"copy", "deleted-one", "support-llm"}) {
		t.Fatalf("scanned %v, %v", names, err)
	}
	snap := testSnapshot(t)
	reports := NewReports(ReportOptions{Ledger: lim, Status: lim, Snapshot: func() *authz.Snapshot { return snap },
		Prices: testPrices(t), ExtraEntitlements: scanner.Entitlements})
	_, csv, err := reports.Usage(ctx, admin.UsageQuery{Month: month, GroupBy: "entitlement", Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	// support-llm: two ledger lines, 300*0.8 + 200*4 + 5*0.08 = 1040.4 µ$ -> 1040
	// and 300*0.8 + 10*4 = 280 µ$: 0.001320.
	want := CSVHeader + "\n" +
		month + ",,,copy,,1,1000000,0,0,0,1000000,0.060000,0,\n" +
		month + ",,,deleted-one,,1,0,1000000,0,0,1000000,0.240000,0,\n" +
		month + ",,,support-llm,,2,600,210,5,0,815,0.001320,0,\n" +
		"total,,,,,4,1000600,1000210,5,0,2000815,0.301320,0,\n"
	if string(csv) != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", csv, want)
	}

	q, err := reports.Quota(ctx, "support-llm")
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Caps) != 4 || q.Caps[0].Used != 810 || q.Caps[0].Remaining != 999_190 || q.Month != month {
		t.Errorf("quota %+v", q)
	}

	if err := lim.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closeNotifier(t, notifier)
	// The 1000-token test cap was crossed at 50% and 80% (810 used), once each.
	_, accepted, sigOK := rcv.snapshot()
	var got []int
	for _, p := range accepted {
		got = append(got, p.Threshold)
		if p.Entitlement != "support-llm" || p.Cap != 1_000 || p.Month != month {
			t.Errorf("alert %+v", p)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{50, 80}) || slices.Contains(sigOK, false) {
		t.Errorf("alerts at %v (signatures %v), want 50 and 80", got, sigOK)
	}
	if !strings.HasPrefix(month, "20") {
		t.Errorf("month %q", month)
	}
}
