package quota

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func TestLeaseSizing(t *testing.T) {
	t.Parallel()
	base := leaseSizing{Window: 300 * time.Millisecond, Estimate: 100, MinRequests: 4, K: 4, Replicas: 3}
	tests := []struct {
		name     string
		z        func(z leaseSizing) leaseSizing
		tokens   int64
		ask      leaseAsk
		ok       bool
		describe string
	}{
		{"no history: the smallest useful lease", func(z leaseSizing) leaseSizing { return z },
			400, leaseAsk{div: 12, min: 400, requests: 1}, true, ""},
		{"proportional to the recent rate", func(z leaseSizing) leaseSizing { z.RateTokens = 100_000; return z },
			30_000, leaseAsk{div: 12, min: 400, requests: 1}, true, ""},
		{"more replicas divide what is left finer", func(z leaseSizing) leaseSizing { z.Replicas = 10; return z },
			400, leaseAsk{div: 40, min: 400, requests: 1}, true, ""},
		{"zero replicas count as one", func(z leaseSizing) leaseSizing { z.Replicas = 0; return z },
			400, leaseAsk{div: 4, min: 400, requests: 1}, true, ""},
		{"TPM shares like a cap", func(z leaseSizing) leaseSizing { z.RateTokens = 100_000; z.TPM = 120_000; return z },
			10_000, leaseAsk{div: 12, min: 400, requests: 1}, true, ""},
		{"TPM too small for a lease", func(z leaseSizing) leaseSizing { z.TPM = 4000; return z },
			0, leaseAsk{}, false, ""},
		{"RPM slots from the request rate", func(z leaseSizing) leaseSizing { z.RPM = 6000; z.RateRequests = 100; return z },
			400, leaseAsk{div: 12, min: 400, requests: 30}, true, ""},
		{"RPM slots never above the replica's share", func(z leaseSizing) leaseSizing { z.RPM = 120; z.RateRequests = 1000; return z },
			400, leaseAsk{div: 12, min: 400, requests: 10}, true, ""},
		{"RPM too small for a lease", func(z leaseSizing) leaseSizing { z.RPM = 6; return z },
			0, leaseAsk{}, false, ""},
		{"zero estimate still leases", func(z leaseSizing) leaseSizing { z.Estimate = 0; return z },
			1, leaseAsk{div: 12, min: 1, requests: 1}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tokens, ask, ok := tt.z(base).size()
			if tokens != tt.tokens || ask != tt.ask || ok != tt.ok {
				t.Fatalf("size() = %d, %+v, %v; want %d, %+v, %v", tokens, ask, ok, tt.tokens, tt.ask, tt.ok)
			}
		})
	}
}

func TestLeaseKey(t *testing.T) {
	t.Parallel()
	a := Request{Entitlement: "e", Account: "111111111111", Caps: []Cap{{Level: LevelEntitlement, Target: "e", Limit: 10}}}
	b := a
	b.Account = "222222222222"
	if leaseKey(&a) != leaseKey(&b) {
		t.Error("accounts without rate limits or account caps should share leases")
	}
	b.RequestsPerMinute = 5
	a.RequestsPerMinute = 5
	if leaseKey(&a) == leaseKey(&b) {
		t.Error("rate limits are per account: leases must be too")
	}
	c := a
	c.Caps = []Cap{{Level: LevelEntitlement, Target: "e", Limit: 9}}
	if leaseKey(&a) == leaseKey(&c) {
		t.Error("a changed limit must be another lease")
	}
}

// leaseLimiter is a limiter with leases on (three replicas seen unless said).
func leaseLimiter(t testing.TB, c redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	opts.Leases.Enabled = true
	if opts.Leases.Replicas == nil {
		opts.Leases.Replicas = fixedReplicas(3)
	}
	return newTestLimiter(t, c, opts)
}

type fixedReplicas int

func (n fixedReplicas) ReplicaCount() int { return int(n) }

// countHook counts the round trips a client makes (a pipeline is one).
type countHook struct{ calls atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.calls.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.calls.Add(1)
		return next(ctx, cmds)
	}
}

