package quota

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests run where the system has no tzdata

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

const acct = "222222222222"

// TestCore runs the Redis-semantics suite against a single node and a
// three-master cluster.
func TestCore(t *testing.T) {
	t.Parallel()
	backends := []backend{
		{name: "single", client: func(tb testing.TB) redis.UniversalClient {
			return singleClient(tb, redistest.Start(tb))
		}},
		{name: "cluster", client: func(tb testing.TB) redis.UniversalClient {
			return clusterClient(tb, redistest.StartCluster(tb, 3))
		}},
	}
	suite := []struct {
		name string
		run  func(t *testing.T, c redis.UniversalClient)
	}{
		{"AllOrNothing", testAllOrNothing},
		{"EachLevelBinds", testEachLevelBinds},
		{"RemainingPerLevel", testRemainingPerLevel},
		{"SettleIdempotent", testSettleIdempotent},
		{"SettleAfterExpiry", testSettleAfterExpiry},
		{"LedgerTiers", testLedgerTiers},
		{"Release", testRelease},
		{"ExpiryPurges", testExpiryPurges},
		{"MonthRollover", testMonthRollover},
		{"SkewedReplicaClock", testSkewedClock},
		{"RedisTimeOffset", testRedisTimeOffset},
		{"RateLimits", testRateLimits},
		{"TPMRefund", testTPMRefund},
		{"LeaseSlotsBack", testLeaseSlotsBack},
		{"NoCaps", testNoCaps},
		{"Concurrency", testConcurrency},
		{"AlertsOncePerThreshold", testAlertsOnce},
		{"ScriptErrorIsNotOutage", testScriptErrorNotOutage},
		{"NoScriptRecovery", testNoScriptRecovery},
		{"RefreshHoldsLongCall", testRefreshHoldsLongCall},
		{"RefreshNeverResurrects", testRefreshNeverResurrects},
		{"StatusIgnoresExpired", testStatusIgnoresExpired},
		{"OrphanRelease", testOrphanRelease},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			client := b.client(t)
			for _, tc := range suite {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, client)
				})
			}
		})
	}
}

func threeCaps(ent string, e, s, a int64) []Cap {
	return []Cap{
		{Level: LevelEntitlement, Target: ent, Limit: e},
		{Level: LevelShare, Target: "ou-ab12-dev00001", Limit: s},
		{Level: LevelAccount, Target: acct, Limit: a},
	}
}

func testAllOrNothing(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	caps := threeCaps(ent, 1000, 500, 300)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 200}
	r := mustReserve(t, l, req)
	if r.Remaining != 100 {
		t.Errorf("remaining = %d, want 100 (account cap 300-200)", r.Remaining)
	}
	_, err := l.Reserve(context.Background(), req)
	ce := asCapErr(err)
	if ce == nil || ce.Level != LevelAccount || ce.Used != 0 || ce.Reserved != 200 || ce.Limit != 300 {
		t.Fatalf("second reserve: %v, want account cap exceeded", err)
	}
	// The refused request reserved nothing anywhere.
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Reserved != 200 || st.Used != 0 {
			t.Errorf("%s: reserved %d used %d, want 200 and 0", st.Level, st.Reserved, st.Used)
		}
	}
	// A request that fits every cap still gets in.
	req.Tokens = 100
	r2 := mustReserve(t, l, req)
	if r2.Remaining != 0 {
		t.Errorf("remaining = %d, want 0", r2.Remaining)
	}
}

func testEachLevelBinds(t *testing.T, c redis.UniversalClient) {
	tests := []struct {
		level   Level
		e, s, a int64
	}{
		{LevelEntitlement, 100, 1000, 1000},
		{LevelShare, 1000, 100, 1000},
		{LevelAccount, 1000, 1000, 100},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			t.Parallel()
			l := newTestLimiter(t, c, Options{Location: mustZone(t, "America/New_York")})
			ent := entName(t)
			caps := threeCaps(ent, tt.e, tt.s, tt.a)
			req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 60}
			r := mustReserve(t, l, req)
			if err := l.Settle(context.Background(), r, 60, bedrock.Usage{InputTokens: 50, OutputTokens: 10}); err != nil {
				t.Fatal(err)
			}
			flush(t, l)
			_, err := l.Reserve(context.Background(), req)
			ce := asCapErr(err)
			if ce == nil {
				t.Fatalf("reserve: %v, want a cap exceeded", err)
			}
			if ce.Level != tt.level || ce.Used != 60 || ce.Limit != 100 || ce.Requested != 60 {
				t.Errorf("got %+v, want level %s used 60 limit 100", ce, tt.level)
			}
			if want := monthOf(l.now(), l.opts.Location).end; !ce.ResetAt.Equal(want) {
				t.Errorf("reset at %v, want %v", ce.ResetAt, want)
			}
			msg := ce.Error()
			if !strings.Contains(msg, ce.Target) || !strings.Contains(msg, ce.ResetAt.Format(time.RFC3339)) {
				t.Errorf("message %q names neither the cap nor the reset", msg)
			}
		})
	}
}

