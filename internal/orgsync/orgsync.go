// Package orgsync reads an AWS Organization (the tree of OUs and accounts,
// each account's state and team tag) through the Organizations API and plans
// the change that makes the gateway's organization match it. It talks to AWS
// only; writing the plan through the admin API is the caller's.
package orgsync

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/bedrock-gateway/gateway/internal/sdkhttp"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// API is the part of the Organizations client a sync uses.
type API interface {
	DescribeOrganization(context.Context, *organizations.DescribeOrganizationInput, ...func(*organizations.Options)) (*organizations.DescribeOrganizationOutput, error)
	organizations.ListRootsAPIClient
	organizations.ListOrganizationalUnitsForParentAPIClient
	organizations.ListAccountsForParentAPIClient
	organizations.ListTagsForResourceAPIClient
}

// DefaultTeamTag is the account tag whose value is the account's team.
const DefaultTeamTag = "team"

// AccountActive is the State of an account in good standing.
const AccountActive = string(types.AccountStateActive)

// AccountState maps an Organizations account State to the gateway's: ACTIVE
// (and an empty answer, from older APIs) is active (""), SUSPENDED suspended,
// and anything else (PENDING_CLOSURE, CLOSED, a state AWS adds later) closed,
// so an account the gateway cannot vouch for loses access.
func AccountState(aws string) string {
	switch aws {
	case "", AccountActive:
		return ""
	case string(types.AccountStateSuspended):
		return state.AccountSuspended
	default:
		return state.AccountClosed
	}
}

// maxAttempts bounds the SDK's retries of one call. Organizations throttles
// hard (a few calls per second per account) and a large organization needs
// thousands of calls, so a sync retries more than the SDK's default 3.
const maxAttempts = 10

// NewClient returns an Organizations client for cfg; endpoint, when set,
// overrides the AWS endpoint (the simulator, a proxy). Throttling is retried
// by the SDK's standard retryer with exponential backoff; the client-side
// retry quota is off, since throttling is expected on a long sync and each
// retry already waits.
func NewClient(cfg aws.Config, endpoint string) *organizations.Client {
	return organizations.NewFromConfig(cfg, func(o *organizations.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.RateLimiter = ratelimit.None
		})
		if o.HTTPClient == nil {
			o.HTTPClient = awshttp.NewBuildableClient()
		}
		o.HTTPClient = sdkhttp.Buffering(o.HTTPClient)
	})
}

// Options configure Read.
type Options struct {
	Client API
	// TeamTag is the account tag holding the team; empty means DefaultTeamTag.
	TeamTag string
	// Concurrency is how many tag reads run at once; 0 means 4.
	Concurrency int
}

// Snapshot is the organization as AWS Organizations reports it.
type Snapshot struct {
	// Organization is the tree: OUs and accounts directly under the root have
	// an empty Parent or Unit. An account's Team is set only when it carries
	// the team tag.
	Organization state.Organization
	// States maps every account ID to its Organizations State (ACTIVE,
	// SUSPENDED, PENDING_CLOSURE, CLOSED, ...).
	States map[string]string
	// Tagged holds the accounts whose Team came from the team tag.
	Tagged map[string]bool
}

// Read walks the organization: DescribeOrganization, ListRoots, then every
// parent's OUs and accounts (breadth first, all pages), then each account's
// tags.
func Read(ctx context.Context, o Options) (*Snapshot, error) {
	if o.Client == nil {
		return nil, errors.New("orgsync: no Organizations client")
	}
	if o.TeamTag == "" {
		o.TeamTag = DefaultTeamTag
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	c := o.Client
	desc, err := c.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return nil, fmt.Errorf("describing the organization: %w", err)
	}
	if desc.Organization == nil {
		return nil, errors.New("describing the organization: empty answer")
	}
	snap := &Snapshot{States: map[string]string{}, Tagged: map[string]bool{}}
	org := &snap.Organization
	org.ID = aws.ToString(desc.Organization.Id)
	org.HubAccount = aws.ToString(desc.Organization.MasterAccountId)

	var roots []types.Root
	rp := organizations.NewListRootsPaginator(c, &organizations.ListRootsInput{})
	for rp.HasMorePages() {
		out, err := rp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing roots: %w", err)
		}
		roots = append(roots, out.Roots...)
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("listing roots: %d roots, want exactly one", len(roots))
	}
	org.Root = aws.ToString(roots[0].Id)
	inState := func(parent string) string {
		if parent == org.Root {
			return ""
		}
		return parent
	}

	seen := map[string]bool{}
	queue := []string{org.Root}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		up := organizations.NewListOrganizationalUnitsForParentPaginator(c, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(parent)})
		for up.HasMorePages() {
			out, err := up.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing the OUs of %s: %w", parent, err)
			}
			for _, u := range out.OrganizationalUnits {
				id := aws.ToString(u.Id)
				if seen[id] {
					return nil, fmt.Errorf("listing the OUs of %s: %s listed twice", parent, id)
				}
				seen[id] = true
				org.Units = append(org.Units, state.Unit{ID: id, Name: aws.ToString(u.Name), Parent: inState(parent)})
				queue = append(queue, id)
			}
		}
		ap := organizations.NewListAccountsForParentPaginator(c, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for ap.HasMorePages() {
			out, err := ap.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing the accounts of %s: %w", parent, err)
			}
			for _, a := range out.Accounts {
				id := aws.ToString(a.Id)
				if seen[id] {
					return nil, fmt.Errorf("listing the accounts of %s: %s listed twice", parent, id)
				}
				seen[id] = true
				org.Accounts = append(org.Accounts, state.Account{ID: id, Name: aws.ToString(a.Name), Unit: inState(parent), State: AccountState(string(a.State))})
				snap.States[id] = string(a.State)
			}
		}
	}
	if err := readTeams(ctx, o, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// readTeams reads every account's tags, o.Concurrency at a time, and sets the
// Team of the tagged ones. The first error stops the rest.
func readTeams(ctx context.Context, o Options, snap *Snapshot) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	accounts := snap.Organization.Accounts
	teams := make([]string, len(accounts))
	tagged := make([]bool, len(accounts))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for i := range idx {
				team, ok, err := accountTeam(ctx, o.Client, accounts[i].ID, o.TeamTag)
				if err != nil {
					cancel(err)
					continue
				}
				teams[i], tagged[i] = team, ok
			}
		})
	}
feed:
	for i := range accounts {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for i := range accounts {
		if tagged[i] {
			accounts[i].Team = teams[i]
			snap.Tagged[accounts[i].ID] = true
		}
	}
	return nil
}

func accountTeam(ctx context.Context, c API, id, key string) (string, bool, error) {
	p := organizations.NewListTagsForResourcePaginator(c, &organizations.ListTagsForResourceInput{ResourceId: aws.String(id)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", false, fmt.Errorf("listing the tags of %s: %w", id, err)
		}
		for _, t := range out.Tags {
			if aws.ToString(t.Key) == key {
				if v := aws.ToString(t.Value); v != "" {
					return v, true, nil
				}
			}
		}
	}
	return "", false, nil
}