func closeNow(t testing.TB, l *Limiter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestLeaseStrictAcrossReplicas: 200 concurrent clients over three replicas
// with leases on one real Redis never exceed a strict cap by a token, end
// with it nearly used, and the ledger and the cap's used equal, to the token,
// what the admitted calls used.
func TestLeaseStrictAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ent := entName(t)
	const limit = 200_000
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: limit}, {Level: LevelShare, Target: "o-aaaaaaaaaa", Limit: limit * 2}}
	var replicas [3]*Limiter
	for i := range replicas {
		replicas[i] = leaseLimiter(t, singleClient(t, srv), Options{})
	}
	var admitted, used, refused atomic.Int64
	var wg sync.WaitGroup
	for c := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := replicas[c%3]
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for {
				est := int64(50 + rng.IntN(250))
				req := Request{Entitlement: ent, Account: fmt.Sprintf("%012d", c%7), Model: fmt.Sprintf("m%d", c%2), Caps: caps, Tokens: est}
				r, err := l.Reserve(context.Background(), req)
				if err != nil {
					if asCapErr(err) == nil {
						t.Errorf("reserve: %v", err)
					}
					refused.Add(1)
					return
				}
				admitted.Add(1)
				if rng.IntN(10) == 0 {
					_ = l.Release(context.Background(), r)
					continue
				}
				// Strict: the usage never exceeds the estimate.
				in := rng.Int64N(est/2 + 1)
				out := rng.Int64N(est - in + 1)
				used.Add(in + out)
				_ = l.Settle(context.Background(), r, in+out, bedrock.Usage{InputTokens: in, OutputTokens: out})
			}
		}()
	}
	wg.Wait()
	for _, l := range replicas {
		closeNow(t, l)
	}
	st := capStatus(t, newTestLimiter(t, singleClient(t, srv), Options{}), ent, caps...)
	if st[0].Used != used.Load() {
		t.Errorf("cap used %d, want %d (the calls' usage)", st[0].Used, used.Load())
	}
	if st[0].Used > limit {
		t.Errorf("cap used %d exceeds the limit %d", st[0].Used, limit)
	}
	if st[0].Reserved != 0 || st[1].Reserved != 0 {
		t.Errorf("reserved after Close: %d, %d; want 0", st[0].Reserved, st[1].Reserved)
	}
	// Nearly used: clients stop at their first refusal, when what is left
	// (less than a request) plus the other replicas' last, small leases
	// (each at most 1/12 of what was left) is all that remains unused.
	if left := limit - st[0].Used; left > limit/20 {
		t.Errorf("%d of %d tokens left: the cap was not nearly used", left, limit)
	}
	var ledger int64
	var reqs, errs int64
	l := replicas[0]
	rows, err := l.Ledger(context.Background(), st[0].Month, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		ledger += r.CountedTokens
		reqs += r.Requests
		errs += r.Errors
	}
	if ledger != used.Load() || reqs+errs != admitted.Load() {
		t.Errorf("ledger counted %d, requests+errors %d; want %d and %d", ledger, reqs+errs, used.Load(), admitted.Load())
	}
	var stats LeaseStats
	for _, l := range replicas {
		s := l.LeaseStats()
		stats.Acquired += s.Acquired
		stats.Admitted += s.Admitted
		stats.PerRequest += s.PerRequest
	}
	t.Logf("admitted %d, refused %d, used %d of %d; leases taken %d, admitted against leases %d, per request %d",
		admitted.Load(), refused.Load(), st[0].Used, limit, stats.Acquired, stats.Admitted, stats.PerRequest)
	if stats.Admitted == 0 {
		t.Error("no request was admitted against a lease")
	}
}

// TestLeaseRoundTrips counts Redis round trips per request at steady state.
func TestLeaseRoundTrips(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	hook := &countHook{}
	client := singleClient(t, srv)
	client.AddHook(hook)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 40}}
	l := leaseLimiter(t, client, Options{HealthInterval: time.Hour})
	run := func(n int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 8 {
					r, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100 + int64(w)})
					if err != nil {
						t.Error(err)
						return
					}
					_ = l.Settle(context.Background(), r, 50, bedrock.Usage{InputTokens: 20, OutputTokens: 30})
				}
			}()
		}
		wg.Wait()
	}
	run(4000) // warm up: the lease grows with the rate
	before := hook.calls.Load()
	const n = 40000
	run(n)
	flush(t, l)
	calls := hook.calls.Load() - before
	perReq := float64(calls) / n
	t.Logf("%d Redis round trips for %d requests: %.4f per request (leases taken: %d)", calls, n, perReq, l.LeaseStats().Acquired)
	if perReq > 0.05 {
		t.Errorf("%.4f round trips per request, want at most 0.05", perReq)
	}
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	if want := int64(50 * (4000 + n)); st[0].Used != want || st[0].Reserved != 0 {
		t.Errorf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, want)
	}
}

