// Package periodic owns the gateway's replica-exclusive periodic jobs (the
// org sync, the billing sync): a job runs at once and then every interval on
// whichever replica holds a lock the replicas share, bounded by a timeout
// shorter than the lock's TTL, with its results counted.
package periodic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of one run (the result label of <name>_total).
const (
	ResultOK            = "ok"
	ResultError         = "error"
	ResultSkippedLocked = "skipped_locked"
)

// Metrics of one periodic job.
type Metrics struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// MetricsOptions name a job's metrics: <Name>_total{result} and
// <Name>_last_success_timestamp_seconds.
type MetricsOptions struct {
	Name string // e.g. gateway_org_sync
	What string // the job in help texts, e.g. "org sync"
	// Detail follows What in the counter's help, e.g. " (application inference profiles)".
	Detail string
}

// NewMetrics registers a job's metrics, every result present from the start at 0.
func NewMetrics(reg prometheus.Registerer, o MetricsOptions) (*Metrics, error) {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: o.Name + "_total",
			Help: "Periodic " + o.What + "s" + o.Detail + " by result: ok, error, or skipped_locked (another replica was syncing)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: o.Name + "_last_success_timestamp_seconds",
			Help: "Unix time of this replica's last successful periodic " + o.What + "; 0 before the first."}),
	}
	for _, c := range []prometheus.Collector{m.total, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering %s metrics: %w", o.What, err)
		}
	}
	for _, r := range []string{ResultOK, ResultError, ResultSkippedLocked} {
		m.total.WithLabelValues(r)
	}
	return m, nil
}

// Options configure a Runner.
type Options struct {
	// What names the job in logs, e.g. "org sync".
	What string
	// Interval between runs; the first is at once.
	Interval time.Duration
	// Lock takes the lock the replicas share, for at least Timeout; ok false
	// means another replica holds it.
	Lock func(ctx context.Context) (release func(context.Context) error, ok bool, err error)
	// Job is one run, under the lock and Timeout.
	Job func(ctx context.Context) error
	// Timeout bounds one run; it must be shorter than the lock's TTL, so the
	// lock never expires under a running job.
	Timeout time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
	// Now stamps the last success; default time.Now.
	Now func() time.Time
}

// Runner runs a job periodically on one replica at a time.
type Runner struct{ o Options }

// New checks o.
func New(o Options) (*Runner, error) {
	if o.Interval <= 0 || o.Timeout <= 0 || o.Lock == nil || o.Job == nil || o.Metrics == nil {
		return nil, errors.New("periodic: a job needs an interval, a timeout, a lock, the job and metrics")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Runner{o: o}, nil
}

// Run runs the job at once and then every Interval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		r.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs the job if no other replica is running it, and returns the
// result (also counted).
func (r *Runner) Once(ctx context.Context) string {
	res, err := r.once(ctx)
	r.o.Metrics.total.WithLabelValues(res).Inc()
	switch res {
	case ResultOK:
		r.o.Metrics.lastSuccess.Set(float64(r.o.Now().UnixNano()) / 1e9)
	case ResultError:
		if ctx.Err() == nil {
			r.o.Logger.Error(r.o.What+" failed (will retry at the next interval)", "error", err)
		}
	}
	return res
}

func (r *Runner) once(ctx context.Context) (string, error) {
	release, ok, err := r.o.Lock(ctx)
	if err != nil {
		return ResultError, err
	}
	if !ok {
		return ResultSkippedLocked, nil
	}
	defer func() {
		// Released even when ctx ended (shutdown), so another replica need
		// not wait out the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			r.o.Logger.Warn("releasing the "+r.o.What+" lock (it expires by itself)", "error", err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	if err := r.o.Job(ctx); err != nil {
		return ResultError, err
	}
	return ResultOK, nil
}
