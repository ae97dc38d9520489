package quota

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
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

// newTestLimiter builds a limiter closed when the test ends.
func newTestLimiter(t testing.TB, client redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	opts.Client = client
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

// setNow makes the scripts (and the local clock) see at as the current time.
func (l *Limiter) setNow(at time.Time) {
	l.offsetMs.Store(time.Until(at).Milliseconds())
}

func (l *Limiter) advance(d time.Duration) { l.offsetMs.Add(d.Milliseconds()) }

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

// fakeClock drives the background loops' timers: they fire only when the
// test advances it, so no test waits on (or guesses) the wall clock.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Duration
	waiters []*fakeTimer
}

type fakeTimer struct {
	at, d time.Duration
	c     chan time.Time
}

func (f *fakeClock) after(d time.Duration) (<-chan time.Time, func()) {
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