// TestLeaseCrashStrandsAtMostItsLease: a replica that stops without Close
// leaves its lease reserved until the reservation TTL, no longer.
func TestLeaseCrashStrandsAtMostItsLease(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 100_000}}
	clock := &testClock{}
	crashClient := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	crashed := leaseLimiter(t, crashClient, Options{Clock: clock, ReservationTTL: time.Minute})
	r := mustReserve(t, crashed, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 1000})
	if r.lease == nil {
		t.Fatal("not admitted against a lease")
	}
	leased := r.lease.redisTokens
	other := newTestLimiter(t, singleClient(t, srv), Options{Clock: clock})
	st := capStatus(t, other, ent, caps...)
	if st[0].Reserved != leased || leased < 1000 || leased > 100_000/12 {
		t.Fatalf("reserved %d, lease %d: want the lease, at least the request, at most 1/12 of the cap", st[0].Reserved, leased)
	}
	// Crash: the process is gone, nothing of it reaches Redis any more.
	_ = crashClient.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = crashed.Close(ctx)

	st = capStatus(t, other, ent, caps...)
	if st[0].Reserved != leased {
		t.Fatalf("reserved %d before the TTL, want the stranded lease %d", st[0].Reserved, leased)
	}
	// Past the TTL (Redis time moved on, no waiting) the lease is freed.
	clock.offset.Add((time.Minute + time.Second).Milliseconds())
	st = capStatus(t, other, ent, caps...)
	if st[0].Reserved != 0 || st[0].Used != 0 {
		t.Fatalf("after the TTL: reserved %d used %d, want 0 and 0", st[0].Reserved, st[0].Used)
	}
	// The whole cap is usable again.
	mustReserve(t, other, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100_000})
}

// TestLeaseLoweredCap: a cap lowered below what is used admits nothing more,
// on the next request, although the replica held a lease.
func TestLeaseLoweredCap(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 100_000}}
	l := leaseLimiter(t, client, Options{})
	for range 10 {
		r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 500})
		if err := l.Settle(context.Background(), r, 400, bedrock.Usage{InputTokens: 400}); err != nil {
			t.Fatal(err)
		}
	}
	if l.LeaseStats().Admitted == 0 {
		t.Fatal("nothing admitted against a lease")
	}
	// The operator lowers the cap to 3000 (used is 4000 once written); the
	// snapshot change drops the leases.
	l.DropLeases(ent)
	lowered := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 3000}}
	_, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Model: "m", Caps: lowered, Tokens: 1})
	if asCapErr(err) == nil {
		t.Fatalf("reserve under a cap lowered below used: %v, want cap exceeded", err)
	}
	flush(t, l)
	st := capStatus(t, l, ent, lowered...)
	if st[0].Used != 4000 || st[0].Reserved != 0 {
		t.Fatalf("used %d reserved %d, want 4000 and 0 (the lease returned)", st[0].Used, st[0].Reserved)
	}
}

// TestLeaseDroppedOnSnapshotChange: dropping an entitlement's leases returns
// what they hold, and the next request takes a new one.
func TestLeaseDroppedOnSnapshotChange(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1_000_000}}
	l := leaseLimiter(t, client, Options{})
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	first := r.lease
	l.DropLeases("another-entitlement")
	r2 := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	if r2.lease != first {
		t.Fatal("another entitlement's change dropped this one's lease")
	}
	l.DropLeases(ent)
	r3 := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	if r3.lease == nil || r3.lease == first {
		t.Fatal("the next request after a drop did not take a new lease")
	}
	// The dropped lease shrank to what its two calls in flight need.
	flush(t, l)
	if st := capStatus(t, l, ent, caps...); st[0].Reserved != 200+r3.lease.redisTokens {
		t.Fatalf("reserved %d, want the calls in flight of the old lease (200) and the new lease %d", st[0].Reserved, r3.lease.redisTokens)
	}
	for _, r := range []*Reservation{r, r2, r3} {
		if err := l.Settle(context.Background(), r, 10, bedrock.Usage{OutputTokens: 10}); err != nil {
			t.Fatal(err)
		}
	}
	closeNow(t, l)
	other := newTestLimiter(t, client, Options{})
	if st := capStatus(t, other, ent, caps...); st[0].Used != 30 || st[0].Reserved != 0 {
		t.Fatalf("after Close: used %d reserved %d, want 30 and 0", st[0].Used, st[0].Reserved)
	}
	if row := ledgerRow(t, other, st0Month(t, other, ent, caps), ent, acct, "m"); row.Requests != 3 || row.OutputTokens != 30 || row.CountedTokens != 30 {
		t.Fatalf("ledger %+v, want 3 requests, 30 output tokens", row)
	}
}

func st0Month(t *testing.T, l *Limiter, ent string, caps []Cap) string {
	t.Helper()
	return capStatus(t, l, ent, caps...)[0].Month
}

