package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bedrock-gateway/gateway/internal/billing"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// billingSyncLock is the name of the lock replicas take to run the periodic
// billing sync.
const billingSyncLock = "billing-sync"

// profileTable is the recorded application inference profiles this replica
// sends calls to (proxy.Profiles): an immutable map swapped whole, read on
// the request path without locks.
type profileTable struct {
	m atomic.Pointer[map[string]string] // "<entitlement>/<team>" -> ARN
}

// Profile implements proxy.Profiles.
func (t *profileTable) Profile(entitlement, team string) (string, bool) {
	m := t.m.Load()
	if m == nil {
		return "", false
	}
	arn, ok := (*m)[entitlement+"/"+team]
	return arn, ok
}

func (t *profileTable) set(ps []state.BillingProfile) {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Key()] = p.ARN
	}
	t.m.Store(&m)
}

// profileRefresh is how often the profiles are read even when the state
// version did not move (a failed read is retried then).
const profileRefresh = 30 * time.Second

// reloadProfiles reads the recorded profiles into the table; on failure the
// last ones stay in force.
func (s *Server) reloadProfiles(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.redisTimeout())
	defer cancel()
	ps, err := s.store.BillingProfiles(ctx)
	if err != nil {
		s.log.Warn("reading billing profiles (the last ones stay in force)", "error", err)
		return
	}
	s.profiles.set(ps)
}

// watchProfiles re-reads the profiles every profileRefresh until ctx ends;
// a change is normally seen at once, with the state version.
func (s *Server) watchProfiles(ctx context.Context) {
	t := time.NewTicker(profileRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reloadProfiles(ctx)
		}
	}
}

// billingClients builds the Bedrock control-plane clients: --bedrock-endpoint,
// else with --simulate the simulator, else the endpoint the AWS config
// resolves (AWS_ENDPOINT_URL_BEDROCK, AWS_ENDPOINT_URL, or AWS's).
func (s *Server) billingClients(awsCfg aws.Config) billing.Clients {
	endpoint := s.cfg.BedrockEndpoint
	if endpoint == "" && s.cfg.Simulate {
		endpoint = s.simURL
	}
	return billing.NewClients(awsCfg, endpoint)
}

// newBillingSync builds the periodic billing sync (--billing-sync-interval);
// nil when it is off.
func (s *Server) newBillingSync(awsCfg aws.Config, region string) (*billing.Periodic, error) {
	cfg := s.cfg
	if cfg.BillingSyncInterval <= 0 {
		return nil, nil
	}
	m, err := billing.NewMetrics(s.metrics.Registry)
	if err != nil {
		return nil, err
	}
	timeout := min(max(cfg.BillingSyncInterval, time.Minute), 10*time.Minute)
	lockTTL := timeout + time.Minute
	p, err := billing.NewPeriodic(billing.PeriodicOptions{
		Interval: cfg.BillingSyncInterval,
		Clients:  s.billingClients(awsCfg),
		Region:   region,
		Tags:     billing.TagKeys{Entitlement: cfg.BillingEntitlementTag, Team: cfg.BillingTeamTag},
		Lock: func(ctx context.Context) (func(context.Context) error, bool, error) {
			l, ok, err := s.store.TryLock(ctx, billingSyncLock, lockTTL)
			if !ok || err != nil {
				return nil, ok, err
			}
			return l.Release, true, nil
		},
		Load: func(ctx context.Context) (*state.State, []state.BillingProfile, error) {
			st, _, err := s.store.Load(ctx)
			if err != nil {
				return nil, nil, err
			}
			ps, err := s.store.BillingProfiles(ctx)
			return st, ps, err
		},
		Record: func(ctx context.Context, ps []state.BillingProfile) error {
			_, err := s.store.ReplaceBillingProfiles(ctx, billing.Actor, ps)
			return err
		},
		Timeout: timeout,
		Metrics: m,
		Logger:  s.log.With("component", "billing-sync"),
	})
	if err != nil {
		return nil, fmt.Errorf("periodic billing sync: %w", err)
	}
	return p, nil
}
