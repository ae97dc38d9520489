package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Actor is the audit actor of the records a periodic sync writes.
const Actor = "billing-sync"

// Results of one periodic sync (the result label of gateway_billing_sync_total).
const (
	ResultOK            = "ok"
	ResultError         = "error"
	ResultSkippedLocked = "skipped_locked"
)

// Metrics of the periodic sync.
type Metrics struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// NewMetrics registers gateway_billing_sync_total{result} (every result
// present from the start, at 0) and
// gateway_billing_sync_last_success_timestamp_seconds.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_billing_sync_total",
			Help: "Periodic billing syncs (application inference profiles) by result: ok, error, or skipped_locked (another replica was syncing)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_billing_sync_last_success_timestamp_seconds",
			Help: "Unix time of this replica's last successful periodic billing sync; 0 before the first."}),
	}
	for _, c := range []prometheus.Collector{m.total, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering billing sync metrics: %w", err)
		}
	}
	for _, r := range []string{ResultOK, ResultError, ResultSkippedLocked} {
		m.total.WithLabelValues(r)
	}
	return m, nil
}

// PeriodicOptions configure a Periodic sync.
type PeriodicOptions struct {
	// Interval between syncs; the first runs at once.
	Interval time.Duration
	Clients  Clients
	// Region is where entitlements without their own region call.
	Region string
	Tags   TagKeys
	// Lock takes the lock the replicas share, for at least Timeout; ok false
	// means another replica holds it.
	Lock func(ctx context.Context) (release func(context.Context) error, ok bool, err error)
	// Load reads the current state and the recorded profiles.
	Load func(ctx context.Context) (*state.State, []state.BillingProfile, error)
	// Record writes the records as one audited change by Actor.
	Record Record
	// Timeout bounds one sync; shorter than the lock's TTL.
	Timeout time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
	// Now stamps the last success; default time.Now.
	Now func() time.Time
}

// Periodic runs `gateway billing sync --apply` (never pruning) every
// Interval on whichever replica holds the lock.
type Periodic struct{ o PeriodicOptions }

// NewPeriodic checks o.
func NewPeriodic(o PeriodicOptions) (*Periodic, error) {
	if o.Interval <= 0 || o.Timeout <= 0 || o.Clients == nil || o.Lock == nil || o.Load == nil || o.Record == nil || o.Metrics == nil {
		return nil, errors.New("billing: periodic sync needs an interval, a timeout, clients, a lock, a load, a record and metrics")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Periodic{o: o}, nil
}

// Run syncs at once and then every Interval until ctx ends.
func (p *Periodic) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one sync if no other replica is running one, and returns its
// result (also counted).
func (p *Periodic) Once(ctx context.Context) string {
	res, err := p.once(ctx)
	p.o.Metrics.total.WithLabelValues(res).Inc()
	switch res {
	case ResultOK:
		p.o.Metrics.lastSuccess.Set(float64(p.o.Now().UnixNano()) / 1e9)
	case ResultError:
		if ctx.Err() == nil {
			p.o.Logger.Error("billing sync failed (will retry at the next interval)", "error", err)
		}
	}
	return res
}

func (p *Periodic) once(ctx context.Context) (string, error) {
	release, ok, err := p.o.Lock(ctx)
	if err != nil {
		return ResultError, err
	}
	if !ok {
		return ResultSkippedLocked, nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			p.o.Logger.Warn("releasing the billing sync lock (it expires by itself)", "error", err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	st, recorded, err := p.o.Load(ctx)
	if err != nil {
		return ResultError, fmt.Errorf("loading the state: %w", err)
	}
	plan, _, err := Sync(ctx, SyncOptions{Clients: p.o.Clients, Region: p.o.Region, Tags: p.o.Tags, State: st,
		Recorded: recorded, Apply: true, Record: p.o.Record})
	if plan != nil && len(plan.Changes) > 0 {
		p.o.Logger.Info("billing sync applied", "changes", len(plan.Changes), "kept", len(plan.Kept), "unused", len(plan.Unused))
	}
	if err != nil {
		return ResultError, err
	}
	return ResultOK, nil
}