// TestLeaseMonthBoundary: near the end of a month (by Redis time) requests
// reserve on their own, so no lease outlives its month.
func TestLeaseMonthBoundary(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1_000_000}}
	l := leaseLimiter(t, client, Options{})
	monthEnd := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l.setNow(monthEnd.Add(-5 * time.Second))
	for range 3 {
		r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
		if r.lease != nil {
			t.Fatal("admitted against a lease 5s before the month ends")
		}
		if r.Month != "2026-11" {
			t.Fatalf("month %s", r.Month)
		}
		if err := l.Settle(context.Background(), r, 100, bedrock.Usage{InputTokens: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.LeaseStats(); s.Admitted != 0 || s.PerRequest != 3 {
		t.Fatalf("stats %+v, want three requests on their own", s)
	}
	// In the new month leases are back, and belong to it.
	l.setNow(monthEnd.Add(time.Minute))
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	if r.lease == nil || r.Month != "2026-12" {
		t.Fatalf("after the boundary: lease %v month %s", r.lease != nil, r.Month)
	}
}

// TestLeaseIdleReturn: a lease nothing is admitted against is returned after
// IdleTimeout, its usage written; driven by a fake clock.
func TestLeaseIdleReturn(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1_000_000}}
	timers := &fakeClock{only: 100 * time.Millisecond}
	clock := fakeTimers(timers)
	l := leaseLimiter(t, client, Options{Clock: clock, Leases: LeaseOptions{FlushInterval: 100 * time.Millisecond}})
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	if err := l.Settle(context.Background(), r, 60, bedrock.Usage{InputTokens: 60}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	if st := capStatus(t, l, ent, caps...); st[0].Reserved == 0 {
		t.Fatal("no lease held")
	}
	// One tick writes the usage; the lease stays while not idle.
	wait.For(t, "the lease loop to wait on its timer", 10*time.Second, func() bool { return timers.waiting(100*time.Millisecond) > 0 })
	timers.advance(100 * time.Millisecond)
	wait.For(t, "the usage to be written", 10*time.Second, func() bool {
		flush(t, l)
		return capStatus(t, l, ent, caps...)[0].Used == 60
	})
	// Idle for IdleTimeout (the local clock moves on): returned at the next tick.
	clock.skew.Store((2 * time.Second).Milliseconds())
	wait.For(t, "the idle lease to be returned", 10*time.Second, func() bool {
		if timers.waiting(100*time.Millisecond) > 0 {
			timers.advance(100 * time.Millisecond)
		}
		flush(t, l)
		st := capStatus(t, l, ent, caps...)
		return st[0].Reserved == 0 && st[0].Used == 60
	})
	if s := l.LeaseStats(); s.Returned != 1 {
		t.Fatalf("stats %+v, want one lease returned", s)
	}
}

// TestLeaseCloseReturns: Close returns every lease and writes the usage,
// including calls still in flight that settle after it.
func TestLeaseCloseReturns(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1_000_000}, {Level: LevelAccount, Target: acct, Limit: 500_000}}
	l := leaseLimiter(t, client, Options{})
	var rs []*Reservation
	for i := range 5 {
		rs = append(rs, mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100, Team: "t", Tier: []string{"", "flex"}[i%2]}))
	}
	for _, r := range rs[:4] {
		if err := l.Settle(context.Background(), r, 70, bedrock.Usage{InputTokens: 30, OutputTokens: 40, Estimated: true}); err != nil {
			t.Fatal(err)
		}
	}
	closeNow(t, l)
	other := newTestLimiter(t, client, Options{})
	for _, st := range capStatus(t, other, ent, caps...) {
		if st.Used != 280 || st.Reserved != 0 {
			t.Fatalf("%s: used %d reserved %d, want 280 and 0", st.Level, st.Used, st.Reserved)
		}
	}
	rows, err := other.Ledger(context.Background(), rs[0].Month, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Requests+rows[1].Requests != 4 || rows[0].Estimated+rows[1].Estimated != 4 ||
		rows[0].Team != "t" || rows[0].InputTokens+rows[1].InputTokens != 120 {
		t.Fatalf("ledger rows %+v", rows)
	}
}

