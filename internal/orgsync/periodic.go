package orgsync

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

// Actor is the audit actor of the organization changes a periodic sync writes.
const Actor = "org-sync"

// Results of one periodic sync (the result label of gateway_org_sync_total).
const (
	ResultOK            = periodic.ResultOK
	ResultError         = periodic.ResultError
	ResultSkippedLocked = periodic.ResultSkippedLocked
)

// Metrics of the periodic sync.
type Metrics = periodic.Metrics

// NewMetrics registers gateway_org_sync_total{result} (every result present from the
// start, at 0) and gateway_org_sync_last_success_timestamp_seconds.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	return periodic.NewMetrics(reg, periodic.MetricsOptions{Name: "gateway_org_sync", What: "org sync", Detail: ""})
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
type Periodic struct {
	o PeriodicOptions
	r *periodic.Runner
}

// NewPeriodic checks o.
func NewPeriodic(o PeriodicOptions) (*Periodic, error) {
	if o.Client == nil || o.Update == nil || o.Replace == nil {
		return nil, errors.New("orgsync: periodic sync needs a client, an update and a replace")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Periodic{o: o}
	r, err := periodic.New(periodic.Options{What: "org sync", Interval: o.Interval, Lock: o.Lock, Job: p.sync,
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
	snap, err := Read(ctx, Options{Client: p.o.Client, TeamTag: p.o.TeamTag})
	if err != nil {
		return fmt.Errorf("reading AWS Organizations: %w", err)
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
		return fmt.Errorf("writing the organization: %w", err)
	}
	if len(plan.Changes) > 0 || len(plan.Kept) > 0 {
		p.o.Logger.Info("org sync applied", "changes", len(plan.Changes), "kept_in_use", len(plan.Kept), "inactive", len(plan.Inactive))
	}
	for _, c := range plan.Kept {
		p.o.Logger.Warn("org sync kept an OU or account gone from AWS Organizations because it is still in use", "kind", c.Kind, "id", c.ID, "detail", c.Detail)
	}
	return nil
}
