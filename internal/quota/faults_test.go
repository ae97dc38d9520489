package quota

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// refreshOnce fires the refresher's timer and waits for its pass to finish.
func refreshOnce(t *testing.T, l *Limiter, clk *fakeClock) {
	t.Helper()
	wait.For(t, "the refresher to wait", 10*time.Second, func() bool { return clk.waiting(l.opts.RefreshInterval) == 1 })
	n := l.refreshRounds.Load()
	clk.advance(l.opts.RefreshInterval)
	wait.For(t, "a refresh pass", 10*time.Second, func() bool { return l.refreshRounds.Load() > n })
}

// testRefreshHoldsLongCall: a call that outlives the reservation TTL keeps its
// reservation while it runs, so a cap stays strict, and its settlement finds it.
func testRefreshHoldsLongCall(t *testing.T, c redis.UniversalClient) {
	const ttl = time.Minute
	clk := &fakeClock{only: ttl / 3} // the refresher's timer only
	var expired atomic.Int64
	l := newTestLimiter(t, c, Options{ReservationTTL: ttl, Clock: fakeTimers(clk), OnReservationExpired: func(string) { expired.Add(1) }})
	ent := entName(t)
	caps := effectiveCaps(threeCaps(ent, 3000, 3000, 0))
	ctx := context.Background()
	long := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 2700})
	small := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 400}
	// Five refresh intervals: the call runs 100 s (Redis time) under a 60 s TTL.
	for i := range 5 {
		l.advance(ttl / 3)
		refreshOnce(t, l, clk)
		if _, err := l.Reserve(ctx, small); asCapErr(err) == nil {
			t.Fatalf("after %v: a request beyond the cap was admitted while the long call runs: %v", time.Duration(i+1)*ttl/3, err)
		}
	}
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 2700 {
			t.Errorf("%s: reserved %d while the call runs, want 2700", st.Level, st.Reserved)
		}
	}
	if err := l.Settle(ctx, long, 2650, bedrock.Usage{InputTokens: 50, OutputTokens: 2600}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	// Settled: no longer refreshed, and a refresh never brings it back.
	refreshOnce(t, l, clk)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != 2650 || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d after settling, want 2650 and 0", st.Level, st.Used, st.Reserved)
		}
	}
	if n := expired.Load(); n != 0 {
		t.Errorf("%d reservations reported expired, want none", n)
	}
}

// testRefreshNeverResurrects: a reservation purged while its call ran (its
// replica stalled past the TTL) is not brought back by a later refresh; the
// settlement still charges the usage and reports the expiry.
func testRefreshNeverResurrects(t *testing.T, c redis.UniversalClient) {
	const ttl = time.Minute
	clk := &fakeClock{only: ttl / 3} // the refresher's timer only
	var expired atomic.Int64
	l := newTestLimiter(t, c, Options{ReservationTTL: ttl, Clock: fakeTimers(clk), OnReservationExpired: func(string) { expired.Add(1) }})
	ent := entName(t)
	caps := effectiveCaps(threeCaps(ent, 1000, 0, 1000))
	ctx := context.Background()
	stalled := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 600})
	l.advance(ttl + time.Second) // no refresh in time
	other := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 300})
	refreshOnce(t, l, clk)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 300 {
			t.Errorf("%s: reserved %d after the refresh, want only the other request's 300", st.Level, st.Reserved)
		}
	}
	if err := l.Settle(ctx, stalled, 500, bedrock.Usage{InputTokens: 500}); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, other); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	if n := expired.Load(); n != 1 {
		t.Errorf("%d settlements reported their reservation expired, want 1", n)
	}
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != 500 || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d, want the usage charged anyway (500) and 0", st.Level, st.Used, st.Reserved)
		}
	}
}

// testStatusIgnoresExpired: a crashed replica's reservation stops counting in
// the status (the quota API, the remaining-tokens gauge) once its TTL is up,
// without waiting for a request to purge it.
func testStatusIgnoresExpired(t *testing.T, c redis.UniversalClient) {
	const ttl = 30 * time.Second
	crashed := newTestLimiter(t, c, Options{ReservationTTL: ttl, Clock: fakeTimers(&fakeClock{only: ttl / 3})}) // never refreshes
	l := newTestLimiter(t, c, Options{ReservationTTL: ttl})
	ent := entName(t)
	caps := effectiveCaps(threeCaps(ent, 1000, 1000, 1000))
	mustReserve(t, crashed, Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 400})
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 400 || st.Remaining != 600 {
			t.Errorf("%s before expiry: %+v", st.Level, st)
		}
	}
	l.advance(ttl + time.Second)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 0 || st.Remaining != 1000 {
			t.Errorf("%s after expiry: reserved %d remaining %d, want 0 and 1000", st.Level, st.Reserved, st.Remaining)
		}
	}
}