// TestLeaseRateLimit: leased RPM never admits more than the limit across
// replicas; it may admit fewer while other replicas' leases hold slots
// (returned leases give theirs back: testLeaseSlotsBack), which the test
// reports.
func TestLeaseRateLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ent := entName(t)
	const rpm = 120
	var replicas [3]*Limiter
	for i := range replicas {
		replicas[i] = leaseLimiter(t, singleClient(t, srv), Options{})
	}
	start := time.Now()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for c := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := replicas[c%3]
			for range 40 {
				r, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Model: "m", RequestsPerMinute: rpm, Tokens: 10})
				if err != nil {
					if asRateErr(err) == nil {
						t.Errorf("reserve: %v", err)
					}
					continue
				}
				admitted.Add(1)
				_ = l.Settle(context.Background(), r, 10, bedrock.Usage{InputTokens: 10})
			}
		}()
	}
	wg.Wait()
	// GCRA refills rpm/60 requests a second: whatever the machine's speed,
	// no more than the burst (rpm) plus what the time the test took refilled
	// may pass.
	refill := int64(time.Since(start).Seconds()*rpm/60) + 1
	t.Logf("RPM %d: admitted %d of 1200 attempts, at most %d allowed (leases taken %d)", rpm, admitted.Load(), rpm+refill,
		replicas[0].LeaseStats().Acquired+replicas[1].LeaseStats().Acquired+replicas[2].LeaseStats().Acquired)
	if admitted.Load() > rpm+refill {
		t.Errorf("admitted %d, more than the limit allows (%d)", admitted.Load(), rpm+refill)
	}
	if admitted.Load() < rpm/2 {
		t.Errorf("admitted %d of a limit of %d: leases wasted too many request slots", admitted.Load(), rpm)
	}
}

// pathKey marks a request's context, so pathHook can count the round trips
// made while a request waits (background work uses other contexts).
type pathKey struct{}

// pathHook counts the round trips made on a marked request's context.
type pathHook struct{ calls atomic.Int64 }

func (h *pathHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *pathHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(pathKey{}) != nil {
			h.calls.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *pathHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(pathKey{}) != nil {
			h.calls.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestLeaseTakenAhead: on a key with steady traffic, the next lease is taken
// in the background once the current one is half spent, so after the first
// lease no request waits for Redis; caps and the ledger stay exact.
func TestLeaseTakenAhead(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	hook := &pathHook{}
	client := singleClient(t, srv)
	client.AddHook(hook)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 30}}
	// A short window: leases of a few requests each, so many are taken.
	l := leaseLimiter(t, client, Options{HealthInterval: time.Hour, Leases: LeaseOptions{Window: time.Millisecond}})
	ctx := context.WithValue(context.Background(), pathKey{}, true)
	const n = 300
	for i := range n {
		r, err := l.Reserve(ctx, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
		if err != nil {
			t.Fatal(err)
		}
		if r.lease == nil {
			t.Fatalf("request %d not admitted against a lease", i)
		}
		if err := l.Settle(ctx, r, 40, bedrock.Usage{InputTokens: 10, OutputTokens: 30}); err != nil {
			t.Fatal(err)
		}
		// Requests arrive spaced out, as at a moderate rate: a lease taken
		// ahead is in place before the next one.
		l.leases.bg.Wait()
	}
	stats := l.LeaseStats()
	t.Logf("%d requests: %d round trips on the request path; leases taken %d, %d of them ahead", n, hook.calls.Load(), stats.Acquired, stats.Ahead)
	if got := hook.calls.Load(); got != 1 {
		t.Errorf("%d round trips on the request path, want 1 (the first lease)", got)
	}
	if stats.Acquired < 3 || stats.Ahead != stats.Acquired-1 || stats.PerRequest != 0 {
		t.Errorf("stats %+v: want several leases, all but the first taken ahead, none per request", stats)
	}
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	if st[0].Used != 40*n || st[0].Reserved != 0 {
		t.Errorf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, 40*n)
	}
}

// TestLeaseTakenAheadNearCapEnd: leases taken ahead never let a cap be
// exceeded; near its end the key falls back to per-request reservations.
func TestLeaseTakenAheadNearCapEnd(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ent := entName(t)
	const limit = 10_000
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: limit}}
	l := leaseLimiter(t, client, Options{})
	var used int64
	for retried := false; ; {
		r, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
		if err != nil {
			if asCapErr(err) == nil {
				t.Fatal(err)
			}
			if retried {
				break
			}
			// What replaced leases still held is queued; once written, the
			// cap is refused only when it is spent.
			flush(t, l)
			retried = true
			continue
		}
		retried = false
		used += 100
		if err := l.Settle(context.Background(), r, 100, bedrock.Usage{OutputTokens: 100}); err != nil {
			t.Fatal(err)
		}
		l.leases.bg.Wait()
	}
	stats := l.LeaseStats()
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	t.Logf("used %d of %d; stats %+v", st[0].Used, limit, stats)
	// Spent but for the current lease's last tokens and what is left in
	// Redis (each less than a request).
	if st[0].Used != used || used > limit || limit-used >= 2*100 || st[0].Reserved != 0 {
		t.Errorf("used %d (calls %d) reserved %d, want the cap %d spent to the last request and nothing reserved", st[0].Used, used, st[0].Reserved, limit)
	}
	if stats.Ahead == 0 || stats.PerRequest == 0 {
		t.Errorf("stats %+v: want leases taken ahead, then per-request reservations at the end", stats)
	}
}

