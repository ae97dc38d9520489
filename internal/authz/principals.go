package authz

import (
	"fmt"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// DenyPrincipalNotMatched: a share covers the account but names principals,
// and the caller is none of them (or used a gateway-issued credential).
const DenyPrincipalNotMatched DenyReason = "principal_not_matched"

// caller is the principal of a call, parsed once per decision. ok is false
// for gateway-issued credentials (no principal), which no share naming
// principals admits. any admits every share: it tells a denial's reason.
type caller struct {
	p   state.Principal
	ok  bool
	any bool
}

func newCaller(principal string) caller {
	if principal == "" {
		return caller{}
	}
	p, ok := state.ParsePrincipal(principal)
	return caller{p: p, ok: ok}
}

// addPrincipals records the parsed principal patterns of the share at node n.
func (e *Entitlement) addPrincipals(n uint32, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	parsed := make([]state.Principal, 0, len(patterns))
	for _, p := range patterns {
		pr, ok := state.ParsePrincipal(p)
		if !ok {
			return fmt.Errorf("building snapshot: entitlement %s: malformed principal %q", e.Name, p)
		}
		parsed = append(parsed, pr)
	}
	if e.principals == nil {
		e.principals = make(map[uint32][]state.Principal)
	}
	e.principals[n] = parsed
	return nil
}

// admits reports whether the share of e at node n lets c call: a share
// without principals admits everyone its target covers.
func (e *Entitlement) admits(n uint32, c caller) bool {
	if e.principals == nil || c.any {
		return true
	}
	patterns, ok := e.principals[n]
	if !ok {
		return true
	}
	if !c.ok {
		return false
	}
	for _, p := range patterns {
		if state.MatchParsed(p, c.p) {
			return true
		}
	}
	return false
}

// PrincipalDenied reports whether the IAM principal (a user, role or
// assumed-role ARN) matches the deny list. An empty principal (a
// gateway-issued credential) never does.
func (s *Snapshot) PrincipalDenied(principal string) bool {
	if len(s.denied) == 0 || principal == "" {
		return false
	}
	p, ok := state.ParsePrincipal(principal)
	if !ok {
		return false
	}
	for _, d := range s.denied {
		if state.MatchParsed(d, p) {
			return true
		}
	}
	return false
}