// testOrphanRelease: the release queued for a reserve whose outcome is
// unknown removes the reservation if the script ran, and if the script runs
// only after it, the script reserves nothing. Neither writes the ledger.
func testOrphanRelease(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	caps := effectiveCaps(threeCaps(ent, 1000, 0, 1000))
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 600, TokensPerMinute: 1200}
	ctx := context.Background()
	cands := candidates(l.now(), l.opts.Location)

	// The script ran, the reply was lost.
	ran, err := l.reserveOnce(ctx, req, "orphan-ran", cands)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 600 {
			t.Fatalf("%s: reserved %d, want 600", st.Level, st.Reserved)
		}
	}
	l.releaseOrphan(req, "orphan-ran", cands)
	l.releaseOrphan(req, "orphan-ran", cands) // idempotent
	flush(t, l)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 0 || st.Used != 0 {
			t.Errorf("%s after the orphan release: %+v", st.Level, st)
		}
	}
	// Its per-minute tokens were given back: another 600 fit the 1200 TPM.
	mustReserve(t, l, Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 400, TokensPerMinute: 1200})

	// The release got there first: the late script reserves nothing.
	l.releaseOrphan(req, "orphan-late", cands)
	flush(t, l)
	if r, err := l.reserveOnce(ctx, req, "orphan-late", cands); err == nil {
		t.Fatalf("a reserve script arriving after its release reserved %+v", r)
	}
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 400 {
			t.Errorf("%s: reserved %d, want only the other request's 400", st.Level, st.Reserved)
		}
	}
	if got := ledgerRow(t, l, ran.Month, ent, acct, "m"); got != (LedgerRow{}) {
		t.Errorf("orphan releases wrote the ledger: %+v", got)
	}
}

// TestOrphanAfterFreeze: Redis freezes (SIGSTOP) while a reserve is in
// flight; the gateway times out and refuses the request, and the script runs
// when Redis thaws. The queued release frees the tokens at once instead of
// after the reservation TTL.
func TestOrphanAfterFreeze(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 200 * time.Millisecond})
	ent := "frozen"
	caps := []Cap{{Level: LevelEntitlement, Target: ent, Limit: 20000}}
	ctx := context.Background()
	warm := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 10})
	if err := l.Settle(ctx, warm, 10, bedrock.Usage{InputTokens: 10}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)

	s.Freeze()
	_, err := l.Reserve(ctx, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 2002})
	if !errors.Is(err, ErrStoreUnavailable) {
		s.Thaw()
		t.Fatalf("reserve on a frozen Redis: %v, want ErrStoreUnavailable", err)
	}
	s.Thaw()
	wait.For(t, "healthy after the thaw", 10*time.Second, l.Healthy)
	flush(t, l)
	st := capStatus(t, l, ent, caps...)[0]
	if st.Reserved != 0 || st.Used != 10 {
		t.Fatalf("after the thaw: used %d reserved %d, want 10 and 0 (the timed-out reserve released)", st.Used, st.Reserved)
	}
	mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 19990})
	if got := ledgerRow(t, l, warm.Month, ent, acct, "m"); got.Requests != 1 || got.Errors != 0 {
		t.Errorf("ledger %+v, want the one settled request and no error", got)
	}
}

// TestSettleAfterRestartEmpty: Redis restarts empty while a call runs; its
// settlement finds no reservation, charges the usage anyway and reports it.
func TestSettleAfterRestartEmpty(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	var expired []string
	var mu = make(chan struct{}, 1)
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 300 * time.Millisecond,
		OnReservationExpired: func(ent string) { mu <- struct{}{}; expired = append(expired, ent); <-mu }})
	ent := "restarted"
	caps := []Cap{{Level: LevelAccount, Target: acct, Limit: 1000}}
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	s.Restart()
	if err := l.Settle(context.Background(), r, 80, bedrock.Usage{InputTokens: 80}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	mu <- struct{}{}
	got := expired
	<-mu
	if len(got) != 1 || got[0] != ent {
		t.Errorf("expired reports %v, want one for %s", got, ent)
	}
	if st := capStatus(t, l, ent, caps...)[0]; st.Used != 80 || st.Reserved != 0 {
		t.Errorf("after the settle: used %d reserved %d, want 80 and 0", st.Used, st.Reserved)
	}
}

// TestRecoveryDrivenByProbe: queued settlements are written as soon as the
// probe sees Redis answer again, not after a backoff. Timers run on a fake
// clock advanced by exactly one probe interval, so a retry waiting on any
// other timer would never happen.
func TestRecoveryDrivenByProbe(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	clk := &fakeClock{}
	const probe = time.Second // of the fake clock
	l := newTestLimiter(t, singleClient(t, s), Options{Timeout: 300 * time.Millisecond, ProbeInterval: probe, Clock: fakeTimers(clk)})
	ent := "recovery"
	caps := []Cap{{Level: LevelAccount, Target: acct, Limit: 1000}}
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	s.Stop()
	if err := l.Settle(context.Background(), r, 70, bedrock.Usage{InputTokens: 70}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the worker to wait for the probe", 10*time.Second, func() bool { return !l.Healthy() && clk.waiting(probe) == 1 })
	s.Restart()
	clk.advance(probe)
	wait.For(t, "the probe to see Redis", 10*time.Second, l.Healthy)
	flush(t, l)
	if got := ledgerRow(t, l, r.Month, ent, acct, "m"); got.Requests != 1 || got.InputTokens != 70 {
		t.Errorf("ledger after recovery %+v, want the queued settlement", got)
	}
}