// aheadGate holds the reserve script runs made off the request path (leases
// taken ahead) until the test lets them go.
type aheadGate struct {
	sha     string
	reached chan struct{}
	release chan struct{}
}

func (g *aheadGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *aheadGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); ctx.Value(pathKey{}) == nil && len(args) > 1 && args[0] == "evalsha" && args[1] == g.sha {
			g.reached <- struct{}{}
			<-g.release
		}
		return next(ctx, cmd)
	}
}

func (g *aheadGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLeaseTakenAheadRaces: a lease being taken ahead when the key's leases
// are dropped (a new snapshot) or the limiter closes is given back, never
// admits, and nothing stays reserved.
func TestLeaseTakenAheadRaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"dropped", "closed"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			client := singleClient(t, srv)
			gate := &aheadGate{sha: redis.NewScript(reserveLua).Hash(), reached: make(chan struct{}), release: make(chan struct{})}
			client.AddHook(gate)
			path := &pathHook{}
			client.AddHook(path)
			ent := entName(t)
			caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 30}}
			l := leaseLimiter(t, client, Options{HealthInterval: time.Hour})
			ctx := context.WithValue(context.Background(), pathKey{}, true)
			req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
			// The first lease holds MinRequests (4) requests; the third
			// leaves it half spent and a lease is asked for ahead.
			var rs []*Reservation
			for range 3 {
				r, err := l.Reserve(ctx, req)
				if err != nil || r.lease == nil {
					t.Fatalf("reserve: %v (lease %v)", err, r != nil && r.lease != nil)
				}
				rs = append(rs, r)
			}
			<-gate.reached
			closed := make(chan error, 1)
			switch tc {
			case "dropped":
				l.DropLeases(ent)
				close(gate.release)
				l.leases.bg.Wait()
				// The next request is decided afresh: a new lease, asked
				// for on its own path.
				before := path.calls.Load()
				r := mustReserveCtx(t, l, ctx, req)
				if r.lease == nil || r.lease == rs[0].lease || path.calls.Load() == before {
					t.Fatal("after DropLeases the request did not take a new lease of its own")
				}
				rs = append(rs, r)
			case "closed":
				go func() { closed <- l.Close(context.Background()) }()
				close(gate.release)
				if err := <-closed; err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range rs {
				_ = l.Settle(context.Background(), r, 50, bedrock.Usage{OutputTokens: 50})
			}
			closeNow(t, l)
			st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
			if want := int64(50 * len(rs)); st[0].Used != want || st[0].Reserved != 0 {
				t.Errorf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, want)
			}
			if s := l.LeaseStats(); s.Ahead != 1 {
				t.Errorf("stats %+v, want the one lease taken ahead", s)
			}
		})
	}
}

