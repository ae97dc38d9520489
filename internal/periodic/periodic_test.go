package periodic

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// fakeLock is the replicas' shared lock: held by someone else, failing, or
// free (then it counts takes and releases).
type fakeLock struct {
	heldElsewhere bool
	err           error
	releaseErr    error
	taken         atomic.Int64
	released      atomic.Int64
	releaseCtxErr atomic.Value // the release context's error when it ran
}

func (l *fakeLock) lock(context.Context) (func(context.Context) error, bool, error) {
	if l.err != nil {
		return nil, false, l.err
	}
	if l.heldElsewhere {
		return nil, false, nil
	}
	l.taken.Add(1)
	return func(ctx context.Context) error {
		l.released.Add(1)
		l.releaseCtxErr.Store(errString(ctx.Err()))
		return l.releaseErr
	}, true, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newRunner(t *testing.T, lock *fakeLock, job func(context.Context) error) (*Runner, *Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, MetricsOptions{Name: "test_sync", What: "test sync"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{What: "test sync", Interval: time.Hour, Timeout: time.Minute, Lock: lock.lock, Job: job, Metrics: m,
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return r, m, reg
}

func TestOnce(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name         string
		lock         *fakeLock
		jobErr       error
		want         string
		ran          bool
		lastSuccess  float64
		wantReleased int64
	}{
		{name: "ok", lock: &fakeLock{}, want: ResultOK, ran: true, lastSuccess: 1_700_000_000, wantReleased: 1},
		{name: "job fails", lock: &fakeLock{}, jobErr: boom, want: ResultError, ran: true, wantReleased: 1},
		{name: "held by another replica", lock: &fakeLock{heldElsewhere: true}, want: ResultSkippedLocked},
		{name: "lock unreachable", lock: &fakeLock{err: boom}, want: ResultError},
		{name: "release fails", lock: &fakeLock{releaseErr: boom}, want: ResultOK, ran: true, lastSuccess: 1_700_000_000, wantReleased: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ran atomic.Bool
			r, m, _ := newRunner(t, tc.lock, func(ctx context.Context) error {
				ran.Store(true)
				if _, ok := ctx.Deadline(); !ok {
					t.Error("the job runs without the timeout")
				}
				return tc.jobErr
			})
			if got := r.Once(context.Background()); got != tc.want {
				t.Fatalf("Once = %q, want %q", got, tc.want)
			}
			if ran.Load() != tc.ran {
				t.Errorf("job ran: %v, want %v", ran.Load(), tc.ran)
			}
			if got := tc.lock.released.Load(); got != tc.wantReleased {
				t.Errorf("lock released %d times, want %d", got, tc.wantReleased)
			}
			for _, res := range []string{ResultOK, ResultError, ResultSkippedLocked} {
				want := 0.0
				if res == tc.want {
					want = 1
				}
				if got := testutil.ToFloat64(m.total.WithLabelValues(res)); got != want {
					t.Errorf("test_sync_total{result=%q} = %v, want %v", res, got, want)
				}
			}
			if got := testutil.ToFloat64(m.lastSuccess); got != tc.lastSuccess {
				t.Errorf("last success %v, want %v", got, tc.lastSuccess)
			}
		})
	}
}

// TestLockReleasedAtShutdown: a run cut short by the end of its context
// (shutdown) still releases the lock, with a context of its own, so another
// replica need not wait out the TTL.
func TestLockReleasedAtShutdown(t *testing.T) {
	t.Parallel()
	lock := &fakeLock{}
	ctx, cancel := context.WithCancel(context.Background())
	r, _, _ := newRunner(t, lock, func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if got := r.Once(ctx); got != ResultError {
		t.Fatalf("Once = %q, want %q", got, ResultError)
	}
	if lock.released.Load() != 1 || lock.releaseCtxErr.Load() != "" {
		t.Fatalf("released %d times with context error %q; want once, with a live context", lock.released.Load(), lock.releaseCtxErr.Load())
	}
}

// TestRunStopsWithContext: Run runs at once, then stops when its context ends.
func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	lock := &fakeLock{}
	ctx, cancel := context.WithCancel(context.Background())
	r, _, _ := newRunner(t, lock, func(context.Context) error {
		cancel() // the first run ends the runner's life
		return nil
	})
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	<-done
	if lock.taken.Load() != 1 {
		t.Fatalf("ran %d times, want once", lock.taken.Load())
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	t.Parallel()
	m, err := NewMetrics(prometheus.NewRegistry(), MetricsOptions{Name: "x", What: "x"})
	if err != nil {
		t.Fatal(err)
	}
	lock := (&fakeLock{}).lock
	job := func(context.Context) error { return nil }
	for name, o := range map[string]Options{
		"no interval": {Timeout: time.Second, Lock: lock, Job: job, Metrics: m},
		"no timeout":  {Interval: time.Second, Lock: lock, Job: job, Metrics: m},
		"no lock":     {Interval: time.Second, Timeout: time.Second, Job: job, Metrics: m},
		"no job":      {Interval: time.Second, Timeout: time.Second, Lock: lock, Metrics: m},
		"no metrics":  {Interval: time.Second, Timeout: time.Second, Lock: lock, Job: job},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Registering a job's metrics twice is an error, not a panic.
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, MetricsOptions{Name: "dup", What: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg, MetricsOptions{Name: "dup", What: "dup"}); err == nil {
		t.Error("registering the same metrics twice succeeded")
	}
}