// testRemainingPerLevel: each cap's remainder after the reservation comes back,
// so a caller can show a member its own caps without the entitlement's.
func testRemainingPerLevel(t *testing.T, c redis.UniversalClient) {
	tests := []struct {
		name    string
		e, s, a int64 // cap limits; 0 = no cap at that level
		levels  []Level
		want    int64
	}{
		{name: "own caps only", e: 100, s: 1000, a: 500, levels: []Level{LevelShare, LevelAccount}, want: 440},
		{name: "share binds", e: 100, s: 300, a: 500, levels: []Level{LevelShare, LevelAccount}, want: 240},
		{name: "entitlement alone", e: 100, s: 1000, a: 500, levels: []Level{LevelEntitlement}, want: 40},
		{name: "every level", e: 100, s: 1000, a: 500, levels: []Level{LevelEntitlement, LevelShare, LevelAccount}, want: 40},
		{name: "no own cap", e: 100, levels: []Level{LevelShare, LevelAccount}, want: -1},
		{name: "account only", a: 70, levels: []Level{LevelShare, LevelAccount}, want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLimiter(t, c, Options{})
			ent := entName(t)
			r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: threeCaps(ent, tt.e, tt.s, tt.a), Tokens: 60})
			if got := r.RemainingAt(tt.levels...); got != tt.want {
				t.Errorf("RemainingAt(%v) = %d, want %d", tt.levels, got, tt.want)
			}
		})
	}
}

func testSettleIdempotent(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	caps := threeCaps(ent, 1000, 1000, 1000)
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100})
	usage := bedrock.Usage{InputTokens: 40, OutputTokens: 20, CacheReadTokens: 5, CacheWriteTokens: 3}
	ctx := context.Background()
	for range 2 {
		if err := l.Settle(ctx, r, 60, usage); err != nil {
			t.Fatal(err)
		}
	}
	// Bypass the local guard: the script itself must ignore a repeat, even
	// from another replica.
	other := newTestLimiter(t, c, Options{})
	for _, lim := range []*Limiter{l, other} {
		if err := lim.writeOne(ctx, l.newSettlement(r, kindSettle, 60, usage)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, l)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != 60 || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d, want 60 and 0", st.Level, st.Used, st.Reserved)
		}
	}
	got := ledgerRow(t, l, r.Month, ent, acct, "m")
	want := LedgerRow{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "default", Requests: 1,
		InputTokens: 40, OutputTokens: 20, CacheReadTokens: 5, CacheWriteTokens: 3, CountedTokens: 60}
	if got != want {
		t.Errorf("ledger %+v, want %+v", got, want)
	}
}

func testSettleAfterExpiry(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{ReservationTTL: time.Minute})
	ent := entName(t)
	caps := threeCaps(ent, 1000, 1000, 1000)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
	r := mustReserve(t, l, req)
	l.advance(2 * time.Minute)
	// The next script run purges the expired reservation.
	r2 := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 1})
	if r2.Remaining != 999 {
		t.Errorf("remaining after purge = %d, want 999", r2.Remaining)
	}
	ctx := context.Background()
	if err := l.Settle(ctx, r, 70, bedrock.Usage{InputTokens: 70}); err != nil {
		t.Fatal(err)
	}
	if err := l.writeOne(ctx, l.newSettlement(r, kindSettle, 70, bedrock.Usage{InputTokens: 70})); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, r2); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != 70 || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d, want 70 and 0", st.Level, st.Used, st.Reserved)
		}
	}
}

func testRelease(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	caps := threeCaps(ent, 100, 100, 100)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
	r := mustReserve(t, l, req)
	ctx := context.Background()
	for range 2 {
		if err := l.Release(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.writeOne(ctx, l.newSettlement(r, kindRelease, 0, bedrock.Usage{})); err != nil {
		t.Fatal(err)
	}
	// A settle after the release is a repeat too.
	if err := l.writeOne(ctx, l.newSettlement(r, kindSettle, 50, bedrock.Usage{})); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != 0 || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d, want 0 and 0", st.Level, st.Used, st.Reserved)
		}
	}
	got := ledgerRow(t, l, r.Month, ent, acct, "m")
	if got.Requests != 0 || got.Errors != 1 {
		t.Errorf("ledger %+v, want 0 requests and 1 error", got)
	}
	mustReserve(t, l, req) // the whole cap is free again
}