func mustReserveCtx(t testing.TB, l *Limiter, ctx context.Context, req Request) *Reservation {
	t.Helper()
	r, err := l.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failAhead fails the reserve script runs made off the request path (leases
// taken ahead), counting them.
type failAhead struct {
	sha   string
	calls atomic.Int64
}

func (f *failAhead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failAhead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); ctx.Value(pathKey{}) == nil && len(args) > 1 && args[0] == "evalsha" && args[1] == f.sha {
			f.calls.Add(1)
			err := errors.New("injected: connection reset")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (f *failAhead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLeaseTakenAheadBacksOff: when Redis fails to grant the lease taken
// ahead, requests go on spending the current lease, and the next attempt
// waits FlushInterval instead of following every request.
func TestLeaseTakenAheadBacksOff(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	fail := &failAhead{sha: redis.NewScript(reserveLua).Hash()}
	client.AddHook(fail)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 30}}
	clock := &testClock{}
	l := leaseLimiter(t, client, Options{Clock: clock, HealthInterval: time.Hour, Leases: LeaseOptions{MinRequests: 20}})
	ctx := context.WithValue(context.Background(), pathKey{}, true)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
	var rs []*Reservation
	admit := func(n int) {
		for range n {
			r := mustReserveCtx(t, l, ctx, req)
			if r.lease == nil || r.lease != rs0(rs, r) {
				t.Fatal("not admitted against the first lease")
			}
			rs = append(rs, r)
			l.leases.bg.Wait()
		}
	}
	// A lease of 20 requests: half spent after 10; the attempt fails, and
	// the next 5 requests start none.
	admit(15)
	if got := fail.calls.Load(); got != 1 {
		t.Fatalf("%d attempts to take a lease ahead, want 1", got)
	}
	// FlushInterval (500ms) later, the next request tries again.
	clock.skew.Store((600 * time.Millisecond).Milliseconds())
	admit(1)
	if got := fail.calls.Load(); got != 2 {
		t.Fatalf("%d attempts after the back-off, want 2", got)
	}
	for _, r := range rs {
		_ = l.Settle(context.Background(), r, 40, bedrock.Usage{OutputTokens: 40})
	}
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	if want := int64(40 * len(rs)); st[0].Used != want || st[0].Reserved != 0 {
		t.Errorf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, want)
	}
}

// rs0 is the lease of the first reservation (r's own for the first).
func rs0(rs []*Reservation, r *Reservation) *lease {
	if len(rs) == 0 {
		return r.lease
	}
	return rs[0].lease
}

// testLeaseSlotsBack (in TestCore, single node and cluster): a lease takes
// request slots from the account's RPM limit; returned, it gives back those
// it never used, so the account can still make its full RPM that minute.
func testLeaseSlotsBack(t *testing.T, client redis.UniversalClient) {
	ent := entName(t)
	const rpm = 60
	req := Request{Entitlement: ent, Account: acct, Model: "m", RequestsPerMinute: rpm, Tokens: 10}
	start := time.Now()
	leased := leaseLimiter(t, client, Options{})
	r := mustReserve(t, leased, req)
	if r.lease == nil || r.lease.grantedSlots < 2 {
		t.Fatalf("not admitted against a lease of several request slots (lease %v)", r.lease != nil)
	}
	slots := r.lease.grantedSlots
	if err := leased.Settle(context.Background(), r, 10, bedrock.Usage{InputTokens: 10}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, leased) // returns the lease, one slot used
	// Per request from here: the minute's budget is rpm minus the one call.
	plain := newTestLimiter(t, client, Options{})
	admitted := 0
	for range rpm + 10 {
		r, err := plain.Reserve(context.Background(), req)
		if err != nil {
			if asRateErr(err) == nil {
				t.Fatal(err)
			}
			break
		}
		admitted++
		_ = plain.Release(context.Background(), r)
	}
	refill := int(time.Since(start).Seconds()*rpm/60) + 1
	t.Logf("lease took %d slots and used 1; then %d admitted one by one (refill allowance %d)", slots, admitted, refill)
	if admitted < rpm-1 || admitted > rpm-1+refill {
		t.Errorf("admitted %d after the lease was returned, want %d (the limit less the one call; up to %d with refill)", admitted, rpm-1, rpm-1+refill)
	}
}

// TestLeaseTakenAheadSurvivesSlowKeys: at a few requests a second the lease
// taken ahead may wait longer than IdleTimeout behind a current lease still
// in use; it is kept (the key is not idle), not returned and asked for again.
func TestLeaseTakenAheadSurvivesSlowKeys(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	path := &pathHook{}
	client.AddHook(path)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 30}}
	clock := &testClock{}
	// The loop never ticks on its own: the test ticks it at the times it picks.
	l := leaseLimiter(t, client, Options{Clock: clock, HealthInterval: time.Hour, Leases: LeaseOptions{FlushInterval: time.Hour}})
	ctx := context.WithValue(context.Background(), pathKey{}, true)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
	var rs []*Reservation
	admit := func() {
		t.Helper()
		rs = append(rs, mustReserveCtx(t, l, ctx, req))
		l.leases.bg.Wait()
	}
	tickAt := func(d time.Duration) {
		clock.skew.Store(d.Milliseconds())
		l.tickLeases(l.now())
	}
	// A first lease of 4 requests (MinRequests); the third leaves it half
	// spent and the next one is taken ahead.
	admit()
	admit()
	admit()
	tickAt(900 * time.Millisecond)
	admit() // the first lease's last request
	// The lease taken ahead has now waited 1.8s; the key was used 0.9s ago.
	tickAt(1800 * time.Millisecond)
	admit() // on the lease taken ahead, no round trip
	stats := l.LeaseStats()
	if got := path.calls.Load(); got != 1 || stats.Acquired != 2 || stats.Ahead != 1 {
		t.Errorf("%d round trips on the request path, stats %+v: want 1 (the first lease) and two leases, one taken ahead", got, stats)
	}
	if rs[4].lease == rs[0].lease {
		t.Error("the fifth request was admitted against the first lease, which held four")
	}
	for _, r := range rs {
		_ = l.Settle(context.Background(), r, 40, bedrock.Usage{OutputTokens: 40})
	}
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	if want := int64(40 * len(rs)); st[0].Used != want || st[0].Reserved != 0 {
		t.Errorf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, want)
	}
}

