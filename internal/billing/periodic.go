package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/periodic"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// Actor is the audit actor of the records a periodic sync writes.
const Actor = "billing-sync"

// Results of one periodic sync (the result label of gateway_billing_sync_total).
const (
	ResultOK            = periodic.ResultOK
	ResultError         = periodic.ResultError
	ResultSkippedLocked = periodic.ResultSkippedLocked
)

// Metrics of the periodic sync.
type Metrics = periodic.Metrics

// NewMetrics registers gateway_billing_sync_total{result} (every result present from the
// start, at 0) and gateway_billing_sync_last_success_timestamp_seconds.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	return periodic.NewMetrics(reg, periodic.MetricsOptions{Name: "gateway_billing_sync", What: "billing sync", Detail: " (application inference profiles)"})
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
type Periodic struct {
	o PeriodicOptions
	r *periodic.Runner
}

// NewPeriodic checks o.
func NewPeriodic(o PeriodicOptions) (*Periodic, error) {
	if o.Clients == nil || o.Load == nil || o.Record == nil {
		return nil, errors.New("billing: periodic sync needs clients, a load and a record")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Periodic{o: o}
	r, err := periodic.New(periodic.Options{What: "billing sync", Interval: o.Interval, Lock: o.Lock, Job: p.sync,
		Timeout: o.Timeout, Metrics: o.Metrics, Logger: o.Logger, Now: o.Now})
	if err != nil {
		return nil, err
	}
	p.r = r
	return p, nil
}

// Run syncs at once and then every Interval until ctx ends.
func (p *Periodic) Run(ctx context.Context) { p.r.Run(ctx) }

// Once runs one sync if no other replica is running one, and returns its
// result (also counted).
func (p *Periodic) Once(ctx context.Context) string { return p.r.Once(ctx) }

// sync is one run, under the lock.
func (p *Periodic) sync(ctx context.Context) error {
	st, recorded, err := p.o.Load(ctx)
	if err != nil {
		return fmt.Errorf("loading the state: %w", err)
	}
	plan, _, err := Sync(ctx, SyncOptions{Clients: p.o.Clients, Region: p.o.Region, Tags: p.o.Tags, State: st,
		Recorded: recorded, Apply: true, Record: p.o.Record})
	if plan != nil && len(plan.Changes) > 0 {
		p.o.Logger.Info("billing sync applied", "changes", len(plan.Changes), "kept", len(plan.Kept), "unused", len(plan.Unused))
	}
	return err
}
