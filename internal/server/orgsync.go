package server

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/orgsync"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// orgSyncLock is the name of the lock replicas take to run the periodic sync.
const orgSyncLock = "org-sync"

// newOrgSync builds the periodic org sync (--org-sync-interval) reading AWS
// Organizations with the hub's credentials; nil when it is off.
func (s *Server) newOrgSync(region string, creds aws.CredentialsProvider) (*orgsync.Periodic, error) {
	cfg := s.cfg
	if cfg.OrgSyncInterval <= 0 {
		return nil, nil
	}
	m, err := orgsync.NewMetrics(s.metrics.Registry)
	if err != nil {
		return nil, err
	}
	// One sync must end before its lock expires: a few minutes suffice for
	// thousands of accounts, and a short interval must not let syncs pile up.
	timeout := min(max(cfg.OrgSyncInterval, time.Minute), 10*time.Minute)
	lockTTL := timeout + time.Minute
	endpoint := cfg.OrganizationsEndpoint
	if endpoint == "" && cfg.Simulate {
		endpoint = s.simURL // the simulator serves the bootstrap file's organization
	}
	p, err := orgsync.NewPeriodic(orgsync.PeriodicOptions{
		Interval: cfg.OrgSyncInterval,
		Client:   orgsync.NewClient(aws.Config{Region: region, Credentials: creds}, endpoint),
		TeamTag:  cfg.OrgSyncTeamTag,
		Lock: func(ctx context.Context) (func(context.Context) error, bool, error) {
			l, ok, err := s.store.TryLock(ctx, orgSyncLock, lockTTL)
			if !ok || err != nil {
				return nil, ok, err
			}
			return l.Release, true, nil
		},
		Update: func(ctx context.Context, fn func(*state.State) error) error {
			_, err := s.store.Update(ctx, orgsync.Actor, admin.ActionReplaceOrganization, fn)
			return err
		},
		Replace: func(st *state.State, org state.Organization) error {
			return admin.ReplaceOrganization(st, org, false)
		},
		Timeout: timeout,
		Metrics: m,
		Logger:  s.log.With("component", "org-sync"),
	})
	if err != nil {
		return nil, fmt.Errorf("periodic org sync: %w", err)
	}
	return p, nil
}