// TestLeaseWhileRedisAway: a replica cut off from Redis spends a lease only
// while it does not know and only before the lease's local deadline
// (MaxAge, at most a third of the reservation TTL, so long before Redis
// could free it); once it knows, it spends no lease at all, even one still
// within its deadline, and fail-closed refuses (fail-open admits on its
// local limiter) as without leases. Nothing admitted is lost: after the
// thaw the caps hold exactly the calls' usage.
func TestLeaseWhileRedisAway(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail_closed", true: "fail_open"}[failOpen], func(t *testing.T) {
			t.Parallel()
			testLeaseWhileRedisAway(t, failOpen)
		})
	}
}

func testLeaseWhileRedisAway(t *testing.T, failOpen bool) {
	s := redistest.Start(t)
	client := singleClient(t, s)
	ent := entName(t)
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 1 << 30}}
	clock := &testClock{}
	// No health ping and no batch write: nothing tells the limiter Redis is
	// gone but a request that needs Redis.
	l := leaseLimiter(t, client, Options{Clock: clock, Timeout: 200 * time.Millisecond, ReservationTTL: 30 * time.Second,
		FailOpenRate: 1000, FailOpenBurst: 1000, HealthInterval: time.Hour, Leases: LeaseOptions{FlushInterval: time.Hour}})
	if l.opts.Leases.MaxAge != 10*time.Second {
		t.Fatalf("MaxAge %v, want a third of the 30s TTL", l.opts.Leases.MaxAge)
	}
	ctx := context.Background()
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100, FailOpen: failOpen}
	r1 := mustReserve(t, l, req)
	if r1.lease == nil {
		t.Fatal("not admitted against a lease")
	}
	if err := l.Settle(ctx, r1, 40, bedrock.Usage{OutputTokens: 40}); err != nil {
		t.Fatal(err)
	}
	var want int64 = 40

	s.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			s.Thaw()
		}
	}()
	// Not known yet: the lease, which Redis holds, may still be spent.
	r2, err := l.Reserve(ctx, req)
	if err != nil || r2.lease != r1.lease {
		t.Fatalf("before the replica knows: %v (same lease %v), want admission against the lease", err, err == nil && r2.lease == r1.lease)
	}
	var degraded []*Reservation
	// refusedOrDegraded: what a request gets from Redis that does not
	// answer, without leases as with them.
	refusedOrDegraded := func(when string) {
		t.Helper()
		r, err := l.Reserve(ctx, req)
		switch {
		case !failOpen && !errors.Is(err, ErrStoreUnavailable):
			t.Fatalf("%s: %v, want ErrStoreUnavailable", when, err)
		case failOpen && (err != nil || r.lease != nil):
			t.Fatalf("%s: %v (lease %v), want a fail-open admission on the local limiter", when, err, err == nil && r.lease != nil)
		case failOpen:
			degraded = append(degraded, r)
		}
	}
	// Past the lease's local deadline it admits nothing more: the request
	// goes to Redis, which does not answer.
	clock.skew.Store((10 * time.Second).Milliseconds())
	refusedOrDegraded("past the lease's deadline")
	if l.Healthy() {
		t.Fatal("the limiter did not learn that Redis is unreachable")
	}
	// Known now: even back within the deadline (the local clock as before),
	// no lease is spent.
	clock.skew.Store(0)
	admitted := l.LeaseStats().Admitted
	refusedOrDegraded("while Redis is known to be away")
	if got := l.LeaseStats().Admitted; got != admitted {
		t.Fatalf("%d requests admitted against a lease while Redis was known to be away", got-admitted)
	}
	for _, r := range degraded {
		if err := l.Settle(ctx, r, 30, bedrock.Usage{OutputTokens: 30}); err != nil {
			t.Fatal(err)
		}
		want += 30
	}

	s.Thaw()
	thawed = true
	wait.For(t, "healthy after the thaw", 10*time.Second, l.Healthy)
	if err := l.Settle(ctx, r2, 60, bedrock.Usage{OutputTokens: 60}); err != nil {
		t.Fatal(err)
	}
	want += 60
	closeNow(t, l)
	st := capStatus(t, newTestLimiter(t, client, Options{}), ent, caps...)
	if st[0].Used != want || st[0].Reserved != 0 {
		t.Fatalf("used %d reserved %d, want %d and 0", st[0].Used, st[0].Reserved, want)
	}
}