func testExpiryPurges(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{ReservationTTL: 30 * time.Second})
	ent := entName(t)
	caps := threeCaps(ent, 100, 0, 0)
	req := Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 100}
	mustReserve(t, l, req) // never settled: a crashed replica
	if _, err := l.Reserve(context.Background(), req); asCapErr(err) == nil {
		t.Fatalf("reserve on a full cap: %v", err)
	}
	l.advance(29 * time.Second)
	if _, err := l.Reserve(context.Background(), req); asCapErr(err) == nil {
		t.Fatalf("reserve before expiry: %v", err)
	}
	l.advance(2 * time.Second)
	mustReserve(t, l, req)
}

// mustZone loads a time zone; the tests embed the zone database (time/tzdata),
// so it is there on machines without tzdata.
func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func testMonthRollover(t *testing.T, c redis.UniversalClient) {
	ny := mustZone(t, "America/New_York")
	l := newTestLimiter(t, c, Options{Location: ny, Grace: 48 * time.Hour})
	ent := entName(t)
	caps := threeCaps(ent, 1000, 0, 1000)
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: 100}
	ctx := context.Background()

	// 23:59:50 on 30 November in New York is already December in UTC.
	l.setNow(time.Date(2026, 11, 30, 23, 59, 50, 0, ny))
	r := mustReserve(t, l, req)
	decStart := time.Date(2026, 12, 1, 0, 0, 0, 0, ny)
	if r.Month != "2026-11" || !r.ResetAt.Equal(decStart) {
		t.Fatalf("month %s reset %v, want 2026-11 and %v", r.Month, r.ResetAt, decStart)
	}
	// Settled after midnight: still November's.
	l.setNow(time.Date(2026, 12, 1, 0, 0, 5, 0, ny))
	if err := l.Settle(ctx, r, 100, bedrock.Usage{InputTokens: 100}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	r2 := mustReserve(t, l, req)
	if r2.Month != "2026-12" || r2.Remaining != 900 {
		t.Fatalf("month %s remaining %d, want 2026-12 with a fresh cap (900)", r2.Month, r2.Remaining)
	}
	for _, st := range capStatus(t, l, ent, caps[0]) {
		if st.Month != "2026-12" || st.Used != 0 || st.Reserved != 100 {
			t.Errorf("december status %+v", st)
		}
	}
	if got := ledgerRow(t, l, "2026-11", ent, acct, "m"); got.Requests != 1 || got.InputTokens != 100 {
		t.Errorf("november ledger %+v", got)
	}
	k := l.keysFor(ent)
	expiries := map[string]time.Time{
		k.capHash("2026-11", caps[0]): decStart.Add(48 * time.Hour),
		k.ledger("2026-11"):           decStart.Add(ledgerRetention),
		k.capHash("2026-12", caps[2]): time.Date(2027, 1, 1, 0, 0, 0, 0, ny).Add(48 * time.Hour),
	}
	for key, want := range expiries {
		got, err := c.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != time.Duration(want.UnixMilli())*time.Millisecond {
			t.Errorf("%s expires at %v, want %v", key, got, want.UnixMilli())
		}
	}
}

