package main

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// benchOrg is the generated organization and what the load needs to know about it.
type benchOrg struct {
	State   *state.State
	Callers []caller // member credential and an entitlement shared with its account
}

// stateShape sizes the generated organization.
type stateShape struct {
	TopUnits       int // OUs under the root; each has 3 children with 2 children each
	Accounts       int
	Entitlements   int
	Credentials    int
	CallersPerCred int
}

var defaultShape = stateShape{TopUnits: 4, Accounts: 300, Entitlements: 30, Credentials: 8, CallersPerCred: 4}

// upstreamModels are Anthropic models, so the InvokeModel body fits every entitlement.
var upstreamModels = []string{"anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"}

const (
	benchOrgID = "o-benchorg0001"
	benchRoot  = "r-bnch"
	huge       = int64(1_000_000_000_000) // a cap that never binds in a benchmark
)

// generateOrg builds a realistic organization deterministically: nested OUs,
// accounts spread over them, entitlements shared with OUs at several depths,
// with accounts directly (with share caps) and a few with the whole
// organization; every cap and rate limit is set but far out of reach, so the
// gateway does all its per-request work and never refuses.
func generateOrg(sh stateShape) (*benchOrg, error) {
	s := &state.State{Organization: state.Organization{ID: benchOrgID, Root: benchRoot, HubAccount: "100000000000"}}
	org := &s.Organization
	parent := map[string]string{}
	ouN := 0
	addUnit := func(name, par string) string {
		id := fmt.Sprintf("ou-bnch-%08d", ouN)
		ouN++
		org.Units = append(org.Units, state.Unit{ID: id, Name: name, Parent: par})
		parent[id] = par
		return id
	}
	var tops, all []string
	for i := range sh.TopUnits {
		top := addUnit(fmt.Sprintf("Division %d", i), "")
		tops = append(tops, top)
		all = append(all, top)
		for j := range 3 {
			mid := addUnit(fmt.Sprintf("Group %d.%d", i, j), top)
			all = append(all, mid)
			for k := range 2 {
				all = append(all, addUnit(fmt.Sprintf("Team %d.%d.%d", i, j, k), mid))
			}
		}
	}
	unitOf := map[string]string{}
	org.Accounts = append(org.Accounts, state.Account{ID: org.HubAccount, Name: "hub", Team: "platform"})
	var accounts []string
	for i := range sh.Accounts {
		id := fmt.Sprintf("%012d", 200000000000+i)
		unit := all[i%len(all)]
		if i%50 == 49 {
			unit = "" // a few accounts sit at the root
		}
		org.Accounts = append(org.Accounts, state.Account{ID: id, Name: fmt.Sprintf("app-%03d", i), Unit: unit})
		unitOf[id] = unit
		accounts = append(accounts, id)
	}

	shared := map[string]map[string]bool{} // entitlement -> targets
	for i := range sh.Entitlements {
		e := state.Entitlement{
			Name:        fmt.Sprintf("llm-%02d", i),
			Model:       upstreamModels[i%len(upstreamModels)],
			Description: "benchmark entitlement",
			Scope:       []string{benchOrgID},
			Limits:      state.Limits{MonthlyTokens: huge, AccountMonthlyTokens: huge / 10},
		}
		if i%2 == 0 {
			e.Limits.RequestsPerMinute = 100_000_000
			e.Limits.TokensPerMinute = huge / 10
		}
		targets := []string{tops[i%len(tops)], all[(i*7)%len(all)]}
		if i%10 == 0 {
			targets = append(targets, benchOrgID)
		}
		for k := range 5 {
			targets = append(targets, accounts[(i*11+k*37)%len(accounts)])
		}
		seen := map[string]bool{}
		for _, t := range targets {
			if seen[t] {
				continue
			}
			seen[t] = true
			sh := state.Share{Target: t}
			if len(t) == 12 {
				sh.MonthlyTokens = huge / 100
			}
			e.Shares = append(e.Shares, sh)
		}
		shared[e.Name] = seen
		s.Entitlements = append(s.Entitlements, e)
	}

	entitled := func(account, ent string) bool {
		t := shared[ent]
		if t[benchOrgID] || t[account] {
			return true
		}
		for u := unitOf[account]; u != ""; u = parent[u] {
			if t[u] {
				return true
			}
		}
		return false
	}

	b := &benchOrg{State: s}
	for i := range sh.Credentials {
		account := accounts[(i*accountsStride(sh.Accounts))%len(accounts)]
		c := state.Credential{
			Account:     account,
			Kind:        state.KindSigV4,
			Label:       fmt.Sprintf("bench-%d", i),
			AccessKeyID: fmt.Sprintf("GWBENCH%013d", i+1),
			Secret:      fmt.Sprintf("bench-secret-%02d-0123456789abcdefghijklmnopqrstuv", i),
		}
		s.Credentials = append(s.Credentials, c)
		n := 0
		for _, e := range s.Entitlements {
			if n == sh.CallersPerCred {
				break
			}
			if entitled(account, e.Name) {
				b.Callers = append(b.Callers, caller{
					Creds:   aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.Secret},
					ModelID: e.Name,
				})
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("credential %d (account %s) is entitled to nothing", i, account)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("generated state is invalid: %w", err)
	}
	return b, nil
}

// accountsStride spreads credentials over the accounts (and so over OUs).
func accountsStride(n int) int {
	if n < 8 {
		return 1
	}
	return n/8 + 1
}
