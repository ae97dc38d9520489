package quota

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func TestOutage(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	l := newTestLimiter(t, c, Options{Timeout: 300 * time.Millisecond, FailOpenRate: 1000, FailOpenBurst: 1000})
	ent := "outage"
	caps := []Cap{{Level: LevelAccount, Target: acct, Limit: 1_000_000}}
	ctx := context.Background()
	open := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100, FailOpen: true}
	closed := open
	closed.FailOpen = false

	r0 := mustReserve(t, l, closed)
	if r0.Degraded || !l.Healthy() {
		t.Fatal("degraded before the outage")
	}
	s.Stop()

	if _, err := l.Reserve(ctx, closed); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("fail-closed reserve during the outage: %v, want ErrStoreUnavailable", err)
	}
	if l.Healthy() {
		t.Error("healthy during the outage")
	}
	// Settled while Redis is down: queued and retried.
	if err := l.Settle(ctx, r0, 15, bedrock.Usage{InputTokens: 10, OutputTokens: 5}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for range n {
		r, err := l.Reserve(ctx, open)
		if err != nil {
			t.Fatalf("fail-open reserve: %v", err)
		}
		if !r.Degraded || r.Remaining != -1 || r.RemainingAt(LevelShare, LevelAccount) != -1 {
			t.Fatalf("reservation %+v, want degraded", r)
		}
		if err := l.Settle(ctx, r, 15, bedrock.Usage{InputTokens: 10, OutputTokens: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Reserve(ctx, closed); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("fail-closed reserve while degraded: %v", err)
	}

	s.Restart() // an empty server: no data, no scripts
	wait.For(t, "healthy after restart", 10*time.Second, l.Healthy)
	flush(t, l)
	got := ledgerRow(t, l, r0.Month, ent, acct, "m")
	if got.Requests != n+1 || got.InputTokens != 10*(n+1) || got.OutputTokens != 5*(n+1) {
		t.Errorf("ledger %+v, want %d requests", got, n+1)
	}
	if st := capStatus(t, l, ent, caps...); st[0].Used != 15*(n+1) {
		t.Errorf("cap used %d, want %d", st[0].Used, 15*(n+1))
	}
	if r := mustReserve(t, l, closed); r.Degraded {
		t.Error("still degraded after recovery")
	}
}

// TestDegradedAdmissionsBoundedByQueue: fail-open admissions stop when their
// settlements could no longer be queued, rather than lose ledger rows.
func TestDegradedAdmissionsBoundedByQueue(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 300 * time.Millisecond, QueueSize: 2, SpillFile: filepath.Join(t.TempDir(), "spill")})
	s.Stop()
	req := Request{Entitlement: "bounded", Account: acct, Tokens: 1, FailOpen: true}
	for range 2 {
		if r, err := l.Reserve(context.Background(), req); err != nil || !r.Degraded {
			t.Fatalf("reserve: %v %+v", err, r)
		}
	}
	if _, err := l.Reserve(context.Background(), req); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("third fail-open reserve with a queue of 2: %v, want ErrStoreUnavailable", err)
	}
}

func TestLocalFailOpenLimiter(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 300 * time.Millisecond, FailOpenRate: 0.001, FailOpenBurst: 3})
	s.Stop()
	req := Request{Entitlement: "local", Account: acct, Tokens: 1, FailOpen: true}
	for range 3 {
		if _, err := l.Reserve(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Reserve(context.Background(), req); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("beyond the local burst: %v, want ErrStoreUnavailable", err)
	}
}