func testSkewedClock(t *testing.T, c redis.UniversalClient) {
	for _, skew := range []time.Duration{40 * 24 * time.Hour, -40 * 24 * time.Hour, 2 * time.Hour, -2 * time.Hour} {
		l := newTestLimiter(t, c, Options{})
		l.setNow(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
		l.skew(skew)
		r := mustReserve(t, l, Request{Entitlement: entName(t), Account: acct,
			Caps: []Cap{{Level: LevelAccount, Target: acct, Limit: 10}}, Tokens: 1})
		if r.Month != "2026-11" {
			t.Errorf("skew %v: month %s, want 2026-11 (Redis time decides)", skew, r.Month)
		}
	}
}

// testRedisTimeOffset: Options.RedisTimeOffset (the scripts' time_offset_ms)
// shifts the Redis time every decision is dated by, whatever the replica's
// clock says: here the wall clock, 40 days behind the corrected Redis time,
// so the reserve also goes through the retry with Redis's candidate months.
func testRedisTimeOffset(t *testing.T, c redis.UniversalClient) {
	const offset = 40 * 24 * time.Hour
	const ttl = time.Minute
	l := newTestLimiter(t, c, Options{Clock: wallClock{}, ReservationTTL: ttl,
		RedisTimeOffset: func() time.Duration { return offset }})
	ent := entName(t)
	caps := []Cap{{Level: LevelAccount, Target: acct, Limit: 10}}
	ctx := context.Background()
	redisNow := func() time.Time {
		now, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return now.Add(offset)
	}
	before := redisNow()
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 1})
	st := capStatus(t, l, ent, caps...)[0]
	after := redisNow()
	// A month boundary could pass between the two readings: either side is right.
	months := []string{monthOf(before, time.UTC).key, monthOf(after, time.UTC).key}
	if !slices.Contains(months, r.Month) || !slices.Contains(months, st.Month) {
		t.Errorf("reserved in %s, status of %s, want the month of Redis time plus the offset (%v)", r.Month, st.Month, months)
	}
	if st.Month == r.Month && st.Reserved != 1 {
		t.Errorf("status reserved %d, want 1", st.Reserved)
	}
	// The reservation expires by the corrected Redis time.
	score, err := c.ZScore(ctx, l.keysFor(ent).capZset(r.Month, caps[0]), reservationMember(r.ID, 1)).Result()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := before.Add(ttl).UnixMilli(), after.Add(ttl).UnixMilli()
	if int64(score) < lo || int64(score) > hi {
		t.Errorf("reservation expires at %d, want within [%d, %d] (Redis time plus offset plus TTL)", int64(score), lo, hi)
	}
}

func testRateLimits(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	ctx := context.Background()
	rpm := Request{Entitlement: ent, Account: acct, RequestsPerMinute: 2, Tokens: 10}
	mustReserve(t, l, rpm)
	mustReserve(t, l, rpm)
	_, err := l.Reserve(ctx, rpm)
	re := asRateErr(err)
	if re == nil || re.Limit != LimitRequestsPerMinute || re.RetryAfter <= 0 {
		t.Fatalf("third request: %v, want requests_per_minute with a retry-after", err)
	}
	l.advance(re.RetryAfter)
	mustReserve(t, l, rpm)
	// Another account has its own limit.
	mustReserve(t, l, Request{Entitlement: ent, Account: "333333333333", RequestsPerMinute: 2})

	tpm := Request{Entitlement: ent, Account: "444444444444", TokensPerMinute: 1000, Tokens: 600}
	mustReserve(t, l, tpm)
	_, err = l.Reserve(ctx, tpm)
	re = asRateErr(err)
	if re == nil || re.Limit != LimitTokensPerMinute || re.RetryAfter <= 0 {
		t.Fatalf("second 600: %v, want tokens_per_minute with a retry-after", err)
	}
	l.advance(re.RetryAfter)
	mustReserve(t, l, tpm)

	// A request bigger than a whole minute passes on a full bucket only.
	big := Request{Entitlement: ent, Account: "555555555555", TokensPerMinute: 1000, Tokens: 2500}
	mustReserve(t, l, big)
	if _, err := l.Reserve(ctx, Request{Entitlement: ent, Account: "555555555555", TokensPerMinute: 1000, Tokens: 1}); asRateErr(err) == nil {
		t.Fatalf("after an oversize request: %v, want rate limited", err)
	}

	// A spent cap is reported before a rate limit: it is not worth retrying.
	capped := Request{Entitlement: ent, Account: acct, RequestsPerMinute: 2, Tokens: 10,
		Caps: []Cap{{Level: LevelAccount, Target: acct, Limit: 5}}}
	if _, err := l.Reserve(ctx, capped); asCapErr(err) == nil {
		t.Fatalf("capped and limited: %v, want cap exceeded", err)
	}
}

