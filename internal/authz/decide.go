package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// deniedMessage is the one message of every denial, whatever the reason (unknown
// entitlement, not shared, outside the scope, suspended, operation not allowed,
// unknown account), so that nobody can probe for entitlement names.
const deniedMessage = "You don't have access to the model with the specified model ID."

// DenyReason says why a call was denied. It is for the gateway's own log
// only: the caller always gets the one AccessDeniedException.
type DenyReason string

// The reasons of a denial.
const (
	DenyUnknownAccount      DenyReason = "unknown_account"
	DenyUnknownEntitlement  DenyReason = "unknown_entitlement"
	DenyInactive            DenyReason = "inactive"
	DenyOperationNotAllowed DenyReason = "operation_not_allowed"
	DenyNotShared           DenyReason = "not_shared"
	DenyOutsideScope        DenyReason = "outside_scope"
	// DenyAccountInactive: the account is suspended or closed in AWS
	// Organizations.
	DenyAccountInactive DenyReason = "account_inactive"
)

// Denial is a denied authorization: to the caller an AccessDeniedException
// (it unwraps to the *bedrock.Error every denial shares), to the log a reason.
type Denial struct {
	Reason DenyReason
	err    *bedrock.Error
}

func (d *Denial) Error() string { return d.err.Error() }

// Unwrap gives the client-facing error.
func (d *Denial) Unwrap() error { return d.err }

// ReasonOf returns the reason of a denial, or "" when err is none.
func ReasonOf(err error) DenyReason {
	var d *Denial
	if errors.As(err, &d) {
		return d.Reason
	}
	return ""
}

func denied(reason DenyReason) error {
	return &Denial{Reason: reason, err: bedrock.AccessDenied(deniedMessage)}
}

// Decision is the outcome of a successful authorization.
type Decision struct {
	Entitlement *Entitlement
	Account     *Account
	// Share is the most specific share covering the account: the account itself,
	// else its nearest OU, else the root, else the organization.
	Share state.Share
	// UpstreamModel is the model ID to call upstream (the entitlement's model).
	UpstreamModel string
}

// Authorize decides whether account may call op on modelID (already URL-decoded
// once). modelID is resolved, in order, as (1) an entitlement name; (2) a
// foundation-model ARN whose resource is an entitlement name,
// arn:<partition>:bedrock:<region>::foundation-model/<name>; (3) an upstream model
// ID or ARN, when exactly one entitlement the account may use for op has that
// upstream model (several give a ValidationException naming them). The
// entitlement must then be active, allow op, and be shared with the account
// directly, through an ancestor OU, the root or the organization, inside its
// scope.
//
// Every denial is the same *bedrock.Error AccessDeniedException. Authorize is
// small enough to inline, so when the caller keeps the Decision local it
// allocates nothing; Decide returns it by value.
func (s *Snapshot) Authorize(account string, op bedrock.Operation, modelID string) (dp *Decision, err error) {
	var d Decision
	if d, err = s.Decide(account, op, modelID); err == nil {
		dp = &d
	}
	return dp, err
}

// AuthorizeAs is Authorize for a caller with an IAM principal (its user,
// role or assumed-role ARN; empty for gateway-issued credentials): the share
// covering the account must also admit the principal when it names
// principals. Authorize is AuthorizeAs with no principal. Unlike Authorize it
// is too large to inline: a caller that keeps the Decision local uses DecideAs,
// which never allocates when access is granted.
func (s *Snapshot) AuthorizeAs(account, principal string, op bedrock.Operation, modelID string) (dp *Decision, err error) {
	var d Decision
	if d, err = s.DecideAs(account, principal, op, modelID); err == nil {
		dp = &d
	}
	return dp, err
}

// Decide is Authorize returning the Decision by value: it never allocates when
// access is granted.
//
// It is kept out of line so that Authorize stays small enough to inline.
//
//go:noinline
func (s *Snapshot) Decide(account string, op bedrock.Operation, modelID string) (Decision, error) {
	return s.DecideAs(account, "", op, modelID)
}

// DecideAs is AuthorizeAs returning the Decision by value.
func (s *Snapshot) DecideAs(account, principal string, op bedrock.Operation, modelID string) (Decision, error) {
	a := s.accounts[account]
	if a == nil {
		return Decision{}, denied(DenyUnknownAccount)
	}
	if a.Inactive {
		return Decision{}, denied(DenyAccountInactive)
	}
	e := s.entitlements[modelID]
	if e == nil {
		if name, ok := foundationModelResource(modelID); ok {
			e = s.entitlements[name]
		}
	}
	if e == nil {
		return s.decideUpstream(a, newCaller(principal), op, modelID)
	}
	switch {
	case !e.active:
		return Decision{}, denied(DenyInactive)
	case !e.Allows(op):
		return Decision{}, denied(DenyOperationNotAllowed)
	}
	sh, ok := s.covering(e, a, newCaller(principal))
	if !ok {
		return Decision{}, denied(s.uncovered(e, a))
	}
	return Decision{Entitlement: e, Account: a, Share: sh, UpstreamModel: e.Model}, nil
}