func TestSpillRoundTrip(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	spill := filepath.Join(t.TempDir(), "quota-spill.jsonl")
	l := newTestLimiter(t, c, Options{Timeout: 300 * time.Millisecond, SpillFile: spill})
	ent := "spill"
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1000, Thresholds: []int{1}}}
	ctx := context.Background()
	s.Stop()
	var month string
	for i := range 3 {
		r, err := l.Reserve(ctx, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 50, FailOpen: true})
		if err != nil {
			t.Fatal(err)
		}
		month = r.Month
		if i == 2 {
			err = l.Release(ctx, r)
		} else {
			err = l.Settle(ctx, r, 40, bedrock.Usage{InputTokens: 30, OutputTokens: 10})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// A call still running at Close (cut at the shutdown deadline) settles
	// late: with Redis down its settlement goes to the spill file too.
	late, err := l.Reserve(ctx, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 50, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	data, err := os.ReadFile(spill)
	if err != nil {
		t.Fatal(err)
	}
	items, err := decodeSpill(data)
	if err != nil {
		t.Fatal(err)
	}
	// When the first reserve timed out rather than failed to connect, the
	// release of whatever it may have reserved is queued (and spilled) too.
	orphans := 0
	for _, s := range items {
		if s.Kind == kindOrphan {
			orphans++
		}
	}
	if len(items)-orphans != 3 {
		t.Fatalf("spill holds %d settlements (and %d orphan releases), want 3", len(items)-orphans, orphans)
	}
	if err := l.Settle(ctx, late, 5, bedrock.Usage{InputTokens: 3, OutputTokens: 2}); err != nil {
		t.Errorf("settle after close with a spill file: %v, want it spilled", err)
	}
	if data, err = os.ReadFile(spill); err != nil {
		t.Fatal(err)
	}
	if items, err = decodeSpill(data); err != nil || len(items)-orphans != 4 {
		t.Fatalf("spill holds %d settlements (%v) after the late settlement, want 4", len(items)-orphans, err)
	}

	s.Restart()
	var alerts []Alert
	l2 := newTestLimiter(t, c, Options{SpillFile: spill, OnAlert: func(a Alert) { alerts = append(alerts, a) }})
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file still there after reload: %v", err)
	}
	flush(t, l2)
	got := ledgerRow(t, l2, month, ent, acct, "m")
	if got.Requests != 3 || got.Errors != 1 || got.InputTokens != 63 || got.OutputTokens != 22 {
		t.Errorf("ledger after reload %+v", got)
	}
	if len(alerts) != 1 || alerts[0].Threshold != 1 {
		t.Errorf("alerts %+v, want the 1%% crossing once", alerts)
	}
}

func TestCloseWithoutSpillReportsLoss(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 200 * time.Millisecond})
	s.Stop()
	ctx := context.Background()
	r, err := l.Reserve(ctx, Request{Entitlement: "loss", Account: acct, Tokens: 1, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, r, 1, bedrock.Usage{}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := l.Close(cctx); err == nil {
		t.Fatal("close lost a settlement without saying so")
	}
}

func TestStartDegraded(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	s.Stop()
	l := newTestLimiter(t, c, Options{Timeout: 300 * time.Millisecond})
	if l.Healthy() {
		t.Fatal("healthy without Redis")
	}
	if _, err := l.Reserve(context.Background(), Request{Entitlement: "start", Account: acct}); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("reserve: %v", err)
	}
	s.Restart()
	wait.For(t, "healthy after the server started", 10*time.Second, l.Healthy)
	mustReserve(t, l, Request{Entitlement: "start", Account: acct, Caps: []Cap{{Level: LevelAccount, Target: acct, Limit: 5}}, Tokens: 5})
}

// A settlement arriving after Close while Redis answers is written at once,
// not dropped: a call cut at the shutdown deadline still reaches the ledger.
func TestSettleAfterCloseWritten(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	l := newTestLimiter(t, c, Options{})
	ctx := context.Background()
	ent := "late-write"
	r, err := l.Reserve(ctx, Request{Entitlement: ent, Account: acct, Model: "m", Tokens: 10,
		Caps: []Cap{{Level: LevelEntitlement, Target: ent, Limit: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, r, 7, bedrock.Usage{InputTokens: 4, OutputTokens: 3}); err != nil {
		t.Fatalf("settle after close: %v", err)
	}
	got := ledgerRow(t, l, r.Month, ent, acct, "m")
	if got.Requests != 1 || got.InputTokens != 4 || got.OutputTokens != 3 {
		t.Errorf("ledger %+v, want the late settlement", got)
	}
}
