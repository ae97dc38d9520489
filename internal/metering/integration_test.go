package metering

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestAlertsOverRealLimiter drives a real quota.Limiter on redis-server: its
// alert crossings reach a webhook through the Notifier. (The reports over the
// same ledger are tested in internal/server, which wires them.)
func TestAlertsOverRealLimiter(t *testing.T) {
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