func testTPMRefund(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	ctx := context.Background()
	req := Request{Entitlement: ent, Account: acct, TokensPerMinute: 1000, Tokens: 600}
	r := mustReserve(t, l, req)
	if _, err := l.Reserve(ctx, req); asRateErr(err) == nil {
		t.Fatalf("second reserve: %v, want rate limited", err)
	}
	// Only 100 of the 600 were used: the other 500 go back to the minute.
	if err := l.Settle(ctx, r, 100, bedrock.Usage{OutputTokens: 100}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	r2 := mustReserve(t, l, req)
	if err := l.Release(ctx, r2); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	mustReserve(t, l, req)

	// Usage beyond the estimate is charged to the minute too.
	other := Request{Entitlement: ent, Account: "333333333333", TokensPerMinute: 1000, Tokens: 100}
	r3 := mustReserve(t, l, other)
	if err := l.Settle(ctx, r3, 900, bedrock.Usage{OutputTokens: 900}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	other.Tokens = 600
	if _, err := l.Reserve(ctx, other); asRateErr(err) == nil {
		t.Fatalf("after 900 tokens of 1000 a minute: %v, want rate limited", err)
	}
}

func testNoCaps(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Tokens: 5,
		Caps: []Cap{{Level: LevelShare, Target: "o-exampleorg1", Limit: 0}}})
	if r.Remaining != -1 || r.Month == "" {
		t.Fatalf("reservation %+v, want remaining -1 and a month", r)
	}
	if err := l.Settle(context.Background(), r, 5, bedrock.Usage{InputTokens: 5}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	if got := ledgerRow(t, l, r.Month, ent, acct, "m"); got.Requests != 1 || got.InputTokens != 5 {
		t.Errorf("ledger %+v", got)
	}
}

// testConcurrency: with every settlement at most its reservation (the strict
// estimate), the sum settled never exceeds the cap, and the cap's used counter
// is exactly that sum.
func testConcurrency(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{QueueSize: 64, BatchSize: 16})
	ent := entName(t)
	const limit = 20000
	caps := threeCaps(ent, limit, limit*2, limit)
	var settled, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for g := range 300 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 3 {
				tokens := 50 + rng.Int64N(150)
				r, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Model: "m", Caps: caps, Tokens: tokens})
				if asCapErr(err) != nil {
					refused.Add(1)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				admitted.Add(1)
				if rng.IntN(10) == 0 {
					if err := l.Release(context.Background(), r); err != nil {
						errs <- err
					}
					continue
				}
				used := rng.Int64N(tokens + 1)
				settled.Add(used)
				if err := l.Settle(context.Background(), r, used, bedrock.Usage{OutputTokens: used}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	flush(t, l)
	if refused.Load() == 0 {
		t.Fatalf("the cap never bound (admitted %d); make it smaller", admitted.Load())
	}
	sum := settled.Load()
	if sum > limit {
		t.Errorf("settled %d > cap %d", sum, limit)
	}
	for _, st := range capStatus(t, l, ent, caps...) {
		if st.Used != sum || st.Reserved != 0 {
			t.Errorf("%s: used %d reserved %d, want %d and 0", st.Level, st.Used, st.Reserved, sum)
		}
	}
	rows, err := l.Ledger(context.Background(), monthOf(l.now(), time.UTC).key, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].OutputTokens != sum || rows[0].Requests+rows[0].Errors != admitted.Load() {
		t.Errorf("ledger %+v, want %d output tokens over %d calls", rows, sum, admitted.Load())
	}
}

// testAlertsOnce: two replicas settle concurrently across 50/80/100%; every
// threshold fires exactly once for every cap.
func testAlertsOnce(t *testing.T, c redis.UniversalClient) {
	ent := entName(t)
	var mu sync.Mutex
	fired := map[string]int{}
	onAlert := func(a Alert) {
		mu.Lock()
		defer mu.Unlock()
		fired[string(a.Level)+"/"+strconv.Itoa(a.Threshold)]++
		if a.Used*100 < int64(a.Threshold)*a.Limit || a.Entitlement != ent {
			t.Errorf("alert %+v below its threshold", a)
		}
	}
	replicas := []*Limiter{
		newTestLimiter(t, c, Options{OnAlert: onAlert, BatchSize: 4}),
		newTestLimiter(t, c, Options{OnAlert: onAlert, BatchSize: 4}),
	}
	caps := []Cap{
		{Level: LevelEntitlement, Target: ent, Limit: 1000, Thresholds: []int{50, 80, 100}},
		{Level: LevelAccount, Target: acct, Limit: 2000, Thresholds: []int{25, 50}},
	}
	var wg sync.WaitGroup
	for i := range 100 {
		l := replicas[i%2]
		wg.Go(func() {
			r, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 10})
			if err != nil {
				t.Error(err)
				return
			}
			if err := l.Settle(context.Background(), r, 10, bedrock.Usage{InputTokens: 10}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, l := range replicas {
		flush(t, l)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"entitlement/50": 1, "entitlement/80": 1, "entitlement/100": 1, "account/25": 1, "account/50": 1}
	if len(fired) != len(want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	for k, n := range want {
		if fired[k] != n {
			t.Errorf("%s fired %d times, want %d", k, fired[k], n)
		}
	}
}

// testScriptErrorNotOutage: a failing script (here a key of the wrong type)
// fails closed even for fail-open requests and leaves the limiter healthy.
func testScriptErrorNotOutage(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	caps := []Cap{{Level: LevelAccount, Target: acct, Limit: 100}}
	month := monthOf(l.now(), time.UTC)
	if err := c.Set(context.Background(), l.keysFor(ent).capHash(month.key, caps[0]), "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := l.Reserve(context.Background(), Request{Entitlement: ent, Account: acct, Caps: caps, Tokens: 1, FailOpen: true})
	if err == nil || errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("reserve against a broken key: %v, want a script error", err)
	}
	if !l.Healthy() {
		t.Error("a script error marked the store unhealthy")
	}
}

// testNoScriptRecovery: after SCRIPT FLUSH both the reserve and the batched
// settle recover.
func testNoScriptRecovery(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	ctx := context.Background()
	flushScripts := func() {
		if cc, ok := c.(*redis.ClusterClient); ok {
			err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() })
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	req := Request{Entitlement: ent, Account: acct, Model: "m", Caps: []Cap{{Level: LevelAccount, Target: acct, Limit: 100}}, Tokens: 10}
	r := mustReserve(t, l, req)
	flushScripts()
	if err := l.Settle(ctx, r, 10, bedrock.Usage{InputTokens: 10}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	flushScripts()
	mustReserve(t, l, req)
	if got := ledgerRow(t, l, r.Month, ent, acct, "m"); got.Requests != 1 {
		t.Errorf("ledger %+v, want the settlement written after NOSCRIPT", got)
	}
}

// Each pricing tier has its own ledger lines; lines written before tiers
// existed (no tier in the field) read as the default tier and add up with it.
// Each team the account had at call time has its own lines too, and the
// tokens charged to the caps (counted) are recorded.
func testLedgerTiers(t *testing.T, c redis.UniversalClient) {
	l := newTestLimiter(t, c, Options{})
	ent := entName(t)
	ctx := context.Background()
	for _, tc := range []struct {
		tier  string
		usage bedrock.Usage
	}{
		{"", bedrock.Usage{InputTokens: 1, OutputTokens: 2}},
		{"default", bedrock.Usage{InputTokens: 10, OutputTokens: 20}},
		{"priority", bedrock.Usage{InputTokens: 100, OutputTokens: 200}},
		{"priority+optimized", bedrock.Usage{InputTokens: 1000, OutputTokens: 2000}},
	} {
		r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Tier: tc.tier, Tokens: 5})
		if err := l.Settle(ctx, r, tc.usage.InputTokens+tc.usage.OutputTokens, tc.usage); err != nil {
			t.Fatal(err)
		}
	}
	// The team at call time has its own lines: the account moved from dev
	// to ops, and a settle without a count (count: output, no output).
	for _, tc := range []struct {
		team    string
		counted int64
	}{{"dev", 7}, {"dev", 0}, {"R&D | ops", 9}} {
		r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Tier: "flex", Team: tc.team, Tokens: 5})
		if err := l.Settle(ctx, r, tc.counted, bedrock.Usage{InputTokens: 100, CacheReadTokens: 300}); err != nil {
			t.Fatal(err)
		}
	}
	r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Tier: "flex", Tokens: 5})
	if err := l.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	// A line as an older gateway wrote it.
	if err := c.HIncrBy(ctx, l.keysFor(ent).ledger(r.Month), acct+"|m|requests", 1).Err(); err != nil {
		t.Fatal(err)
	}
	rows, err := l.Ledger(ctx, r.Month, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	want := []LedgerRow{
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "default", Requests: 3, InputTokens: 11, OutputTokens: 22, CountedTokens: 33},
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "flex", Errors: 1},
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "flex", Team: "R&D | ops", Requests: 1, InputTokens: 100, CacheReadTokens: 300, CountedTokens: 9},
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "flex", Team: "dev", Requests: 2, InputTokens: 200, CacheReadTokens: 600, CountedTokens: 7},
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "priority", Requests: 1, InputTokens: 100, OutputTokens: 200, CountedTokens: 300},
		{Month: r.Month, Entitlement: ent, Account: acct, Model: "m", Tier: "priority+optimized", Requests: 1, InputTokens: 1000, OutputTokens: 2000, CountedTokens: 3000},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("ledger\n%+v\nwant\n%+v", rows, want)
	}
}
