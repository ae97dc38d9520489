package quota

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

// TestMain fails the run when a Limiter worker (or any goroutine of this
// module) outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// backend is a Redis deployment the core suite runs against.
type backend struct {
	name   string
	client func(t testing.TB) redis.UniversalClient
}

func singleClient(tb testing.TB, s *redistest.Server) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func clusterClient(tb testing.TB, c *redistest.Cluster) redis.UniversalClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

func testLogger() *slog.Logger {
	if os.Getenv("QUOTA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestLimiter builds a limiter closed when the test ends. Unless opts
// brings its own, it gets a testClock (wall timers) to move time with.
func newTestLimiter(t testing.TB, client redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	opts.Client = client
	if opts.Clock == nil {
		opts.Clock = &testClock{}
	}
	if tc, ok := opts.Clock.(*testClock); ok && opts.RedisTimeOffset == nil {
		opts.RedisTimeOffset = tc.redisOffset
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	if opts.Timeout == 0 {
		// Generous: the machine is shared and the race detector is slow; a
		// timeout here would read as an outage.
		opts.Timeout = 5 * time.Second
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 20 * time.Millisecond
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l
}

// entName turns the test name into a unique entitlement name.
func entName(t testing.TB) string {
	r := strings.NewReplacer("/", "-", "_", "-", "#", "-")
	return strings.ToLower(r.Replace(t.Name()))
}

// testClock moves one limiter's time: offset shifts Redis time (through
// Options.RedisTimeOffset, the scripts' time_offset_ms) and the replica's
// clock alike; skew shifts only the replica's clock (a replica whose clock is
// off). Timers are the wall clock's unless timers is set.
type testClock struct {
	offset, skew atomic.Int64 // milliseconds
	timers       *fakeClock
}

func (c *testClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()+c.skew.Load()) * time.Millisecond)
}

func (c *testClock) After(d time.Duration) (<-chan time.Time, func()) {
	if c.timers != nil {
		return c.timers.After(d)
	}
	return wallClock{}.After(d)
}

func (c *testClock) redisOffset() time.Duration {
	return time.Duration(c.offset.Load()) * time.Millisecond
}

// fakeTimers is a testClock whose timers fire only when clk advances.
func fakeTimers(clk *fakeClock) *testClock { return &testClock{timers: clk} }

// testClock is l's clock, as installed by newTestLimiter.
func (l *Limiter) testClock() *testClock {
	tc, ok := l.opts.Clock.(*testClock)
	if !ok {
		panic("limiter built without a testClock")
	}
	return tc
}

// setNow makes the scripts (and the local clock) see at as the current time.
func (l *Limiter) setNow(at time.Time) {
	l.testClock().offset.Store(time.Until(at).Milliseconds())
}

// advance moves the scripts' time (and the local clock) on by d.
func (l *Limiter) advance(d time.Duration) { l.testClock().offset.Add(d.Milliseconds()) }

// skew shifts only the local clock by d, as on a replica whose clock is off.
func (l *Limiter) skew(d time.Duration) { l.testClock().skew.Store(d.Milliseconds()) }

func flush(t testing.TB, l *Limiter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func mustReserve(t testing.TB, l *Limiter, req Request) *Reservation {
	t.Helper()
	r, err := l.Reserve(context.Background(), req)
	if err != nil {
		t.Fatalf("reserve %d tokens: %v", req.Tokens, err)
	}
	return r
}

func capStatus(t testing.TB, l *Limiter, ent string, caps ...Cap) []CapStatus {
	t.Helper()
	st, err := l.Status(context.Background(), ent, caps)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ledgerRow(t testing.TB, l *Limiter, month, ent, account, model string) LedgerRow {
	t.Helper()
	rows, err := l.Ledger(context.Background(), month, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Account == account && r.Model == model {
			return r
		}
	}
	return LedgerRow{}
}

func asCapErr(err error) *CapExceededError {
	var e *CapExceededError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

func asRateErr(err error) *RateLimitedError {
	var e *RateLimitedError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// fakeClock drives the background loops' timers (through fakeTimers): they
// fire only when the test advances it, so no test waits on (or guesses) the
// wall clock.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Duration
	waiters []*fakeTimer
	// only, when set, is the one timer duration the fake clock drives;
	// timers of other durations run on real time. A refresh test drives the
	// refresher alone: the worker's probe and backoff must still run, or a
	// transient Redis error on a loaded machine would stall the worker on a
	// timer the test never advances.
	only time.Duration
}

type fakeTimer struct {
	at, d time.Duration
	c     chan time.Time
}

func (f *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	if f.only != 0 && d != f.only {
		t := time.NewTimer(d)
		return t.C, func() { t.Stop() }
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeTimer{at: f.now + d, d: d, c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	return w.c, func() { f.remove(w) }
}

func (f *fakeClock) remove(w *fakeTimer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.waiters {
		if o == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			return
		}
	}
}

// advance moves the clock on by d and fires every timer now due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now += d
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at <= f.now {
			w.c <- time.Time{}
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

// waiting counts the timers of duration d not fired yet.
func (f *fakeClock) waiting(d time.Duration) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiters {
		if w.d == d {
			n++
		}
	}
	return n
}
