package orgsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Actor is the audit actor of the organization changes a periodic sync writes.
const Actor = "org-sync"

// Results of one periodic sync (the result label of gateway_org_sync_total).
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

// NewMetrics registers gateway_org_sync_total{result} (every result present
// from the start, at 0) and gateway_org_sync_last_success_timestamp_seconds.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_org_sync_total",
			Help: "Periodic org syncs by result: ok, error, or skipped_locked (another replica was syncing)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_org_sync_last_success_timestamp_seconds",
			Help: "Unix time of this replica's last successful periodic org sync; 0 before the first."}),
	}
	for _, c := range []prometheus.Collector{m.total, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering org sync metrics: %w", err)
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
	// Client reads the organization; TeamTag as in Options.
	Client  API
	TeamTag string
	// Lock takes the lock the replicas share, for at least Timeout; ok false
	// means another replica holds it.
	Lock func(ctx context.Context) (release func(context.Context) error, ok bool, err error)
	// Update applies fn to the current state as one audited change by Actor
	// (store.Update); fn may run more than once.
	Update func(ctx context.Context, fn func(st *state.State) error) error
	// Replace writes org into st as the admin API does, refusing to remove an
	// ID still in use (admin.ReplaceOrganization without force).
	Replace func(st *state.State, org state.Organization) error
	// Timeout bounds one sync; it must be shorter than the lock's TTL, so
	// the lock never expires under a running sync.
	Timeout time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
	// Now stamps the last success; default time.Now.
	Now func() time.Time
}

// Periodic runs `gateway org sync --apply` (never pruning) every Interval on
// whichever replica holds the lock.
type Periodic struct{ o PeriodicOptions }

// NewPeriodic checks o.
func NewPeriodic(o PeriodicOptions) (*Periodic, error) {
	if o.Interval <= 0 || o.Timeout <= 0 || o.Client == nil || o.Lock == nil || o.Update == nil || o.Replace == nil || o.Metrics == nil {
		return nil, errors.New("orgsync: periodic sync needs an interval, a timeout, a client, a lock, an update, a replace and metrics")
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
			p.o.Logger.Error("org sync failed (will retry at the next interval)", "error", err)
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
		// Released even when ctx ended (shutdown), so another replica need
		// not wait out the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			p.o.Logger.Warn("releasing the org sync lock (it expires by itself)", "error", err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	snap, err := Read(ctx, Options{Client: p.o.Client, TeamTag: p.o.TeamTag})
	if err != nil {
		return ResultError, fmt.Errorf("reading AWS Organizations: %w", err)
	}
	var plan *Plan
	err = p.o.Update(ctx, func(st *state.State) error {
		others := *st
		others.Organization = state.Organization{}
		plan = NewPlan(st.Organization, snap, PlanOptions{InUse: others.References})
		if len(plan.Changes) == 0 {
			return nil
		}
		return p.o.Replace(st, plan.Organization)
	})
	if err != nil {
		return ResultError, fmt.Errorf("writing the organization: %w", err)
	}
	if len(plan.Changes) > 0 || len(plan.Kept) > 0 {
		p.o.Logger.Info("org sync applied", "changes", len(plan.Changes), "kept_in_use", len(plan.Kept), "inactive", len(plan.Inactive))
	}
	for _, c := range plan.Kept {
		p.o.Logger.Warn("org sync kept an OU or account gone from AWS Organizations because it is still in use", "kind", c.Kind, "id", c.ID, "detail", c.Detail)
	}
	return ResultOK, nil
}
