package billing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// SyncOptions configure Sync.
type SyncOptions struct {
	// Clients reach the control plane of each region; required.
	Clients Clients
	// Region is where entitlements without their own region call.
	Region string
	Tags   TagKeys
	// State is the gateway's state; Recorded the profiles its store records.
	State    *state.State
	Recorded []state.BillingProfile
	// Apply carries the plan out and records it with Record; Prune also
	// deletes tagged profiles nothing wants.
	Apply, Prune bool
	Record       Record
}

// Sync plans (and with Apply, applies) the profiles the state wants. It
// reports whether anything was written.
func Sync(ctx context.Context, o SyncOptions) (*Plan, bool, error) {
	if o.Clients == nil {
		return nil, false, errNoClients
	}
	if o.State == nil {
		return nil, false, errors.New("billing: no state")
	}
	if o.Apply && o.Record == nil {
		return nil, false, errors.New("billing: applying needs a Record")
	}
	wants, err := Wanted(o.State, WantOptions{Region: o.Region})
	if err != nil {
		return nil, false, err
	}
	regions := regionsOf(o.State, wants, o.Recorded, o.Region)
	existing, err := Read(ctx, o.Clients, regions)
	if err != nil {
		return nil, false, err
	}
	plan := NewPlan(wants, existing, o.Recorded, PlanOptions{Tags: o.Tags, Prune: o.Prune})
	if !o.Apply {
		return plan, false, nil
	}
	wrote, err := plan.Apply(ctx, o.Clients, o.Record)
	if err != nil {
		return plan, wrote, fmt.Errorf("applying the billing plan: %w", err)
	}
	return plan, wrote, nil
}

// regionsOf lists the regions to look for profiles in, sorted: the default,
// every entitlement's (so that profiles an entitlement no longer wants are
// found to prune), the wanted ones' and the recorded ones'.
func regionsOf(st *state.State, wants []Want, recorded []state.BillingProfile, region string) []string {
	var rs []string
	if region != "" {
		rs = append(rs, region)
	}
	for _, e := range st.Entitlements {
		if e.Region != "" {
			rs = append(rs, e.Region)
		}
		if m, err := bedrock.ParseModelID(e.Model); err == nil && m.Region != "" {
			rs = append(rs, m.Region)
		}
	}
	for _, w := range wants {
		rs = append(rs, w.Region)
	}
	for _, r := range recorded {
		if m, err := bedrock.ParseModelID(r.ARN); err == nil && m.Region != "" {
			rs = append(rs, m.Region)
		}
	}
	slices.Sort(rs)
	return slices.Compact(rs)
}