// covering finds the most specific share of e that covers a and admits the
// caller: a walk over the account's precomputed ancestors, one map lookup per
// level. A share naming principals the caller is not among is passed over,
// so a broader share of the whole account still applies.
func (s *Snapshot) covering(e *Entitlement, a *Account, c caller) (state.Share, bool) {
	if len(e.shares) == 0 {
		return state.Share{}, false
	}
	if e.mayShare(a.node) {
		if tokens, ok := e.shares[a.node]; ok && e.admits(a.node, c) {
			return state.Share{Target: a.ID, MonthlyTokens: tokens}, true
		}
	}
	for _, n := range a.ancestors {
		if !e.mayShare(n) {
			continue
		}
		if tokens, ok := e.shares[n]; ok && e.admits(n, c) {
			return state.Share{Target: s.nodes[n], MonthlyTokens: tokens}, true
		}
	}
	return state.Share{}, false
}

// uncovered tells why no share of e covers a: the account lies outside the
// entitlement's scope, or inside it with no share covering it, or covered by
// shares none of which admits the caller's principal.
func (s *Snapshot) uncovered(e *Entitlement, a *Account) DenyReason {
	if e.principals != nil {
		if _, ok := s.covering(e, a, caller{any: true}); ok {
			return DenyPrincipalNotMatched
		}
	}
	if e.scope == nil || e.scope[a.node] {
		return DenyNotShared
	}
	for _, n := range a.ancestors {
		if e.scope[n] {
			return DenyNotShared
		}
	}
	return DenyOutsideScope
}

// decideUpstream resolves an upstream model ID or ARN to the one entitlement
// with that model which the account may use for op.
func (s *Snapshot) decideUpstream(a *Account, c caller, op bedrock.Operation, modelID string) (Decision, error) {
	var (
		found *Entitlement
		share state.Share
		n     int
	)
	candidates := s.byModel[modelKey(modelID)]
	for _, e := range candidates {
		if !e.active || !e.Allows(op) {
			continue
		}
		if sh, ok := s.covering(e, a, c); ok {
			if n == 0 {
				found, share = e, sh
			}
			n++
		}
	}
	switch n {
	case 0:
		if len(candidates) == 0 {
			return Decision{}, denied(DenyUnknownEntitlement)
		}
		return Decision{}, denied(DenyNotShared)
	case 1:
		return Decision{Entitlement: found, Account: a, Share: share, UpstreamModel: found.Model}, nil
	}
	names := make([]string, 0, n)
	for _, e := range candidates { // already sorted by name
		if e.active && e.Allows(op) {
			if _, ok := s.covering(e, a, c); ok {
				names = append(names, e.Name)
			}
		}
	}
	return Decision{}, bedrock.Validation(fmt.Sprintf(
		"The model ID %s matches more than one entitlement shared with you. Use one of these entitlement names as the model ID instead: %s.",
		modelID, strings.Join(names, ", ")))
}

// modelKey is the upstream index key of a model ID: a foundation-model ARN and
// the base model ID it names are the same model.
func modelKey(model string) string {
	if base, ok := foundationModelResource(model); ok {
		return base
	}
	return model
}

// foundationModelResource returns the resource of a foundation-model ARN,
// arn:<partition>:bedrock:<region>::foundation-model/<resource>.
func foundationModelResource(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "arn:")
	if !ok {
		return "", false
	}
	partition, rest, ok := strings.Cut(rest, ":")
	if !ok || partition == "" {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, "bedrock:")
	if !ok {
		return "", false
	}
	region, rest, ok := strings.Cut(rest, ":")
	if !ok || region == "" {
		return "", false
	}
	res, ok := strings.CutPrefix(rest, ":foundation-model/")
	if !ok || res == "" {
		return "", false
	}
	return res, true
}

// EntitlementsAs is EntitlementsFor narrowed to the entitlements whose
// covering share admits the caller's principal (empty for gateway-issued
// credentials).
func (s *Snapshot) EntitlementsAs(account, principal string) []*Entitlement {
	list := s.EntitlementsFor(account)
	a := s.accounts[account]
	if a == nil {
		return list
	}
	c := newCaller(principal)
	out := list[:0]
	for _, e := range list {
		if _, ok := s.covering(e, a, c); ok {
			out = append(out, e)
		}
	}
	return out
}

// EntitlementsFor lists the entitlements account may use (active and shared with
// it inside their scope), sorted by name: what GET /foundation-models shows.
// It ignores share principals: see EntitlementsAs.
func (s *Snapshot) EntitlementsFor(account string) []*Entitlement {
	a := s.accounts[account]
	if a == nil || a.Inactive {
		return nil
	}
	idx := slices.Clone(s.byTarget[a.node])
	for _, n := range a.ancestors {
		idx = append(idx, s.byTarget[n]...)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]*Entitlement, 0, len(idx))
	for _, i := range idx {
		if e := s.sorted[i]; e.active {
			out = append(out, e)
		}
	}
	return out
}
